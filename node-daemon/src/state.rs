//! The node's desired state: which apps are installed, from which manifest,
//! and whether the user wants them running. It lives in one small JSON file
//! (`state.json`, see [`crate::layout`]) written atomically, so a power cut at
//! any instant leaves either the old or the new state.
//!
//! The file is the only record of what is installed, so it is never silently
//! replaced: a corrupt, truncated or unknown-version file is reported with an
//! error that says what to do, a copy of it is kept aside
//! (`state.json.corrupt-<unix-secs>`), the file itself is left untouched, and
//! [`StateStore::save`] refuses to write over it until an operator calls
//! [`StateStore::recover`]. Every save writes the same state to
//! `state.json.bak` too, which a corrupt-state error offers for recovery:
//! nothing saved before the damage is lost.
//!
//! Limits: one writer per file. The store caches the bytes it last saw on
//! disk so that a no-op save (after every reconcile pass) costs no I/O; an
//! edit made to the file by hand while the daemon runs is only noticed by the
//! next [`StateStore::load`].

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use archipelago_api::methods::AppSettings;
use archipelago_api::{AppId, RunState};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};
use crate::manifest::is_valid_app_id;

/// The format version this daemon reads and writes.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// Mode of the state file, its backup and its corrupt copies.
const FILE_MODE: u32 = 0o600;
/// Mode of the state folder when this store has to create it.
const DIR_MODE: u32 = 0o700;
/// The operator command that restores a state (named in error messages).
const RECOVER_COMMAND: &str = "archipelagod state recover";

/// Everything the node is asked to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    /// Format version of the file, [`STATE_FORMAT_VERSION`] for states this
    /// daemon writes.
    pub version: u32,
    /// Installed apps by id (sorted, so the file's bytes are deterministic).
    pub apps: BTreeMap<AppId, InstalledApp>,
    /// Apps being uninstalled: no longer installed (their units go), but
    /// their containers, volumes, secrets and data are still being removed.
    /// Recorded before anything is removed, so that a daemon killed half
    /// way finishes the job when it starts again, and keeps what the user
    /// asked to keep.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removing: BTreeMap<AppId, Removal>,
}

/// An uninstall in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// Keep the app's data folders, volumes and generated secrets.
    pub keep_data: bool,
}

/// One installed app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledApp {
    /// Where the manifest the app was installed from lives (file path on the node).
    pub manifest: PathBuf,
    /// Version of the manifest at install time (from the manifest).
    pub version: String,
    /// Whether the user wants the app's containers up.
    pub run: RunState,
    /// The catalog the app was installed from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The user's update and backup settings for the app.
    #[serde(default, skip_serializing_if = "is_default")]
    pub settings: AppSettings,
    /// SHA-256 (hex) of the catalog manifest the app was installed or
    /// last updated from: the catalog offers an update when its digest
    /// differs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub catalog_sha256: String,
    /// The images of the version before this one, kept until the next
    /// successful update so that a rollback needs no pull.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_images: Vec<String>,
    /// An update in progress. Recorded before the switch, so that a daemon
    /// that dies during an update rolls it back when it starts again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<PendingUpdate>,
}

/// An update that has switched an app's manifest but not yet seen the new
/// version healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingUpdate {
    /// The version and manifest to go back to.
    pub from_version: String,
    pub from_manifest: PathBuf,
    /// The data snapshot to put back, when the update took one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<PathBuf>,
}

fn is_default(s: &AppSettings) -> bool {
    *s == AppSettings::default()
}

impl NodeState {
    /// An empty state: a fresh node with nothing installed.
    pub fn new() -> Self {
        Self {
            version: STATE_FORMAT_VERSION,
            apps: BTreeMap::new(),
            removing: BTreeMap::new(),
        }
    }
}

