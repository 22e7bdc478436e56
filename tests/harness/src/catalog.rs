//! The fixture apps as a community catalog, published the way any catalog
//! publisher would: manifests in `apps/<id>/`, `catalog/catalog.json`
//! signed with a throwaway key made for the run, copied onto a node and
//! added there with `archipelagod catalog add`. Nodes verify it like any
//! other catalog; nothing reaches them unsigned.

use std::path::{Path, PathBuf};

use archipelago_catalog::sign::{SigningKey, sign_catalog, write_catalog};
use archipelago_catalog::{CatalogEntry, CatalogFile, FORMAT};

use crate::cmd::{HarnessError, Result};
use crate::node::SERVICE_HOME;
use crate::node::{Node, RunAs};

/// The name the fixture catalog is added under on nodes.
pub const FIXTURE_CATALOG: &str = "fixtures";

/// A catalog being put together on the host.
#[derive(Debug)]
pub struct TestCatalog {
    root: PathBuf,
    key: SigningKey,
    public: String,
    apps: Vec<(String, String)>,
}

fn other(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Other(e.to_string())
}

impl TestCatalog {
    /// An empty catalog in `root` (created), with a new throwaway key.
    pub fn new(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)?;
        let pair = SigningKey::generate("throwaway test catalog key").map_err(other)?;
        Ok(Self {
            root: root.to_owned(),
            key: SigningKey::parse(&pair.secret).map_err(other)?,
            public: pair.public,
            apps: Vec::new(),
        })
    }

    /// The catalog's folder on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The public key file's text.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// Adds (or replaces) an app with this manifest text.
    pub fn add(&mut self, id: &str, yaml: &str) {
        self.apps.retain(|(a, _)| a != id);
        self.apps.push((id.to_owned(), yaml.to_owned()));
    }

    /// Writes the manifests and `catalog.json`, and signs it.
    pub fn sign(&self) -> Result<()> {
        let mut file = CatalogFile {
            format: FORMAT,
            apps: Vec::new(),
        };
        for (id, yaml) in &self.apps {
            let manifest = format!("apps/{id}/manifest.yml");
            let path = self.root.join(&manifest);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, yaml)?;
            file.apps.push(CatalogEntry {
                id: id.clone(),
                name: id.clone(),
                short_description: format!("{id}, a fixture app of the test suite"),
                description: format!("{id}: built by the harness from tests/fixtures."),
                category: "developer".into(),
                icon: None,
                icon_sha256: None,
                version: yaml
                    .lines()
                    .find_map(|l| l.strip_prefix("version: "))
                    .unwrap_or("1")
                    .trim()
                    .to_owned(),
                manifest,
                manifest_sha256: String::new(),
                upstream: Vec::new(),
            });
        }
        write_catalog(&self.root, &file).map_err(other)?;
        sign_catalog(&self.root, &self.key, "Archipelago test fixtures").map_err(other)
    }

    /// Signs, copies the catalog onto `node` (owned by the service user)
    /// and, the first time, adds it there under `name` with its public key.
    pub fn publish<N: Node + ?Sized>(&self, node: &N, name: &str) -> Result<String> {
        self.sign()?;
        publish_dir(node, &self.root, name, &self.public)
    }
}

/// Copies the catalog folder `root` onto `node` (owned by the service user)
/// and, unless a catalog of this name is configured already, adds it there
/// with `archipelagod catalog add NAME PATH --key KEY`. Returns where it is
/// on the node.
pub fn publish_dir<N: Node + ?Sized>(
    node: &N,
    root: &Path,
    name: &str,
    public_key: &str,
) -> Result<String> {
    let dest = node_location(name);
    copy_tree(node, root, root, &dest)?;
    let configured = node.exec(RunAs::ServiceUser, &["archipelagod", "catalog", "list"])?;
    if !configured
        .stdout
        .lines()
        .any(|l| l.starts_with(&format!("{name}\t")))
    {
        let key_line = public_key
            .lines()
            .find(|l| l.starts_with("RW"))
            .unwrap_or_default();
        let out = node.exec(
            RunAs::ServiceUser,
            &[
                "archipelagod",
                "catalog",
                "add",
                name,
                &dest,
                "--key",
                key_line,
            ],
        )?;
        if !out.success() {
            return Err(HarnessError::Other(format!(
                "archipelagod catalog add {name} failed: {}{}",
                out.stdout, out.stderr
            )));
        }
    }
    Ok(dest)
}

/// Where a published catalog lives on a node.
pub fn node_location(name: &str) -> String {
    format!("{SERVICE_HOME}/community/{name}")
}

fn copy_tree<N: Node + ?Sized>(node: &N, base: &Path, dir: &Path, dest: &str) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            copy_tree(node, base, &path, dest)?;
        } else {
            let rel = path.strip_prefix(base).map_err(other)?;
            node.copy_in(
                &std::fs::read(&path)?,
                &format!("{dest}/{}", rel.display()),
                RunAs::ServiceUser,
                0o644,
            )?;
        }
    }
    Ok(())
}
