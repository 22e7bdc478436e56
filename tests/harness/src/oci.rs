//! OCI image layouts written directly, without a registry, a container
//! engine or root: one uncompressed layer made from a list of files, a
//! config, a manifest and an index, as the OCI image-layout spec lays them
//! out (`oci-layout`, `index.json`, `blobs/sha256/…`).
//!
//! The layer is deterministic: entries sorted by path, every parent folder
//! present as its own entry, owner 0:0, mtime 0, no user or group names. The
//! same files and config therefore always give the same manifest digest, so
//! tests can pin images by digest before any registry has seen them.
//!
//! Limits: one layer per image, regular files, folders and symbolic links
//! only (no hard links, devices or extended attributes), one image per
//! layout folder, one writer per layout folder at a time. The layer stays uncompressed
//! (`application/vnd.oci.image.layer.v1.tar`): push it with
//! `skopeo copy --preserve-digests` so that skopeo does not gzip it on the
//! way, which would change the manifest digest.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that names a manifest's tag in `index.json`
/// (what `oci:DIR:TAG` looks up).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The creation time written into every config: the epoch, for determinism.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// What an entry of the image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file with the contents of this host file (symbolic links
    /// on the host are followed).
    HostFile(PathBuf),
    /// A regular file with these bytes.
    Bytes(Vec<u8>),
    /// A symbolic link to this target (relative targets are relative to the
    /// link's folder, as usual).
    Symlink(String),
    /// A folder. Parents of other entries are added on their own (mode
    /// 0755); list a folder only to give it another mode or to have it
    /// empty.
    Dir,
}

/// One path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path in the image, such as `/bin/busybox`.
    pub path: String,
    /// Permission bits (`0o755`); ignored for symbolic links (always 0777).
    pub mode: u32,
    pub content: Content,
}

impl Entry {
    /// A copy of the host file `host` at `path`.
    pub fn file(host: impl Into<PathBuf>, path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            content: Content::HostFile(host.into()),
        }
    }

    /// A file holding `contents` at `path`.
    pub fn bytes(path: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            content: Content::Bytes(contents.into()),
        }
    }

    /// A symbolic link at `path` pointing to `target`.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            mode: 0o777,
            content: Content::Symlink(target.into()),
        }
    }

    /// A folder at `path`.
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            content: Content::Dir,
        }
    }
}

/// How a container of the image runs unless told otherwise (the `config`
/// object of the OCI image config). Empty fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Such as `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub working_dir: Option<String>,
}

/// Why an image could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("image entry `{path}`: {reason}")]
    Entry { path: String, reason: String },
    #[error(
        "`{0}` is not a valid tag: use letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)"
    )]
    Tag(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "{0} is neither empty nor an OCI layout (no `oci-layout` file): refusing to write an image into it"
    )]
    NotALayout(PathBuf),
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
}

