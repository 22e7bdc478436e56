//! Backup archives and update snapshots of one app.
//!
//! A backup is an [age](https://age-encryption.org) file (a passphrase, or a
//! public key whose secret key only the user holds) around a tar:
//!
//! ```text
//! meta/archipelago-backup.json   what it is: app, version, time, volumes
//! meta/manifest.yml              the manifest the app ran with
//! secrets/…                      its generated secrets
//! data/…                         its data folder
//! volumes/<name>/…               each named volume
//! ```
//!
//! Everything streams: the tar comes out of the [`DataTool`] (inside the
//! containers' user namespace on a node), goes through age and a hash into
//! a temporary file next to the target, which is renamed into place only
//! when complete, so a full disk or a crash never leaves a partial backup
//! behind. Opening a backup decrypts it in full into a staging file first
//! and checks every entry, so a wrong passphrase or a damaged archive is
//! reported before anything on the node changes.
//!
//! An update's data snapshot is the same tar without encryption, kept on
//! the node until the update succeeded or was rolled back.

use crate::archive::Entry;
use crate::datatool::{DataError, DataTool};
use crate::fsutil::{self, FsError};
use age::secrecy::SecretString;
use archipelago_api::AppId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

/// The format version of [`BackupMeta`].
pub const FORMAT: u32 = 1;
/// File name ending of backups.
pub const EXTENSION: &str = ".archy-backup";
/// The prefix of the description files in the tar.
pub const META_PREFIX: &str = "meta";
const META_FILE: &str = "meta/archipelago-backup.json";
const MANIFEST_FILE: &str = "meta/manifest.yml";
/// Largest description or manifest read from an archive.
const MAX_META_BYTES: u64 = 1 << 20;

/// What a backup holds, written first in its tar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupMeta {
    pub format: u32,
    pub app: AppId,
    pub version: String,
    /// Unix seconds.
    pub created: u64,
    /// The catalog the app was installed from.
    pub source: String,
    /// Its named volumes (each under `volumes/<name>/`).
    pub volumes: Vec<String>,
    /// SHA-256 (hex) of `meta/manifest.yml`.
    pub manifest_sha256: String,
}

/// Who can open a backup.
pub enum Lock {
    Passphrase(SecretString),
    Recipient(Box<age::x25519::Recipient>),
}

/// Never prints the passphrase.
impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Lock::Passphrase(..)"),
            Self::Recipient(r) => write!(f, "Lock::Recipient({r})"),
        }
    }
}

/// What opens a backup.
pub enum Key {
    Passphrase(SecretString),
    Identity(Box<age::x25519::Identity>),
}

/// Never prints the passphrase or key.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passphrase(_) => "Key::Passphrase(..)",
            Self::Identity(_) => "Key::Identity(..)",
        })
    }
}

/// A failure making or opening a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Data(#[from] DataError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the passphrase or key does not open this backup")]
    WrongKey,
    #[error("the backup is damaged or not an Archipelago backup: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
}

impl BackupError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// True when the disk was full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Data(d) => d.is_disk_full(),
            Self::Fs(e) => e.source.kind() == io::ErrorKind::StorageFull,
            Self::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || source.to_string().contains("No space left")
            }
            _ => false,
        }
    }
}

impl Lock {
    /// From the API's parameters: exactly one of a passphrase and an
    /// `age1…` recipient.
    pub fn from_params(
        passphrase: Option<&str>,
        recipient: Option<&str>,
    ) -> Result<Self, BackupError> {
        match (passphrase, recipient) {
            (Some(p), None) => {
                check_passphrase(p)?;
                Ok(Self::Passphrase(SecretString::from(p.to_owned())))
            }
            (None, Some(r)) => parse_recipient(r).map(|r| Self::Recipient(Box::new(r))),
            _ => Err(BackupError::Invalid(
                "give either a passphrase or an age recipient (`age1…`), not both or neither"
                    .to_owned(),
            )),
        }
    }
}

/// Parses an `age1…` public key.
pub fn parse_recipient(r: &str) -> Result<age::x25519::Recipient, BackupError> {
    r.trim().parse().map_err(|_| {
        BackupError::Invalid(format!(
            "`{}` is not an age public key (`age1…`, from `age-keygen`)",
            r.chars().take(80).collect::<String>()
        ))
    })
}

