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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
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
    /// The request carries no session token, or one that expired or was
    /// logged out: log in again.
    Unauthenticated,
    /// The password is wrong.
    LoginFailed,
    /// Too many failed logins from this client: wait before trying again.
    TooManyAttempts,
    /// An install did not reach healthy; everything it did was undone.
    InstallFailed,
    /// The app is already installed.
    AlreadyInstalled,
    /// The node's catalog has no app with this id.
    NotInCatalog,
    /// Installed apps depend on this app: remove them first.
    HasDependants,
    /// The request body is larger than the node accepts.
    RequestTooLarge,
    /// The node is serving as many connections as it allows.
    Busy,
    /// A catalog's signature does not verify with its public key, or a
    /// manifest or icon differs from what the signed catalog says: refused.
    CatalogUntrusted,
    /// An update did not get healthy: the previous version (units, images,
    /// data) was put back and runs again; the message says why.
    UpdateRolledBack,
    /// A backup could not be made (no space, unreadable data); the app runs
    /// as before and no partial archive was left.
    BackupFailed,
    /// A restore failed; what it did was undone.
    RestoreFailed,
    /// The passphrase or key does not open this backup.
    BadPassphrase,
    /// The backup file is damaged or not an Archipelago backup: nothing on
    /// the node was changed.
    BackupCorrupt,
    /// No backup of this name.
    BackupNotFound,
    /// The body is not JSON (JSON-RPC's parse error).
    ParseError,
    /// The JSON is not a JSON-RPC 2.0 request object.
    InvalidRequest,
    /// No method of this name.
    MethodNotFound,
    /// The parameters do not fit the method.
    InvalidParams,
    /// A fault inside the node; its log says more.
    Internal,
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
            Self::Unauthenticated => -32019,
            Self::LoginFailed => -32020,
            Self::TooManyAttempts => -32021,
            Self::InstallFailed => -32022,
            Self::AlreadyInstalled => -32023,
            Self::NotInCatalog => -32024,
            Self::HasDependants => -32025,
            Self::RequestTooLarge => -32026,
            Self::Busy => -32027,
            Self::CatalogUntrusted => -32028,
            Self::UpdateRolledBack => -32029,
            Self::BackupFailed => -32030,
            Self::RestoreFailed => -32031,
            Self::BadPassphrase => -32032,
            Self::BackupCorrupt => -32033,
            Self::BackupNotFound => -32034,
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal => -32603,
        }
    }

    /// The code with this number, if any.
    pub fn from_i32(n: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_i32() == n)
    }

    /// An error with this code.
    pub fn with(self, message: impl Into<String>) -> ApiError {
        ApiError {
            code: self,
            message: message.into(),
        }
    }

    /// Every code, for documentation and for tests that check uniqueness.
    pub const ALL: [Self; 30] = [
        Self::InvalidManifest,
        Self::StateCorrupt,
        Self::Io,
        Self::Secret,
        Self::Systemd,
        Self::Podman,
        Self::AppNotInstalled,
        Self::MissingDependency,
        Self::PortConflict,
        Self::Unauthenticated,
        Self::LoginFailed,
        Self::TooManyAttempts,
        Self::InstallFailed,
        Self::AlreadyInstalled,
        Self::NotInCatalog,
        Self::HasDependants,
        Self::RequestTooLarge,
        Self::Busy,
        Self::CatalogUntrusted,
        Self::UpdateRolledBack,
        Self::BackupFailed,
        Self::RestoreFailed,
        Self::BadPassphrase,
        Self::BackupCorrupt,
        Self::BackupNotFound,
        Self::ParseError,
        Self::InvalidRequest,
        Self::MethodNotFound,
        Self::InvalidParams,
        Self::Internal,
    ];
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
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
            let standard = (-32700..=-32600).contains(&n);
            assert!(standard || (-32099..=-32000).contains(&n), "{code:?} = {n}");
            assert_eq!(ErrorCode::from_i32(n), Some(code));
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
