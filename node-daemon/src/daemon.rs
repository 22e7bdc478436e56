//! The daemon's reconcile loop (`archipelagod run`): one [`Context`] for the
//! process's life, a pass, then a wait for the first of the pass's own
//! requeue delay (30 s by default), a unit of ours changing state, the state
//! file changing, or the shutdown signal.
//!
//! Exiting never stops a container (pillar 1): the containers are units of
//! the user's systemd manager, not children of this process, and shutdown
//! only drops the pass in flight. The pass is level-triggered and crash-safe,
//! so a pass cut short is finished by the next process's first pass.

use crate::podman::PodmanApi;
use crate::reconcile::PassReport;
use crate::service::NodeService;
use crate::systemd::SystemdManager;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::Receiver;

/// Unit changes arriving within this long of the first make one pass.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the state file's metadata is looked at while waiting.
pub const STATE_POLL: Duration = Duration::from_secs(1);
/// The wait after a pass that could not run at all (no state, an error
/// outside any app).
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Whether a unit name is one of the apps' units (`<app>_<container>.service`).
pub fn is_app_unit(name: &str) -> bool {
    name.strip_suffix(".service")
        .is_some_and(|stem| stem.contains('_'))
}

/// SIGTERM or SIGINT, whichever comes first; registered when this returns
/// (before the first pass), resolved with the signal's name.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The state file's identity and size and time of change: what tells,
/// cheaply, that it may have changed.
type Stamp = Option<(u64, u64, Option<SystemTime>)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.len(), m.modified().ok()))
}

/// What ended a wait.
enum Wake {
    Timer,
    Units(Vec<String>),
    StateFile,
    Files,
    Shutdown(&'static str),
}

/// Runs passes until `shutdown` resolves; `changes` are unit names whose
/// state changed (see [`crate::systemd_dbus::DbusSystemd::unit_changes`]).
/// The state file is the service's: it is re-read when it changes on disk
/// (an operator's edit), and the API's operations run their own passes
/// through the same service. Returns an error only when the unit changes
/// stop (the connection to the manager closed): a supervisor should start
/// the daemon again.
pub async fn run<S: SystemdManager + 'static, P: PodmanApi + 'static>(
    service: &NodeService<S, P>,
    mut changes: Receiver<String>,
    shutdown: impl Future<Output = &'static str>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let state_path = service.context().layout.state_file();
    tracing::info!(
        "archipelagod running over {} (pass at least every {} s, on unit changes, on state changes)",
        state_path.display(),
        crate::reconcile::REQUEUE_INTERVAL.as_secs()
    );
    let mut passes: u64 = 0;
    let mut why = String::from("start");
    loop {
        let seen = stamp(&state_path);
        service.refresh();
        let next = if service.state().is_some() {
            let start = Instant::now();
            let result = tokio::select! {
                r = service.pass() => r,
                sig = &mut shutdown => {
                    stopping(sig);
                    return Ok(());
                },
            };
            passes += 1;
            let took = start.elapsed();
            match result {
                Ok(report) => {
                    let failed = summary_failed(&report);
                    if report.changed() || failed || passes == 1 {
                        let line = summary(&report, passes, &why, took);
                        if failed {
                            tracing::warn!("{line}");
                        } else {
                            tracing::info!("{line}");
                        }
                    } else {
                        tracing::debug!("pass {passes} ({why}): no change in {took:?}");
                    }
                    report.next_pass_in()
                }
                Err(e) => {
                    tracing::error!("pass {passes} ({why}) failed after {took:?}: {e}");
                    RETRY_AFTER
                }
            }
        } else {
            RETRY_AFTER
        };
        let files_changed = || service.context().files_changed();
        why = match wait(
            next,
            &mut changes,
            &state_path,
            &seen,
            &files_changed,
            &mut shutdown,
        )
        .await?
        {
            Wake::Timer => "timer".to_owned(),
            Wake::StateFile => "state file changed".to_owned(),
            Wake::Files => "unit files or secrets changed".to_owned(),
            Wake::Units(units) => format!("units changed: {}", units.join(", ")),
            Wake::Shutdown(sig) => {
                stopping(sig);
                return Ok(());
            }
        };
    }
}

fn stopping(sig: &str) {
    tracing::info!("{sig}: exiting; the apps' containers keep running");
}

/// Waits for the first reason for another pass.
async fn wait(
    next: Duration,
    changes: &mut Receiver<String>,
    state_path: &Path,
    seen: &Stamp,
    files_changed: &impl Fn() -> bool,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = &'static str>>,
) -> anyhow::Result<Wake> {
    let timer = tokio::time::sleep(next);
    tokio::pin!(timer);
    let mut poll = tokio::time::interval(STATE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut timer => return Ok(Wake::Timer),
            sig = shutdown.as_mut() => return Ok(Wake::Shutdown(sig)),
            _ = poll.tick() => {
                if stamp(state_path) != *seen {
                    return Ok(Wake::StateFile);
                }
                if files_changed() {
                    return Ok(Wake::Files);
                }
            }
            name = changes.recv() => {
                let Some(name) = name else {
                    anyhow::bail!("the connection to the user's systemd manager closed: no more unit changes");
                };
                if !is_app_unit(&name) {
                    continue;
                }
                // A burst (a container dying, its unit restarting) makes
                // one pass.
                tokio::time::sleep(DEBOUNCE).await;
                let mut units = vec![name];
                while let Ok(n) = changes.try_recv() {
                    if is_app_unit(&n) && !units.contains(&n) {
                        units.push(n);
                    }
                }
                return Ok(Wake::Units(units));
            }
        }
    }
}

/// Whether any app failed to reconcile, or a removed app's unit could not
/// be stopped.
fn summary_failed(report: &PassReport) -> bool {
    !report.orphan_errors.is_empty() || report.apps.values().any(|o| o.result.is_err())
}

/// One line on what a pass did.
fn summary(report: &PassReport, n: u64, why: &str, took: Duration) -> String {
    let mut line = format!("pass {n} ({why}) in {took:?}:");
    let mut list = |what: &str, items: Vec<String>| {
        if !items.is_empty() {
            let _ = write!(line, " {what} [{}]", items.join(", "));
        }
    };
    let names = |v: &[PathBuf]| {
        v.iter()
            .map(|p| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    list("wrote", names(&report.written));
    list("removed", names(&report.removed));
    list("secrets of", report.secrets.keys().cloned().collect());
    list("stopped orphans", report.orphans_stopped.clone());
    list("orphan errors", report.orphan_errors.clone());
    let per_app = |f: fn(&crate::reconcile::AppChanges) -> &Vec<String>| {
        report
            .apps
            .values()
            .flat_map(|o| f(&o.changes).iter().cloned())
            .collect::<Vec<_>>()
    };
    list("started", per_app(|c| &c.started));
    list("stopped", per_app(|c| &c.stopped));
    list("restarted", per_app(|c| &c.restarted));
    list(
        "failed",
        report
            .apps
            .iter()
            .filter_map(|(app, o)| o.result.as_ref().err().map(|e| format!("{app}: {e}")))
            .collect(),
    );
    if report.reloaded {
        line.push_str(" reloaded systemd;");
    }
    let _ = write!(line, " next pass in {:?}", report.next_pass_in());
    line
}

#[cfg(test)]
mod tests {
    use super::is_app_unit;

    #[test]
    fn app_units_are_told_apart() {
        assert!(is_app_unit("hello-web_web.service"));
        assert!(!is_app_unit("podman.socket"));
        assert!(!is_app_unit("archipelagod-test.service"));
        assert!(!is_app_unit("hello-web_web.timer"));
    }
}
