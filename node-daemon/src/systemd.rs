//! The service user's systemd manager, behind the narrow trait the
//! reconciler needs. The real implementation talks D-Bus (zbus) to
//! `/run/user/<uid>/bus`; [`crate::fake::FakeNode`] records calls for unit
//! tests. Domain verbs only: no `systemctl` strings leak out of here.

use archipelago_api::UnitState;
use std::future::Future;

/// What can go wrong talking to the manager.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// The unit is not loaded: its Quadlet file is missing or was rejected by
    /// the generator (see `journalctl --user -t quadlet-generator`).
    #[error("unit {0} is not loaded: its Quadlet file is missing or invalid")]
    NoSuchUnit(String),
    /// A start/stop/restart job finished with a result other than `done`.
    #[error("{verb} of {unit} ended with `{result}`: see `journalctl --user -u {unit}`")]
    JobFailed {
        verb: &'static str,
        unit: String,
        result: String,
    },
    /// The job did not finish in time.
    #[error("{verb} of {unit} did not finish within {secs} s")]
    Timeout {
        verb: &'static str,
        unit: String,
        secs: u64,
    },
    /// The manager could not be reached or answered with an error.
    #[error("the user's systemd manager failed: {0}")]
    Bus(String),
}

/// The calls the reconciler makes on the user's systemd manager. Start, stop
/// and restart wait until the job has finished.
pub trait SystemdManager: Send + Sync {
    /// `Reload`: re-runs the Quadlet generator over the unit folder.
    fn reload(&self) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `StartUnit(name, "replace")` and wait for its job.
    fn start_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `StopUnit(name, "replace")` and wait for its job.
    fn stop_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `RestartUnit(name, "replace")` and wait for its job.
    fn restart_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `ResetFailedUnit`: clears a failed state before a fresh start.
    fn reset_failed_unit(
        &self,
        unit: &str,
    ) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `ListUnitsByNames`: one call for all app units; units systemd does not
    /// know come back with load state `not-found`.
    fn list_units_by_names(
        &self,
        units: &[String],
    ) -> impl Future<Output = Result<Vec<UnitState>, SystemdError>> + Send;
    /// How a service's main process last ended (`Result`, `ExecMainCode`,
    /// `ExecMainStatus`), for the error of a failed start; `None` while it
    /// never ended.
    fn main_exit(
        &self,
        unit: &str,
    ) -> impl Future<Output = Result<Option<MainExit>, SystemdError>> + Send;
}

/// How a service's main process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainExit {
    /// The service's `Result`: `exit-code`, `signal`, `timeout`, …
    pub result: String,
    /// True when it was killed by a signal (`status` is then the signal).
    pub signal: bool,
    /// Its exit status, or the signal's number.
    pub status: i32,
}

impl std::fmt::Display for MainExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.signal {
            write!(f, "was killed by signal {}", self.status)?;
        } else {
            write!(f, "exited with status {}", self.status)?;
        }
        if !self.result.is_empty() && self.result != "success" {
            write!(f, " (systemd: {})", self.result)?;
        }
        Ok(())
    }
}

/// One manager shared by several owners (the reconciler, the API, tests).
impl<T: SystemdManager> SystemdManager for std::sync::Arc<T> {
    fn reload(&self) -> impl Future<Output = Result<(), SystemdError>> + Send {
        (**self).reload()
    }
    fn start_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send {
        (**self).start_unit(unit)
    }
    fn stop_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send {
        (**self).stop_unit(unit)
    }
    fn restart_unit(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send {
        (**self).restart_unit(unit)
    }
    fn reset_failed_unit(
        &self,
        unit: &str,
    ) -> impl Future<Output = Result<(), SystemdError>> + Send {
        (**self).reset_failed_unit(unit)
    }
    fn list_units_by_names(
        &self,
        units: &[String],
    ) -> impl Future<Output = Result<Vec<UnitState>, SystemdError>> + Send {
        (**self).list_units_by_names(units)
    }
    fn main_exit(
        &self,
        unit: &str,
    ) -> impl Future<Output = Result<Option<MainExit>, SystemdError>> + Send {
        (**self).main_exit(unit)
    }
}
