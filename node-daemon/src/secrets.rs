//! Generated secrets of installed apps: passwords, tokens and the bcrypt
//! hashes some apps want instead of a password.
//!
//! Why a module of its own: secrets are the one kind of desired state that is
//! made on the node rather than declared, so they need one chokepoint that
//! makes them exist and keeps them sane before any unit of the app starts.
//! [`SecretStore::materialise`] is that chokepoint; the reconciler calls it
//! for every app on every pass.
//!
//! On disk (see [`crate::layout`]), everything of mode `0700`/`0600` and
//! owned by the service user, i.e. the daemon's effective uid:
//!
//! ```text
//! secrets/                      0700
//!   <app>/                      0700
//!     files/                    0700
//!       <name>                  0600  the value, no trailing newline
//!     env/                      0700
//!       <container>.env         0600  `VAR=value` lines for podman --env-file
//! ```
//!
//! Guarantees of `materialise`:
//!
//! - **Atomic**: every write goes through [`fsutil::atomic_write`] (temporary
//!   file created `0600`, fsync, rename, fsync of the folder). A crash leaves
//!   the old file or the new one, at worst a temporary file, which the
//!   first pass after the restart (or a [`SecretStore::deep_check_next`]
//!   deep check) deletes.
//! - **Idempotent**: an existing valid secret is never regenerated; when all
//!   is in order nothing is written and no bcrypt work is done (verified
//!   source/hash pairs are remembered in memory): each file is opened, read
//!   once and closed, relative to its already opened folder.
//! - **Self-healing without root**: a valid secret with the wrong mode is
//!   chmod'ed, one with the wrong owner is rewritten as ours, both keeping
//!   the value; an empty, corrupt or unreadable secret, or a symlink,
//!   directory or special file in its place, is replaced by a new value.
//!   Symlinks are never followed.
//! - **Derived bcrypt**: a `bcrypt` secret is the hash of a hex secret of the
//!   same app and is recomputed whenever it no longer verifies against it.
//!
//! Secret values never appear in logs, errors or `Debug` output.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::fsutil::{self, FsError, StampCache};
use crate::layout::Layout;
use crate::manifest::{GeneratedSecret, Manifest, SecretKindName, SecretUse, is_valid_app_id};

/// bcrypt cost used for new hashes unless [`SecretStore::with_bcrypt_cost`]
/// says otherwise.
pub const DEFAULT_BCRYPT_COST: u32 = 10;

/// The lowest cost the bcrypt crate accepts (it does not export its own);
/// meant for tests.
pub const MIN_BCRYPT_COST: u32 = 4;

/// Stored hashes of a cost above this (or above the configured cost, if
/// higher) count as corrupt: verifying a `$2b$31$` hash would take days.
const MAX_STORED_COST: u32 = 14;

const SECRET_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Secrets are at most 64 characters; anything much longer is corrupt and is
/// not read in full.
const MAX_SECRET_LEN: usize = 1024;
const MAX_ENV_FILE_LEN: usize = 1 << 20;

/// Makes, checks and repairs the generated secrets of installed apps.
pub struct SecretStore {
    layout: Layout,
    bcrypt_cost: u32,
    /// The service user: owner of every file written here. The effective uid
    /// never changes during the daemon's life, so it is read once.
    euid: u32,
    /// bcrypt hash file → the (source value, hash value) pair last seen to
    /// verify. A byte-identical pair needs no second `bcrypt::verify`.
    verified: Mutex<HashMap<PathBuf, VerifiedPair>>,
    /// App → the containers that had env files after its last pass. An app
    /// missing here has not been swept for crash leftovers since this store
    /// was made; see [`SecretStore::materialise`].
    swept: Mutex<HashMap<String, BTreeSet<String>>>,
    /// How many times `bcrypt::verify` ran; lets tests see the cache work.
    verifications: AtomicU64,
    /// App → what its last clean pass covered; see [`CleanPass`].
    clean: Mutex<HashMap<String, CleanPass>>,
    /// Stamps of the files and folders a clean pass covered.
    stamps: StampCache,
}

/// An app whose last pass found everything in order: with the same secret
/// declarations and none of `paths` changed since (one `lstat` each),
/// there is nothing to check, so the next pass costs a few syscalls.
struct CleanPass {
    generated: Vec<GeneratedSecret>,
    uses: Vec<Vec<SecretUse>>,
    paths: Vec<PathBuf>,
}

struct VerifiedPair {
    source: String,
    hash: String,
}

impl fmt::Debug for SecretStore {
    // By hand: the cache holds secret values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("layout", &self.layout)
            .field("bcrypt_cost", &self.bcrypt_cost)
            .field("euid", &self.euid)
            .field("verifications", &self.bcrypt_verifications())
            .finish_non_exhaustive()
    }
}

