//! The vocabulary of app state shared by the daemon and its clients.

use serde::{Deserialize, Serialize};

/// An app's identifier, as in its manifest (`hello-web`, `bitcoin-knots`).
pub type AppId = String;

/// What the user wants an installed app to be doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub enum RunState {
    /// Containers up and kept up (started at boot, restarted when they die).
    #[default]
    Running,
    /// Installed, units on disk, containers stopped.
    Stopped,
}

/// systemd's `ActiveState` of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    /// systemd reported a state this version does not know.
    Unknown,
}

impl ActiveState {
    /// Parses systemd's spelling (`"active"`, `"failed"`, …).
    pub fn from_systemd(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            _ => Self::Unknown,
        }
    }

    /// True when the unit is up or on its way up.
    pub const fn is_up(self) -> bool {
        matches!(self, Self::Active | Self::Activating | Self::Reloading)
    }
}

/// One systemd unit as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct UnitState {
    pub name: String,
    /// `loaded`, `not-found`, `bad-setting`, …
    pub load_state: String,
    pub active_state: ActiveState,
    pub sub_state: String,
}
