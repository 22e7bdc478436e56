//! Copies backup files between this computer and a node's backup folder,
//! piece by piece over `backup.download` / `backup.upload`
//! ([`BACKUP_CHUNK_BYTES`] at a time), so that a backup of any size moves
//! through ordinary calls without ever being held in memory whole.
//!
//! - A download goes to `<dest>.part` (0600) and is renamed to `dest` only
//!   once complete and synced; a `.part` left by a broken download is
//!   resumed where it stopped (its bytes are hashed again, so the SHA-256
//!   returned is always the whole file's). Every piece the node sends is
//!   checked: it starts where asked, is at most [`BACKUP_CHUNK_BYTES`], the
//!   file's size does not change, and nothing lies past the end.
//! - An upload sends the file in order; when the node says it already has
//!   a different number of bytes (an earlier upload that broke), it goes on
//!   from there. The last piece carries the SHA-256 of the whole file, which
//!   the node checks before it keeps the backup.
//!
//! File I/O is blocking, one piece at a time: short enough not to matter
//! to the async runtime that drives the calls.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use archipelago_api::methods::{
    BACKUP_CHUNK_BYTES, BackupChunk, BackupChunkParams, BackupDownload, BackupInfo, BackupUpload,
    BackupUploadParams,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::{Client, ClientError};

/// How many answers in a row may name another offset than the one sent
/// before an upload gives up (a node that keeps moving the offset back
/// would otherwise be sent the same pieces forever).
const MAX_UPLOAD_REWINDS: u32 = 3;

/// The bytes read from disk at a time when hashing a file.
const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// A backup copied from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedBackup {
    /// Where it was written (the `dest` asked for).
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex (compare with
    /// [`BackupInfo::sha256`]).
    pub sha256: String,
}

