//! The session store: which tokens are logged in, until when. Only the
//! SHA-256 of each token is kept, so neither memory nor the file
//! (`config_dir/sessions.json`, 0600, written atomically) holds anything a
//! thief could send. The file survives daemon restarts; another process
//! (a password reset) may rewrite it, which the store notices by one `stat`
//! per look-up and reloads. A damaged file logs everyone out (with a
//! warning), never stops the daemon.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::{self, FsError};

/// Sessions kept at most; the one closest to expiry goes first.
const MAX_SESSIONS: usize = 256;
const MAX_FILE_LEN: u64 = 1 << 20;
const FILE_VERSION: u32 = 1;
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// The SHA-256 of a token as the client sends it.
pub(super) type TokenHash = [u8; 32];

pub(super) fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The live sessions of one node, mirrored in a file.
#[derive(Debug)]
pub(super) struct SessionStore {
    path: PathBuf,
    dir: PathBuf,
    /// [`MAX_SESSIONS`] (smaller in tests).
    max: usize,
    inner: Mutex<Sessions>,
}

/// The sessions as last read from or written to the file.
struct Sessions {
    entries: Vec<StoredSession>,
    /// The file's version these entries match.
    stamp: Option<FileStamp>,
}

/// Counts only: the hashes stay out of logs too.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct StoredSession {
    token_sha256: TokenHash,
    /// Unix seconds.
    expires_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionsFile {
    version: u32,
    sessions: Vec<SessionRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    /// Hex SHA-256 of the token.
    token_sha256: String,
    expires_at: u64,
}

/// Identifies one version of a file without reading it (every atomic write
/// makes a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl SessionStore {
    /// The store of the file at `path` (in a folder kept at mode 0700),
    /// with the sessions still live at `now` (unix seconds).
    pub(super) fn open(path: PathBuf, now: u64) -> Result<Self, FsError> {
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let store = Self {
            path,
            dir,
            max: MAX_SESSIONS,
            inner: Mutex::new(Sessions {
                entries: Vec::new(),
                stamp: None,
            }),
        };
        store.reload(&mut store.lock(), now)?;
        Ok(store)
    }

    /// When the session of `hash` expires; `None` if there is none. Every
    /// entry is compared, in constant time, so the time taken tells nothing
    /// about which hashes exist.
    pub(super) fn expiry(&self, hash: &TokenHash, now: u64) -> Option<u64> {
        let mut inner = self.lock();
        self.refresh(&mut inner, now);
        let mut found = None;
        for s in &inner.entries {
            if constant_time_eq(&s.token_sha256, hash) {
                found = Some(s.expires_at);
            }
        }
        found
    }

    /// Adds a session, dropping expired ones (and the oldest when full).
    pub(super) fn add(&self, hash: TokenHash, expires_at: u64, now: u64) -> Result<(), FsError> {
        let mut inner = self.lock();
        self.refresh(&mut inner, now);
        let mut entries: Vec<StoredSession> = inner
            .entries
            .iter()
            .filter(|s| s.expires_at > now)
            .copied()
            .collect();
        if entries.len() >= self.max {
            entries.sort_by_key(|s| std::cmp::Reverse(s.expires_at));
            entries.truncate(self.max.saturating_sub(1));
        }
        entries.push(StoredSession {
            token_sha256: hash,
            expires_at,
        });
        self.store(&mut inner, entries)
    }

    /// Ends the session of `hash`, if there is one.
    pub(super) fn remove(&self, hash: &TokenHash, now: u64) -> Result<(), FsError> {
        let mut inner = self.lock();
        self.refresh(&mut inner, now);
        let kept: Vec<StoredSession> = inner
            .entries
            .iter()
            .filter(|s| !constant_time_eq(&s.token_sha256, hash))
            .copied()
            .collect();
        if kept.len() == inner.entries.len() {
            return Ok(());
        }
        self.store(&mut inner, kept)
    }

    /// Ends every session.
    pub(super) fn clear(&self) -> Result<(), FsError> {
        self.store(&mut self.lock(), Vec::new())
    }

    /// Sessions live at `now`.
    pub(super) fn live(&self, now: u64) -> usize {
        let mut inner = self.lock();
        self.refresh(&mut inner, now);
        inner.entries.iter().filter(|s| s.expires_at > now).count()
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reloads when the file changed under us; a failure keeps what is in
    /// memory (and is logged).
    fn refresh(&self, inner: &mut Sessions, now: u64) {
        match stamp_of(&self.path) {
            Ok(stamp) if stamp == inner.stamp => {}
            Ok(_) => {
                if let Err(e) = self.reload(inner, now) {
                    tracing::warn!(
                        error = %e,
                        "cannot reload the sessions file; keeping the sessions in memory"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the sessions file"),
        }
    }

    fn reload(&self, inner: &mut Sessions, now: u64) -> Result<(), FsError> {
        let stamp = stamp_of(&self.path)?;
        let entries = match read_limited(&self.path, MAX_FILE_LEN)? {
            None => Vec::new(),
            Some(bytes) => parse(&bytes).unwrap_or_else(|problem| {
                tracing::warn!(
                    path = %self.path.display(),
                    %problem,
                    "the sessions file is damaged: every client must log in again"
                );
                Vec::new()
            }),
        };
        inner.entries = entries.into_iter().filter(|s| s.expires_at > now).collect();
        inner.stamp = stamp;
        Ok(())
    }

    fn store(&self, inner: &mut Sessions, entries: Vec<StoredSession>) -> Result<(), FsError> {
        fsutil::ensure_dir(&self.dir, DIR_MODE)?;
        write(&self.path, &entries)?;
        inner.entries = entries;
        inner.stamp = stamp_of(&self.path)?;
        Ok(())
    }
}

/// Empties the sessions file at `path` (what a password reset does from
/// outside the daemon).
pub(super) fn clear_file(path: &Path) -> Result<(), FsError> {
    write(path, &[])
}

/// Equal-length byte strings compared without an early exit.
fn constant_time_eq(a: &TokenHash, b: &TokenHash) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn stamp_of(path: &Path) -> Result<Option<FileStamp>, FsError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::new("stat", path, e)),
    }
}

