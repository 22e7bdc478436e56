//! The list of nodes the user added, in `nodes.json` in the app's
//! configuration folder: each node's id, name, address and the certificate
//! fingerprint the user confirmed when adding it — the trust decision, so
//! the file is private (0600 in a 0700 folder), written atomically, and a
//! fingerprint is never changed once stored: a node that presents another
//! certificate is refused until the user removes and re-adds it.
//!
//! A file that cannot be read is reported on every use and never replaced
//! by an empty list, so a damaged file does not silently forget pairings.
//! When each node last answered is kept too, written at most once a minute
//! (the overview asks every node every few seconds).

use std::fmt::Write as _;
use std::path::PathBuf;

use archipelago_api::rpc::{format_fingerprint, parse_fingerprint};
use archipelago_client::Address;
use serde::{Deserialize, Serialize};

use crate::error::{DesktopError, Kind};
use crate::files;

/// The name of the file in the configuration folder.
pub const FILE_NAME: &str = "nodes.json";
/// The longest node name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// How often "last seen" times alone are written to disk, at most.
const SEEN_WRITE_INTERVAL_SECS: u64 = 60;

/// One node as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// 16 hex digits, chosen when the node was added; the frontend and the
    /// token store know the node by it.
    pub id: String,
    /// Shown to people; defaults to the host.
    pub name: String,
    /// `host:port`, as [`Address`] writes it.
    pub address: String,
    /// SHA-256 of the node's certificate (colon-separated hex on disk).
    #[serde(with = "fingerprint_text")]
    pub fingerprint: [u8; 32],
    /// Unix seconds.
    pub added_at: u64,
    /// Unix seconds of the last successful call, if any.
    #[serde(default)]
    pub last_seen: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodesFile {
    /// Format version, 1.
    version: u32,
    /// In the order they were added.
    nodes: Vec<NodeRecord>,
}

/// The node list, loaded on first use.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    nodes: Option<Vec<NodeRecord>>,
    /// Last-seen times changed since the last write.
    seen_dirty: bool,
    /// When the file was last written (unix seconds).
    last_write: u64,
}

