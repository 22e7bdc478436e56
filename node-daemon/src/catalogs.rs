//! The catalogs a node installs apps from: the official one, shipped with
//! the daemon and checked against the key compiled into it, and community
//! catalogs its owner added with their own keys (`archipelagod catalog
//! add`). Every catalog is opened through its signature
//! ([`archipelago_catalog::SignedCatalog`]): nothing unsigned reaches the
//! installer, and each app says which catalog it came from.

use std::path::{Path, PathBuf};

use archipelago_catalog::{CatalogEntry, CatalogError, SignedCatalog, TrustedKey};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};
use crate::layout::Layout;

/// The official catalog's name, as apps show it.
pub const OFFICIAL_NAME: &str = "archipelago";

/// The official catalog's public key (minisign), shipped in the daemon.
pub const OFFICIAL_KEY: &str = include_str!("../../catalog/archipelago.pub");

/// Why the catalog configuration could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogsError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{}: {reason}: fix or remove the file", path.display())]
    Config { path: PathBuf, reason: String },
    #[error(
        "`{0}` is not a catalog name: use lowercase letters, digits and single dashes, starting with a letter, at most 40 characters"
    )]
    Name(String),
    #[error("`{0}` is the official catalog's name: choose another")]
    Reserved(String),
    #[error("a catalog named `{0}` is already configured: remove it first to change it")]
    Duplicate(String),
    #[error("no catalog named `{0}` is configured (`archipelagod catalog list` shows them)")]
    Unknown(String),
    #[error(
        "`{0}`: a catalog's location is an absolute path to a folder laid out like the Archipelago repository (catalog/catalog.json, apps/, icons/), or the http(s):// address of such a folder"
    )]
    Location(String),
    #[error("the catalog's key: {0}")]
    Key(CatalogError),
    #[error("the catalog does not verify: {0}")]
    Untrusted(CatalogError),
}

/// `~/.config/archipelago/catalogs.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogsConfig {
    #[serde(default)]
    pub catalogs: Vec<CommunityCatalog>,
}

/// A catalog the node's owner added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityCatalog {
    /// Short name apps are shown with.
    pub name: String,
    /// Absolute path of the catalog's folder, or its `https://` address
    /// (fetched into the node's cache: `archipelagod catalog refresh`).
    pub location: String,
    /// The publisher's minisign public key (`RW…`).
    pub public_key: String,
}

impl CatalogsConfig {
    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, CatalogsError> {
        let Some(bytes) = fsutil::read_optional(path)? else {
            return Ok(Self::default());
        };
        serde_json::from_slice(&bytes).map_err(|e| CatalogsError::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Writes the file atomically (0600: it says what the node trusts).
    pub fn save(&self, path: &Path) -> Result<(), CatalogsError> {
        if let Some(dir) = path.parent() {
            fsutil::ensure_dir(dir, 0o700)?;
        }
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| CatalogsError::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        Ok(fsutil::atomic_write(path, &text, 0o600)?)
    }

    /// Adds a catalog after checking its name, location and key, and that
    /// it verifies with that key now (a web catalog must have been fetched
    /// into the cache first: [`crate::catalog_fetch::fetch`]).
    pub fn add(
        &mut self,
        catalog: CommunityCatalog,
        layout: &Layout,
    ) -> Result<SignedCatalog, CatalogsError> {
        if !crate::manifest::is_valid_app_id(&catalog.name) {
            return Err(CatalogsError::Name(catalog.name));
        }
        if catalog.name == OFFICIAL_NAME {
            return Err(CatalogsError::Reserved(catalog.name));
        }
        if self.catalogs.iter().any(|c| c.name == catalog.name) {
            return Err(CatalogsError::Duplicate(catalog.name));
        }
        let root = root_of(layout, &catalog.name, &catalog.location)?;
        let key = TrustedKey::parse(&catalog.public_key).map_err(CatalogsError::Key)?;
        let opened = SignedCatalog::open(&root, &key).map_err(CatalogsError::Untrusted)?;
        self.catalogs.push(CommunityCatalog {
            public_key: key.to_base64().to_owned(),
            ..catalog
        });
        Ok(opened)
    }

    /// Removes a catalog. Apps installed from it stay installed.
    pub fn remove(&mut self, name: &str) -> Result<(), CatalogsError> {
        let before = self.catalogs.len();
        self.catalogs.retain(|c| c.name != name);
        if self.catalogs.len() == before {
            return Err(CatalogsError::Unknown(name.to_owned()));
        }
        Ok(())
    }
}

/// Where a catalog's files are read from: its folder, or the cache folder
/// of a web catalog.
pub fn root_of(layout: &Layout, name: &str, location: &str) -> Result<PathBuf, CatalogsError> {
    if crate::catalog_fetch::is_url(location) {
        return if location
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            Err(CatalogsError::Location(location.to_owned()))
        } else {
            Ok(layout.catalog_cache_dir.join(name))
        };
    }
    let path = Path::new(location);
    if path.is_absolute()
        && !location.chars().any(char::is_control)
        && path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
    {
        Ok(path.to_owned())
    } else {
        Err(CatalogsError::Location(location.to_owned()))
    }
}

/// One catalog as the node uses it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub location: String,
    pub official: bool,
    /// The key the catalog must be signed with (`None` when the configured
    /// key itself is unusable: the source is then refused).
    pub key: Option<TrustedKey>,
    /// The catalog, or why it was refused.
    pub catalog: Result<SignedCatalog, String>,
}

