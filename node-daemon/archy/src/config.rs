//! What archy remembers between runs, in `$XDG_CONFIG_HOME/archy/` (or
//! `~/.config/archy/`, or `--config-dir`):
//!
//! - `nodes.json`: the paired nodes in pairing order — name, address and the
//!   pinned certificate fingerprint (the trust decision the user made, so it
//!   is written atomically and only by `pair`/`forget`);
//! - `sessions/<node>`: each node's session token and its expiry.
//!
//! Files are 0600 in folders archy makes 0700 (`sessions/` always), and
//! every write goes to a temporary file that is synced and renamed over the
//! old one, so a crash leaves the old file or the new one, never half.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use archipelago_api::methods::Session;
use archipelago_api::rpc::{format_fingerprint, parse_fingerprint};
use serde::{Deserialize, Serialize};

/// A configuration problem, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find a configuration folder: neither XDG_CONFIG_HOME nor HOME is set (use --config-dir)"
    )]
    NoHome,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not valid: {reason} (fix or remove it)")]
    Invalid { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One paired node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// SHA-256 of the node's certificate, in the colon-separated hex form.
    #[serde(with = "fingerprint_text")]
    pub fingerprint: [u8; 32],
}

/// The contents of `nodes.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nodes {
    /// In pairing order; the first is the default node.
    pub nodes: Vec<NodeEntry>,
}

impl Nodes {
    pub fn get(&self, name: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Adds `entry`, or replaces the node of the same name in its place.
    pub fn upsert(&mut self, entry: NodeEntry) {
        match self.nodes.iter_mut().find(|n| n.name == entry.name) {
            Some(slot) => *slot = entry,
            None => self.nodes.push(entry),
        }
    }

    /// Removes a node; false when there was none of that name.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| n.name != name);
        self.nodes.len() != before
    }
}

mod fingerprint_text {
    use super::{format_fingerprint, parse_fingerprint};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(fp: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_fingerprint(fp))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        parse_fingerprint(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a fingerprint")))
    }
}

/// Whether `name` can name a node: it becomes a file name under
/// `sessions/`, so letters, digits, `.`, `_`, `-`, starting with a letter or
/// digit, at most 64 characters.
pub fn valid_node_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A name for a node from its host: the host with anything a name cannot
/// hold turned into `-`.
pub fn name_from_host(host: &str) -> String {
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = name.chars().take(64).collect();
    if name.is_empty() {
        "node".to_owned()
    } else {
        name
    }
}

/// The configuration folder.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `explicit`, else `$XDG_CONFIG_HOME/archy`, else `$HOME/.config/archy`.
    pub fn locate(explicit: Option<PathBuf>) -> Result<Self, ConfigError> {
        if let Some(root) = explicit {
            return Ok(Self::new(root));
        }
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        if let Some(xdg) = absolute("XDG_CONFIG_HOME") {
            return Ok(Self::new(xdg.join("archy")));
        }
        absolute("HOME")
            .map(|home| Self::new(home.join(".config").join("archy")))
            .ok_or(ConfigError::NoHome)
    }

    #[cfg(test)]
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn nodes_path(&self) -> PathBuf {
        self.root.join("nodes.json")
    }

    fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    /// The session file of a node (its name is checked by the caller).
    pub fn session_path(&self, node: &str) -> PathBuf {
        self.sessions_dir().join(node)
    }

    /// The paired nodes; none when `nodes.json` does not exist yet.
    pub fn load_nodes(&self) -> Result<Nodes, ConfigError> {
        let path = self.nodes_path();
        let Some(text) = read_if_exists(&path)? else {
            return Ok(Nodes::default());
        };
        let nodes: Nodes = serde_json::from_slice(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some(bad) = nodes.nodes.iter().find(|n| !valid_node_name(&n.name)) {
            return Err(ConfigError::Invalid {
                path,
                reason: format!("`{}` is not a node name", bad.name),
            });
        }
        Ok(nodes)
    }

    pub fn save_nodes(&self, nodes: &Nodes) -> Result<(), ConfigError> {
        let mut text = serde_json::to_vec_pretty(nodes).map_err(|e| ConfigError::Invalid {
            path: self.nodes_path(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        create_dir(&self.root, false)?;
        write_private(&self.nodes_path(), &text)
    }

    /// A node's stored session, if any.
    pub fn load_session(&self, node: &str) -> Result<Option<Session>, ConfigError> {
        let path = self.session_path(node);
        let Some(text) = read_if_exists(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                path,
                reason: e.to_string(),
            })
    }

    pub fn save_session(&self, node: &str, session: &Session) -> Result<(), ConfigError> {
        let path = self.session_path(node);
        let text = serde_json::to_vec(session).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        create_dir(&self.root, false)?;
        create_dir(&self.sessions_dir(), true)?;
        write_private(&path, &text)
    }

    /// Forgets a node's session; false when there was none.
    pub fn remove_session(&self, node: &str) -> Result<bool, ConfigError> {
        let path = self.session_path(node);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&path)(e)),
        }
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Creates a folder (and its parents) as 0700; with `enforce`, also makes
/// an existing one 0700. An existing configuration root chosen by the user
/// keeps its mode.
fn create_dir(path: &Path, enforce: bool) -> Result<(), ConfigError> {
    let existed = path.is_dir();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error(path))?;
    if enforce || !existed {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_error(path))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: a new 0600 file beside it,
/// synced, renamed over the old one, then the folder synced.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover of a crashed run with the same process id.
    let _ = fs::remove_file(&tmp);
    let written = replace_with(&tmp, path, dir, bytes);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io_error(path))
}

