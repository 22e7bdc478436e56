//! Running the host tools the harness drives (`ip`, `nsenter`, `mount`,
//! `skopeo`, …) with errors that say what ran and what it printed.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// What can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("`{cmd}` could not be started: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not happen within {}s{}", .after.as_secs(), .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Timeout {
        what: String,
        after: Duration,
        detail: Option<String>,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and returns its output, whatever its status.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            cmd: describe(cmd),
            source,
        })
}

/// Runs `cmd` and fails unless it exits 0; returns its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::Command {
            cmd: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Polls `check` every `every` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() >= limit {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                after: limit,
                detail: None,
            });
        }
        std::thread::sleep(every);
    }
}
