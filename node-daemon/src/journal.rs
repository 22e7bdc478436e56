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
                // The unit's own lines, without podman's event records
                // (`<time> +0000 UTC m=+0.1 container create …`), which
                // say nothing a person can act on.
                let mut own: Vec<String> =
                    journalctl(&format!("--unit={unit}"), since, n * 4, unit)
                        .await
                        .into_iter()
                        .filter(|l| !is_podman_event(l))
                        .collect();
                let cut = own.len().saturating_sub(n);
                own.drain(..cut);
                own
            } else {
                lines
            }
        })
    }
}

/// A podman event record as podman logs it to the unit's journal:
/// `2026-11-27 22:13:01.58 +0000 UTC m=+0.35 container remove 3b48…`, or
/// the container id alone that follows a removal.
fn is_podman_event(line: &str) -> bool {
    let line = line.trim();
    let event =
        line.contains(" UTC m=+") && line.as_bytes().first().is_some_and(u8::is_ascii_digit);
    let bare_id = line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit());
    event || bare_id
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_event_records_are_told_from_the_units_lines() {
        assert!(is_podman_event(
            "2026-11-27 22:13:01.58223835 +0000 UTC m=+0.355539277 container remove 3b48 (image=x)"
        ));
        assert!(is_podman_event(&"3b".repeat(32)));
        assert!(!is_podman_event(
            "Stopped hello-web_web.service - Hello Web: web."
        ));
        assert!(!is_podman_event("fixture-chain: RPC on 0.0.0.0:18443"));
    }
}