impl Registry {
    /// The registry kept in `dir`. Nothing is read until it is used.
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            nodes: None,
            seen_dirty: false,
            last_write: 0,
        }
    }

    /// The stored nodes, in the order they were added.
    pub fn list(&mut self) -> Result<Vec<NodeRecord>, DesktopError> {
        Ok(self.loaded()?.clone())
    }

    /// One node.
    pub fn get(&mut self, id: &str) -> Result<NodeRecord, DesktopError> {
        self.loaded()?
            .iter()
            .find(|n| n.id == id)
            .cloned()
            .ok_or_else(|| unknown(id))
    }

    /// Adds a node whose certificate the user confirmed. `name` defaults to
    /// the host. Refused when the address or the certificate is already in
    /// the list.
    pub fn add(
        &mut self,
        address: &Address,
        fingerprint: [u8; 32],
        name: Option<&str>,
        now: u64,
    ) -> Result<NodeRecord, DesktopError> {
        let name = match name.map(str::trim) {
            Some(n) if !n.is_empty() => check_name(n)?,
            _ => address.host().to_owned(),
        };
        let address = address.to_string();
        let nodes = self.loaded()?;
        if let Some(same) = nodes.iter().find(|n| n.address == address) {
            return Err(DesktopError::new(
                Kind::AlreadyAdded,
                format!("{address} is already in the list, as {}", same.name),
            ));
        }
        if let Some(same) = nodes.iter().find(|n| n.fingerprint == fingerprint) {
            return Err(DesktopError::new(
                Kind::AlreadyAdded,
                format!(
                    "this node is already in the list, as {} at {}: its certificate is the same",
                    same.name, same.address
                ),
            ));
        }
        let record = NodeRecord {
            id: new_id(nodes)?,
            name,
            address,
            fingerprint,
            added_at: now,
            last_seen: Some(now),
        };
        let mut next = nodes.clone();
        next.push(record.clone());
        self.save(next, now)?;
        Ok(record)
    }

    /// Removes a node; returns it.
    pub fn remove(&mut self, id: &str, now: u64) -> Result<NodeRecord, DesktopError> {
        let nodes = self.loaded()?;
        let Some(index) = nodes.iter().position(|n| n.id == id) else {
            return Err(unknown(id));
        };
        let mut next = nodes.clone();
        let removed = next.remove(index);
        self.save(next, now)?;
        Ok(removed)
    }

    /// Notes that a node answered at `now` (kept in memory; see
    /// [`Registry::flush_seen`]).
    pub fn touch(&mut self, id: &str, now: u64) {
        if let Some(node) = self
            .nodes
            .as_mut()
            .and_then(|nodes| nodes.iter_mut().find(|n| n.id == id))
            && node.last_seen.is_none_or(|t| t < now)
        {
            node.last_seen = Some(now);
            self.seen_dirty = true;
        }
    }

    /// Writes last-seen times when they changed and the file was not
    /// written in the last minute.
    pub fn flush_seen(&mut self, now: u64) -> Result<(), DesktopError> {
        if !self.seen_dirty || now.saturating_sub(self.last_write) < SEEN_WRITE_INTERVAL_SECS {
            return Ok(());
        }
        let nodes = self.loaded()?.clone();
        self.save(nodes, now)
    }

    fn loaded(&mut self) -> Result<&mut Vec<NodeRecord>, DesktopError> {
        if self.nodes.is_none() {
            self.nodes = Some(self.read()?);
        }
        self.nodes
            .as_mut()
            .ok_or_else(|| DesktopError::storage("the node list is not loaded"))
    }

    fn read(&self) -> Result<Vec<NodeRecord>, DesktopError> {
        let path = &self.path;
        let bytes = files::read_if_exists(path)
            .map_err(|e| DesktopError::storage(format!("cannot read {}: {e}", path.display())))?;
        let Some(bytes) = bytes else {
            return Ok(Vec::new());
        };
        let invalid = |why: String| {
            DesktopError::storage(format!(
                "{} is not valid: {why}; fix or remove it (it holds the added nodes)",
                path.display()
            ))
        };
        let file: NodesFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if file.version != 1 {
            return Err(invalid(format!("unknown version {}", file.version)));
        }
        for (i, node) in file.nodes.iter().enumerate() {
            if !valid_id(&node.id) {
                return Err(invalid(format!("`{}` is not a node id", node.id)));
            }
            if file.nodes[..i].iter().any(|n| n.id == node.id) {
                return Err(invalid(format!("node id {} appears twice", node.id)));
            }
            if Address::parse(&node.address).is_err() {
                return Err(invalid(format!("`{}` is not an address", node.address)));
            }
        }
        Ok(file.nodes)
    }

    /// Writes `nodes` and, once written, makes them the list.
    fn save(&mut self, nodes: Vec<NodeRecord>, now: u64) -> Result<(), DesktopError> {
        let file = NodesFile { version: 1, nodes };
        let mut text = serde_json::to_vec_pretty(&file).map_err(DesktopError::storage)?;
        text.push(b'\n');
        files::write_private(&self.path, &text).map_err(|e| {
            DesktopError::storage(format!("cannot write {}: {e}", self.path.display()))
        })?;
        self.nodes = Some(file.nodes);
        self.seen_dirty = false;
        self.last_write = now;
        Ok(())
    }
}

fn unknown(id: &str) -> DesktopError {
    DesktopError::new(
        Kind::UnknownNode,
        format!("no node with id {id} in the list (was it removed?)"),
    )
}

fn check_name(name: &str) -> Result<String, DesktopError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DesktopError::new(
            Kind::InvalidInput,
            format!("a node name has at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DesktopError::new(
            Kind::InvalidInput,
            "a node name cannot hold control characters",
        ));
    }
    Ok(name.to_owned())
}

