//! Archipelago's app catalogs, trusted by signature.
//!
//! A catalog is a folder laid out like this repository:
//!
//! ```text
//! <root>/catalog/catalog.json          the list of apps (CatalogFile)
//! <root>/catalog/catalog.json.minisig  minisign signature of catalog.json
//! <root>/apps/<id>/manifest.yml        manifests, named with their SHA-256
//! <root>/icons/<id>.png                icons (PNG, at most 64 KiB), same
//! ```
//!
//! The signature covers `catalog.json`, which names every manifest and icon
//! with its SHA-256: one signature vouches for the whole catalog, the way an
//! apt `Release` file does. A node trusts a catalog only through
//! [`SignedCatalog::open`], which checks the signature against the key the
//! node was given, and hands out a manifest or icon only after its digest
//! matched. Signing (feature `sign`) is for the release tooling and tests.

mod format;
#[cfg(feature = "sign")]
pub mod sign;
mod verify;

pub use format::{
    CATALOG_FILE, CatalogEntry, CatalogFile, FORMAT, MAX_CATALOG_BYTES, MAX_ICON_BYTES,
    MAX_MANIFEST_BYTES, SIGNATURE_FILE, catalog_path, signature_path,
};
pub use verify::{CatalogError, SignedCatalog, TrustedKey, sha256_hex};
