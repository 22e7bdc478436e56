//! Private files in the app's configuration folder: the node list and, when
//! there is no OS keyring, the session tokens. The folder is made 0700 and
//! every file 0600, and a write goes to a temporary file beside the old
//! one, synced and renamed over it, so a crash leaves the old file or the
//! new one, never half of either.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Reads a file; `None` when it does not exist.
pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `dir` (and its parents) and makes it 0700, whatever it was: it
/// is the app's own folder and holds pinned fingerprints and tokens.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Replaces `path` with `bytes` atomically, as a 0600 file, creating its
/// folder as [`private_dir`] does.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    private_dir(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover of a crashed run with the same process id.
    let _ = fs::remove_file(&tmp);
    let written = replace_with(&tmp, path, dir, bytes);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn replace_with(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // The mode given at creation is masked by the umask; make it exact.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_are_0600_in_a_0700_folder_and_replace_by_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        let path = dir.join("f.json");
        write_private(&path, b"old").unwrap();
        let old = File::open(&path).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(io::read_to_string(old).unwrap(), "old", "not a rename");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temporary left");
    }

    #[test]
    fn a_loose_folder_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        write_private(&tmp.path().join("f"), b"x").unwrap();
        assert_eq!(mode(tmp.path()), 0o700);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "old").unwrap();
        // Renaming a file over a non-empty folder fails.
        let blocked = tmp.path().join("d");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), "").unwrap();
        assert!(write_private(&blocked, b"new").is_err());
        assert_eq!(fs::read_to_string(tmp.path().join("f")).unwrap(), "old");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 2);
        assert_eq!(read_if_exists(&tmp.path().join("nope")).unwrap(), None);
    }
}
