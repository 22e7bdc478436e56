//! The `.volume` Quadlet unit: a named podman volume owned by one app.

use super::ini::{Section, UnitFile};

/// A `.volume` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUnit {
    /// `[Unit] Description=`.
    pub description: String,
    /// `[Volume] VolumeName=`: `<app>_<volume>`, instead of Quadlet's
    /// `systemd-` prefix, so podman's view reads like ours.
    pub volume_name: String,
    /// `[Volume] Label=`.
    pub labels: Vec<(String, String)>,
}

impl VolumeUnit {
    pub fn to_unit_file(&self, header: Vec<String>) -> UnitFile {
        let mut unit = Section::new("Unit");
        unit.add("Description", &self.description);
        let mut vol = Section::new("Volume");
        vol.add("VolumeName", &self.volume_name);
        for (k, v) in &self.labels {
            vol.add("Label", format!("{k}={v}"));
        }
        UnitFile {
            header,
            sections: vec![unit, vol],
        }
    }
}