fn entry_err(path: &str, reason: impl Into<String>) -> OciError {
    OciError::Entry {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A node of the image's file tree, keyed by its path without the leading `/`.
#[derive(Debug)]
struct Node<'a> {
    mode: u32,
    content: NodeContent<'a>,
    /// Listed by the caller (not only a parent added on our own).
    explicit: bool,
}

#[derive(Debug)]
enum NodeContent<'a> {
    File(&'a Content),
    Symlink(&'a str),
    Dir,
}

/// The relative form of an absolute, normalised image path.
fn relative_path(path: &str) -> Result<&str, OciError> {
    let rel = path
        .strip_prefix('/')
        .ok_or_else(|| entry_err(path, "must be an absolute path"))?;
    if rel.is_empty() {
        return Err(entry_err(path, "the root folder is always there"));
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(entry_err(
            path,
            "must be normalised: no empty, `.` or `..` components, no trailing `/`",
        ));
    }
    if path.contains('\0') {
        return Err(entry_err(path, "must not contain NUL"));
    }
    Ok(rel)
}

/// Sorts the entries into a tree with every parent folder present.
fn tree(entries: &[Entry]) -> Result<BTreeMap<&str, Node<'_>>, OciError> {
    let mut tree: BTreeMap<&str, Node<'_>> = BTreeMap::new();
    for e in entries {
        let rel = relative_path(&e.path)?;
        if e.mode > 0o7777 {
            return Err(entry_err(
                &e.path,
                format!("mode {:o} is not a mode", e.mode),
            ));
        }
        // Parents: `a`, `a/b` for `a/b/c`.
        for (i, _) in rel.match_indices('/') {
            let parent = &rel[..i];
            match tree.get(parent) {
                Some(Node {
                    content: NodeContent::Dir,
                    ..
                }) => {}
                Some(_) => {
                    return Err(entry_err(
                        &e.path,
                        format!("its parent /{parent} is not a folder"),
                    ));
                }
                None => {
                    tree.insert(
                        parent,
                        Node {
                            mode: 0o755,
                            content: NodeContent::Dir,
                            explicit: false,
                        },
                    );
                }
            }
        }
        let (content, mode) = match &e.content {
            Content::HostFile(_) | Content::Bytes(_) => (NodeContent::File(&e.content), e.mode),
            Content::Symlink(target) => {
                if target.is_empty() || target.contains('\0') {
                    return Err(entry_err(
                        &e.path,
                        "a link target must be non-empty, without NUL",
                    ));
                }
                (NodeContent::Symlink(target), 0o777)
            }
            Content::Dir => (NodeContent::Dir, e.mode),
        };
        match tree.get_mut(rel) {
            None => {
                tree.insert(
                    rel,
                    Node {
                        mode,
                        content,
                        explicit: true,
                    },
                );
            }
            // A folder first added as someone's parent, now listed itself.
            Some(node)
                if !node.explicit
                    && matches!(node.content, NodeContent::Dir)
                    && matches!(content, NodeContent::Dir) =>
            {
                node.mode = mode;
                node.explicit = true;
            }
            Some(node) if !node.explicit => {
                return Err(entry_err(
                    &e.path,
                    "is a folder (other entries are inside it), not a file or link",
                ));
            }
            Some(_) => return Err(entry_err(&e.path, "is listed twice")),
        }
    }
    Ok(tree)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// The layer: a deterministic, uncompressed tar of `entries`.
pub fn layer_tar(entries: &[Entry]) -> Result<Vec<u8>, OciError> {
    let tree = tree(entries)?;
    let mut tar = tar::Builder::new(Vec::new());
    let werr = |path: &str, source: io::Error| OciError::Entry {
        path: format!("/{path}"),
        reason: format!("cannot add it to the layer: {source}"),
    };
    for (path, node) in &tree {
        match &node.content {
            NodeContent::Dir => {
                let mut h = header(tar::EntryType::Directory, node.mode, 0);
                tar.append_data(&mut h, format!("{path}/"), io::empty())
                    .map_err(|e| werr(path, e))?;
            }
            NodeContent::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, path, target)
                    .map_err(|e| werr(path, e))?;
            }
            NodeContent::File(content) => {
                let data = match content {
                    Content::HostFile(host) => fs::read(host).map_err(|source| OciError::Read {
                        path: host.clone(),
                        source,
                    })?,
                    Content::Bytes(b) => b.clone(),
                    Content::Symlink(_) | Content::Dir => Vec::new(),
                };
                let mut h = header(tar::EntryType::Regular, node.mode, data.len() as u64);
                tar.append_data(&mut h, path, data.as_slice())
                    .map_err(|e| werr(path, e))?;
            }
        }
    }
    tar.into_inner().map_err(|e| werr("", e))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

impl Descriptor {
    fn of(media_type: &'static str, bytes: &[u8]) -> Self {
        Self {
            media_type,
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ConfigFile<'a> {
    created: &'static str,
    architecture: &'static str,
    os: &'static str,
    config: RunConfig<'a>,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [String],
    /// `{"8080/tcp": {}}`: the spec's shape is a map to empty objects.
    #[allow(clippy::zero_sized_map_values)]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<&'a str, Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
}

/// Serialises as `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: &'static str,
}

/// The OCI name of the architecture this program runs on (the images hold
/// host binaries).
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn json(value: &impl Serialize) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Writes a single-layer image made of `entries` and `config` as an OCI
/// layout in `dir`, tagged `tag`, and returns its manifest digest
/// (`sha256:…`). `dir` is created if missing; if it already holds a layout,
/// that layout's image is replaced (its blobs no longer referenced are
/// removed); any other non-empty folder is refused.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    entries: &[Entry],
    config: &ImageConfig,
) -> Result<String, OciError> {
    if !is_valid_tag(tag) {
        return Err(OciError::Tag(tag.to_owned()));
    }
    let layer = layer_tar(entries)?;
    let layer_desc = Descriptor::of(LAYER_MEDIA_TYPE, &layer);
    let config_json = json(&ConfigFile {
        created: EPOCH,
        architecture: architecture(),
        os: "linux",
        config: RunConfig {
            entrypoint: &config.entrypoint,
            cmd: &config.cmd,
            env: &config.env,
            exposed_ports: config
                .exposed_ports
                .iter()
                .map(|p| (p.as_str(), Empty {}))
                .collect(),
            working_dir: config.working_dir.as_deref(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![layer_desc.digest.clone()],
        },
        history: vec![History {
            created: EPOCH,
            created_by: "archipelago-harness oci::write_layout",
        }],
    });
    let manifest_json = json(&Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: Descriptor::of(CONFIG_MEDIA_TYPE, &config_json),
        layers: vec![layer_desc],
    });
    let mut manifest_desc = Descriptor::of(MANIFEST_MEDIA_TYPE, &manifest_json);
    manifest_desc
        .annotations
        .insert(REF_NAME_ANNOTATION, tag.to_owned());
    let manifest_digest = manifest_desc.digest.clone();
    let index_json = json(&Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: vec![manifest_desc],
    });

    prepare_dir(dir)?;
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|source| OciError::Write {
        path: blobs.clone(),
        source,
    })?;
    let mut keep = Vec::new();
    for blob in [&layer, &config_json, &manifest_json] {
        let digest = sha256_digest(blob);
        let name = digest.trim_start_matches("sha256:").to_owned();
        write_atomically(&blobs.join(&name), blob)?;
        keep.push(name);
    }
    write_atomically(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomically(&dir.join("index.json"), &index_json)?;
    prune_blobs(&blobs, &keep)?;
    Ok(manifest_digest)
}