impl Source {
    fn open(layout: &Layout, name: &str, location: &str, official: bool, key: &str) -> Self {
        let key = TrustedKey::parse(key);
        let catalog = match (&key, root_of(layout, name, location)) {
            (Ok(k), Ok(root)) => SignedCatalog::open(&root, k).map_err(|e| e.to_string()),
            (Err(e), _) => Err(format!("its public key is unusable: {e}")),
            (_, Err(e)) => Err(e.to_string()),
        };
        Self {
            name: name.to_owned(),
            location: location.to_owned(),
            official,
            key: key.ok(),
            catalog,
        }
    }

    /// The minisign key id, or empty when the key is unusable.
    pub fn key_id(&self) -> String {
        self.key.as_ref().map(TrustedKey::id).unwrap_or_default()
    }
}

/// Every catalog of the node, official first, each opened and verified
/// now. A configuration that cannot be read leaves only the official one,
/// plus a refused pseudo-source saying why.
pub fn open_all(layout: &Layout) -> Vec<Source> {
    let mut out = vec![Source::open(
        layout,
        OFFICIAL_NAME,
        &layout.official_catalog.to_string_lossy(),
        true,
        OFFICIAL_KEY,
    )];
    let config_path = layout.catalogs_config();
    match CatalogsConfig::load(&config_path) {
        Ok(config) => out.extend(
            config
                .catalogs
                .iter()
                .map(|c| Source::open(layout, &c.name, &c.location, false, &c.public_key)),
        ),
        Err(e) => out.push(Source {
            name: "community".into(),
            location: config_path.to_string_lossy().into_owned(),
            official: false,
            key: None,
            catalog: Err(e.to_string()),
        }),
    }
    out
}

/// Where an app was found.
#[derive(Debug)]
pub struct Found<'a> {
    pub source: &'a Source,
    pub catalog: &'a SignedCatalog,
    pub entry: &'a CatalogEntry,
}

/// The app `id` from the first verified catalog that has it.
pub fn find<'a>(sources: &'a [Source], id: &str) -> Option<Found<'a>> {
    sources.iter().find_map(|source| {
        let catalog = source.catalog.as_ref().ok()?;
        let entry = catalog.entry(id)?;
        Some(Found {
            source,
            catalog,
            entry,
        })
    })
}

/// The refused catalogs, one line each, for errors about an app that no
/// verified catalog has.
pub fn refusals(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter_map(|s| {
            s.catalog
                .as_ref()
                .err()
                .map(|e| format!("catalog `{}` was refused: {e}", s.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_shipped_official_key_parses() {
        let key = TrustedKey::parse(OFFICIAL_KEY).unwrap();
        assert_eq!(key.id().len(), 16);
        assert!(OFFICIAL_KEY.contains(&key.id()), "{OFFICIAL_KEY}");
    }

    #[test]
    fn bad_names_locations_and_keys_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        let mut c = CatalogsConfig::default();
        let entry = |name: &str, location: &str, key: &str| CommunityCatalog {
            name: name.into(),
            location: location.into(),
            public_key: key.into(),
        };
        let key = OFFICIAL_KEY;
        assert!(matches!(
            c.add(entry("Bad Name", "/srv/x", key), &layout),
            Err(CatalogsError::Name(_))
        ));
        assert!(matches!(
            c.add(entry(OFFICIAL_NAME, "/srv/x", key), &layout),
            Err(CatalogsError::Reserved(_))
        ));
        assert!(matches!(
            c.add(entry("mine", "relative/dir", key), &layout),
            Err(CatalogsError::Location(_))
        ));
        assert!(matches!(
            c.add(entry("mine", "/srv/../etc", key), &layout),
            Err(CatalogsError::Location(_))
        ));
        assert!(matches!(
            c.add(entry("mine", "/srv/x", "RWnot-a-key"), &layout),
            Err(CatalogsError::Key(_))
        ));
        assert!(matches!(
            c.add(entry("mine", "/nonexistent/catalog", key), &layout),
            Err(CatalogsError::Untrusted(_))
        ));
        assert!(matches!(
            c.add(entry("mine", "https://example.org/a b", key), &layout),
            Err(CatalogsError::Location(_))
        ));
        // A web catalog not fetched yet has nothing in the cache to verify.
        assert!(matches!(
            c.add(entry("mine", "https://example.org/catalog", key), &layout),
            Err(CatalogsError::Untrusted(_))
        ));
        assert!(c.catalogs.is_empty());
        assert!(matches!(c.remove("mine"), Err(CatalogsError::Unknown(_))));
    }

    #[test]
    fn an_unreadable_configuration_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            official_catalog: dir.path().join("official"),
            ..Layout::under_home(dir.path())
        };
        std::fs::create_dir_all(&layout.config_dir).unwrap();
        std::fs::write(layout.catalogs_config(), "{\"catalogs\": 3}").unwrap();
        let sources = open_all(&layout);
        assert_eq!(sources.len(), 2);
        assert!(sources[0].official);
        let refused = refusals(&sources);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[1].contains("catalogs.json"), "{refused:?}");
    }
}
