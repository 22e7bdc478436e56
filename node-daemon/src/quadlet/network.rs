//! The `.network` Quadlet unit: one private network per app, joined by its
//! containers and by the containers of apps that depend on it.

use super::ini::{Section, UnitFile};

/// A `.network` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkUnit {
    /// `[Unit] Description=`.
    pub description: String,
    /// `[Network] NetworkName=`: `archipelago-<app>`.
    pub network_name: String,
    /// `[Network] Label=`.
    pub labels: Vec<(String, String)>,
}

impl NetworkUnit {
    pub fn to_unit_file(&self, header: Vec<String>) -> UnitFile {
        let mut unit = Section::new("Unit");
        unit.add("Description", &self.description);
        let mut net = Section::new("Network");
        net.add("NetworkName", &self.network_name);
        for (k, v) in &self.labels {
            net.add("Label", format!("{k}={v}"));
        }
        UnitFile {
            header,
            sections: vec![unit, net],
        }
    }
}