fn replace_with(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // The mode given at creation is masked by the umask; make it exact.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entry(name: &str, byte: u8) -> NodeEntry {
        NodeEntry {
            name: name.into(),
            address: format!("{name}.local:7443"),
            fingerprint: [byte; 32],
        }
    }

    #[test]
    fn nodes_round_trip_in_pairing_order_as_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("archy"));
        assert_eq!(dir.load_nodes().unwrap(), Nodes::default());
        let mut nodes = Nodes::default();
        nodes.upsert(entry("zeta", 1));
        nodes.upsert(entry("alpha", 2));
        dir.save_nodes(&nodes).unwrap();
        let back = dir.load_nodes().unwrap();
        assert_eq!(back, nodes);
        assert_eq!(back.nodes[0].name, "zeta");
        assert_eq!(mode(&dir.nodes_path()), 0o600);
        assert_eq!(mode(dir.root()), 0o700);
        let text = fs::read_to_string(dir.nodes_path()).unwrap();
        assert!(text.contains("\"fingerprint\": \"01:01:01:"), "{text}");
    }

    #[test]
    fn upsert_replaces_in_place_and_remove_says_whether_it_removed() {
        let mut nodes = Nodes::default();
        nodes.upsert(entry("a", 1));
        nodes.upsert(entry("b", 2));
        nodes.upsert(entry("a", 3));
        assert_eq!(nodes.nodes.len(), 2);
        assert_eq!(nodes.nodes[0].fingerprint, [3; 32]);
        assert!(nodes.remove("a"));
        assert!(!nodes.remove("a"));
        assert_eq!(nodes.nodes[0].name, "b");
    }

    #[test]
    fn sessions_are_0600_files_in_a_0700_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("archy"));
        assert!(dir.load_session("home").unwrap().is_none());
        let session = Session {
            token: "tok".into(),
            expires_at: 42,
        };
        dir.save_session("home", &session).unwrap();
        assert_eq!(dir.load_session("home").unwrap(), Some(session));
        assert_eq!(mode(&dir.session_path("home")), 0o600);
        assert_eq!(mode(&tmp.path().join("archy/sessions")), 0o700);
        assert!(dir.remove_session("home").unwrap());
        assert!(!dir.remove_session("home").unwrap());
    }

    #[test]
    fn a_loose_sessions_folder_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_owned());
        fs::create_dir(tmp.path().join("sessions")).unwrap();
        fs::set_permissions(
            tmp.path().join("sessions"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let session = Session {
            token: "tok".into(),
            expires_at: 1,
        };
        dir.save_session("n", &session).unwrap();
        assert_eq!(mode(&tmp.path().join("sessions")), 0o700);
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        // A reader holding the old file keeps seeing the old contents: the
        // new file is a new inode, renamed over the old name.
        let old = File::open(&path).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            io::read_to_string(old).unwrap(),
            "old",
            "the write was not a rename"
        );
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "old").unwrap();
        // Renaming a file over a non-empty folder fails.
        let blocked = tmp.path().join("d");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), "").unwrap();
        assert!(write_private(&blocked, b"new").is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            2,
            "temporary left"
        );
    }

    #[test]
    fn a_corrupt_nodes_file_is_reported_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_owned());
        fs::write(dir.nodes_path(), "{not json").unwrap();
        let err = dir.load_nodes().unwrap_err();
        assert!(err.to_string().contains("nodes.json is not valid"), "{err}");
        fs::write(
            dir.nodes_path(),
            r#"{"nodes":[{"name":"../x","address":"a:1","fingerprint":"00"}]}"#,
        )
        .unwrap();
        assert!(dir.load_nodes().is_err());
    }

    #[test]
    fn node_names_are_safe_file_names() {
        for good in ["home", "node-1", "10.0.0.5", "a_b.c"] {
            assert!(valid_node_name(good), "{good}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
        assert_eq!(name_from_host("node.local"), "node.local");
        assert_eq!(name_from_host("fe80::1"), "fe80--1");
        assert_eq!(name_from_host("::1"), "1");
        assert!(valid_node_name(&name_from_host("::")));
    }

    #[test]
    fn the_folder_follows_xdg_then_home() {
        let explicit = ConfigDir::locate(Some(PathBuf::from("/x"))).unwrap();
        assert_eq!(explicit.root(), Path::new("/x"));
    }
}