/// What one [`SecretStore::materialise`] pass changed on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretReport {
    /// Secrets that did not exist and were created.
    pub generated: Vec<String>,
    /// Problems found and fixed, in the order found.
    pub repaired: Vec<Repair>,
    /// Containers whose env file was (re)written.
    pub env_files_written: Vec<String>,
    /// Containers whose env file was deleted because they no longer take
    /// secrets as environment.
    pub env_files_removed: Vec<String>,
}

impl SecretReport {
    /// Whether the pass wrote, changed or deleted anything.
    pub fn changed(&self) -> bool {
        !(self.generated.is_empty()
            && self.repaired.is_empty()
            && self.env_files_written.is_empty()
            && self.env_files_removed.is_empty())
    }
}

/// One problem found and fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The secret's name; for an env file or a temporary file, its path
    /// relative to the app's secrets folder (`env/web.env`,
    /// `files/.archipelago-tmp.…`).
    pub secret: String,
    pub problem: Problem,
}

/// What was wrong with a secret, and so what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Valid value, but the file had this mode instead of `0600`: chmod'ed,
    /// value kept.
    WrongMode(u32),
    /// Valid value, but the file belonged to this uid: rewritten as ours
    /// (mode `0600`), value kept.
    WrongOwner(u32),
    /// Empty file: new value.
    Empty,
    /// Not a valid value of its kind (length, characters, unparsable hash):
    /// new value.
    Corrupt,
    /// A bcrypt hash that does not verify against its source, typically
    /// because the source changed: recomputed.
    Mismatch,
    /// A file we may neither read nor chmod (another owner): new value.
    Unreadable,
    /// A symlink in place of the secret: replaced by a regular file with a
    /// new value; the link's target is not touched.
    Symlink,
    /// A directory or special file in place of the secret: removed and
    /// replaced by a new value.
    NotAFile,
    /// A temporary file of a write that crashed before its rename: deleted.
    StaleTemp,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongMode(m) => write!(f, "mode {m:04o} instead of 0600"),
            Self::WrongOwner(uid) => write!(f, "owned by uid {uid} instead of the service user"),
            Self::Empty => f.write_str("empty"),
            Self::Corrupt => f.write_str("corrupt"),
            Self::Mismatch => f.write_str("bcrypt hash does not match its source"),
            Self::Unreadable => f.write_str("unreadable"),
            Self::Symlink => f.write_str("a symlink"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::StaleTemp => f.write_str("temporary file of an interrupted write"),
        }
    }
}

/// Why secrets could not be materialised, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(
        "secret `{name}` of app `{from}`, used by `{app}`, is missing or not valid: \
         install and reconcile `{from}` before `{app}`"
    )]
    DependencySecretMissing {
        app: String,
        from: String,
        name: String,
    },
    #[error(
        "app `{app}` refers to secret `{name}`, which is not one of its generated hex secrets: \
         the manifest was not validated"
    )]
    UndeclaredSecret { app: String, name: String },
    #[error("`{name}` is not a valid {what}")]
    InvalidName { what: &'static str, name: String },
    #[error("cannot compute bcrypt secret `{name}` of `{app}`: {source}")]
    Bcrypt {
        app: String,
        name: String,
        source: bcrypt::BcryptError,
    },
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(getrandom::Error),
}

/// A file as found, without following a symlink in its place.
enum OnDisk {
    Absent,
    File {
        /// Open read-only; kept to fchmod exactly the file that was read.
        file: File,
        bytes: Vec<u8>,
        mode: u32,
        uid: u32,
    },
    Symlink,
    /// A directory, FIFO, socket or device.
    NotAFile {
        is_dir: bool,
    },
    /// Permission denied, and not ours to chmod.
    Unreadable,
}

