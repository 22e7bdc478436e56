//! The node's TLS identity: a self-signed certificate made at first start
//! and kept, so that its fingerprint — what clients pin when they pair —
//! stays the same across restarts.
//!
//! There is no certificate authority for a box at home: a client trusts a
//! node because the person pairing them compared the SHA-256 fingerprint the
//! node prints (`archipelagod pairing`) with the one the client shows. The
//! key and certificate live in [`Layout::tls_dir`] as PEM (`key.pem`,
//! `cert.pem`), mode 0600 in a 0700 folder, each written atomically. A
//! missing, unreadable-as-PEM or mismatched half makes a new pair, with a
//! warning: clients must then pair again, as the fingerprint changed. An
//! I/O error other than "not found" is reported, never answered by a new
//! identity.
//!
//! Crypto is rustls with the *ring* provider only, set explicitly (no
//! process-wide default provider, no aws-lc-rs).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use archipelago_api::rpc::format_fingerprint;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::fsutil::{self, FsError};
use crate::layout::Layout;

/// The private key, PKCS#8 PEM.
pub const KEY_FILE: &str = "key.pem";
/// The self-signed certificate, PEM.
pub const CERT_FILE: &str = "cert.pem";

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("cannot generate the node's TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot set up TLS with the node's certificate: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The node's certificate, its fingerprint and the TLS server settings
/// built from them.
pub struct TlsIdentity {
    cert_path: PathBuf,
    cert: CertificateDer<'static>,
    sha256: [u8; 32],
    config: Arc<ServerConfig>,
}

/// Shows the certificate's place and fingerprint, never the key.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_path", &self.cert_path)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// What was found on disk.
enum Found {
    Usable(TlsIdentity),
    /// Neither file exists: the first start.
    Nothing,
    /// One half missing, unparseable, or the halves do not belong together.
    Damaged(String),
}

impl TlsIdentity {
    /// Loads the node's identity, making a new one when there is none or it
    /// is damaged.
    pub fn load_or_create(layout: &Layout) -> Result<Self, TlsError> {
        let dir = layout.tls_dir();
        fsutil::ensure_dir(&layout.config_dir, DIR_MODE)?;
        fsutil::ensure_dir(&dir, DIR_MODE)?;
        fsutil::remove_stale_temps(&dir)?;
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        match load(&key_path, &cert_path)? {
            Found::Usable(identity) => return Ok(identity),
            Found::Nothing => tracing::info!(
                dir = %dir.display(),
                "no TLS certificate yet: generating the node's self-signed certificate"
            ),
            Found::Damaged(problem) => tracing::warn!(
                dir = %dir.display(),
                %problem,
                "the node's TLS key or certificate is missing or damaged: generating a new \
                 pair; its fingerprint changes, so clients must pair again"
            ),
        }
        let identity = generate(&key_path, &cert_path)?;
        tracing::info!(fingerprint = %identity.fingerprint(), "new TLS certificate");
        Ok(identity)
    }

    /// The certificate's SHA-256 fingerprint as people compare it
    /// (`ab:cd:…`, see [`format_fingerprint`]).
    pub fn fingerprint(&self) -> String {
        format_fingerprint(&self.sha256)
    }

    /// The fingerprint's 32 bytes.
    pub fn fingerprint_bytes(&self) -> [u8; 32] {
        self.sha256
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        self.cert.as_ref()
    }

    /// The TLS server settings: TLS 1.3 and 1.2, the ring provider, ALPN
    /// `http/1.1`, no client certificates.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }
}

/// The crypto provider every TLS object of the API is built with.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load(key_path: &Path, cert_path: &Path) -> Result<Found, TlsError> {
    let key_pem = fsutil::read_optional(key_path)?;
    let cert_pem = fsutil::read_optional(cert_path)?;
    let (key_pem, cert_pem) = match (key_pem, cert_pem) {
        (None, None) => return Ok(Found::Nothing),
        (None, Some(_)) => return Ok(Found::Damaged(format!("{} is missing", key_path.display()))),
        (Some(_), None) => {
            return Ok(Found::Damaged(format!(
                "{} is missing",
                cert_path.display()
            )));
        }
        (Some(k), Some(c)) => (k, c),
    };
    let Ok(key) = PrivateKeyDer::from_pem_slice(&key_pem) else {
        return Ok(Found::Damaged(format!(
            "{} holds no private key",
            key_path.display()
        )));
    };
    let Ok(cert) = CertificateDer::from_pem_slice(&cert_pem) else {
        return Ok(Found::Damaged(format!(
            "{} holds no certificate",
            cert_path.display()
        )));
    };
    // Building the server settings checks that the key is usable and
    // belongs to the certificate.
    let config = match server_config(cert.clone(), key) {
        Ok(config) => config,
        Err(e) => {
            return Ok(Found::Damaged(format!(
                "key and certificate do not fit: {e}"
            )));
        }
    };
    tighten_mode(key_path)?;
    Ok(Found::Usable(TlsIdentity {
        cert_path: cert_path.to_owned(),
        sha256: Sha256::digest(cert.as_ref()).into(),
        cert,
        config,
    }))
}