/// Reads a file of at most `max` bytes (more is cut off, and then fails to
/// parse); `None` when it does not exist.
pub(super) fn read_limited(path: &Path, max: u64) -> Result<Option<Vec<u8>>, FsError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::new("open", path, e)),
    };
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| FsError::new("read", path, e))?;
    Ok(Some(bytes))
}

fn parse(bytes: &[u8]) -> Result<Vec<StoredSession>, String> {
    let file: SessionsFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != FILE_VERSION {
        return Err(format!("unknown version {}", file.version));
    }
    file.sessions
        .into_iter()
        .map(|r| {
            let mut token_sha256 = [0u8; 32];
            hex::decode_to_slice(&r.token_sha256, &mut token_sha256)
                .map_err(|e| format!("bad token hash: {e}"))?;
            Ok(StoredSession {
                token_sha256,
                expires_at: r.expires_at,
            })
        })
        .collect()
}

fn write(path: &Path, entries: &[StoredSession]) -> Result<(), FsError> {
    let file = SessionsFile {
        version: FILE_VERSION,
        sessions: entries
            .iter()
            .map(|s| SessionRecord {
                token_sha256: hex::encode(s.token_sha256),
                expires_at: s.expires_at,
            })
            .collect(),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| FsError::new("encode", path, std::io::Error::other(e)))?;
    text.push(b'\n');
    fsutil::atomic_write(path, &text, FILE_MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path().join("cfg/sessions.json"), 100).unwrap();
        (dir, store)
    }

    #[test]
    fn sessions_are_kept_by_hash_until_they_expire() {
        let (dir, store) = store();
        let hash = token_hash("tok");
        store.add(hash, 200, 100).unwrap();
        assert_eq!(store.expiry(&hash, 150), Some(200));
        assert_eq!(store.expiry(&token_hash("other"), 150), None);
        assert_eq!(store.live(199), 1);
        assert_eq!(store.live(200), 0);
        let text = std::fs::read_to_string(dir.path().join("cfg/sessions.json")).unwrap();
        assert!(text.contains(&hex::encode(hash)) && !text.contains("\"tok\""));
        // Reopened (a restart): the same sessions, expired ones dropped.
        store.add(token_hash("old"), 120, 100).unwrap();
        let reopened = SessionStore::open(dir.path().join("cfg/sessions.json"), 130).unwrap();
        assert_eq!(reopened.expiry(&hash, 130), Some(200));
        assert_eq!(reopened.expiry(&token_hash("old"), 130), None);
        reopened.remove(&hash, 130).unwrap();
        assert_eq!(
            store.expiry(&hash, 130),
            None,
            "the other store sees the file change"
        );
    }

    #[test]
    fn a_full_store_drops_the_session_closest_to_expiry() {
        let (_dir, mut store) = store();
        store.max = 4;
        for i in 0..4 {
            store
                .add(token_hash(&i.to_string()), 1000 + i, 100)
                .unwrap();
        }
        store.add(token_hash("new"), 5000, 100).unwrap();
        assert_eq!(store.live(100), 4);
        assert_eq!(store.expiry(&token_hash("0"), 100), None);
        assert_eq!(store.expiry(&token_hash("1"), 100), Some(1001));
    }

    #[test]
    fn clearing_the_file_from_outside_ends_every_session() {
        let (dir, store) = store();
        store.add(token_hash("tok"), 200, 100).unwrap();
        clear_file(&dir.path().join("cfg/sessions.json")).unwrap();
        assert_eq!(store.live(100), 0);
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(constant_time_eq(&a, &b));
        b[31] ^= 1;
        assert!(!constant_time_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!constant_time_eq(&a, &b));
    }
}
