//! The systemd sections every Quadlet file may carry: `[Unit]`, `[Service]`
//! and `[Install]`.

use super::ini::Section;

/// `[Unit]`: description and ordering against other units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitSection {
    /// `Description=`: what `systemctl status` shows.
    pub description: String,
    /// `Requires=` + `After=`: units that must be up first; if one stops,
    /// this one stops too.
    pub requires: Vec<String>,
    /// `Wants=` + `After=`: units started first when present, not needed.
    pub wants: Vec<String>,
}

impl UnitSection {
    pub fn to_section(&self) -> Section {
        let mut s = Section::new("Unit");
        s.add("Description", &self.description);
        for r in &self.requires {
            s.add("Requires", r);
        }
        for w in &self.wants {
            s.add("Wants", w);
        }
        for a in self.requires.iter().chain(&self.wants) {
            s.add("After", a);
        }
        s
    }
}

/// `[Service]` keys we set on container units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSection {
    /// `Restart=`: systemd is the per-app supervisor (pillar 1).
    pub restart: &'static str,
    /// `RestartSec=` in seconds.
    pub restart_sec: u64,
    /// `TimeoutStartSec=` in seconds: long enough for an image pull plus the
    /// health check's first success.
    pub timeout_start_sec: u64,
    /// `TimeoutStopSec=` in seconds, when the container's stop timeout
    /// needs more than systemd's default (90 s) to play out.
    pub timeout_stop_sec: Option<u64>,
}

/// A container stopped on purpose ends with SIGTERM's status (143, from
/// podman through the container's init); it must not leave the unit
/// `failed`, or a stopped app would look broken.
const SUCCESS_EXIT_STATUS: &str = "0 143";

impl ServiceSection {
    pub fn to_section(&self) -> Section {
        let mut s = Section::new("Service");
        s.add("Restart", self.restart)
            .add("RestartSec", self.restart_sec.to_string())
            .add("TimeoutStartSec", self.timeout_start_sec.to_string());
        s.add_opt(
            "TimeoutStopSec",
            self.timeout_stop_sec.map(|t| t.to_string()).as_ref(),
        );
        s.add("SuccessExitStatus", SUCCESS_EXIT_STATUS);
        s
    }
}

/// `[Install]`: present only for apps that should run, so that a stopped app
/// stays stopped across a reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSection {
    /// `WantedBy=`: the user manager's `default.target`, reached at boot
    /// thanks to lingering.
    pub wanted_by: &'static str,
}

impl InstallSection {
    pub fn to_section(&self) -> Section {
        let mut s = Section::new("Install");
        s.add("WantedBy", self.wanted_by);
        s
    }
}