impl SecretStore {
    /// A store over `layout` using [`DEFAULT_BCRYPT_COST`] for new hashes.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            euid: rustix::process::geteuid().as_raw(),
            verified: Mutex::new(HashMap::new()),
            swept: Mutex::new(HashMap::new()),
            verifications: AtomicU64::new(0),
            clean: Mutex::new(HashMap::new()),
            stamps: StampCache::new(),
        }
    }

    /// Sets the bcrypt cost of new hashes (tests use [`MIN_BCRYPT_COST`]).
    /// Existing hashes of another cost stay valid.
    #[must_use]
    pub fn with_bcrypt_cost(mut self, cost: u32) -> Self {
        self.bcrypt_cost = cost;
        self
    }

    /// How many times a stored bcrypt hash has been verified so far. Stays
    /// put on passes where nothing changed.
    pub fn bcrypt_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Forgets what earlier passes established about the folders: the next
    /// [`materialise`](Self::materialise) of each app sweeps them again for
    /// crash leftovers and stray env files. For the reconciler's periodic
    /// deep check. Verified bcrypt pairs are kept: they are remembered by
    /// content, and a pair that verified once always will.
    pub fn deep_check_next(&self) {
        lock(&self.swept).clear();
        lock(&self.clean).clear();
        self.stamps.clear();
    }

    /// Forgets verified bcrypt pairs as well, so that every hash is checked
    /// again with bcrypt (slow by design: about 60 ms each at cost 10).
    pub fn forget_verified(&self) {
        self.cache().clear();
        self.deep_check_next();
    }

    /// The chokepoint: make every generated secret of `app` exist and be
    /// valid, repair what is not, then (re)write each container's env file.
    /// Writes nothing when all is in order.
    ///
    /// Temporary files left by a crash are deleted on the first pass over
    /// an app after the store is made (a crash means a restart, and a failed
    /// write in a running daemon removes its own temporary file); env files
    /// of containers that no longer take env secrets are deleted then and
    /// whenever that set of containers changes. Later passes over an
    /// unchanged app only read its files: keep one store for the daemon's
    /// life.
    pub fn materialise(&self, app: &Manifest) -> Result<SecretReport, SecretError> {
        let uses: Vec<Vec<SecretUse>> = app.containers.iter().map(|c| c.secrets.clone()).collect();
        self.stamps.refresh();
        if let Some(pass) = lock(&self.clean).get(&app.id) {
            if pass.generated == app.generated_secrets
                && pass.uses == uses
                && pass.paths.iter().all(|p| self.stamps.unchanged(p))
            {
                return Ok(SecretReport::default());
            }
        }
        lock(&self.clean).remove(&app.id);
        let report = self.materialise_full(app)?;
        // Stamp what this pass covered: the folders (a file added or removed
        // changes them), every secret and env file, and the dependency
        // secrets copied into env files. Files written just now are inside
        // the racy window and so are checked in full once more next pass.
        let mut paths = vec![
            self.layout.app_secrets_dir(&app.id),
            self.layout.secret_files_dir(&app.id),
            self.layout.env_files_dir(&app.id),
        ];
        paths.extend(
            app.generated_secrets
                .iter()
                .map(|s| self.layout.secret_file(&app.id, &s.name)),
        );
        for c in &app.containers {
            if c.secrets.iter().any(|u| u.env.is_some()) {
                paths.push(self.layout.env_file(&app.id, &c.name));
            }
            for u in &c.secrets {
                if let (Some(dep), Some(_)) = (&u.from, &u.env) {
                    paths.push(self.layout.secret_file(dep, &u.name));
                }
            }
        }
        for p in &paths {
            self.stamps.record(p);
        }
        if paths.iter().all(|p| self.stamps.unchanged(p)) {
            lock(&self.clean).insert(
                app.id.clone(),
                CleanPass {
                    generated: app.generated_secrets.clone(),
                    uses,
                    paths,
                },
            );
        }
        Ok(report)
    }

    /// Every check and repair of [`materialise`](Self::materialise), reading
    /// every file.
    fn materialise_full(&self, app: &Manifest) -> Result<SecretReport, SecretError> {
        check_app_id(&app.id)?;
        let mut report = SecretReport::default();
        let files_dir = self.layout.secret_files_dir(&app.id);
        let env_dir = self.layout.env_files_dir(&app.id);
        ensure_private_dir(&self.layout.secrets_root)?;
        // Everything below is opened relative to these: short lookups, and
        // no race with a folder being swapped after its check.
        let app_fd = open_private_dir(None, &self.layout.app_secrets_dir(&app.id))?;
        let files_fd = open_private_dir(Some(app_fd.as_fd()), &files_dir)?;
        let env_fd = open_private_dir(Some(app_fd.as_fd()), &env_dir)?;
        let mut env_names = None;
        if !lock(&self.swept).contains_key(&app.id) {
            sweep(&files_dir, "files", &mut report)?;
            env_names = Some(sweep(&env_dir, "env", &mut report)?);
        }

        // Hex secrets first: derived secrets need their source's final value.
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        let (hashes, randoms): (Vec<&GeneratedSecret>, Vec<&GeneratedSecret>) = app
            .generated_secrets
            .iter()
            .partition(|s| s.kind.is_derived());
        for secret in randoms.into_iter().chain(hashes) {
            check_bare_name("secret name", &secret.name)?;
            let source = match (secret.kind.is_derived(), &secret.from) {
                (true, Some(from)) => match values.get(from.as_str()) {
                    Some(v) => Some(v.as_str()),
                    None => return Err(undeclared(&app.id, from)),
                },
                (true, None) => return Err(undeclared(&app.id, &secret.name)),
                (false, _) => None,
            };
            let value = self.secret(&app.id, files_fd.as_fd(), secret, source, &mut report)?;
            values.insert(&secret.name, value);
        }

        let mut wanted = BTreeSet::new();
        for container in &app.containers {
            let mut vars: Vec<(&str, String)> = Vec::new();
            for used in &container.secrets {
                let Some(var) = &used.env else { continue };
                let value = match &used.from {
                    None => values
                        .get(used.name.as_str())
                        .cloned()
                        .ok_or_else(|| undeclared(&app.id, &used.name))?,
                    Some(dep) => self.dependency_secret(&app.id, dep, &used.name)?,
                };
                vars.push((var, value));
            }
            if vars.is_empty() {
                continue;
            }
            check_bare_name("container name", &container.name)?;
            vars.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut text = String::new();
            for (var, value) in &vars {
                text.push_str(var);
                text.push('=');
                text.push_str(value);
                text.push('\n');
            }
            if self.env_file(
                &app.id,
                env_fd.as_fd(),
                &container.name,
                text.as_bytes(),
                &mut report,
            )? {
                report.env_files_written.push(container.name.clone());
            }
            wanted.insert(container.name.as_str());
        }
        let env_set_known = lock(&self.swept)
            .get(&app.id)
            .is_some_and(|known| known.iter().map(String::as_str).eq(wanted.iter().copied()));
        if !env_set_known {
            let names = match env_names {
                Some(names) => names,
                None => sweep(&env_dir, "env", &mut report)?,
            };
            for name in names {
                let Some(container) = name.strip_suffix(".env") else {
                    continue;
                };
                if !wanted.contains(container) {
                    fsutil::remove_if_exists(&env_dir.join(&name))?;
                    report.env_files_removed.push(container.to_owned());
                }
            }
            let wanted = wanted.into_iter().map(str::to_owned).collect();
            lock(&self.swept).insert(app.id.clone(), wanted);
        }

        if report.changed() {
            tracing::info!(
                app = %app.id,
                generated = ?report.generated,
                repaired = report.repaired.len(),
                env_files_written = ?report.env_files_written,
                env_files_removed = ?report.env_files_removed,
                "materialised secrets"
            );
        }
        Ok(report)
    }

    /// Value of one secret (trimmed of a trailing newline), `None` if absent.
    /// Refuses to follow a symlink in its place.
    pub fn read(&self, app: &str, name: &str) -> Result<Option<String>, SecretError> {
        check_app_id(app)?;
        check_bare_name("secret name", name)?;
        let path = self.layout.secret_file(app, name);
        match read_nofollow(None, &path, MAX_SECRET_LEN)? {
            OnDisk::Absent => Ok(None),
            OnDisk::File { bytes, .. } => match String::from_utf8(bytes) {
                Ok(mut s) => {
                    if s.ends_with('\n') {
                        s.pop();
                    }
                    Ok(Some(s))
                }
                Err(_) => Err(not_a_secret(&path, "is not text")),
            },
            OnDisk::Symlink | OnDisk::NotAFile { .. } => {
                Err(not_a_secret(&path, "is not a regular file"))
            }
            OnDisk::Unreadable => Err(not_a_secret(&path, "is not readable by the service user")),
        }
    }

    /// True when a secret file or folder this store verified may have
    /// changed since (see [`StampCache::has_news`]).
    pub fn has_news(&self) -> bool {
        self.stamps.has_news()
    }

    /// Deletes all secrets and env files of an app (uninstall).
    pub fn remove_app(&self, app: &str) -> Result<(), SecretError> {
        lock(&self.clean).remove(app);
        check_app_id(app)?;
        let dir = self.layout.app_secrets_dir(app);
        // remove_dir_all never follows symlinks, the top one included.
        match fs::remove_dir_all(&dir) {
            Ok(()) => fsutil::sync_dir(&self.layout.secrets_root)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(FsError::new("remove", dir, e).into()),
        }
        self.cache().retain(|path, _| !path.starts_with(&dir));
        lock(&self.swept).remove(app);
        tracing::info!(app, "removed secrets");
        Ok(())
    }

    /// Checks one generated secret, repairs or creates it, returns its value.
    fn secret(
        &self,
        app: &str,
        files_dir: BorrowedFd<'_>,
        secret: &GeneratedSecret,
        source: Option<&str>,
        report: &mut SecretReport,
    ) -> Result<String, SecretError> {
        let path = self.layout.secret_file(app, &secret.name);
        let mut on_disk = read_nofollow(Some(files_dir), &path, MAX_SECRET_LEN)?;
        let mut found_mode = None;
        if let OnDisk::Unreadable = on_disk {
            // Ours but chmod'ed away (e.g. 0000): make it readable, keep it.
            if let Ok(meta) = fs::symlink_metadata(&path) {
                if meta.file_type().is_file() && meta.uid() == self.euid {
                    fs::set_permissions(&path, fs::Permissions::from_mode(SECRET_MODE))
                        .map_err(|e| FsError::new("chmod", &path, e))?;
                    found_mode = Some(meta.mode() & 0o7777);
                    on_disk = read_nofollow(Some(files_dir), &path, MAX_SECRET_LEN)?;
                }
            }
        }
        let problem = match on_disk {
            OnDisk::Absent => None,
            OnDisk::File {
                file,
                bytes,
                mode,
                uid,
            } => match self.check_value(&path, secret, &bytes, source) {
                Ok(value) => {
                    let mode = found_mode.unwrap_or(mode);
                    if mode != SECRET_MODE {
                        repaired(app, &secret.name, Problem::WrongMode(mode), report);
                    }
                    if uid != self.euid {
                        repaired(app, &secret.name, Problem::WrongOwner(uid), report);
                        fsutil::atomic_write(&path, value.as_bytes(), SECRET_MODE)?;
                    } else if mode != SECRET_MODE && found_mode.is_none() {
                        rustix::fs::fchmod(&file, Mode::from_raw_mode(SECRET_MODE))
                            .map_err(|e| FsError::new("chmod", &path, e.into()))?;
                    }
                    return Ok(value);
                }
                Err(problem) => Some(problem),
            },
            OnDisk::Symlink => Some(Problem::Symlink),
            OnDisk::NotAFile { is_dir } => {
                let removed = if is_dir {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| FsError::new("remove", &path, e))?;
                Some(Problem::NotAFile)
            }
            OnDisk::Unreadable => Some(Problem::Unreadable),
        };

        let value = match (secret.kind, source) {
            (SecretKindName::Hex16, _) => random_hex::<16>()?,
            (SecretKindName::Hex32, _) => random_hex::<32>()?,
            (SecretKindName::Bcrypt, Some(source)) => bcrypt::hash(source, self.bcrypt_cost)
                .map_err(|e| SecretError::Bcrypt {
                    app: app.to_owned(),
                    name: secret.name.clone(),
                    source: e,
                })?,
            (SecretKindName::Rpcauth, Some(source)) => {
                let user = secret
                    .user
                    .as_deref()
                    .ok_or_else(|| undeclared(app, &secret.name))?;
                rpcauth_line(user, &random_hex::<16>()?, source)
            }
            (SecretKindName::Bcrypt | SecretKindName::Rpcauth, None) => {
                return Err(undeclared(app, &secret.name));
            }
        };
        fsutil::atomic_write(&path, value.as_bytes(), SECRET_MODE)?;
        if let (SecretKindName::Bcrypt, Some(source)) = (secret.kind, source) {
            self.remember(path, source, &value);
        }
        if let Some(problem) = problem {
            repaired(app, &secret.name, problem, report);
        } else {
            tracing::info!(app, secret = %secret.name, kind = %secret.kind, "generated secret");
            report.generated.push(secret.name.clone());
        }
        Ok(value)
    }

    /// The value in `bytes` if it is a valid secret of `kind`, else what is
    /// wrong with it. One trailing newline (from an editor) is tolerated.
    fn check_value(
        &self,
        path: &Path,
        secret: &GeneratedSecret,
        bytes: &[u8],
        source: Option<&str>,
    ) -> Result<String, Problem> {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if bytes.is_empty() {
            return Err(Problem::Empty);
        }
        let value = std::str::from_utf8(bytes).map_err(|_| Problem::Corrupt)?;
        let valid = match secret.kind {
            SecretKindName::Hex16 => is_lower_hex(value, 32),
            SecretKindName::Hex32 => is_lower_hex(value, 64),
            SecretKindName::Rpcauth => {
                let (Some(source), Some(user)) = (source, secret.user.as_deref()) else {
                    return Err(Problem::Corrupt);
                };
                return check_rpcauth(value, user, source).map(|()| value.to_owned());
            }
            SecretKindName::Bcrypt => {
                let source = source.ok_or(Problem::Corrupt)?;
                return self
                    .check_hash(path, source, value)
                    .map(|()| value.to_owned());
            }
        };
        if valid {
            Ok(value.to_owned())
        } else {
            Err(Problem::Corrupt)
        }
    }

    /// Whether `hash` is a bcrypt hash of `source`, from the cache if the
    /// same pair verified before.
    fn check_hash(&self, path: &Path, source: &str, hash: &str) -> Result<(), Problem> {
        if self
            .cache()
            .get(path)
            .is_some_and(|p| p.source == source && p.hash == hash)
        {
            return Ok(());
        }
        let parts: bcrypt::HashParts = hash.parse().map_err(|_| Problem::Corrupt)?;
        if parts.get_cost() > self.bcrypt_cost.max(MAX_STORED_COST) {
            return Err(Problem::Corrupt);
        }
        self.verifications.fetch_add(1, Ordering::Relaxed);
        match bcrypt::verify(source, hash) {
            Ok(true) => {
                self.remember(path.to_owned(), source, hash);
                Ok(())
            }
            Ok(false) => Err(Problem::Mismatch),
            Err(_) => Err(Problem::Corrupt),
        }
    }

    /// Writes an env file unless it already holds `text`; a right content
    /// with the wrong mode or owner is repaired (and reported) like a
    /// secret's. Returns whether the content was written.
    fn env_file(
        &self,
        app: &str,
        env_dir: BorrowedFd<'_>,
        container: &str,
        text: &[u8],
        report: &mut SecretReport,
    ) -> Result<bool, SecretError> {
        let path = self.layout.env_file(app, container);
        match read_nofollow(Some(env_dir), &path, MAX_ENV_FILE_LEN)? {
            OnDisk::File {
                file,
                bytes,
                mode,
                uid,
            } if bytes == text => {
                let name = format!("env/{container}.env");
                if mode != SECRET_MODE {
                    repaired(app, &name, Problem::WrongMode(mode), report);
                }
                if uid != self.euid {
                    repaired(app, &name, Problem::WrongOwner(uid), report);
                    fsutil::atomic_write(&path, text, SECRET_MODE)?;
                } else if mode != SECRET_MODE {
                    rustix::fs::fchmod(&file, Mode::from_raw_mode(SECRET_MODE))
                        .map_err(|e| FsError::new("chmod", &path, e.into()))?;
                }
                return Ok(false);
            }
            OnDisk::NotAFile { is_dir: true } => {
                fs::remove_dir_all(&path).map_err(|e| FsError::new("remove", &path, e))?;
            }
            OnDisk::NotAFile { is_dir: false } => {
                fsutil::remove_if_exists(&path)?;
            }
            _ => {}
        }
        fsutil::atomic_write(&path, text, SECRET_MODE)?;
        tracing::info!(app, container, "wrote secret env file");
        Ok(true)
    }

    /// A secret exported by the dependency `dep`, as its own pass left it.
    fn dependency_secret(&self, app: &str, dep: &str, name: &str) -> Result<String, SecretError> {
        check_app_id(dep)?;
        check_bare_name("secret name", name)?;
        let missing = || SecretError::DependencySecretMissing {
            app: app.to_owned(),
            from: dep.to_owned(),
            name: name.to_owned(),
        };
        let path = self.layout.secret_file(dep, name);
        let OnDisk::File { bytes, .. } = read_nofollow(None, &path, MAX_SECRET_LEN)? else {
            return Err(missing());
        };
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        // One line of an env file: no line breaks, no NUL.
        match std::str::from_utf8(bytes) {
            Ok(v) if !v.is_empty() && !v.contains(['\n', '\r', '\0']) => Ok(v.to_owned()),
            _ => Err(missing()),
        }
    }

    fn remember(&self, path: PathBuf, source: &str, hash: &str) {
        self.cache().insert(
            path,
            VerifiedPair {
                source: source.to_owned(),
                hash: hash.to_owned(),
            },
        );
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<PathBuf, VerifiedPair>> {
        lock(&self.verified)
    }
}

