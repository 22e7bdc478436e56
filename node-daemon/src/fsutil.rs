//! Crash-safe file writes shared by the state file, the secrets and the unit
//! files: write a temporary file beside the target, fsync it, rename it over
//! the target, fsync the directory. A power cut at any instant leaves either
//! the old or the new content, never a mix — at worst a stray temporary file,
//! which [`remove_stale_temps`] clears on the next pass.

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// Prefix of the temporary files written by [`atomic_write`]. Dot-prefixed so
/// that systemd's Quadlet generator and `ls` ignore them.
pub const TEMP_PREFIX: &str = ".archipelago-tmp.";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An I/O failure together with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FsError {
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Writes `contents` to `path` atomically with the given mode.
///
/// The temporary file is created with `mode` from the start (never briefly
/// world-readable), so this is safe for secrets.
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    let dir = parent_of(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| FsError::new("write", path, io::Error::other("path has no file name")))?;
    // Unique per write, so that two writers never share a temporary file
    // (`create_new` below refuses to reuse one).
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{}.{}.{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| FsError::new("create", &tmp, e))?;
        // The umask may have narrowed the mode; never widened it. Set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| FsError::new("chmod", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| FsError::new("write", &tmp, e))?;
        f.sync_all().map_err(|e| FsError::new("fsync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| FsError::new("rename", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsyncs a directory so that a rename or unlink in it survives a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsError::new("fsync", dir, e))
}

/// Creates `dir` (and parents) if missing and sets its mode to `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), FsError> {
    fs::create_dir_all(dir).map_err(|e| FsError::new("create directory", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| FsError::new("stat", dir, e))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| FsError::new("chmod", dir, e))?;
    }
    Ok(())
}

/// Reads a file, mapping "not found" to `None`.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::new("read", path, e)),
    }
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> Result<bool, FsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FsError::new("remove", path, e)),
    }
}

/// Deletes temporary files left in `dir` by writes that crashed before their
/// rename. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, FsError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(FsError::new("list", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| FsError::new("list", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            remove_if_exists(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What identifies one version of a file without reading it. `ctime` is
/// set by the kernel on every change of content, mode or owner and cannot
/// be set back by an unprivileged user; with the inode it also catches a
/// file replaced by rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mode: u32,
    uid: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mode: meta.mode(),
            uid: meta.uid(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Timestamps are only as fine as the kernel's clock tick: a change made in
/// the same tick as our check could leave the stamp equal. Like git's
/// "racily clean" entries, a file changed this recently is not trusted
/// (when inotify cannot tell us about changes).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Remembers files (and folders) already verified, so that a pass over
/// unchanged files does not read and check them again. Anything that
/// changes a file — content, mode, owner, replacement, deletion — makes it
/// count as changed, and it is checked in full again.
///
/// A recorded folder counts as changed when an entry in it is added,
/// removed or changed (once the folder itself is watched, i.e. once a file
/// in it was recorded).
///
/// Changes are learnt from inotify watches on the folders of recorded files:
/// a pass over a quiet folder costs no syscall per file, only one `read` of
/// the (non-blocking) inotify descriptor in [`refresh`](Self::refresh).
/// Where inotify is unavailable (no watch left, an exotic file system), a
/// recorded file is compared by `lstat` against its [`Stamp`].
#[derive(Debug)]
pub struct StampCache {
    /// Path → its stamp and the token it was verified against.
    stamps: Mutex<HashMap<PathBuf, (Stamp, u64)>>,
    watch: Option<Watch>,
}

impl Default for StampCache {
    fn default() -> Self {
        Self::new()
    }
}

/// inotify state: the descriptor and which folder each watch covers.
#[derive(Debug)]
struct Watch {
    fd: OwnedFd,
    dirs: Mutex<WatchedDirs>,
}

#[derive(Debug, Default)]
struct WatchedDirs {
    by_wd: HashMap<i32, PathBuf>,
    watched: HashSet<PathBuf>,
}

/// Every event that means "this entry may differ now".
const WATCH_MASK: WatchFlags = WatchFlags::MODIFY
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::CLOSE_WRITE)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DONT_FOLLOW)
    .union(WatchFlags::ONLYDIR);

impl StampCache {
    pub fn new() -> Self {
        let watch = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .ok()
            .map(|fd| Watch {
                fd,
                dirs: Mutex::new(WatchedDirs::default()),
            });
        Self {
            stamps: Mutex::new(HashMap::new()),
            watch,
        }
    }

    /// A cache that never uses inotify (for tests of the `lstat` path).
    pub fn without_inotify() -> Self {
        Self {
            stamps: Mutex::new(HashMap::new()),
            watch: None,
        }
    }

