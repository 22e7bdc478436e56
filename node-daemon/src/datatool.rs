//! Reading and writing an app's data as its containers left it.
//!
//! Containers run in the service user's user namespace: a file a container
//! writes as its own user `1000` belongs to one of the service user's
//! subordinate ids on the node, which the daemon (outside the namespace)
//! can neither read nor delete nor give back its owner. So snapshots,
//! backups and restores of data go through [`DataTool`]:
//!
//! - [`Unshare`] (on nodes): runs `archipelagod data pack|unpack|remove`
//!   inside the namespace with `podman unshare`, streaming the tar through a
//!   pipe. podman's REST API has no call for this, and entering the
//!   namespace ourselves would need `unsafe`; `podman unshare` is the
//!   supported way in. The daemon's own service is sandboxed so that it
//!   can make no user namespace (`RestrictNamespaces=`, `NoNewPrivileges=`),
//!   so the helper runs as a transient unit of the service user's own
//!   systemd manager, where the containers run too: `systemd-run --user
//!   --pipe --wait` hands it our pipes and returns its exit status.
//! - [`InProcess`] (tests, and nodes without podman): the same code in the
//!   daemon's process, for files the service user owns.
//!
//! Blocking calls: run them on a blocking thread.

use crate::archive::{self, Entry};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A failure moving an app's data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the data helper (`{command}`) failed: {message}")]
    Helper { command: String, message: String },
}

impl DataError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// True when the failure is a full disk (so the error can say so).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
            Self::Helper { message, .. } => message.contains("No space left"),
        }
    }
}

/// Packs, unpacks and removes app data where the containers' files are
/// readable.
pub trait DataTool: Send + Sync + std::fmt::Debug {
    /// Writes a tar of the entries' folders to `out`; the bytes written.
    fn pack(&self, entries: &[Entry], out: &mut dyn Write) -> Result<u64, DataError>;
    /// Empties each entry's folder and unpacks the tar's matching parts
    /// into it, owners included.
    fn unpack(&self, input: &mut dyn Read, entries: &[Entry]) -> Result<(), DataError>;
    /// Removes each path and everything below it.
    fn remove(&self, paths: &[PathBuf]) -> Result<(), DataError>;
}

/// The data tool in the daemon's own process.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcess;

impl DataTool for InProcess {
    fn pack(&self, entries: &[Entry], out: &mut dyn Write) -> Result<u64, DataError> {
        archive::pack(entries, out).map_err(|e| DataError::io("packing the app's data", e))
    }

    fn unpack(&self, input: &mut dyn Read, entries: &[Entry]) -> Result<(), DataError> {
        archive::unpack(input, entries, false)
            .map(|_| ())
            .map_err(|e| DataError::io("unpacking the app's data", e))
    }

    fn remove(&self, paths: &[PathBuf]) -> Result<(), DataError> {
        for p in paths {
            archive::remove(p)
                .map_err(|e| DataError::io(format!("removing {}", p.display()), e))?;
        }
        Ok(())
    }
}

/// The data tool inside the containers' user namespace: `systemd-run
/// --user --pipe --wait podman unshare <archipelagod> data …`.
#[derive(Debug, Clone)]
pub struct Unshare {
    systemd_run: PathBuf,
    podman: PathBuf,
    exe: PathBuf,
}

/// The first of `names` in the usual program folders.
fn program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .into_iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

impl Unshare {
    /// With `systemd-run`, `podman` and this daemon's executable.
    pub fn new(
        systemd_run: impl Into<PathBuf>,
        podman: impl Into<PathBuf>,
        exe: impl Into<PathBuf>,
    ) -> Self {
        Self {
            systemd_run: systemd_run.into(),
            podman: podman.into(),
            exe: exe.into(),
        }
    }