fn check_passphrase(p: &str) -> Result<(), BackupError> {
    if p.chars().count() < 8 {
        return Err(BackupError::Invalid(
            "the passphrase is too short: use at least 8 characters".to_owned(),
        ));
    }
    Ok(())
}

impl Key {
    /// From the API's parameters: exactly one of a passphrase and an
    /// `AGE-SECRET-KEY-1…` identity.
    pub fn from_params(
        passphrase: Option<&str>,
        identity: Option<&str>,
    ) -> Result<Self, BackupError> {
        match (passphrase, identity) {
            (Some(p), None) => Ok(Self::Passphrase(SecretString::from(p.to_owned()))),
            (None, Some(i)) => i
                .trim()
                .parse::<age::x25519::Identity>()
                .map(|i| Self::Identity(Box::new(i)))
                .map_err(|_| {
                    BackupError::Invalid(
                        "the key is not an age secret key (`AGE-SECRET-KEY-1…`)".to_owned(),
                    )
                }),
            _ => Err(BackupError::Invalid(
                "give either the passphrase or the age secret key, not both or neither".to_owned(),
            )),
        }
    }
}

/// The folders of an app a backup or snapshot holds, with their prefixes:
/// secrets, data, and each named volume at its mountpoint.
pub fn app_entries(secrets: &Path, data: &Path, volumes: &[(String, PathBuf)]) -> Vec<Entry> {
    let mut out = vec![Entry::new("secrets", secrets), Entry::new("data", data)];
    out.extend(
        volumes
            .iter()
            .map(|(name, dir)| Entry::new(format!("volumes/{name}"), dir)),
    );
    out
}