impl Client {
    /// Copies the backup `name` from the node's backup folder to `dest`,
    /// replacing `dest` if it exists. The bytes go to `<dest>.part` first
    /// (created 0600); an existing `.part` is resumed from its length. Once
    /// the node has sent the whole file it is synced and renamed to `dest`.
    /// `progress(done, total)` is called after every piece.
    pub async fn download_backup(
        &self,
        name: &str,
        dest: &Path,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<DownloadedBackup, ClientError> {
        let part = part_path(dest);
        let io_err = |source| ClientError::Io {
            path: part.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&part)
            .map_err(io_err)?;
        // The mode given at creation is masked by the umask; make it exact.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err)?;
        // What an earlier download left: hashed again, then continued.
        let mut hasher = Sha256::new();
        let mut offset = hash_from_start(&mut file, &mut hasher).map_err(io_err)?;
        let resumed_from = offset;
        let mut total: Option<u64> = None;
        loop {
            let chunk = self
                .call::<BackupDownload>(BackupChunkParams {
                    name: name.to_owned(),
                    offset,
                })
                .await?;
            let (data, end) = self.check_chunk(&chunk, offset, &mut total, resumed_from, &part)?;
            file.write_all(&data).map_err(io_err)?;
            hasher.update(&data);
            offset = end;
            progress(offset, chunk.total);
            if chunk.eof || offset == chunk.total {
                break;
            }
        }
        file.sync_all().map_err(io_err)?;
        drop(file);
        fs::rename(&part, dest).map_err(|source| ClientError::Io {
            path: dest.to_owned(),
            source,
        })?;
        sync_parent(dest).map_err(|source| ClientError::Io {
            path: dest.to_owned(),
            source,
        })?;
        Ok(DownloadedBackup {
            path: dest.to_owned(),
            bytes: offset,
            sha256: format!("{:x}", hasher.finalize()),
        })
    }

    /// Checks one piece of a download against what was asked and what came
    /// before; returns its bytes and the offset where it ends.
    fn check_chunk(
        &self,
        chunk: &BackupChunk,
        asked: u64,
        total: &mut Option<u64>,
        resumed_from: u64,
        part: &Path,
    ) -> Result<(Vec<u8>, u64), ClientError> {
        let bad = |reason: String| ClientError::protocol(&self.inner.address, reason);
        if chunk.offset != asked {
            return Err(bad(format!(
                "backup.download sent the piece at offset {}, not the one at {asked} that was asked for",
                chunk.offset
            )));
        }
        match *total {
            None if chunk.total < resumed_from => {
                return Err(bad(format!(
                    "the backup is {} bytes, but the partial download {} already has {resumed_from}: it is not a part of this backup; delete it and download again",
                    chunk.total,
                    part.display()
                )));
            }
            None => *total = Some(chunk.total),
            Some(t) if t != chunk.total => {
                return Err(bad(format!(
                    "backup.download said the backup is {t} bytes, then {}",
                    chunk.total
                )));
            }
            Some(_) => {}
        }
        // Refused before decoding, so a huge answer is not decoded at all.
        if chunk.data_base64.len() > base64_len(BACKUP_CHUNK_BYTES) {
            return Err(bad(format!(
                "backup.download sent a piece larger than {BACKUP_CHUNK_BYTES} bytes"
            )));
        }
        let data = BASE64
            .decode(chunk.data_base64.as_bytes())
            .map_err(|e| bad(format!("a piece of backup.download is not base64: {e}")))?;
        if data.len() > BACKUP_CHUNK_BYTES {
            return Err(bad(format!(
                "backup.download sent {} bytes in one piece, more than {BACKUP_CHUNK_BYTES}",
                data.len()
            )));
        }
        let end = asked.saturating_add(data.len() as u64);
        if end > chunk.total {
            return Err(bad(format!(
                "backup.download sent bytes up to {end}, past the end of the {}-byte backup",
                chunk.total
            )));
        }
        if chunk.eof && end != chunk.total {
            return Err(bad(format!(
                "backup.download said the backup ends at {end}, but it is {} bytes",
                chunk.total
            )));
        }
        if data.is_empty() && !chunk.eof && end != chunk.total {
            return Err(bad(format!(
                "backup.download sent an empty piece at {asked} of {}",
                chunk.total
            )));
        }
        Ok((data, end))
    }

    /// Sends the file `file` to the node's backup folder as `name`, and
    /// returns the backup once the node checked it (SHA-256 of the whole
    /// file, sent with the last piece). When the node answers that it has
    /// another number of bytes than were sent (an earlier upload of the
    /// same name that broke), the upload goes on from there.
    /// `progress(done, total)` is called after every piece.
    pub async fn upload_backup(
        &self,
        file: &Path,
        name: &str,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<BackupInfo, ClientError> {
        let io_err = |source| ClientError::Io {
            path: file.to_owned(),
            source,
        };
        let mut reader = File::open(file).map_err(io_err)?;
        // The hash goes with the last piece, and a resumed upload skips
        // pieces: so the whole file is hashed first.
        let mut hasher = Sha256::new();
        let len = hash_from_start(&mut reader, &mut hasher).map_err(io_err)?;
        let sha256 = format!("{:x}", hasher.finalize());
        let mut buf = vec![0u8; BACKUP_CHUNK_BYTES];
        let mut offset = 0u64;
        let mut rewinds = 0u32;
        loop {
            reader.seek(SeekFrom::Start(offset)).map_err(io_err)?;
            let want = usize::try_from(len - offset)
                .unwrap_or(usize::MAX)
                .min(BACKUP_CHUNK_BYTES);
            let piece = &mut buf[..want];
            reader.read_exact(piece).map_err(io_err)?;
            let end = offset + want as u64;
            let last = end == len;
            let answer = self
                .call::<BackupUpload>(BackupUploadParams {
                    name: name.to_owned(),
                    offset,
                    data_base64: BASE64.encode(&*piece),
                    sha256: last.then(|| sha256.clone()),
                })
                .await?;
            if let Some(info) = answer.done {
                progress(len, len);
                return Ok(info);
            }
            let bad = |reason: String| ClientError::protocol(&self.inner.address, reason);
            if answer.received > len {
                return Err(bad(format!(
                    "backup.upload says the node has {} bytes of {name}, more than the file's {len}: delete the backup on the node and upload again",
                    answer.received
                )));
            }
            if answer.received == end {
                if last {
                    return Err(bad(format!(
                        "backup.upload took the last piece of {name} but did not say the backup was kept"
                    )));
                }
                rewinds = 0;
            } else {
                // The node has another part of the file than was sent:
                // go on from where it is.
                rewinds += 1;
                if rewinds > MAX_UPLOAD_REWINDS {
                    return Err(bad(format!(
                        "backup.upload keeps answering with another offset ({} after {end} was sent)",
                        answer.received
                    )));
                }
            }
            offset = answer.received;
            progress(offset, len);
        }
    }
}

/// `<dest>.part`.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Reads `file` from its start to its end into `hasher`; returns how many
/// bytes it read (the file is then positioned at its end).
fn hash_from_start(file: &mut File, hasher: &mut Sha256) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; HASH_BUFFER_BYTES];
    let mut read = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(read),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
    }
}

/// Syncs the folder holding `path`, so that a rename in it survives a crash.
fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The length of `n` bytes in padded base64.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_part_file_is_beside_the_destination() {
        assert_eq!(
            part_path(Path::new("/tmp/a.archy-backup")),
            Path::new("/tmp/a.archy-backup.part")
        );
        assert_eq!(part_path(Path::new("b")), Path::new("b.part"));
    }

    #[test]
    fn a_full_piece_fits_the_base64_limit() {
        let encoded = BASE64.encode(vec![0u8; BACKUP_CHUNK_BYTES]);
        assert_eq!(encoded.len(), base64_len(BACKUP_CHUNK_BYTES));
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        assert_eq!(
            format!("{:x}", Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