/// Opens `path` (by its file name in `dir` when given) without following a
/// symlink and reads at most `limit + 1` bytes (so that "too long" is
/// visible). One open, fstat, read, close on the common path.
fn read_nofollow(
    dir: Option<BorrowedFd<'_>>,
    path: &Path,
    limit: usize,
) -> Result<OnDisk, FsError> {
    let flags = OFlags::RDONLY
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY
        // A FIFO put in place of a secret must not block the pass.
        | OFlags::NONBLOCK;
    let opened = match (dir, path.file_name()) {
        (Some(dir), Some(name)) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        _ => rustix::fs::open(path, flags, Mode::empty()),
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(OnDisk::Absent),
        Err(e @ (Errno::LOOP | Errno::NXIO | Errno::ACCESS | Errno::PERM)) => {
            let meta = fs::symlink_metadata(path).map_err(|e| FsError::new("stat", path, e))?;
            let ft = meta.file_type();
            return if ft.is_symlink() {
                Ok(OnDisk::Symlink)
            } else if !ft.is_file() {
                Ok(OnDisk::NotAFile {
                    is_dir: ft.is_dir(),
                })
            } else if e == Errno::ACCESS {
                Ok(OnDisk::Unreadable)
            } else {
                Err(FsError::new("open", path, e.into()))
            };
        }
        Err(e) => return Err(FsError::new("open", path, e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::new("stat", path, e.into()))?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::RegularFile {
        return Ok(OnDisk::NotAFile {
            is_dir: file_type == FileType::Directory,
        });
    }
    let size = usize::try_from(stat.st_size).unwrap_or(usize::MAX);
    let mut bytes = vec![0; size.min(limit) + 1];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::io::read(&fd, &mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                // Files here are replaced by rename, never grown in place:
                // having read st_size bytes means having read it all.
                if filled == size {
                    break;
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(FsError::new("read", path, e.into())),
        }
    }
    bytes.truncate(filled);
    Ok(OnDisk::File {
        file: File::from(fd),
        bytes,
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
    })
}

/// Makes `dir` a directory of mode `0700`, with a single lstat when it is.
fn ensure_private_dir(dir: &Path) -> Result<(), FsError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.mode() & 0o7777 != DIR_MODE {
                tracing::warn!(dir = %dir.display(), mode = format!("{:04o}", meta.mode() & 0o7777), "secrets folder had the wrong mode; set to 0700");
                fsutil::ensure_dir(dir, DIR_MODE)?;
            }
            Ok(())
        }
        Ok(_) => Err(not_a_dir(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fsutil::ensure_dir(dir, DIR_MODE),
        Err(e) => Err(FsError::new("stat", dir, e)),
    }
}

/// Opens `dir` (by its name in `parent` when given), a directory of mode
/// `0700`, creating it or fixing its mode. Never follows a symlink.
fn open_private_dir(parent: Option<BorrowedFd<'_>>, dir: &Path) -> Result<OwnedFd, FsError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open = || match (parent, dir.file_name()) {
        (Some(parent), Some(name)) => rustix::fs::openat(parent, name, flags, Mode::empty()),
        _ => rustix::fs::open(dir, flags, Mode::empty()),
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            fsutil::ensure_dir(dir, DIR_MODE)?;
            open().map_err(|e| FsError::new("open", dir, e.into()))?
        }
        Err(Errno::NOTDIR | Errno::LOOP) => return Err(not_a_dir(dir)),
        Err(e) => return Err(FsError::new("open", dir, e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| FsError::new("stat", dir, e.into()))?;
    let mode = stat.st_mode & 0o7777;
    if mode != DIR_MODE {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:04o}"), "secrets folder had the wrong mode; set to 0700");
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE))
            .map_err(|e| FsError::new("chmod", dir, e.into()))?;
    }
    Ok(fd)
}