fn valid_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn new_id(taken: &[NodeRecord]) -> Result<String, DesktopError> {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| DesktopError::storage(format!("no randomness for a node id: {e}")))?;
        let id = bytes.iter().fold(String::with_capacity(16), |mut id, b| {
            let _ = write!(id, "{b:02x}");
            id
        });
        if !taken.iter().any(|n| n.id == id) {
            return Ok(id);
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn addr(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    fn mode(path: &std::path::Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn nodes_persist_in_order_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("archipelago-desktop");
        let mut reg = Registry::new(&dir);
        assert!(reg.list().unwrap().is_empty());
        let a = reg.add(&addr("node-a.local"), [1; 32], None, 100).unwrap();
        let b = reg
            .add(&addr("10.0.0.2:8443"), [2; 32], Some("  Cellar  "), 101)
            .unwrap();
        assert_eq!(a.name, "node-a.local");
        assert_eq!(a.address, "node-a.local:7443");
        assert_eq!(b.name, "Cellar");
        assert_ne!(a.id, b.id);
        assert!(valid_id(&a.id));

        let mut again = Registry::new(&dir);
        assert_eq!(again.list().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(again.get(&b.id).unwrap(), b);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let text = fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        assert!(text.contains("\"fingerprint\": \"01:01:01:"), "{text}");

        assert_eq!(again.remove(&a.id, 102).unwrap(), a);
        assert!(again.get(&a.id).unwrap_err().is(Kind::UnknownNode));
        assert_eq!(Registry::new(&dir).list().unwrap(), vec![b]);
    }

    #[test]
    fn the_same_node_is_not_added_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path());
        reg.add(&addr("n.local"), [1; 32], None, 1).unwrap();
        let same_address = reg.add(&addr("N.local:7443"), [9; 32], None, 2);
        assert!(same_address.unwrap_err().is(Kind::AlreadyAdded));
        let same_cert = reg.add(&addr("other.local"), [1; 32], None, 2);
        assert!(same_cert.unwrap_err().is(Kind::AlreadyAdded));
        let long = "x".repeat(65);
        let bad_name = reg.add(&addr("third.local"), [3; 32], Some(&long), 2);
        assert!(bad_name.unwrap_err().is(Kind::InvalidInput));
        assert_eq!(reg.list().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_file_is_reported_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE_NAME);
        fs::write(&path, "{not json").unwrap();
        let mut reg = Registry::new(tmp.path());
        let err = reg.list().unwrap_err();
        assert!(err.is(Kind::Storage));
        assert!(err.message.contains("nodes.json is not valid"), "{err}");
        assert!(reg.add(&addr("n"), [1; 32], None, 1).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "{not json");
        // Fixed by hand: read again on the next use.
        fs::write(&path, r#"{"version":1,"nodes":[]}"#).unwrap();
        assert!(reg.list().unwrap().is_empty());
        fs::write(
            &path,
            r#"{"version":1,"nodes":[{"id":"../x","name":"n","address":"n:1","fingerprint":"00","added_at":0}]}"#,
        )
        .unwrap();
        assert!(Registry::new(tmp.path()).list().is_err());
    }

    #[test]
    fn last_seen_is_written_at_most_once_a_minute() {
        let tmp = tempfile::tempdir().unwrap();
        let mut reg = Registry::new(tmp.path());
        let n = reg.add(&addr("n"), [1; 32], None, 1_000).unwrap();
        reg.touch(&n.id, 1_030);
        reg.flush_seen(1_030).unwrap();
        assert_eq!(
            Registry::new(tmp.path()).get(&n.id).unwrap().last_seen,
            Some(1_000)
        );
        assert_eq!(reg.get(&n.id).unwrap().last_seen, Some(1_030));
        reg.flush_seen(1_061).unwrap();
        assert_eq!(
            Registry::new(tmp.path()).get(&n.id).unwrap().last_seen,
            Some(1_030)
        );
    }
}