/// Same as [`NodeState::new`], so that a default state is one that
/// [`StateStore::save`] accepts.
impl Default for NodeState {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong with the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("could not read or write the node state: {0}")]
    Fs(#[from] FsError),

    #[error(
        "the state file {} is corrupt ({reason}); a copy was kept at {}; {}",
        .path.display(), .kept_copy.display(), advice(.path, .backup.as_deref())
    )]
    Corrupt {
        path: PathBuf,
        /// What is wrong, with line and column when the JSON itself is broken.
        reason: String,
        /// The copy of the bad file (the file itself is left in place).
        kept_copy: PathBuf,
        /// The last good state (`state.json.bak`), when there is one.
        backup: Option<Box<NodeState>>,
    },

    #[error(
        "the state file {} has format version {found}, which this archipelagod \
         (format version {STATE_FORMAT_VERSION}) cannot read{}; a copy was kept at {}; \
         install the archipelagod that wrote it, or: {}",
        .path.display(),
        if *.found > u64::from(STATE_FORMAT_VERSION) { " (it was written by a newer archipelagod)" } else { "" },
        .kept_copy.display(), advice(.path, .backup.as_deref())
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        kept_copy: PathBuf,
        backup: Option<Box<NodeState>>,
    },

    #[error(
        "the state file {} is missing although its backup {} exists, so it was deleted \
         by something other than archipelagod; {}",
        .path.display(), backup_path_of(.path).display(), advice(.path, .backup.as_deref())
    )]
    Missing {
        path: PathBuf,
        backup: Option<Box<NodeState>>,
    },

    #[error(
        "the state file {} is unusable ({problem}) and no copy of it could be kept ({source}); \
         the file was left untouched: make room or fix permissions in {}, then restart archipelagod",
        .path.display(), dir_of(.path).display()
    )]
    KeepCopy {
        path: PathBuf,
        problem: String,
        source: FsError,
    },

    #[error(
        "refusing to save over the corrupt state file {}{}: run `{RECOVER_COMMAND}` first",
        .path.display(),
        .kept_copy.as_ref().map(|c| format!(" (a copy is at {})", c.display())).unwrap_or_default()
    )]
    SaveRefused {
        path: PathBuf,
        kept_copy: Option<PathBuf>,
    },

    #[error("refusing to save an invalid state: {reason}")]
    Invalid { reason: String },

    #[error("could not encode the node state as JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The end of a corrupt-state message: how to get back to a good state.
fn advice(path: &Path, backup: Option<&NodeState>) -> String {
    let bak = backup_path_of(path);
    match backup {
        Some(state) => format!(
            "the last good state ({} app{}) is in {}: run `{RECOVER_COMMAND}` to restore it",
            state.apps.len(),
            if state.apps.len() == 1 { "" } else { "s" },
            bak.display()
        ),
        None => format!(
            "there is no usable backup ({} is missing or bad): repair {} by hand and restart \
             archipelagod, or run `{RECOVER_COMMAND}` to start from another state",
            bak.display(),
            path.display()
        ),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn backup_path_of(path: &Path) -> PathBuf {
    sibling(path, ".bak")
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Why some bytes are not a usable state.
enum Problem {
    Corrupt(String),
    Version(u64),
}

impl Problem {
    fn describe(&self) -> String {
        match self {
            Self::Corrupt(reason) => reason.clone(),
            Self::Version(v) => format!("unsupported format version {v}"),
        }
    }
}

/// Parses and checks a state file's bytes. Pure.
fn parse(bytes: &[u8]) -> Result<NodeState, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::Corrupt("the file is empty".to_owned()));
    }
    // Look at the version before the shape, so that a file from another
    // format version is reported as such rather than as unknown fields.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Problem::Corrupt(e.to_string()))?;
    if let Some(found) = value.get("version").and_then(serde_json::Value::as_u64) {
        if found != u64::from(STATE_FORMAT_VERSION) {
            return Err(Problem::Version(found));
        }
    }
    let state: NodeState =
        serde_json::from_slice(bytes).map_err(|e| Problem::Corrupt(e.to_string()))?;
    check(&state).map_err(Problem::Corrupt)?;
    Ok(state)
}

/// What a state must satisfy to be written or accepted.
fn check(state: &NodeState) -> Result<(), String> {
    if state.version != STATE_FORMAT_VERSION {
        return Err(format!(
            "format version {} is not {STATE_FORMAT_VERSION}",
            state.version
        ));
    }
    if let Some(bad) = state
        .apps
        .keys()
        .chain(state.removing.keys())
        .find(|id| !is_valid_app_id(id))
    {
        return Err(format!(
            "app id {bad:?} is not valid (lowercase letters and digits in dash-separated \
             words, starting with a letter, at most 40 characters)"
        ));
    }
    Ok(())
}

