//! The tar layer of data snapshots and backups: folders of an app packed
//! under named prefixes (`data/`, `secrets/`, `volumes/<name>/`), and
//! unpacked again into the folders each prefix stands for.
//!
//! Plain blocking I/O over `Read`/`Write`, so that the same code runs in the
//! daemon (files the service user owns) and in `archipelagod data …`, the
//! helper the daemon starts inside the user namespace of its containers
//! (`podman unshare`), where files written by container users are readable
//! and their owners can be put back (see [`crate::datatool`]).
//!
//! Unpacking trusts no path in the archive: an entry must sit under one of
//! the prefixes asked for, with plain components only (no `..`, no absolute
//! path), and never below a symlink (an entry cannot plant a link and then
//! write through it). Links themselves are restored as links.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// One folder and the prefix it has in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, plain components (`data`, `volumes/db`).
    pub prefix: String,
    pub dir: PathBuf,
}

impl Entry {
    pub fn new(prefix: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Self {
            prefix: prefix.into(),
            dir: dir.into(),
        }
    }

    /// `prefix=dir`, as the helper's command line takes it.
    pub fn to_arg(&self) -> String {
        format!("{}={}", self.prefix, self.dir.display())
    }

    /// Parses `prefix=dir`.
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        let (prefix, dir) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}` is not PREFIX=FOLDER"))?;
        let entry = Self::new(prefix, dir);
        if !plain_relative(Path::new(prefix)) || !entry.dir.is_absolute() {
            return Err(format!(
                "`{arg}`: the prefix must be a plain relative path and the folder absolute"
            ));
        }
        Ok(entry)
    }
}

/// A relative path of normal components only.
fn plain_relative(path: &Path) -> bool {
    path.components().count() > 0 && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Writes a tar of every entry's folder (missing folders are left out) to
/// `out`, keeping owners, modes and times; symlinks are stored, not
/// followed. Returns the bytes written.
pub fn pack(entries: &[Entry], out: impl Write) -> io::Result<u64> {
    let mut counter = Counting { inner: out, n: 0 };
    {
        let mut builder = tar::Builder::new(&mut counter);
        builder.mode(tar::HeaderMode::Complete);
        builder.follow_symlinks(false);
        for e in entries {
            match fs::symlink_metadata(&e.dir) {
                Ok(m) if m.is_dir() => builder.append_dir_all(&e.prefix, &e.dir)?,
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a folder",
                        e.dir.display()
                    )));
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        builder.finish()?;
    }
    counter.flush()?;
    Ok(counter.n)
}

/// Empties each entry's folder (creating it when missing), then unpacks the
/// archive's entries below each prefix into it. Entries under no prefix
/// are skipped. With `owners`, files get their archived owners back (the
/// helper inside the user namespace); without, they belong to whoever
/// unpacks.
pub fn unpack(input: impl Read, entries: &[Entry], owners: bool) -> io::Result<u64> {
    for e in entries {
        clear_dir(&e.dir)?;
    }
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(owners);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let mut files = 0u64;
    for item in archive.entries()? {
        let mut item = item?;
        let path = item.path()?.into_owned();
        let Some((entry, rel)) = place(&path, entries)? else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            // The prefix's own folder: it exists; take its mode.
            if let Ok(mode) = item.header().mode() {
                use std::os::unix::fs::PermissionsExt as _;
                fs::set_permissions(&entry.dir, fs::Permissions::from_mode(mode & 0o7777))?;
            }
            continue;
        }
        let target = entry.dir.join(&rel);
        check_no_links_between(&entry.dir, &target)?;
        item.unpack(&target)?;
        files += 1;
    }
    Ok(files)
}

/// Which entry an archived path belongs to, and its path below the prefix.
fn place<'a>(path: &Path, entries: &'a [Entry]) -> io::Result<Option<(&'a Entry, PathBuf)>> {
    if !path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the archive has an unsafe path: {}", path.display()),
        ));
    }
    let path: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    Ok(entries.iter().find_map(|e| {
        path.strip_prefix(&e.prefix)
            .ok()
            .map(|rel| (e, rel.to_path_buf()))
    }))
}

/// Refuses a target whose folders below `base` are not all real folders.
fn check_no_links_between(base: &Path, target: &Path) -> io::Result<()> {
    let rel = target.strip_prefix(base).map_err(io::Error::other)?;
    let mut at = base.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the archive writes through {}, which is not a folder",
                        at.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&at)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes everything inside `dir` (not `dir` itself), creating it when
/// missing. A symlink in its place is refused.
pub fn clear_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a folder", dir.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)?;
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    for item in fs::read_dir(dir)? {
        let item = item?;
        let path = item.path();
        if item.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Removes `path` and everything below it; a missing path is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The size of the files below `dir` (what a pack of it roughly writes);
/// unreadable parts count as nothing.
pub fn size_of(dir: &Path) -> u64 {
    let Ok(items) = fs::read_dir(dir) else {
        return 0;
    };
    items
        .filter_map(Result::ok)
        .map(|item| match item.file_type() {
            Ok(t) if t.is_dir() => size_of(&item.path()),
            Ok(t) if t.is_file() => item.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Counts what passes through.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn packs_and_unpacks_folders_under_their_prefixes() {
        let src = tempfile::tempdir().unwrap();
        write(&src.path().join("data/chain.dat"), "42\n");
        write(&src.path().join("data/sub/deep.txt"), "deep");
        fs::set_permissions(
            src.path().join("data/chain.dat"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("chain.dat", src.path().join("data/link")).unwrap();
        write(&src.path().join("vol/x"), "volume");
        let mut tar = Vec::new();
        let entries = [
            Entry::new("data", src.path().join("data")),
            Entry::new("volumes/db", src.path().join("vol")),
            Entry::new("missing", src.path().join("nothing-here")),
        ];
        pack(&entries, &mut tar).unwrap();

        let dst = tempfile::tempdir().unwrap();
        write(&dst.path().join("data/stale"), "old");
        let targets = [
            Entry::new("data", dst.path().join("data")),
            Entry::new("volumes/db", dst.path().join("v")),
        ];
        unpack(tar.as_slice(), &targets, false).unwrap();
        assert_eq!(
            fs::read_to_string(dst.path().join("data/chain.dat")).unwrap(),
            "42\n"
        );
        assert_eq!(
            fs::metadata(dst.path().join("data/chain.dat"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(dst.path().join("data/sub/deep.txt")).unwrap(),
            "deep"
        );
        assert_eq!(
            fs::read_link(dst.path().join("data/link")).unwrap(),
            Path::new("chain.dat")
        );
        assert!(!dst.path().join("data/stale").exists(), "cleared first");
        assert_eq!(
            fs::read_to_string(dst.path().join("v/x")).unwrap(),
            "volume"
        );
    }

    #[test]
    fn refuses_paths_that_leave_their_folder() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        // The tar crate refuses to write `..` itself: write the name raw.
        let name = b"data/../../evil";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        tar.append(&header, &b"x"[..]).unwrap();
        let bytes = tar.into_inner().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let err = unpack(
            bytes.as_slice(),
            &[Entry::new("data", dst.path().join("data"))],
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unsafe path"), "{err}");
        assert!(!dst.path().join("evil").exists());
    }

    #[test]
    fn refuses_writing_through_a_planted_link() {
        let outside = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.set_mode(0o777);
        tar.append_link(&mut link, "data/escape", outside.path())
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(1);
        file.set_mode(0o644);
        tar.append_data(&mut file, "data/escape/owned", &b"x"[..])
            .unwrap();
        let bytes = tar.into_inner().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let err = unpack(
            bytes.as_slice(),
            &[Entry::new("data", dst.path().join("data"))],
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        assert!(!outside.path().join("owned").exists());
    }

    #[test]
    fn entry_arguments_are_checked() {
        assert_eq!(
            Entry::from_arg("volumes/db=/var/x").unwrap(),
            Entry::new("volumes/db", "/var/x")
        );
        for bad in ["data", "../x=/a", "/abs=/a", "data=relative"] {
            assert!(Entry::from_arg(bad).is_err(), "{bad}");
        }
    }
}