    fn stamps(&self) -> MutexGuard<'_, HashMap<PathBuf, (Stamp, u64)>> {
        self.stamps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when inotify has reported something since the last
    /// [`refresh`](Self::refresh): a watched file or folder changed (by a
    /// pass, or behind the daemon's back). Costs one `poll` with no wait;
    /// always false without inotify.
    pub fn has_news(&self) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        let mut fds = [rustix::event::PollFd::new(
            &watch.fd,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
    }

    /// Takes in the changes reported since the last call: every recorded
    /// path they touch is forgotten. Call it before a round of
    /// [`unchanged`](Self::unchanged) checks.
    pub fn refresh(&self) {
        let Some(watch) = &self.watch else { return };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&watch.fd, &mut buf);
        let mut dirs = watch.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stamps = self.stamps();
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::INTR) => continue,
                // AGAIN: nothing more pending. Anything else: the descriptor
                // is unusable, so nothing recorded can be trusted.
                Err(e) => {
                    if e != Errno::AGAIN {
                        stamps.clear();
                    }
                    break;
                }
            };
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                stamps.clear();
                continue;
            }
            let Some(dir) = dirs.by_wd.get(&event.wd()).cloned() else {
                continue;
            };
            match event.file_name() {
                Some(name) if !flags.contains(ReadFlags::IGNORED) => {
                    let name = std::ffi::OsStr::from_bytes(name.to_bytes());
                    let path = dir.join(name);
                    // The entry, everything recorded below it, and the
                    // folder itself: its listing may differ now.
                    stamps.retain(|p, _| !p.starts_with(&path));
                    stamps.remove(&dir);
                }
                _ => {
                    // The folder itself changed, moved, went, or its watch
                    // is gone. A watch follows the folder's inode, not its
                    // path: after a move or deletion it no longer covers the
                    // path, so stop trusting it (a new one comes with the
                    // next record).
                    stamps.retain(|p, _| !p.starts_with(&dir));
                    let gone = ReadFlags::IGNORED | ReadFlags::MOVE_SELF | ReadFlags::DELETE_SELF;
                    if flags.intersects(gone) {
                        dirs.by_wd.remove(&event.wd());
                        dirs.watched.remove(&dir);
                        if !flags.contains(ReadFlags::IGNORED) {
                            let _ = inotify::remove_watch(&watch.fd, event.wd());
                        }
                    }
                }
            }
        }
    }

    /// True when `path` is exactly as it was when last
    /// [`record`](Self::record)ed (as far as the last
    /// [`refresh`](Self::refresh) knows, when its folder is watched).
    pub fn unchanged(&self, path: &Path) -> bool {
        self.unchanged_as(path, 0)
    }

    /// Like [`unchanged`](Self::unchanged), and also recorded with this
    /// `token`: what the file was verified against (say, a hash of the
    /// content it must have), so that a new expectation is never taken as
    /// met by a file verified against an old one.
    pub fn unchanged_as(&self, path: &Path, token: u64) -> bool {
        if self.is_watched(path) {
            return self.stamps().get(path).is_some_and(|(_, t)| *t == token);
        }
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        self.stamps().get(path) == Some(&(Stamp::of(&meta), token))
    }

    /// Records `path`, just verified, as good. Not trusted yet — it is
    /// checked in full again next time — when its folder was not watched
    /// before (a change between the check and the new watch would be
    /// missed), or, without inotify, when it changed so recently that a
    /// further change in the same clock tick could leave its stamp equal.
    pub fn record(&self, path: &Path) {
        self.record_as(path, 0);
    }

    /// [`record`](Self::record) with the token it was verified against.
    pub fn record_as(&self, path: &Path, token: u64) {
        let Ok(meta) = fs::symlink_metadata(path) else {
            self.forget(path);
            return;
        };
        let stamp = Stamp::of(&meta);
        let trusted = match self.watch_parent(path) {
            WatchState::AlreadyWatched => true,
            WatchState::JustAdded => false,
            WatchState::Unavailable => {
                let ctime = u64::try_from(stamp.ctime.0)
                    .ok()
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
                ctime
                    .and_then(|c| SystemTime::now().duration_since(c).ok())
                    .is_some_and(|age| age >= RACY_WINDOW)
            }
        };
        if trusted {
            self.stamps().insert(path.to_owned(), (stamp, token));
        } else {
            self.forget(path);
        }
    }

    /// Forgets one path (after writing or deleting it ourselves).
    pub fn forget(&self, path: &Path) {
        self.stamps().remove(path);
    }

    /// Forgets everything: the next checks are full ones. Watches stay.
    pub fn clear(&self) {
        self.stamps().clear();
    }

    fn is_watched(&self, path: &Path) -> bool {
        let (Some(watch), Some(parent)) = (&self.watch, path.parent()) else {
            return false;
        };
        watch
            .dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .watched
            .contains(parent)
    }

    fn watch_parent(&self, path: &Path) -> WatchState {
        let (Some(watch), Some(parent)) = (&self.watch, path.parent()) else {
            return WatchState::Unavailable;
        };
        let mut dirs = watch.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if dirs.watched.contains(parent) {
            return WatchState::AlreadyWatched;
        }
        match inotify::add_watch(&watch.fd, parent, WATCH_MASK) {
            Ok(wd) => {
                dirs.by_wd.insert(wd, parent.to_owned());
                dirs.watched.insert(parent.to_owned());
                WatchState::JustAdded
            }
            Err(_) => WatchState::Unavailable,
        }
    }
}