/// The bytes [`StateStore::save`] writes: pretty JSON and a trailing newline.
fn encode(state: &NodeState) -> Result<Vec<u8>, StateError> {
    check(state).map_err(|reason| StateError::Invalid { reason })?;
    let mut bytes = serde_json::to_vec_pretty(state).map_err(StateError::Encode)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What the store knows about the file on disk.
#[derive(Debug)]
enum OnDisk {
    /// Not looked at yet (or a write was interrupted): read it before use.
    Unknown,
    /// No file, and no backup either: a fresh node.
    Missing,
    /// A good state file with exactly these bytes.
    Good(Vec<u8>),
}

#[derive(Debug)]
struct Inner {
    on_disk: OnDisk,
    /// Set when the file was found unusable; saves are refused until
    /// [`StateStore::recover`] or a successful [`StateStore::load`].
    blocked: Option<Blocked>,
    /// Whether temporary files of crashed writes were cleared yet.
    temps_cleared: bool,
}

#[derive(Debug)]
struct Blocked {
    kept_copy: Option<PathBuf>,
}

/// Loads and saves the node state file. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl StateStore {
    /// A store for the state file at `path` (normally `Layout::state_file()`).
    /// Touches nothing on disk.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            inner: Mutex::new(Inner {
                on_disk: OnDisk::Unknown,
                blocked: None,
                temps_cleared: false,
            }),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the last good state is kept (`state.json.bak`).
    pub fn backup_path(&self) -> PathBuf {
        backup_path_of(&self.path)
    }

    /// Reads the state. A missing file is a fresh node (an empty state),
    /// unless a backup exists, which means the file was deleted:
    /// [`StateError::Missing`]. A corrupt, truncated or unknown-version file
    /// is copied aside to `state.json.corrupt-<unix-secs>` (an identical
    /// earlier copy is reused, a different one never overwritten), left in
    /// place untouched, and reported with the backup when it is usable.
    pub fn load(&self) -> Result<NodeState, StateError> {
        let mut inner = self.lock();
        let state = self.examine(&mut inner)?;
        inner.blocked = None;
        Ok(state)
    }

    /// Writes `state` atomically (pretty JSON, trailing newline, mode 0600),
    /// then the same to `state.json.bak`. Returns
    /// whether anything was written: saving what is already on disk writes
    /// nothing and, once the store has seen the file, reads nothing either.
    /// Refuses to write over a file that was found unusable, until
    /// [`Self::recover`] is called.
    pub fn save(&self, state: &NodeState) -> Result<bool, StateError> {
        let mut inner = self.lock();
        if let Some(blocked) = &inner.blocked {
            return Err(StateError::SaveRefused {
                path: self.path.clone(),
                kept_copy: blocked.kept_copy.clone(),
            });
        }
        let bytes = encode(state)?;
        self.clear_temps_once(&mut inner)?;
        if matches!(inner.on_disk, OnDisk::Unknown) {
            self.examine(&mut inner)?;
        }
        let previous = match &inner.on_disk {
            OnDisk::Good(old) if *old == bytes => return Ok(false),
            OnDisk::Good(old) => Some(old.clone()),
            OnDisk::Missing | OnDisk::Unknown => None,
        };
        self.write(&mut inner, previous.as_deref(), bytes)?;
        Ok(true)
    }

    /// Replaces the state by `with` whatever the file holds now (typically
    /// the backup offered by a corrupt-state error), keeping an unusable file
    /// aside first and a good one as the backup. Saves work again afterwards.
    pub fn recover(&self, with: &NodeState) -> Result<(), StateError> {
        let bytes = encode(with)?;
        let mut inner = self.lock();
        self.clear_temps_once(&mut inner)?;
        let previous = match fsutil::read_optional(&self.path)? {
            Some(current) => match parse(&current) {
                Ok(_) => Some(current),
                Err(problem) => {
                    self.keep_copy(&current, &problem)?;
                    None
                }
            },
            None => None,
        };
        if previous.as_deref() == Some(bytes.as_slice()) {
            inner.on_disk = OnDisk::Good(bytes);
        } else {
            self.write(&mut inner, previous.as_deref(), bytes)?;
        }
        inner.blocked = None;
        tracing::info!(path = %self.path.display(), apps = with.apps.len(), "node state recovered");
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            // A panic mid-save may have left the cache out of step with the
            // disk: forget it and read the file again.
            let mut inner = poisoned.into_inner();
            inner.on_disk = OnDisk::Unknown;
            self.inner.clear_poison();
            inner
        })
    }

    /// Reads the file into the cache; on an unusable file keeps a copy,
    /// blocks saves and returns the error.
    fn examine(&self, inner: &mut Inner) -> Result<NodeState, StateError> {
        inner.on_disk = OnDisk::Unknown;
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            if fsutil::read_optional(&self.backup_path())?.is_some() {
                inner.blocked = Some(Blocked { kept_copy: None });
                return Err(StateError::Missing {
                    path: self.path.clone(),
                    backup: self.usable_backup()?,
                });
            }
            inner.on_disk = OnDisk::Missing;
            return Ok(NodeState::new());
        };
        match parse(&bytes) {
            Ok(state) => {
                inner.on_disk = OnDisk::Good(bytes);
                Ok(state)
            }
            Err(problem) => {
                inner.blocked = Some(Blocked { kept_copy: None });
                let kept_copy = self.keep_copy(&bytes, &problem)?;
                inner.blocked = Some(Blocked {
                    kept_copy: Some(kept_copy.clone()),
                });
                let backup = self.usable_backup()?;
                tracing::warn!(
                    path = %self.path.display(),
                    problem = %problem.describe(),
                    kept_copy = %kept_copy.display(),
                    backup = backup.is_some(),
                    "the node state file is unusable"
                );
                let path = self.path.clone();
                Err(match problem {
                    Problem::Corrupt(reason) => StateError::Corrupt {
                        path,
                        reason,
                        kept_copy,
                        backup,
                    },
                    Problem::Version(found) => StateError::UnsupportedVersion {
                        path,
                        found,
                        kept_copy,
                        backup,
                    },
                })
            }
        }
    }

    /// The backup, when it exists and is a good state.
    fn usable_backup(&self) -> Result<Option<Box<NodeState>>, StateError> {
        let path = self.backup_path();
        Ok(fsutil::read_optional(&path)?.and_then(|bytes| match parse(&bytes) {
            Ok(state) => Some(Box::new(state)),
            Err(problem) => {
                tracing::warn!(path = %path.display(), problem = %problem.describe(), "the state backup is unusable");
                None
            }
        }))
    }

    /// Writes the backup (when there was a good file) then the state, and
    /// records the new bytes as what is on disk.
    fn write(
        &self,
        inner: &mut Inner,
        previous: Option<&[u8]>,
        bytes: Vec<u8>,
    ) -> Result<(), StateError> {
        let dir = dir_of(&self.path);
        if !dir.is_dir() {
            fsutil::ensure_dir(dir, DIR_MODE)?;
            // The new folder's own entry must survive a power cut too.
            if let Some(parent) = dir.parent() {
                fsutil::sync_dir(parent)?;
            }
        }
        // If either write fails the disk is in an unknown (but atomic) state.
        inner.on_disk = OnDisk::Unknown;
        fsutil::atomic_write(&self.path, &bytes, FILE_MODE)?;
        // The backup is the state just saved: a file damaged later (a bad
        // disk, a hand edit) is recovered without losing its last edit —
        // an app installed just before would otherwise be removed by the
        // recovery. A crash between the two writes leaves the backup one
        // edit behind, never damaged. The first state ever saved gets one
        // too: a state file that later goes missing is then reported (and
        // recoverable), never mistaken for a fresh node.
        if previous != Some(bytes.as_slice()) {
            fsutil::atomic_write(&self.backup_path(), &bytes, FILE_MODE)?;
        }
        inner.on_disk = OnDisk::Good(bytes);
        Ok(())
    }

    fn clear_temps_once(&self, inner: &mut Inner) -> Result<(), StateError> {
        if !inner.temps_cleared {
            let removed = fsutil::remove_stale_temps(dir_of(&self.path))?;
            if removed > 0 {
                tracing::info!(removed, dir = %dir_of(&self.path).display(), "removed temporary files of interrupted state writes");
            }
            inner.temps_cleared = true;
        }
        Ok(())
    }

    /// Keeps `bytes` (the unusable file) as `state.json.corrupt-<unix-secs>`,
    /// reusing an earlier copy with the same bytes and never overwriting a
    /// different one.
    fn keep_copy(&self, bytes: &[u8], problem: &Problem) -> Result<PathBuf, StateError> {
        self.try_keep_copy(bytes)
            .map_err(|source| StateError::KeepCopy {
                path: self.path.clone(),
                problem: problem.describe(),
                source,
            })
    }

    fn try_keep_copy(&self, bytes: &[u8]) -> Result<PathBuf, FsError> {
        let dir = dir_of(&self.path);
        let prefix = format!(
            "{}.corrupt-",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        );
        // A daemon restarting in a loop must not fill the disk with copies.
        let entries = fs::read_dir(dir).map_err(|e| FsError::new("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| FsError::new("list", dir, e))?;
            if !entry.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let same_len = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
            if same_len && fs::read(entry.path()).is_ok_and(|b| b == bytes) {
                return Ok(entry.path());
            }
        }
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        for n in 0..1000u32 {
            let name = if n == 0 {
                format!("{prefix}{secs}")
            } else {
                format!("{prefix}{secs}-{n}")
            };
            let copy = dir.join(name);
            let mut file = match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&copy)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(FsError::new("create", &copy, e)),
            };
            let written = file
                .write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| FsError::new("write", &copy, e));
            if let Err(e) = written {
                let _ = fs::remove_file(&copy);
                return Err(e);
            }
            fsutil::sync_dir(dir)?;
            return Ok(copy);
        }
        Err(FsError::new(
            "create",
            dir,
            io::Error::other("no free name for a copy of the state file"),
        ))
    }
}
