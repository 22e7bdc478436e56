//! Errors as they travel on the wire: a stable numeric code plus a message a
//! person can act on. Codes never change meaning once released; new ones are
//! appended.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable error codes. The numeric value is what clients match on; the name is
/// for logs and humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// A manifest failed to parse or failed validation.
    InvalidManifest,
    /// The node's state file could not be read or is corrupt.
    StateCorrupt,
    /// Writing or reading a file on the node failed.
    Io,
    /// A generated secret could not be created or repaired.
    Secret,
    /// The user's systemd manager refused or failed an operation.
    Systemd,
    /// podman's API refused or failed an operation.
    Podman,
    /// The app is not installed on this node.
    AppNotInstalled,
    /// An app this app depends on is not installed.
    MissingDependency,
    /// Two apps want the same host port.
    PortConflict,
}

impl ErrorCode {
    /// The number sent on the wire (JSON-RPC `error.code`). Application codes
    /// live in the JSON-RPC server-error range reserved for implementations.
    pub const fn as_i32(self) -> i32 {
        match self {
            Self::InvalidManifest => -32010,
            Self::StateCorrupt => -32011,
            Self::Io => -32012,
            Self::Secret => -32013,
            Self::Systemd => -32014,
            Self::Podman => -32015,
            Self::AppNotInstalled => -32016,
            Self::MissingDependency => -32017,
            Self::PortConflict => -32018,
        }
    }

    /// Every code, for documentation and for tests that check uniqueness.
    pub const ALL: [Self; 9] = [
        Self::InvalidManifest,
        Self::StateCorrupt,
        Self::Io,
        Self::Secret,
        Self::Systemd,
        Self::Podman,
        Self::AppNotInstalled,
        Self::MissingDependency,
        Self::PortConflict,
    ];
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code.as_i32())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_in_the_server_range() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let n = code.as_i32();
            assert!((-32099..=-32000).contains(&n), "{code:?} = {n}");
            assert!(seen.insert(n), "{code:?} reuses {n}");
        }
    }

    #[test]
    fn error_serialises_with_a_readable_code() {
        let e = ApiError {
            code: ErrorCode::PortConflict,
            message: "port 8080 is taken by hello-web".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"code":"port_conflict","message":"port 8080 is taken by hello-web"}"#
        );
    }
}