/// A key file someone made readable to others is put back to 0600.
fn tighten_mode(key_path: &Path) -> Result<(), FsError> {
    let meta = std::fs::metadata(key_path).map_err(|e| FsError::new("stat", key_path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %key_path.display(),
            "TLS key was readable by others: setting mode 0600"
        );
        std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| FsError::new("chmod", key_path, e))?;
    }
    Ok(())
}

fn generate(key_path: &Path, cert_path: &Path) -> Result<TlsIdentity, TlsError> {
    // Only a plain DNS name goes into the certificate (others would make
    // generation fail and the daemon not start).
    let host = super::host::hostname().filter(|h| {
        h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    // Clients pin the fingerprint and do not check names; the names only
    // help a person reading the certificate.
    let mut names = vec!["localhost".to_owned()];
    names.extend(host.clone());
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Archipelago node {}", host.as_deref().unwrap_or("")).trim_end(),
    );
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    // Key first: a crash between the two writes leaves a key that does not
    // fit the old certificate, which the next start repairs.
    fsutil::atomic_write(key_path, key.serialize_pem().as_bytes(), FILE_MODE)?;
    fsutil::atomic_write(cert_path, cert.pem().as_bytes(), FILE_MODE)?;
    let der = cert.der().clone();
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| rustls::Error::General(format!("generated key: {e}")))?;
    let config = server_config(der.clone(), key_der)?;
    Ok(TlsIdentity {
        cert_path: cert_path.to_owned(),
        sha256: Sha256::digest(der.as_ref()).into(),
        cert: der,
        config,
    })
}

fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        (dir, layout)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let (_dir, layout) = layout();
        let first = TlsIdentity::load_or_create(&layout).unwrap();
        let again = TlsIdentity::load_or_create(&layout).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 95);
        let tls = layout.tls_dir();
        assert_eq!(mode(&tls.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&tls.join(CERT_FILE)), 0o600);
        assert_eq!(mode(&tls), 0o700);
        assert_eq!(mode(&layout.config_dir), 0o700);
        assert_eq!(
            first.server_config().alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_damaged_or_missing_half_makes_a_new_pair() {
        let (_dir, layout) = layout();
        let tls = layout.tls_dir();
        let mut seen = vec![TlsIdentity::load_or_create(&layout).unwrap().fingerprint()];
        for damage in [
            |d: &Path| std::fs::remove_file(d.join(KEY_FILE)).unwrap(),
            |d: &Path| std::fs::remove_file(d.join(CERT_FILE)).unwrap(),
            |d: &Path| std::fs::write(d.join(KEY_FILE), "not pem").unwrap(),
            |d: &Path| std::fs::write(d.join(CERT_FILE), "-----BEGIN CERTIFICATE-----\n").unwrap(),
        ] {
            damage(&tls);
            let fp = TlsIdentity::load_or_create(&layout).unwrap().fingerprint();
            assert!(!seen.contains(&fp));
            seen.push(fp);
        }
    }

    #[test]
    fn a_key_of_another_certificate_makes_a_new_pair() {
        let (_dir, layout) = layout();
        let (_other_dir, other) = self::layout();
        let first = TlsIdentity::load_or_create(&layout).unwrap().fingerprint();
        TlsIdentity::load_or_create(&other).unwrap();
        std::fs::copy(
            other.tls_dir().join(KEY_FILE),
            layout.tls_dir().join(KEY_FILE),
        )
        .unwrap();
        let second = TlsIdentity::load_or_create(&layout).unwrap().fingerprint();
        assert_ne!(first, second);
        assert_eq!(
            TlsIdentity::load_or_create(&layout).unwrap().fingerprint(),
            second
        );
    }

    #[test]
    fn a_key_readable_by_others_is_tightened() {
        let (_dir, layout) = layout();
        TlsIdentity::load_or_create(&layout).unwrap();
        let key = layout.tls_dir().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        TlsIdentity::load_or_create(&layout).unwrap();
        assert_eq!(mode(&key), 0o600);
    }

    #[test]
    fn debug_shows_the_fingerprint_not_the_key() {
        let (_dir, layout) = layout();
        let id = TlsIdentity::load_or_create(&layout).unwrap();
        let text = format!("{id:?}");
        assert!(text.contains(&id.fingerprint()));
        let key = std::fs::read_to_string(layout.tls_dir().join(KEY_FILE)).unwrap();
        let body: String = key.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!text.contains(&body));
    }
}