fn not_a_dir(dir: &Path) -> FsError {
    FsError::new(
        "use folder",
        dir,
        io::Error::other("it exists but is not a directory (a file or a symlink): move it away"),
    )
}

/// Lists `dir`, deleting the temporary files of writes that crashed before
/// their rename (reported as `<label>/<file>`); returns the other names.
fn sweep(dir: &Path, label: &str, report: &mut SecretReport) -> Result<Vec<String>, FsError> {
    let entries = fs::read_dir(dir).map_err(|e| FsError::new("list", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::new("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(fsutil::TEMP_PREFIX) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path).map_err(|e| FsError::new("remove", &path, e))?;
            } else {
                fsutil::remove_if_exists(&path)?;
            }
            let secret = format!("{label}/{name}");
            tracing::warn!(file = %secret, "removed temporary file of an interrupted write");
            report.repaired.push(Repair {
                secret,
                problem: Problem::StaleTemp,
            });
        } else {
            names.push(name);
        }
    }
    Ok(names)
}

/// Locks one of the store's maps. They are only ever replaced entry by
/// entry, so a panic elsewhere cannot leave one half-written: carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn repaired(app: &str, secret: &str, problem: Problem, report: &mut SecretReport) {
    tracing::warn!(app, secret, %problem, "repaired secret");
    report.repaired.push(Repair {
        secret: secret.to_owned(),
        problem,
    });
}