/// The layer blobs of the image tagged `tag` in the layout at `dir`, in
/// order (for unpacking an image without a container engine).
pub fn layer_blobs(dir: &Path, tag: &str) -> Result<Vec<PathBuf>, OciError> {
    let read_json = |path: PathBuf| -> Result<serde_json::Value, OciError> {
        let bytes = fs::read(&path).map_err(|source| OciError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| OciError::Layout {
            path,
            reason: format!("not JSON: {e}"),
        })
    };
    let blob = |digest: &serde_json::Value| -> Result<PathBuf, OciError> {
        let hex = digest
            .as_str()
            .and_then(|d| d.strip_prefix("sha256:"))
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| OciError::Layout {
                path: dir.to_owned(),
                reason: format!("`{digest}` is not a sha256 digest"),
            })?;
        Ok(dir.join("blobs/sha256").join(hex))
    };
    let index = read_json(dir.join("index.json"))?;
    let manifest = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME_ANNOTATION].as_str() == Some(tag))
        .ok_or_else(|| OciError::Layout {
            path: dir.join("index.json"),
            reason: format!("no image tagged `{tag}`"),
        })?;
    let manifest = read_json(blob(&manifest["digest"])?)?;
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| blob(&l["digest"]))
        .collect()
}

/// Makes sure `dir` exists and is empty or an OCI layout.
fn prepare_dir(dir: &Path) -> Result<(), OciError> {
    match fs::read_dir(dir) {
        Ok(mut it) => {
            if it.next().is_some() && !dir.join("oci-layout").is_file() {
                return Err(OciError::NotALayout(dir.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|source| OciError::Write {
                path: dir.to_owned(),
                source,
            })
        }
        Err(source) => Err(OciError::Read {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Removes blobs of an earlier image from the layout (only files named
/// like a sha256 digest).
fn prune_blobs(blobs: &Path, keep: &[String]) -> Result<(), OciError> {
    let rerr = |source| OciError::Read {
        path: blobs.to_owned(),
        source,
    };
    for entry in fs::read_dir(blobs).map_err(rerr)? {
        let entry = entry.map_err(rerr)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_blob = name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit());
        if is_blob && !keep.contains(&name) {
            fs::remove_file(entry.path()).map_err(|source| OciError::Write {
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so that a reader never
/// sees half a blob.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let werr = |source| OciError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, bytes).map_err(werr)?;
    fs::rename(&tmp, path).map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample(dir: &Path) -> Vec<Entry> {
        let host = dir.join("host-file");
        fs::write(&host, b"#!/bin/sh\necho hi\n").unwrap();
        vec![
            Entry::bytes("/www/index.html", "hello\n", 0o644),
            Entry::file(&host, "/usr/bin/hi", 0o755),
            Entry::symlink("/bin/sh", "busybox"),
            Entry::bytes("/bin/busybox", "not really busybox", 0o755),
            Entry::dir("/tmp", 0o1777),
            Entry::dir("/usr", 0o700),
        ]
    }

    fn config() -> ImageConfig {
        ImageConfig {
            cmd: vec!["hi".into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            exposed_ports: vec!["8080/tcp".into()],
            working_dir: Some("/www".into()),
            ..ImageConfig::default()
        }
    }

    /// (path, type, mode, uid, gid, mtime, link target) of every entry.
    fn listing(layer: &[u8]) -> Vec<(String, char, u32, u64, u64, u64, String)> {
        let mut ar = tar::Archive::new(layer);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    char::from(h.entry_type().as_byte()),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn layer_is_sorted_with_parents_and_no_owner_or_time() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layer_tar(&sample(dir.path())).unwrap();
        let l = listing(&layer);
        let paths: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/busybox",
                "bin/sh",
                "tmp/",
                "usr/",
                "usr/bin/",
                "usr/bin/hi",
                "www/",
                "www/index.html"
            ]
        );
        assert!(l.iter().all(|e| e.3 == 0 && e.4 == 0 && e.5 == 0), "{l:?}");
        let find = |p: &str| l.iter().find(|e| e.0 == p).unwrap();
        assert_eq!(find("bin/sh").1, '2');
        assert_eq!(find("bin/sh").6, "busybox");
        assert_eq!((find("tmp/").1, find("tmp/").2), ('5', 0o1777));
        assert_eq!(find("usr/").2, 0o700, "an explicit folder keeps its mode");
        assert_eq!(find("usr/bin/").2, 0o755, "an implicit parent is 0755");
        assert_eq!((find("usr/bin/hi").1, find("usr/bin/hi").2), ('0', 0o755));
        // Entry order given by the caller does not matter.
        let mut reversed = sample(dir.path());
        reversed.reverse();
        assert_eq!(layer_tar(&reversed).unwrap(), layer);
    }

    #[test]
    fn same_input_same_digest_and_any_change_shows() {
        let dir = tempfile::tempdir().unwrap();
        let entries = sample(dir.path());
        let a = write_layout(&dir.path().join("a"), "1.0.0", &entries, &config()).unwrap();
        let b = write_layout(&dir.path().join("b"), "1.0.0", &entries, &config()).unwrap();
        let again = write_layout(&dir.path().join("a"), "1.0.0", &entries, &config()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, again);
        assert!(a.starts_with("sha256:") && a.len() == 71, "{a}");

        // A changed host file.
        fs::write(dir.path().join("host-file"), b"changed").unwrap();
        let changed = write_layout(&dir.path().join("a"), "1.0.0", &entries, &config()).unwrap();
        assert_ne!(changed, a);
        // A changed mode.
        let mut moded = sample(dir.path());
        moded[0].mode = 0o600;
        let m = write_layout(&dir.path().join("c"), "1.0.0", &moded, &config()).unwrap();
        assert_ne!(m, a);
        // A changed config.
        let mut cfg = config();
        cfg.cmd = vec!["other".into()];
        let c = write_layout(&dir.path().join("d"), "1.0.0", &sample(dir.path()), &cfg).unwrap();
        assert_ne!(c, a);
    }

    #[test]
    fn rewriting_a_layout_keeps_only_the_new_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("img");
        let entries = sample(dir.path());
        write_layout(&out, "1.0.0", &entries, &config()).unwrap();
        fs::write(dir.path().join("host-file"), b"v2").unwrap();
        write_layout(&out, "2.0.0", &entries, &config()).unwrap();
        assert_eq!(fs::read_dir(out.join("blobs/sha256")).unwrap().count(), 3);
        let layers = layer_blobs(&out, "2.0.0").unwrap();
        assert_eq!(layers.len(), 1);
        let l = listing(&fs::read(&layers[0]).unwrap());
        assert!(l.iter().any(|e| e.0 == "usr/bin/hi"));
        assert!(matches!(
            layer_blobs(&out, "1.0.0"),
            Err(OciError::Layout { .. })
        ));
    }

    #[test]
    fn bad_entries_and_places_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = |entries: Vec<Entry>| layer_tar(&entries).unwrap_err().to_string();
        assert!(bad(vec![Entry::dir("tmp", 0o755)]).contains("absolute"));
        assert!(bad(vec![Entry::dir("/a/../b", 0o755)]).contains("normalised"));
        assert!(bad(vec![Entry::dir("/a/", 0o755)]).contains("normalised"));
        assert!(bad(vec![Entry::dir("/", 0o755)]).contains("root"));
        assert!(bad(vec![Entry::dir("/a", 0o17777)]).contains("not a mode"));
        assert!(
            bad(vec![
                Entry::bytes("/a", "", 0o644),
                Entry::bytes("/a", "", 0o644)
            ])
            .contains("twice")
        );
        assert!(
            bad(vec![
                Entry::bytes("/a", "", 0o644),
                Entry::bytes("/a/b", "", 0o644)
            ])
            .contains("not a folder")
        );
        assert!(
            bad(vec![
                Entry::bytes("/a/b", "", 0o644),
                Entry::symlink("/a", "x")
            ])
            .contains("is a folder")
        );
        assert!(bad(vec![Entry::file("/nonexistent/x", "/x", 0o644)]).contains("cannot read"));
        assert!(matches!(
            write_layout(dir.path(), "-bad", &[], &ImageConfig::default()),
            Err(OciError::Tag(_))
        ));
        // A folder with something else in it is not ours to write into.
        fs::write(dir.path().join("precious"), b"x").unwrap();
        assert!(matches!(
            write_layout(dir.path(), "1.0.0", &[], &ImageConfig::default()),
            Err(OciError::NotALayout(_))
        ));
        assert!(dir.path().join("precious").exists());
    }

    /// Debian 12's skopeo (`apt-get install -y skopeo`).
    fn skopeo() -> &'static str {
        let found = Command::new("skopeo").arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "skopeo is not installed: these tests check images with it (`apt-get install -y skopeo` on Debian 12)"
        );
        "skopeo"
    }

    #[test]
    fn skopeo_reads_the_layout_and_verifies_its_blobs() {
        let skopeo = skopeo();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("img");
        let digest = write_layout(&out, "1.0.0", &sample(dir.path()), &config()).unwrap();
        let image = format!("oci:{}:1.0.0", out.display());

        let inspect = Command::new(skopeo)
            .args(["inspect", &image])
            .output()
            .unwrap();
        assert!(
            inspect.status.success(),
            "skopeo inspect {image}: {}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(v["Digest"], digest);
        assert_eq!(v["Architecture"], architecture());
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Env"][0], "PATH=/usr/bin:/bin");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

        let cfg = Command::new(skopeo)
            .args(["inspect", "--config", &image])
            .output()
            .unwrap();
        let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
        assert_eq!(cfg["config"]["Cmd"][0], "hi");
        assert_eq!(cfg["config"]["WorkingDir"], "/www");
        assert!(cfg["config"]["ExposedPorts"]["8080/tcp"].is_object());

        // A copy reads every blob and checks it against its digest.
        let copy = dir.path().join("copy");
        let out = Command::new(skopeo)
            .args(["copy", "--quiet", &image])
            .arg(format!("dir:{}", copy.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