enum WatchState {
    AlreadyWatched,
    JustAdded,
    Unavailable,
}

fn parent_of(path: &Path) -> Result<&Path, FsError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        Some(_) => Ok(Path::new(".")),
        None => Err(FsError::new(
            "write",
            path,
            io::Error::other("path has no parent directory"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        atomic_write(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
    }

    /// Sets a file's times into the past, as if written long ago.
    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
            .unwrap();
    }

    /// Each change, made to a file the cache trusts, must make it count as
    /// changed. `trust` puts the file back into the trusted state first.
    fn every_change_is_noticed(cache: &StampCache, p: &Path, trust: &dyn Fn(&StampCache, &Path)) {
        trust(cache, p);
        assert!(cache.unchanged(p), "trusted after recording");
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
        cache.refresh();
        assert!(!cache.unchanged(p), "mode change");
        trust(cache, p);
        fs::write(p, b"two").unwrap();
        cache.refresh();
        assert!(!cache.unchanged(p), "same-size rewrite in place");
        trust(cache, p);
        atomic_write(p, b"two", 0o644).unwrap();
        cache.refresh();
        assert!(!cache.unchanged(p), "replaced by rename");
        trust(cache, p);
        fs::remove_file(p).unwrap();
        cache.refresh();
        assert!(!cache.unchanged(p), "deleted");
    }

    #[test]
    fn inotify_notices_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        let cache = StampCache::new();
        assert!(cache.watch.is_some(), "inotify is available on every node");
        assert!(!cache.unchanged(&p), "never recorded");
        cache.record(&p);
        assert!(
            !cache.unchanged(&p),
            "not trusted the first time its folder is watched"
        );
        every_change_is_noticed(&cache, &p, &|c, p| {
            c.refresh();
            c.record(p);
        });
        // A change in another folder is not ours to notice.
        let other = tempfile::tempdir().unwrap();
        atomic_write(&p, b"x", 0o600).unwrap();
        cache.refresh();
        cache.record(&p);
        fs::write(other.path().join("g"), b"y").unwrap();
        cache.refresh();
        assert!(cache.unchanged(&p));
    }

    #[test]
    fn news_of_a_change_wait_until_refreshed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        let cache = StampCache::new();
        cache.record(&p);
        cache.refresh();
        assert!(!cache.has_news());
        fs::write(&p, b"edited by hand").unwrap();
        assert!(cache.has_news());
        assert!(cache.has_news(), "looking does not consume the news");
        cache.refresh();
        assert!(!cache.has_news());
        assert!(!StampCache::without_inotify().has_news());
    }

    #[test]
    fn a_folder_moved_away_and_recreated_is_not_trusted() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("units");
        fs::create_dir(&dir).unwrap();
        let p = dir.join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        let cache = StampCache::new();
        for _ in 0..2 {
            cache.refresh();
            cache.record(&p);
        }
        assert!(cache.unchanged(&p));
        fs::rename(&dir, top.path().join("units.old")).unwrap();
        fs::create_dir(&dir).unwrap();
        atomic_write(&p, b"one", 0o600).unwrap();
        cache.refresh();
        assert!(
            !cache.unchanged(&p),
            "the old watch followed the moved folder"
        );
        // Recorded again, it is watched afresh, and edits are seen again.
        for _ in 0..2 {
            cache.refresh();
            cache.record(&p);
        }
        assert!(cache.unchanged(&p));
        fs::write(&p, b"two").unwrap();
        cache.refresh();
        assert!(!cache.unchanged(&p));
    }

    #[test]
    fn a_new_token_is_never_taken_as_verified() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        let cache = StampCache::new();
        for _ in 0..2 {
            cache.refresh();
            cache.record_as(&p, 7);
        }
        assert!(cache.unchanged_as(&p, 7));
        assert!(!cache.unchanged_as(&p, 8));
        assert!(!cache.unchanged(&p));
    }

    #[test]
    fn lstat_stamps_notice_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let cache = StampCache::without_inotify();
        atomic_write(&p, b"one", 0o600).unwrap();
        cache.record(&p);
        // Just written: inside the racy window, so not trusted yet.
        assert!(!cache.unchanged(&p));
        // The ctime cannot be moved back, so a settled stamp is made by hand.
        every_change_is_noticed(&cache, &p, &|c, p| {
            if !p.exists() {
                atomic_write(p, b"one", 0o600).unwrap();
            }
            age(p);
            let meta = fs::symlink_metadata(p).unwrap();
            c.stamps().insert(p.to_owned(), (Stamp::of(&meta), 0));
        });
    }

    #[test]
    fn stale_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("{TEMP_PREFIX}x.1")), b"half").unwrap();
        fs::write(dir.path().join("keep"), b"k").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep").exists());
        assert_eq!(remove_stale_temps(&dir.path().join("missing")).unwrap(), 0);
    }
}
