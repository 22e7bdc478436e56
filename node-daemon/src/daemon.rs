//! The daemon's reconcile loop (`archipelagod run`): one [`Context`] for the
//! process's life, a pass, then a wait for the first of the pass's own
//! requeue delay (30 s by default), a unit of ours changing state, the state
//! file changing, or the shutdown signal.
//!
//! A call that finds podman's API socket unreachable wakes the loop, which
//! repairs what it can (see [`repair_podman`]) before its next pass.
//!
//! Exiting never stops a container (pillar 1): the containers are units of
//! the user's systemd manager, not children of this process, and shutdown
//! only drops the pass in flight. The pass is level-triggered and crash-safe,
//! so a pass cut short is finished by the next process's first pass.

use crate::podman::{PODMAN_SERVICE, PODMAN_SOCKET, PodmanApi};
use crate::reconcile::{Context, PassReport};
use crate::service::NodeService;
use crate::systemd::SystemdManager;
use archipelago_api::ActiveState;
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

/// The wait for the next pass after podman was repaired.
const AFTER_REPAIR: Duration = Duration::from_secs(1);

/// Brings podman's API back after a call found its socket unreachable:
/// removes a stale pause pid file (it locks rootless podman out, see
/// [`crate::podman_pause`]), and starts `podman.socket` again when it is
/// not listening (it gives up after a burst of failed starts). Says what
/// it did; nothing when podman only needs time.
pub async fn repair_podman<S: SystemdManager, P: PodmanApi>(ctx: &Context<S, P>) -> Vec<String> {
    let mut repairs = Vec::new();
    let stale = match ctx.podman.clear_stale_pause() {
        Ok(stale) => stale,
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    };
    if let Some(why) = &stale {
        repairs.push(format!("removed podman's stale pause pid file ({why})"));
    }
    let socket_down = match ctx
        .systemd
        .list_units_by_names(&[PODMAN_SOCKET.to_owned()])
        .await
    {
        Ok(units) => units
            .first()
            .is_none_or(|u| u.active_state != ActiveState::Active),
        Err(e) => {
            tracing::warn!("could not look at {PODMAN_SOCKET}: {e}");
            false
        }
    };
    if stale.is_none() && !socket_down {
        return repairs;
    }
    // Failed states would refuse the start, or make the first request fail.
    for unit in [PODMAN_SERVICE, PODMAN_SOCKET] {
        if let Err(e) = ctx.systemd.reset_failed_unit(unit).await {
            tracing::debug!("reset of {unit}: {e}");
        }
    }
    match ctx.systemd.start_unit(PODMAN_SOCKET).await {
        Ok(()) if socket_down => repairs.push(format!("started {PODMAN_SOCKET} again")),
        Ok(()) => {}
        Err(e) => repairs.push(format!("could not start {PODMAN_SOCKET}: {e}")),
    }
    repairs
}

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
    /// A call (an API operation's) found podman's socket unreachable.
    PodmanOutage,
    Shutdown(&'static str),
}

/// What the wait looks at on each poll besides the state file.
struct Watch<'a> {
    /// Unit files or secrets changed on disk.
    files_changed: &'a dyn Fn() -> bool,
    /// A call found podman's socket unreachable (asking forgets it).
    podman_outage: &'a dyn Fn() -> bool,
}

/// [`repair_podman`], logged; whether it did anything.
async fn repaired<S: SystemdManager, P: PodmanApi>(ctx: &Context<S, P>) -> bool {
    let repairs = repair_podman(ctx).await;
    if !repairs.is_empty() {
        tracing::warn!("podman's API was unreachable: {}", repairs.join("; "));
    }
    !repairs.is_empty()
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
        let mut next = if service.state().is_some() {
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
        if service.context().podman.take_outage() && repaired(service.context()).await {
            next = next.min(AFTER_REPAIR);
        }
        let files_changed = || service.context().files_changed();
        let podman_outage = || service.context().podman.take_outage();
        why = match wait(
            next,
            &mut changes,
            &state_path,
            &seen,
            &Watch {
                files_changed: &files_changed,
                podman_outage: &podman_outage,
            },
            &mut shutdown,
        )
        .await?
        {
            Wake::Timer => "timer".to_owned(),
            Wake::PodmanOutage => {
                repaired(service.context()).await;
                "podman's API was unreachable".to_owned()
            }
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
    watch: &Watch<'_>,
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
                if (watch.files_changed)() {
                    return Ok(Wake::Files);
                }
                if (watch.podman_outage)() {
                    return Ok(Wake::PodmanOutage);
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
    #![allow(clippy::unwrap_used)]
    use super::{is_app_unit, repair_podman};
    use crate::fake::{Call, FakeNode};
    use crate::layout::Layout;
    use crate::podman::PODMAN_SOCKET;
    use crate::podman_pause::Stale;
    use crate::reconcile::Context;
    use crate::secrets::SecretStore;
    use archipelago_api::ActiveState;
    use std::sync::Arc;

    fn context(home: &std::path::Path) -> Context<Arc<FakeNode>, Arc<FakeNode>> {
        let layout = Layout::under_home(home);
        let fake = Arc::new(FakeNode::new(layout.units_dir.clone()));
        let secrets = SecretStore::new(layout.clone());
        Context::new(layout, Arc::clone(&fake), fake, secrets)
    }

    #[tokio::test]
    async fn a_locked_out_podman_is_repaired_and_its_socket_started_again() {
        let home = tempfile::tempdir().unwrap();
        let ctx = context(home.path());
        ctx.podman.lose_podman(Stale::Gone(166));
        let repairs = repair_podman(&ctx).await;
        assert_eq!(
            repairs,
            [
                "removed podman's stale pause pid file (pause process 166 is gone)",
                "started podman.socket again"
            ]
        );
        assert_eq!(ctx.systemd.active_state(PODMAN_SOCKET), ActiveState::Active);
        let calls = ctx.systemd.calls();
        assert!(calls.contains(&Call::ResetFailed(PODMAN_SOCKET.into())));
        assert!(calls.contains(&Call::Start(PODMAN_SOCKET.into())));
    }

    #[tokio::test]
    async fn podman_that_only_needs_time_is_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let ctx = context(home.path());
        ctx.podman.lose_podman(Stale::Gone(166));
        repair_podman(&ctx).await;
        let before = ctx.systemd.calls().len();
        // The socket listens and the pause file is sound: nothing to do.
        assert!(repair_podman(&ctx).await.is_empty());
        let after = ctx.systemd.calls();
        assert_eq!(after[before..], [Call::ClearStalePause, Call::ListUnits(1)]);
    }

    #[test]
    fn app_units_are_told_apart() {
        assert!(is_app_unit("hello-web_web.service"));
        assert!(!is_app_unit("podman.socket"));
        assert!(!is_app_unit("archipelagod-test.service"));
        assert!(!is_app_unit("hello-web_web.timer"));
    }
}