fn random_hex<const N: usize>() -> Result<String, SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(SecretError::Random)?;
    Ok(hex::encode(bytes))
}

/// bitcoind's `rpcauth` value for `password`: `<user>:<salt>$<hmac>`, the
/// hmac being HMAC-SHA256 keyed with the salt's text over the password, in
/// hex — exactly what `share/rpcauth/rpcauth.py` of bitcoin computes. The
/// same salt always gives the same line, so a stored line is checked by
/// recomputing it.
fn rpcauth_line(user: &str, salt: &str, password: &str) -> String {
    let hmac = hex::encode(hmac_sha256(salt.as_bytes(), password.as_bytes()));
    format!("{user}:{salt}${hmac}")
}

/// Whether `value` is a well-formed rpcauth line for `user` that
/// authenticates `password`; [`Problem::Mismatch`] when it is well formed
/// but for another user or password (the source changed).
fn check_rpcauth(value: &str, user: &str, password: &str) -> Result<(), Problem> {
    let (found_user, rest) = value.split_once(':').ok_or(Problem::Corrupt)?;
    let (salt, hmac) = rest.split_once('$').ok_or(Problem::Corrupt)?;
    if found_user.is_empty() || !is_lower_hex(salt, 32) || !is_lower_hex(hmac, 64) {
        return Err(Problem::Corrupt);
    }
    if found_user == user && rpcauth_line(user, salt, password) == value {
        Ok(())
    } else {
        Err(Problem::Mismatch)
    }
}