    /// `systemd-run` and `podman` from the usual places and this process's
    /// executable, when all are there.
    pub fn find() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        Some(Self::new(program("systemd-run")?, program("podman")?, exe))
    }

    fn command(&self, args: &[String]) -> (Command, String) {
        let mut cmd = Command::new(&self.systemd_run);
        cmd.args(["--user", "--pipe", "--wait", "--collect", "--quiet"])
            .arg("--description=Archipelago: app data copy")
            .arg(&self.podman)
            .arg("unshare")
            .arg(&self.exe)
            .arg("data")
            .args(args);
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // systemd-run finds the user's manager through it.
            let uid = rustix::process::geteuid().as_raw();
            cmd.env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"));
        }
        let shown = format!("podman unshare archipelagod data {}", args.join(" "));
        (cmd, shown)
    }

    fn spawn(
        &self,
        args: &[String],
        stdin: bool,
        stdout: bool,
    ) -> Result<(Child, String), DataError> {
        let (mut cmd, shown) = self.command(args);
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| DataError::io(format!("starting `{shown}`"), e))?;
        Ok((child, shown))
    }
}

/// Waits for the helper; its stderr becomes the error when it failed.
fn finish(
    mut child: Child,
    shown: &str,
    stderr: std::thread::JoinHandle<String>,
) -> Result<(), DataError> {
    let status = child
        .wait()
        .map_err(|e| DataError::io(format!("waiting for `{shown}`"), e))?;
    let message = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(DataError::Helper {
            command: shown.to_owned(),
            message: format!("{status}: {}", message.trim()),
        })
    }
}

fn read_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_string(&mut text);
        }
        text
    })
}

fn entry_args(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| ["--entry".to_owned(), e.to_arg()])
        .collect()
}

impl DataTool for Unshare {
    fn pack(&self, entries: &[Entry], out: &mut dyn Write) -> Result<u64, DataError> {
        let mut args = vec!["pack".to_owned()];
        args.extend(entry_args(entries));
        let (mut child, shown) = self.spawn(&args, false, true)?;
        let stderr = read_stderr(&mut child);
        let copied = match child.stdout.take() {
            Some(mut stdout) => io::copy(&mut stdout, out),
            None => Err(io::Error::other("no pipe from the helper")),
        };
        match copied {
            Ok(n) => finish(child, &shown, stderr).map(|()| n),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(DataError::io("writing the app's data", e))
            }
        }
    }

    fn unpack(&self, input: &mut dyn Read, entries: &[Entry]) -> Result<(), DataError> {
        let mut args = vec!["unpack".to_owned()];
        args.extend(entry_args(entries));
        let (mut child, shown) = self.spawn(&args, true, false)?;
        let stderr = read_stderr(&mut child);
        let copied = match child.stdin.take() {
            // Dropping the pipe at the end tells the helper the tar ended.
            Some(mut stdin) => io::copy(input, &mut stdin).map(|_| ()),
            None => Err(io::Error::other("no pipe to the helper")),
        };
        // A helper that failed early closes its end: its own error says
        // more than the broken pipe.
        let helper = finish(child, &shown, stderr);
        helper?;
        copied.map_err(|e| DataError::io("reading the data to restore", e))
    }

    fn remove(&self, paths: &[PathBuf]) -> Result<(), DataError> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut args = vec!["remove".to_owned()];
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let (mut child, shown) = self.spawn(&args, false, false)?;
        let stderr = read_stderr(&mut child);
        finish(child, &shown, stderr)
    }
}

/// What `archipelagod data …` does, inside the user namespace.
pub fn run_helper(action: &str, entries: &[Entry], paths: &[PathBuf]) -> Result<(), String> {
    match action {
        "pack" => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            archive::pack(entries, &mut out).map_err(|e| format!("pack: {e}"))?;
            out.flush().map_err(|e| format!("pack: {e}"))
        }
        "unpack" => {
            let stdin = io::stdin();
            let input = io::BufReader::with_capacity(1 << 20, stdin.lock());
            archive::unpack(input, entries, true)
                .map(|_| ())
                .map_err(|e| format!("unpack: {e}"))
        }
        "remove" => {
            for p in paths {
                if !p.is_absolute() {
                    return Err(format!("remove: {} is not an absolute path", p.display()));
                }
                archive::remove(Path::new(p))
                    .map_err(|e| format!("remove {}: {e}", p.display()))?;
            }
            Ok(())
        }
        other => Err(format!("unknown action `{other}`")),
    }
}
