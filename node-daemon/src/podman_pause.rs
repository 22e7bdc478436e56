//! podman's pause process, and the stale pid file that locks rootless
//! podman out.
//!
//! Rootless podman keeps the service user's namespace alive with a pause
//! process and writes its pid to `$XDG_RUNTIME_DIR/libpod/tmp/pause.pid`.
//! When that process dies before podman has finished its first start after
//! a boot (a unit stopped while podman was starting in it, after a power
//! cut), podman 5 keeps trying to join the dead pid's namespace and refuses
//! every command ("cannot re-exec process to join the existing user
//! namespace"): the API socket fails, and so does every app operation,
//! until the file goes. This module judges the file (pure) and removes it
//! only when the pid it names is not a live pause process of ours.

use crate::fsutil::{FsError, read_optional, remove_if_exists};
use std::path::Path;

/// What `/proc` says of the process a pid file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// `/proc/<pid>/comm`, without its newline.
    pub comm: String,
    /// Its state letter in `/proc/<pid>/stat` is `Z`: dead, not yet reaped.
    pub zombie: bool,
}

/// The names podman's pause process runs under: catatonit, or podman
/// itself when catatonit is not installed.
const PAUSE_NAMES: [&str; 2] = ["catatonit", "podman pause"];

/// Why a pause pid file is stale; `None` from [`judge`] when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Not a bare decimal pid (podman cannot read it either).
    Unreadable(String),
    /// No such process.
    Gone(u32),
    /// The process died and was not reaped yet.
    Zombie(u32),
    /// The pid was reused by another program.
    Reused { pid: u32, comm: String },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(text) => write!(f, "it holds {text:?}, not a pid"),
            Self::Gone(pid) => write!(f, "pause process {pid} is gone"),
            Self::Zombie(pid) => write!(f, "pause process {pid} is dead"),
            Self::Reused { pid, comm } => {
                write!(f, "pid {pid} is now {comm:?}, not a pause process")
            }
        }
    }
}

/// Judges a pause pid file's `contents`, asking `process` about the pid it
/// names.
pub fn judge(contents: &[u8], process: impl Fn(u32) -> Option<ProcessInfo>) -> Option<Stale> {
    let text = String::from_utf8_lossy(contents);
    // podman writes the bare number and parses it strictly.
    let Some(pid) = text
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 0 && text.bytes().all(|b| b.is_ascii_digit()))
    else {
        let shown: String = text.chars().take(40).collect();
        return Some(Stale::Unreadable(shown));
    };
    match process(pid) {
        None => Some(Stale::Gone(pid)),
        Some(p) if p.zombie => Some(Stale::Zombie(pid)),
        Some(p) if !PAUSE_NAMES.contains(&p.comm.as_str()) => {
            Some(Stale::Reused { pid, comm: p.comm })
        }
        Some(_) => None,
    }
}

/// What `/proc` says of `pid` on this machine; `None` when there is no such
/// process.
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S …`: the state follows the last `)`.
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    Some(ProcessInfo {
        comm: comm.trim_end_matches('\n').to_owned(),
        zombie,
    })
}

/// Removes the pause pid file at `path` when it is stale, and says why;
/// `Ok(None)` when there is no file or it names a live pause process.
pub fn remove_if_stale(
    path: &Path,
    process: impl Fn(u32) -> Option<ProcessInfo>,
) -> Result<Option<Stale>, FsError> {
    let Some(contents) = read_optional(path)? else {
        return Ok(None);
    };
    let Some(stale) = judge(&contents, process) else {
        return Ok(None);
    };
    // podman may have replaced it in the meantime with a live process's:
    // only the file judged goes.
    if read_optional(path)?.as_deref() != Some(contents.as_slice()) {
        return Ok(None);
    }
    Ok(remove_if_exists(path)?.then_some(stale))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn live(comm: &str) -> impl Fn(u32) -> Option<ProcessInfo> {
        let comm = comm.to_owned();
        move |_| {
            Some(ProcessInfo {
                comm: comm.clone(),
                zombie: false,
            })
        }
    }

    #[test]
    fn a_live_pause_process_is_left_alone() {
        assert_eq!(judge(b"166", live("catatonit")), None);
        assert_eq!(judge(b"166", live("podman pause")), None);
    }

    #[test]
    fn a_dead_reaped_or_reused_pid_is_stale() {
        assert_eq!(judge(b"166", |_| None), Some(Stale::Gone(166)));
        assert_eq!(
            judge(b"166", |_| Some(ProcessInfo {
                comm: "catatonit".into(),
                zombie: true
            })),
            Some(Stale::Zombie(166))
        );
        assert_eq!(
            judge(b"166", live("sshd")),
            Some(Stale::Reused {
                pid: 166,
                comm: "sshd".into()
            })
        );
    }

    #[test]
    fn what_podman_cannot_parse_is_stale() {
        for bad in [&b""[..], b"166\n", b" 166", b"0", b"-1", b"abc"] {
            assert!(
                matches!(judge(bad, live("catatonit")), Some(Stale::Unreadable(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_a_stale_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pause.pid");
        assert_eq!(remove_if_stale(&path, |_| None).unwrap(), None);
        std::fs::write(&path, "4242").unwrap();
        assert_eq!(remove_if_stale(&path, live("catatonit")).unwrap(), None);
        assert!(path.exists());
        assert_eq!(
            remove_if_stale(&path, |_| None).unwrap(),
            Some(Stale::Gone(4242))
        );
        assert!(!path.exists());
    }

    #[test]
    fn this_process_is_seen_in_proc() {
        let me = process_info(std::process::id()).unwrap();
        assert!(!me.zombie);
        assert!(!me.comm.is_empty());
        assert_eq!(process_info(u32::MAX), None);
    }
}
