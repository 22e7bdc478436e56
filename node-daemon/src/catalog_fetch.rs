//! Community catalogs published on the web: fetched into a cache folder on
//! the node and trusted exactly as a local catalog is, signature first and
//! then each file's digest. The transport is not what protects them (plain
//! `http://` is accepted, as apt accepts it): a catalog that fails its
//! signature or a digest is thrown away and the previous copy kept.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use archipelago_catalog::{
    CATALOG_FILE, CatalogError, MAX_CATALOG_BYTES, MAX_ICON_BYTES, MAX_MANIFEST_BYTES,
    SIGNATURE_FILE, SignedCatalog, TrustedKey,
};

use crate::fsutil::{self, FsError};

/// Why a catalog could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("cannot fetch {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than {limit} bytes: refusing it")]
    TooLarge { url: String, limit: u64 },
    #[error("the fetched catalog is not trusted: {0}")]
    Untrusted(#[from] CatalogError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Whether a catalog location is a web address rather than a folder.
pub fn is_url(location: &str) -> bool {
    location.starts_with("https://") || location.starts_with("http://")
}

/// An HTTP client for catalogs: the system's CA certificates for
/// `https://`, 30 s per request, at most 5 redirects.
fn client() -> Result<reqwest::Client, FetchError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the store cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Http {
            url: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| FetchError::Http {
            url: String::new(),
            reason: e.to_string(),
        })
}

/// GETs `url`, refusing bodies over `limit` bytes.
async fn get(client: &reqwest::Client, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let http = |e: reqwest::Error| FetchError::Http {
        url: url.to_owned(),
        reason: e.to_string(),
    };
    let mut response = client.get(url).send().await.map_err(http)?;
    if !response.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
    }
    Ok(body)
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), FsError> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FsError::new("create directory", dir, e))?;
    }
    fsutil::atomic_write(&path, bytes, 0o644)
}

/// Fetches the catalog at `base` into `dest`, replacing what was there only
/// once the new copy verified with `key`. Returns the number of apps.
pub async fn fetch(base: &str, key: &TrustedKey, dest: &Path) -> Result<usize, FetchError> {
    let client = client()?;
    let staging = dest.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = async {
        let catalog = get(&client, &join(base, CATALOG_FILE), MAX_CATALOG_BYTES).await?;
        let signature = get(&client, &join(base, SIGNATURE_FILE), 64 * 1024).await?;
        write(&staging, CATALOG_FILE, &catalog)?;
        write(&staging, SIGNATURE_FILE, &signature)?;
        // The signature before any file it names is fetched.
        let signed = SignedCatalog::open(&staging, key)?;
        for entry in &signed.file().apps {
            let manifest = get(&client, &join(base, &entry.manifest), MAX_MANIFEST_BYTES).await?;
            write(&staging, &entry.manifest, &manifest)?;
            signed.manifest(entry)?;
            if let Some(icon) = &entry.icon {
                let bytes = get(&client, &join(base, icon), MAX_ICON_BYTES).await?;
                write(&staging, icon, &bytes)?;
                signed.icon(entry)?;
            }
        }
        Ok::<usize, FetchError>(signed.file().apps.len())
    }
    .await;
    match result {
        Ok(apps) => {
            let old = dest.with_extension(format!("old-{}", std::process::id()));
            if dest.exists() {
                std::fs::rename(dest, &old).map_err(|e| FsError::new("rename", dest, e))?;
            }
            std::fs::rename(&staging, dest).map_err(|e| FsError::new("rename", &staging, e))?;
            let _ = std::fs::remove_dir_all(&old);
            Ok(apps)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}
