//! The last lines a unit wrote, from the user's journal. Quadlet runs
//! containers with `--rm`, so once a container has exited podman has
//! forgotten its output; the journal has not (podman logs to journald under
//! systemd, attributed to the container's unit). Only the failure paths read
//! it — an install that did not become healthy, the logs of a stopped app —
//! so spawning `journalctl` there costs nothing in a pass.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reads a container's last lines.
pub trait Journal: Send + Sync {
    /// Up to `n` of the last lines the podman container `container` wrote,
    /// oldest first; when it wrote none (it never started), the last lines
    /// of its user unit `unit` instead, which say why. Empty when there are
    /// none or the journal cannot be read. With `since`, only lines
    /// written from then on.
    fn last_lines<'a>(
        &'a self,
        unit: &'a str,
        container: &'a str,
        since: Option<SystemTime>,
        n: usize,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>>;
}

/// The service user's journal through `journalctl --user`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserJournal;

/// How long `journalctl` may take before its answer is dropped.
const TIMEOUT: Duration = Duration::from_secs(5);

impl Journal for UserJournal {
    fn last_lines<'a>(
        &'a self,
        unit: &'a str,
        container: &'a str,
        since: Option<SystemTime>,
        n: usize,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>> {
        Box::pin(async move {
            // podman's journald driver tags the container's own output.
            let lines = journalctl(&format!("CONTAINER_NAME={container}"), since, n, unit).await;
            if lines.is_empty() {
                journalctl(&format!("--unit={unit}"), since, n, unit).await
            } else {
                lines
            }
        })
    }
}

/// `journalctl --user <filter>`: the last `n` lines, oldest first.
async fn journalctl(filter: &str, since: Option<SystemTime>, n: usize, unit: &str) -> Vec<String> {
    let mut cmd = tokio::process::Command::new("journalctl");
    cmd.args(["--user", "--no-pager", "--quiet", "--output=cat"])
        .arg(format!("--lines={n}"));
    if let Some(t) = since.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        // systemd.time(7): `@` and seconds since the epoch.
        cmd.arg(format!("--since=@{}", t.as_secs()));
    }
    let run = cmd
        .arg(filter)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(TIMEOUT, run).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Ok(Err(e)) => {
            tracing::warn!(unit, "cannot run journalctl: {e}");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(unit, "journalctl took more than {TIMEOUT:?}");
            Vec::new()
        }
    }
}

/// A journal with nothing in it, for tests that do not look at logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn last_lines<'a>(
        &'a self,
        _unit: &'a str,
        _container: &'a str,
        _since: Option<SystemTime>,
        _n: usize,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>> {
        Box::pin(async { Vec::new() })
    }
}