/// `<app>-<version>-<YYYYMMDDTHHMMSSZ>.archy-backup`.
pub fn backup_name(app: &str, version: &str, created: u64) -> String {
    let version: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{app}-{version}-{}{EXTENSION}", utc_stamp(created))
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn utc_stamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A backup's file name as it may arrive from the network: a plain name
/// ending in [`EXTENSION`], nothing that could become another path.
pub fn check_name(name: &str) -> Result<(), BackupError> {
    let ok = name.len() <= 200
        && name.ends_with(EXTENSION)
        && name.len() > EXTENSION.len()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BackupError::Invalid(format!(
            "{:?} is not a backup name (letters, digits, `-`, `_`, `.`, ending in `{EXTENSION}`)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Writes what a backup describes itself with into `dir` (created, 0700):
/// `archipelago-backup.json` and `manifest.yml`. The [`Entry`] to pack first.
pub fn write_meta(dir: &Path, meta: &BackupMeta, manifest: &[u8]) -> Result<Entry, BackupError> {
    fsutil::ensure_dir(dir, 0o700)?;
    let json = serde_json::to_vec_pretty(meta).map_err(|e| BackupError::Invalid(e.to_string()))?;
    for (name, bytes) in [
        ("archipelago-backup.json", json.as_slice()),
        ("manifest.yml", manifest),
    ] {
        fsutil::atomic_write(&dir.join(name), bytes, 0o600)?;
    }
    Ok(Entry::new(META_PREFIX, dir))
}

/// SHA-256, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file created for writing (mode 0600, must not exist), removed again
/// unless [`Partial::keep`] renames it into place.
struct Partial {
    path: PathBuf,
    file: Option<File>,
}

impl Partial {
    fn create(path: PathBuf) -> Result<Self, BackupError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| BackupError::io(format!("creating {}", path.display()), e))?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    /// Flushes to disk and renames to `to`.
    fn keep(mut self, to: &Path) -> Result<(), BackupError> {
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|e| BackupError::io(format!("writing {}", self.path.display()), e))?;
        }
        fs::rename(&self.path, to)
            .map_err(|e| BackupError::io(format!("renaming to {}", to.display()), e))?;
        if let Some(dir) = to.parent() {
            fsutil::sync_dir(dir)?;
        }
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The temporary name next to `dest`.
fn part_of(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}.part"))
}

/// Hashes and counts what passes through to a file, and reports progress.
struct Tee<'a, W> {
    inner: W,
    hash: Option<&'a mut Sha256>,
    n: u64,
    progress: &'a (dyn Fn(u64) + Sync),
    reported: u64,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = self.hash.as_deref_mut() {
            h.update(&buf[..n]);
        }
        self.n += n as u64;
        // Every 4 MiB is often enough for a progress bar.
        if self.n - self.reported >= 4 << 20 {
            self.reported = self.n;
            (self.progress)(self.n);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes an encrypted backup of `entries` (the meta entry first) at `dest`.
/// `progress` gets the bytes of data packed so far. Returns the size and
/// SHA-256 of the file. Nothing is left at `dest` unless it succeeded.
pub fn write_backup(
    tool: &dyn DataTool,
    entries: &[Entry],
    lock: &Lock,
    dest: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(u64, String), BackupError> {
    let encryptor = match lock {
        Lock::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        Lock::Recipient(r) => {
            age::Encryptor::with_recipients(std::iter::once(&**r as &dyn age::Recipient))
                .map_err(|e| BackupError::Invalid(e.to_string()))?
        }
    };
    let mut part = Partial::create(part_of(dest))?;
    let mut hash = Sha256::new();
    let size = {
        let file = part
            .file
            .as_mut()
            .ok_or_else(|| BackupError::Invalid("no file".into()))?;
        let nothing = |_: u64| {};
        let mut file_tee = Tee {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hash: Some(&mut hash),
            n: 0,
            progress: &nothing,
            reported: 0,
        };
        {
            let writer = encryptor
                .wrap_output(&mut file_tee)
                .map_err(|e| BackupError::io("starting the encryption", e))?;
            let mut plain = Tee {
                inner: writer,
                hash: None,
                n: 0,
                progress,
                reported: 0,
            };
            tool.pack(entries, &mut plain)?;
            progress(plain.n);
            plain
                .inner
                .finish()
                .map_err(|e| BackupError::io("finishing the encryption", e))?;
        }
        file_tee
            .flush()
            .map_err(|e| BackupError::io(format!("writing {}", dest.display()), e))?;
        file_tee.n
    };
    part.keep(dest)?;
    Ok((size, hex::encode(hash.finalize())))
}

/// Makes an update's data snapshot (a plain tar, mode 0600) at `dest`.
pub fn write_snapshot(
    tool: &dyn DataTool,
    entries: &[Entry],
    dest: &Path,
) -> Result<u64, BackupError> {
    let _ = fs::remove_file(dest);
    let mut part = Partial::create(part_of(dest))?;
    let n = {
        let file = part
            .file
            .as_mut()
            .ok_or_else(|| BackupError::Invalid("no file".into()))?;
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        let n = tool.pack(entries, &mut out)?;
        out.flush()
            .map_err(|e| BackupError::io(format!("writing {}", dest.display()), e))?;
        n
    };
    part.keep(dest)?;
    Ok(n)
}

/// Puts the data of a snapshot or a verified staging tar back into the
/// entries' folders (each emptied first).
pub fn restore_tar(tool: &dyn DataTool, tar: &Path, entries: &[Entry]) -> Result<(), BackupError> {
    let file =
        File::open(tar).map_err(|e| BackupError::io(format!("opening {}", tar.display()), e))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    tool.unpack(&mut input, entries)?;
    Ok(())
}

/// A backup opened and checked: its description and manifest, and the
/// decrypted tar in a staging file (removed when this is dropped).
#[derive(Debug)]
pub struct Opened {
    pub meta: BackupMeta,
    pub manifest: String,
    staging: PathBuf,
}

impl Opened {
    /// The decrypted tar.
    pub fn tar(&self) -> &Path {
        &self.staging
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.staging);
    }
}

/// Decrypts the backup at `file` in full into `staging` and checks it:
/// the key opens it, every chunk is authentic, the description and manifest
/// are there and agree, every entry stays under a known prefix. Nothing
/// else is touched. `progress` gets the encrypted bytes read so far.
pub fn open_backup(
    file: &Path,
    key: &Key,
    staging: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Opened, BackupError> {
    let input =
        File::open(file).map_err(|e| BackupError::io(format!("opening {}", file.display()), e))?;
    let counted = CountingReader {
        inner: input,
        n: 0,
        reported: 0,
        progress,
    };
    let decryptor =
        age::Decryptor::new(BufReader::with_capacity(1 << 20, counted)).map_err(decrypt_error)?;
    let mut reader = match key {
        Key::Passphrase(p) => {
            let identity = age::scrypt::Identity::new(p.clone());
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        Key::Identity(i) => decryptor.decrypt(std::iter::once(&**i as &dyn age::Identity)),
    }
    .map_err(decrypt_error)?;
    let _ = fs::remove_file(staging);
    let mut part = Partial::create(part_of(staging))?;
    {
        let out = part
            .file
            .as_mut()
            .ok_or_else(|| BackupError::Invalid("no file".into()))?;
        let mut out = io::BufWriter::with_capacity(1 << 20, out);
        io::copy(&mut reader, &mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::UnexpectedEof {
                BackupError::Corrupt(format!("decryption failed: {e}"))
            } else {
                BackupError::io(format!("reading {}", file.display()), e)
            }
        })?;
        out.flush()
            .map_err(|e| BackupError::io(format!("writing {}", staging.display()), e))?;
    }
    part.keep(staging)?;
    let checked = check_tar(staging);
    match checked {
        Ok((meta, manifest)) => Ok(Opened {
            meta,
            manifest,
            staging: staging.to_path_buf(),
        }),
        Err(e) => {
            let _ = fs::remove_file(staging);
            Err(e)
        }
    }
}

fn decrypt_error(e: age::DecryptError) -> BackupError {
    match e {
        age::DecryptError::NoMatchingKeys
        | age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed => BackupError::WrongKey,
        age::DecryptError::Io(io) => BackupError::Corrupt(io.to_string()),
        other => BackupError::Corrupt(other.to_string()),
    }
}

/// Reads the description and manifest and checks every entry's path.
fn check_tar(tar_path: &Path) -> Result<(BackupMeta, String), BackupError> {
    let corrupt = |what: String| BackupError::Corrupt(what);
    let file = File::open(tar_path).map_err(|e| BackupError::io("opening the staging file", e))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut meta: Option<BackupMeta> = None;
    let mut manifest: Option<String> = None;
    let mut paths: Vec<PathBuf> = Vec::new();
    for item in archive.entries().map_err(|e| corrupt(e.to_string()))? {
        let mut item = item.map_err(|e| corrupt(e.to_string()))?;
        let path = item
            .path()
            .map_err(|e| corrupt(e.to_string()))?
            .into_owned();
        if !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(corrupt(format!("unsafe path {}", path.display())));
        }
        let read_small = |item: &mut tar::Entry<'_, _>| -> Result<String, BackupError> {
            let mut text = String::new();
            item.take(MAX_META_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
            Ok(text)
        };
        match path.to_str() {
            Some(META_FILE) => {
                let text = read_small(&mut item)?;
                meta = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| corrupt(format!("{META_FILE}: {e}")))?,
                );
            }
            Some(MANIFEST_FILE) => manifest = Some(read_small(&mut item)?),
            _ => paths.push(path),
        }
    }
    let meta = meta.ok_or_else(|| corrupt(format!("{META_FILE} is missing")))?;
    let manifest = manifest.ok_or_else(|| corrupt(format!("{MANIFEST_FILE} is missing")))?;
    if meta.format != FORMAT {
        return Err(BackupError::Invalid(format!(
            "the backup has format {}, this node reads format {FORMAT}: restore it with the Archipelago version that made it",
            meta.format
        )));
    }
    if sha256_hex(manifest.as_bytes()) != meta.manifest_sha256 {
        return Err(corrupt(
            "the manifest does not match its checksum".to_owned(),
        ));
    }
    if !crate::manifest::is_valid_app_id(&meta.app) {
        return Err(corrupt(format!("{:?} is not an app id", meta.app)));
    }
    let mut known: Vec<PathBuf> = vec![
        PathBuf::from(META_PREFIX),
        PathBuf::from("secrets"),
        PathBuf::from("data"),
    ];
    known.extend(meta.volumes.iter().map(|v| Path::new("volumes").join(v)));
    for p in &paths {
        let p: PathBuf = p
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if !known.iter().any(|k| p.starts_with(k)) {
            return Err(corrupt(format!("unexpected entry {}", p.display())));
        }
    }
    Ok((meta, manifest))
}

/// Counts what is read and reports progress.
struct CountingReader<'a, R> {
    inner: R,
    n: u64,
    reported: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if n == 0 || self.n - self.reported >= 4 << 20 {
            self.reported = self.n;
            (self.progress)(self.n);
        }
        Ok(n)
    }
}