/// HMAC-SHA256 (RFC 2104) over `sha2`, which the daemon already uses.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> [u8; BLOCK] {
        let mut p = [byte; BLOCK];
        for (p, k) in p.iter_mut().zip(block) {
            *p ^= k;
        }
        p
    };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_app_id(app: &str) -> Result<(), SecretError> {
    if is_valid_app_id(app) {
        Ok(())
    } else {
        Err(SecretError::InvalidName {
            what: "app id",
            name: app.to_owned(),
        })
    }
}

/// A file name of its own: no `/`, not `.`/`..`, not hidden (so that it can
/// never be mistaken for a temporary file).
fn check_bare_name(what: &'static str, name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

fn undeclared(app: &str, name: &str) -> SecretError {
    SecretError::UndeclaredSecret {
        app: app.to_owned(),
        name: name.to_owned(),
    }
}

fn not_a_secret(path: &Path, why: &str) -> SecretError {
    FsError::new(
        "read",
        path,
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{why}; the next reconcile pass replaces it"),
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2 (short key) and 6 (key longer than a block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn rpcauth_line_is_what_bitcoins_rpcauth_py_prints() {
        // python3: salt = "0011…ff"; hmac.new(salt.encode(), pw.encode(), "SHA256").hexdigest()
        let line = rpcauth_line(
            "archipelago",
            "00112233445566778899aabbccddeeff",
            "correct horse battery staple",
        );
        assert_eq!(
            line,
            "archipelago:00112233445566778899aabbccddeeff$2d72c6e4d755be2a8795b131e5b9f2ca8fba0995d323c15d96a49e72239204da"
        );
        assert_eq!(
            check_rpcauth(&line, "archipelago", "correct horse battery staple"),
            Ok(())
        );
    }

    #[test]
    fn rpcauth_check_tells_a_changed_source_from_garbage() {
        let line = rpcauth_line("alice", "00112233445566778899aabbccddeeff", "pw");
        assert_eq!(
            check_rpcauth(&line, "alice", "other"),
            Err(Problem::Mismatch)
        );
        assert_eq!(check_rpcauth(&line, "bob", "pw"), Err(Problem::Mismatch));
        for bad in [
            "",
            "alice",
            "alice:nosalt",
            "alice:0011$00",
            ":00112233445566778899aabbccddeeff$2d72c6e4d755be2a8795b131e5b9f2ca8fba0995d323c15d96a49e72239204da",
            "alice:00112233445566778899AABBCCDDEEFF$2d72c6e4d755be2a8795b131e5b9f2ca8fba0995d323c15d96a49e72239204da",
        ] {
            assert_eq!(
                check_rpcauth(bad, "alice", "pw"),
                Err(Problem::Corrupt),
                "{bad}"
            );
        }
    }

    /// The store makes an rpcauth line for the password, leaves it alone
    /// while it matches, and recomputes it when the password changes or the
    /// line is damaged.
    #[test]
    fn rpcauth_secrets_follow_their_password() {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(home.path());
        let store = SecretStore::new(layout.clone());
        let yaml = "id: node\nname: Node\nversion: '1'\ncategory: bitcoin\n\
            generated_secrets:\n  - { name: pw, kind: hex32 }\n  - { name: auth, kind: rpcauth, from: pw, user: alice }\n\
            containers:\n  - name: d\n    image: r.example/d:1\n    secrets:\n      - { name: auth, env: AUTH }\n";
        let app = crate::manifest::parse(Path::new("m.yml"), yaml).unwrap();
        let report = store.materialise(&app).unwrap();
        assert_eq!(report.generated, ["pw", "auth"]);
        let pw = store.read("node", "pw").unwrap().unwrap();
        let auth = store.read("node", "auth").unwrap().unwrap();
        assert_eq!(check_rpcauth(&auth, "alice", &pw), Ok(()));
        let env = fs::read_to_string(layout.env_file("node", "d")).unwrap();
        assert_eq!(env, format!("AUTH={auth}\n"));

        store.deep_check_next();
        assert!(!store.materialise(&app).unwrap().changed());
        assert_eq!(
            store.read("node", "auth").unwrap().unwrap(),
            auth,
            "same salt, same line"
        );

        fsutil::atomic_write(
            &layout.secret_file("node", "pw"),
            "ab".repeat(32).as_bytes(),
            SECRET_MODE,
        )
        .unwrap();
        store.deep_check_next();
        let report = store.materialise(&app).unwrap();
        assert_eq!(
            report.repaired,
            [Repair {
                secret: "auth".into(),
                problem: Problem::Mismatch
            }]
        );
        let auth = store.read("node", "auth").unwrap().unwrap();
        assert_eq!(check_rpcauth(&auth, "alice", &"ab".repeat(32)), Ok(()));

        fsutil::atomic_write(
            &layout.secret_file("node", "auth"),
            b"alice:nonsense",
            SECRET_MODE,
        )
        .unwrap();
        store.deep_check_next();
        let report = store.materialise(&app).unwrap();
        assert_eq!(
            report.repaired,
            [Repair {
                secret: "auth".into(),
                problem: Problem::Corrupt
            }]
        );
    }
}
