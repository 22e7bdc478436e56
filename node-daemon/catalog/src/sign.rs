//! Making and signing catalogs: key generation, refreshing the digests
//! `catalog.json` gives for its manifests and icons, and the signature. Used
//! by `release/sign-catalog.sh` (through the `archipelago-catalog` tool) and
//! by tests with throwaway keys; never by the daemon.

use std::io::Cursor;
use std::path::Path;

use crate::format::{CatalogFile, catalog_path, signature_path};
use crate::verify::sha256_hex;

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} is not a catalog file: {reason}")]
    Catalog { path: String, reason: String },
    #[error("the secret key is not an unencrypted minisign secret key: {0}")]
    Key(String),
    #[error("minisign: {0}")]
    Minisign(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SignError + '_ {
    move |e| SignError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// A catalog publisher's secret key. Its text never appears in `Debug`.
pub struct SigningKey {
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

/// A new key pair as file texts: (secret key, public key).
pub struct GeneratedKey {
    pub secret: String,
    pub public: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new unencrypted key pair (it is kept by whoever runs the release,
    /// outside the repository).
    pub fn generate(comment: &str) -> Result<GeneratedKey, SignError> {
        let pair = minisign::KeyPair::generate_unencrypted_keypair()
            .map_err(|e| SignError::Minisign(e.to_string()))?;
        let secret = pair
            .sk
            .to_box(Some(comment))
            .map_err(|e| SignError::Minisign(e.to_string()))?
            .into_string();
        let public = pair
            .pk
            .to_box()
            .map_err(|e| SignError::Minisign(e.to_string()))?
            .into_string();
        Ok(GeneratedKey { secret, public })
    }

    /// Reads an unencrypted minisign secret key file's text.
    pub fn parse(text: &str) -> Result<Self, SignError> {
        let sk = minisign::SecretKeyBox::from_string(text)
            .and_then(minisign::SecretKeyBox::into_unencrypted_secret_key)
            .map_err(|e| SignError::Key(e.to_string()))?;
        let pk =
            minisign::PublicKey::from_secret_key(&sk).map_err(|e| SignError::Key(e.to_string()))?;
        Ok(Self { sk, pk })
    }

    /// The public key's `RW…` line.
    pub fn public_base64(&self) -> String {
        self.pk.to_base64()
    }

    /// A minisign signature (prehashed) of `data`.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Result<String, SignError> {
        minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(data),
            Some(trusted_comment),
            Some("signature of an Archipelago catalog"),
        )
        .map(minisign::SignatureBox::into_string)
        .map_err(|e| SignError::Minisign(e.to_string()))
    }
}

/// Sets every entry's `manifest_sha256` and `icon_sha256` from the files
/// under `root` and writes `catalog.json` back (pretty, stable order).
/// Returns the ids whose digests changed.
pub fn refresh_digests(root: &Path) -> Result<Vec<String>, SignError> {
    let path = catalog_path(root);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let mut file: CatalogFile = serde_json::from_slice(&text).map_err(|e| SignError::Catalog {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut changed = Vec::new();
    for app in &mut file.apps {
        let manifest = root.join(&app.manifest);
        let digest = sha256_hex(&std::fs::read(&manifest).map_err(io(&manifest))?);
        let icon_digest = match &app.icon {
            Some(icon) => {
                let icon = root.join(icon);
                Some(sha256_hex(&std::fs::read(&icon).map_err(io(&icon))?))
            }
            None => None,
        };
        if app.manifest_sha256 != digest || app.icon_sha256 != icon_digest {
            changed.push(app.id.clone());
        }
        app.manifest_sha256 = digest;
        app.icon_sha256 = icon_digest;
    }
    let problems = file.problems();
    if !problems.is_empty() {
        return Err(SignError::Catalog {
            path: path.display().to_string(),
            reason: problems.join("; "),
        });
    }
    write_catalog(root, &file)?;
    Ok(changed)
}

/// Writes `catalog.json` under `root` as the release tooling formats it.
pub fn write_catalog(root: &Path, file: &CatalogFile) -> Result<(), SignError> {
    let path = catalog_path(root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut out = serde_json::to_vec_pretty(file).map_err(|e| SignError::Catalog {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    out.push(b'\n');
    std::fs::write(&path, out).map_err(io(&path))
}

/// Refreshes the digests and writes `catalog.json.minisig` next to the
/// catalog.
pub fn sign_catalog(root: &Path, key: &SigningKey, trusted_comment: &str) -> Result<(), SignError> {
    refresh_digests(root)?;
    let path = catalog_path(root);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let signature = key.sign(&bytes, trusted_comment)?;
    let sig_path = signature_path(root);
    std::fs::write(&sig_path, signature).map_err(io(&sig_path))
}