/// SHA-256 (hex) and size of a file, read in pieces.
pub fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = file.read(&mut buf)?;
        if got == 0 {
            break;
        }
        hash.update(&buf[..got]);
        n += got as u64;
    }
    Ok((n, hex::encode(hash.finalize())))
}

/// Reads a backup's description without the key: only its size and name
/// are visible outside the encryption, so this parses the name.
pub fn parse_name(name: &str) -> Option<(String, String, u64)> {
    let stem = name.strip_suffix(EXTENSION)?;
    let (rest, stamp) = stem.rsplit_once('-')?;
    let created = parse_stamp(stamp)?;
    // The version has no `-` (see backup_name); the id may.
    let (app, version) = rest.rsplit_once('-')?;
    Some((app.to_owned(), version.to_owned(), created))
}

/// `YYYYMMDDTHHMMSSZ` to unix seconds.
fn parse_stamp(stamp: &str) -> Option<u64> {
    let bytes = stamp.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (inverse of civil_from_days).
    let y2 = if month <= 2 { year - 1 } else { year };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datatool::InProcess;

    #[test]
    fn names_carry_app_version_and_time() {
        let name = backup_name("fixture-chain", "1.0.0", 1_795_000_000);
        assert_eq!(name, "fixture-chain-1.0.0-20261118T110640Z.archy-backup");
        check_name(&name).unwrap();
        assert_eq!(
            parse_name(&name),
            Some(("fixture-chain".into(), "1.0.0".into(), 1_795_000_000))
        );
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        for bad in [
            "../x.archy-backup",
            "a/b.archy-backup",
            ".archy-backup",
            "x.tar",
            ".hidden.archy-backup",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    fn meta(app: &str, manifest: &str, volumes: &[&str]) -> BackupMeta {
        BackupMeta {
            format: FORMAT,
            app: app.into(),
            version: "1.0.0".into(),
            created: 1,
            source: "fixtures".into(),
            volumes: volumes.iter().map(|v| (*v).to_owned()).collect(),
            manifest_sha256: sha256_hex(manifest.as_bytes()),
        }
    }

    fn sample(dir: &Path) -> Vec<Entry> {
        fs::create_dir_all(dir.join("data/sub")).unwrap();
        fs::write(dir.join("data/sub/chain.dat"), "1234\n").unwrap();
        fs::create_dir_all(dir.join("secrets/files")).unwrap();
        fs::write(dir.join("secrets/files/rpc-password"), "s3cret").unwrap();
        fs::create_dir_all(dir.join("vol")).unwrap();
        fs::write(dir.join("vol/big"), vec![7u8; 300_000]).unwrap();
        let m = write_meta(
            &dir.join("meta"),
            &meta("x", "id: x\n", &["db"]),
            b"id: x\n",
        )
        .unwrap();
        let mut e = vec![m];
        e.extend(app_entries(
            &dir.join("secrets"),
            &dir.join("data"),
            &[("db".into(), dir.join("vol"))],
        ));
        e
    }

    #[test]
    fn a_backup_opens_with_its_passphrase_and_restores_every_file() {
        let src = tempfile::tempdir().unwrap();
        let entries = sample(src.path());
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("x-1.0.0-19700101T000001Z.archy-backup");
        let lock = Lock::from_params(Some("correct horse"), None).unwrap();
        let (size, sha) = write_backup(&InProcess, &entries, &lock, &dest, &|_| {}).unwrap();
        assert_eq!(hash_file(&dest).unwrap(), (size, sha));
        assert!(!part_of(&dest).exists());
        let raw = fs::read(&dest).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"s3cret"), "encrypted");

        let wrong = Key::from_params(Some("wrong horse"), None).unwrap();
        let staging = out.path().join("staging.tar");
        assert!(matches!(
            open_backup(&dest, &wrong, &staging, &|_| {}).unwrap_err(),
            BackupError::WrongKey
        ));
        assert!(!staging.exists());

        let key = Key::from_params(Some("correct horse"), None).unwrap();
        let opened = open_backup(&dest, &key, &staging, &|_| {}).unwrap();
        assert_eq!(opened.meta.app, "x");
        assert_eq!(opened.manifest, "id: x\n");
        let target = tempfile::tempdir().unwrap();
        let targets = app_entries(
            &target.path().join("secrets"),
            &target.path().join("data"),
            &[("db".into(), target.path().join("v"))],
        );
        restore_tar(&InProcess, opened.tar(), &targets).unwrap();
        assert_eq!(
            fs::read_to_string(target.path().join("data/sub/chain.dat")).unwrap(),
            "1234\n"
        );
        assert_eq!(
            fs::read_to_string(target.path().join("secrets/files/rpc-password")).unwrap(),
            "s3cret"
        );
        assert_eq!(
            fs::read(target.path().join("v/big")).unwrap().len(),
            300_000
        );
        drop(opened);
        assert!(!staging.exists(), "the staging file goes with the handle");
    }

    #[test]
    fn a_recipient_backup_opens_only_with_its_secret_key() {
        use age::secrecy::ExposeSecret as _;
        let src = tempfile::tempdir().unwrap();
        let entries = sample(src.path());
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("x.archy-backup");
        let lock = Lock::from_params(None, Some(&public)).unwrap();
        write_backup(&InProcess, &entries, &lock, &dest, &|_| {}).unwrap();
        let staging = out.path().join("s.tar");
        let other = age::x25519::Identity::generate();
        let wrong = Key::from_params(None, Some(other.to_string().expose_secret())).unwrap();
        assert!(matches!(
            open_backup(&dest, &wrong, &staging, &|_| {}).unwrap_err(),
            BackupError::WrongKey
        ));
        let passphrase = Key::from_params(Some("whatever123"), None).unwrap();
        assert!(matches!(
            open_backup(&dest, &passphrase, &staging, &|_| {}).unwrap_err(),
            BackupError::WrongKey
        ));
        let right = Key::from_params(None, Some(identity.to_string().expose_secret())).unwrap();
        assert_eq!(
            open_backup(&dest, &right, &staging, &|_| {})
                .unwrap()
                .meta
                .volumes,
            ["db"]
        );
    }

    #[test]
    fn a_damaged_backup_is_refused_and_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        let entries = sample(src.path());
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("x.archy-backup");
        let lock = Lock::from_params(Some("correct horse"), None).unwrap();
        write_backup(&InProcess, &entries, &lock, &dest, &|_| {}).unwrap();
        let mut raw = fs::read(&dest).unwrap();
        let at = raw.len() / 2;
        raw[at] ^= 0x40;
        fs::write(&dest, &raw).unwrap();
        let key = Key::from_params(Some("correct horse"), None).unwrap();
        let staging = out.path().join("s.tar");
        let err = open_backup(&dest, &key, &staging, &|_| {}).unwrap_err();
        assert!(matches!(err, BackupError::Corrupt(_)), "{err}");
        assert!(!staging.exists() && !part_of(&staging).exists());
        // Cut short: the last chunk is missing.
        fs::write(&dest, &raw[..at]).unwrap();
        assert!(matches!(
            open_backup(&dest, &key, &staging, &|_| {}).unwrap_err(),
            BackupError::Corrupt(_)
        ));
    }

    #[test]
    fn locks_and_keys_are_checked() {
        assert!(Lock::from_params(Some("short"), None).is_err());
        assert!(Lock::from_params(None, Some("age1nope")).is_err());
        assert!(Lock::from_params(Some("long enough"), Some("age1x")).is_err());
        assert!(Lock::from_params(None, None).is_err());
        assert!(Key::from_params(None, Some("AGE-SECRET-KEY-1NOPE")).is_err());
    }
}
