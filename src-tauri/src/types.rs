//! The desktop's own shapes the frontend receives (the node API's types
//! come from `archipelago-api` as they are). With the `ts` feature each
//! derives its TypeScript twin into `frontend/src/bindings/`, so the
//! frontend never writes one by hand.

use archipelago_api::methods::NodeInfoResult;
use serde::{Deserialize, Serialize};

use crate::error::DesktopError;

/// A node in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NodeEntry {
    /// Stable id the commands take (`nodeId`).
    pub id: String,
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// The pinned certificate fingerprint, colon-separated lowercase hex.
    pub fingerprint: String,
    /// Whether a session token (not expired) is stored for it.
    pub logged_in: bool,
    /// Unix seconds of the last successful call, if any.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_seen: Option<u64>,
}

/// What a node presented when probed: shown to the user to compare with
/// what the node itself shows (`archipelagod pairing`), not trusted yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct ProbeResult {
    /// The address as the app will use it (`host:port`).
    pub address: String,
    /// SHA-256 of the node's certificate, colon-separated lowercase hex.
    pub fingerprint: String,
}

/// One node's state at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct NodeOverview {
    pub node: NodeEntry,
    /// The node answered (even if only to say "log in first").
    pub reachable: bool,
    /// Version, resources and app counts, when logged in and reachable.
    pub info: Option<NodeInfoResult>,
    /// Why `info` is missing: `unreachable`, `timeout`,
    /// `fingerprint_mismatch`, `not_logged_in`, …
    pub error: Option<DesktopError>,
}

/// How far a backup file's copy between this computer and a node got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct TransferProgress {
    /// Bytes copied so far.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub done: u64,
    /// Size of the whole file.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub total: u64,
}
