//! Opening a catalog a node may trust: the signature is checked against the
//! node's key before the catalog is parsed, and every manifest or icon is
//! hashed as it is read, so that what the daemon uses is exactly what the
//! publisher signed.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::format::{
    CatalogEntry, CatalogFile, MAX_CATALOG_BYTES, MAX_ICON_BYTES, MAX_MANIFEST_BYTES, catalog_path,
    signature_path,
};

/// Why a catalog, or one of its files, is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The public key given for a catalog is not a minisign public key.
    #[error(
        "not a minisign public key ({reason}): give the `RW…` line of the publisher's `.pub` file"
    )]
    Key { reason: String },

    /// A catalog file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },

    /// A file is larger than a catalog may carry.
    #[error("{} is larger than {limit} bytes: refusing it", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    /// The signature file is not a minisign signature.
    #[error("{} is not a minisign signature ({reason}): sign the catalog again", path.display())]
    SignatureFormat { path: PathBuf, reason: String },

    /// The catalog was signed with another key than the node trusts.
    #[error(
        "{} was signed with key {signed_with}, but this node trusts key {trusted} for this catalog: refusing it (was the catalog re-signed by someone else, or the key changed?)",
        path.display()
    )]
    WrongKey {
        path: PathBuf,
        signed_with: String,
        trusted: String,
    },

    /// The signature does not verify: the catalog changed after signing.
    #[error(
        "the signature of {} does not verify with key {key}: the catalog was changed after it was signed; refusing it",
        path.display()
    )]
    BadSignature { path: PathBuf, key: String },

    /// The signed catalog itself is malformed.
    #[error("{} is signed but not a valid catalog: {}", path.display(), problems.join("; "))]
    Format {
        path: PathBuf,
        problems: Vec<String>,
    },

    /// A manifest or icon differs from the digest the signed catalog gives.
    #[error(
        "{} has SHA-256 {actual}, but the signed catalog says {expected}: the file was changed after the catalog was signed; refusing it",
        path.display()
    )]
    Digest {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// An icon is not a PNG image.
    #[error("{} is not a PNG image: icons must be PNG", path.display())]
    NotPng { path: PathBuf },
}

/// A catalog publisher's public key, as a node trusts it.
#[derive(Clone)]
pub struct TrustedKey {
    key: minisign_verify::PublicKey,
    id: [u8; 8],
    base64: String,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl TrustedKey {
    /// Reads a minisign public key: the whole `.pub` file (comment line and
    /// key line) or only its `RW…` key line.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| CatalogError::Key {
                reason: "no key line".into(),
            })?;
        let key = minisign_verify::PublicKey::from_base64(line).map_err(|e| CatalogError::Key {
            reason: e.to_string(),
        })?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|e| CatalogError::Key {
                reason: e.to_string(),
            })?;
        let mut id = [0u8; 8];
        id.copy_from_slice(raw.get(2..10).ok_or_else(|| CatalogError::Key {
            reason: "too short".into(),
        })?);
        Ok(Self {
            key,
            id,
            base64: line.to_owned(),
        })
    }

    /// The key id as minisign prints it (16 hex digits).
    pub fn id(&self) -> String {
        key_id_text(self.id)
    }

    /// The `RW…` key line.
    pub fn to_base64(&self) -> &str {
        &self.base64
    }
}

fn key_id_text(id: [u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(id))
}

/// A catalog whose signature verified.
#[derive(Debug, Clone)]
pub struct SignedCatalog {
    root: PathBuf,
    file: CatalogFile,
    trusted_comment: String,
}

impl SignedCatalog {
    /// Reads `<root>/catalog/catalog.json` and its signature, checks the
    /// signature with `key`, then parses and checks the catalog.
    pub fn open(root: &Path, key: &TrustedKey) -> Result<Self, CatalogError> {
        let path = catalog_path(root);
        let sig_path = signature_path(root);
        let bytes = read_limited(&path, MAX_CATALOG_BYTES)?;
        let sig_bytes = read_limited(&sig_path, 64 * 1024)?;
        let sig_text = String::from_utf8_lossy(&sig_bytes);
        let signature = minisign_verify::Signature::decode(&sig_text).map_err(|e| {
            CatalogError::SignatureFormat {
                path: sig_path.clone(),
                reason: e.to_string(),
            }
        })?;
        if let Some(signed_with) = signature_key_id(&sig_text)
            && signed_with != key.id
        {
            return Err(CatalogError::WrongKey {
                path,
                signed_with: key_id_text(signed_with),
                trusted: key.id(),
            });
        }
        key.key
            .verify(&bytes, &signature, false)
            .map_err(|_| CatalogError::BadSignature {
                path: path.clone(),
                key: key.id(),
            })?;
        let file: CatalogFile =
            serde_json::from_slice(&bytes).map_err(|e| CatalogError::Format {
                path: path.clone(),
                problems: vec![e.to_string()],
            })?;
        let problems = file.problems();
        if !problems.is_empty() {
            return Err(CatalogError::Format { path, problems });
        }
        Ok(Self {
            root: root.to_owned(),
            file,
            trusted_comment: signature.trusted_comment().to_owned(),
        })
    }

    /// The catalog's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The verified catalog.
    pub fn file(&self) -> &CatalogFile {
        &self.file
    }

    /// The signature's trusted comment (signing time and publisher note).
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// The entry of app `id`.
    pub fn entry(&self, id: &str) -> Option<&CatalogEntry> {
        self.file.apps.iter().find(|a| a.id == id)
    }

    /// Where an entry's manifest is.
    pub fn manifest_path(&self, entry: &CatalogEntry) -> PathBuf {
        self.root.join(&entry.manifest)
    }

    /// The entry's manifest, read once and checked against the signed
    /// digest: use these bytes, never the file again.
    pub fn manifest(&self, entry: &CatalogEntry) -> Result<Vec<u8>, CatalogError> {
        let path = self.manifest_path(entry);
        let bytes = read_limited(&path, MAX_MANIFEST_BYTES)?;
        check_digest(&path, &bytes, &entry.manifest_sha256)?;
        Ok(bytes)
    }

    /// The entry's icon, checked against the signed digest and for being a
    /// PNG; `None` when the entry has none.
    pub fn icon(&self, entry: &CatalogEntry) -> Result<Option<Vec<u8>>, CatalogError> {
        let (Some(icon), Some(digest)) = (&entry.icon, &entry.icon_sha256) else {
            return Ok(None);
        };
        let path = self.root.join(icon);
        let bytes = read_limited(&path, MAX_ICON_BYTES)?;
        check_digest(&path, &bytes, digest)?;
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(CatalogError::NotPng { path });
        }
        Ok(Some(bytes))
    }
}

/// The key id a minisign signature names, read from its second line.
fn signature_key_id(text: &str) -> Option<[u8; 8]> {
    let line = text.lines().nth(1)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    raw.get(2..10)?.try_into().ok()
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_digest(path: &Path, bytes: &[u8], expected: &str) -> Result<(), CatalogError> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(CatalogError::Digest {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// Reads at most `limit` bytes; a longer file is refused, not truncated.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, CatalogError> {
    let read_err = |e: std::io::Error| CatalogError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(CatalogError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}
