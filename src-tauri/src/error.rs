//! Errors as the frontend gets them: `{code, message}`, where `code` is a
//! stable `snake_case` name the frontend may branch on and `message` is for
//! people ("node unreachable: last seen 3 min ago (connection refused)"),
//! never to be parsed.
//!
//! A node's API errors keep the name of their [`ErrorCode`]
//! (`unauthenticated`, `install_failed`, …); everything that goes wrong on
//! this side of the wire has a [`Kind`].

use std::time::Duration;

use archipelago_api::ErrorCode;
use archipelago_client::ClientError;
use serde::{Deserialize, Serialize};

/// An error of a command, as the frontend receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
#[error("{message}")]
pub struct DesktopError {
    /// A [`Kind`] or a node's [`ErrorCode`], in `snake_case`.
    pub code: String,
    /// What happened, for a person.
    pub message: String,
}

/// What went wrong on the desktop's side (a node's own errors keep their
/// [`ErrorCode`]). The names are part of the frontend contract: append,
/// never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The address is not one a node can have.
    InvalidAddress,
    /// The fingerprint is not 32 bytes of hex.
    InvalidFingerprint,
    /// The node presented another certificate than the pinned one (or, when
    /// adding, than the one the user confirmed). Nothing was sent.
    FingerprintMismatch,
    /// No connection could be made, or it broke.
    Unreachable,
    /// The node did not answer in time.
    Timeout,
    /// TLS failed for another reason than the certificate.
    Tls,
    /// The node answered something that is not the API.
    Protocol,
    /// No node with this id in the list.
    UnknownNode,
    /// The call needs a session: log in first.
    NotLoggedIn,
    /// The node list or the token store could not be read or written.
    Storage,
    /// The node (same address or same certificate) is already in the list.
    AlreadyAdded,
    /// An argument is out of range (a name too long, …).
    InvalidInput,
    /// The app has no web interface to open.
    NoUi,
    /// The browser could not be started.
    OpenFailed,
    /// A backup file on this computer could not be written or read (no
    /// downloads folder, no space, not in the backups folder).
    LocalFile,
}

impl Kind {
    /// The name the frontend sees.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidAddress => "invalid_address",
            Self::InvalidFingerprint => "invalid_fingerprint",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::UnknownNode => "unknown_node",
            Self::NotLoggedIn => "not_logged_in",
            Self::Storage => "storage",
            Self::AlreadyAdded => "already_added",
            Self::InvalidInput => "invalid_input",
            Self::NoUi => "no_ui",
            Self::OpenFailed => "open_failed",
            Self::LocalFile => "local_file",
        }
    }

    /// Every kind, for tests.
    pub const ALL: [Self; 15] = [
        Self::InvalidAddress,
        Self::InvalidFingerprint,
        Self::FingerprintMismatch,
        Self::Unreachable,
        Self::Timeout,
        Self::Tls,
        Self::Protocol,
        Self::UnknownNode,
        Self::NotLoggedIn,
        Self::Storage,
        Self::AlreadyAdded,
        Self::InvalidInput,
        Self::NoUi,
        Self::OpenFailed,
        Self::LocalFile,
    ];
}

impl DesktopError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            code: kind.as_str().to_owned(),
            message: message.into(),
        }
    }

    /// An error a node answered with.
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: api_code_name(code),
            message: message.into(),
        }
    }

    pub fn is(&self, kind: Kind) -> bool {
        self.code == kind.as_str()
    }

    pub fn is_api(&self, code: ErrorCode) -> bool {
        self.code == api_code_name(code)
    }

    /// A failed call to a node, with what is known of the node: when it
    /// last answered (unix seconds) and the time now.
    pub fn from_client(err: ClientError, last_seen: Option<u64>, now: u64) -> Self {
        let seen = seen_phrase(last_seen, now);
        match err {
            ClientError::InvalidAddress(e) => Self::new(Kind::InvalidAddress, e.to_string()),
            e @ ClientError::FingerprintMismatch { .. } => Self::new(
                Kind::FingerprintMismatch,
                format!(
                    "{e}. Only if you know the node was reinstalled, remove it and add it again with the fingerprint it shows now."
                ),
            ),
            ClientError::Unreachable { reason, .. } => Self::new(
                Kind::Unreachable,
                format!("node unreachable: {seen} ({reason})"),
            ),
            ClientError::Timeout { after, .. } => Self::timeout(after, last_seen, now),
            e @ ClientError::Tls { .. } => Self::new(Kind::Tls, e.to_string()),
            ClientError::Api(e) => Self::api(e.code, e.message),
            e @ ClientError::Io { .. } => Self::new(Kind::LocalFile, e.to_string()),
            // `Protocol`, and whatever a newer client adds.
            e => Self::new(Kind::Protocol, e.to_string()),
        }
    }

    /// A failed call to a node not (yet) in the list: probing or adding.
    pub fn from_unpaired(err: ClientError) -> Self {
        match err {
            e @ ClientError::Unreachable { .. } => Self::new(Kind::Unreachable, e.to_string()),
            e @ ClientError::Timeout { .. } => Self::new(Kind::Timeout, e.to_string()),
            e => Self::from_client(e, None, 0),
        }
    }

    /// The node did not answer within `after`.
    pub fn timeout(after: Duration, last_seen: Option<u64>, now: u64) -> Self {
        Self::new(
            Kind::Timeout,
            format!(
                "node unreachable: no answer within {}, {}",
                seconds(after),
                seen_phrase(last_seen, now)
            ),
        )
    }

    /// The node list or token store failed.
    pub fn storage(what: impl std::fmt::Display) -> Self {
        Self::new(Kind::Storage, what.to_string())
    }
}

/// The serde name of an API error code (`install_failed`).
pub fn api_code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".to_owned())
}

/// "3 s", "0.8 s".
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// "last seen 3 min ago", "never reached".
pub fn seen_phrase(last_seen: Option<u64>, now: u64) -> String {
    match last_seen {
        None => "never reached".to_owned(),
        Some(t) => format!("last seen {}", ago(now.saturating_sub(t))),
    }
}

/// A duration in the past, rounded down the way people say it.
pub fn ago(secs: u64) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    const TWO_DAYS: u64 = 2 * DAY;
    match secs {
        0..10 => "just now".to_owned(),
        10..MIN => format!("{secs} s ago"),
        MIN..HOUR => format!("{} min ago", secs / MIN),
        HOUR..DAY => format!("{} h ago", secs / HOUR),
        DAY..TWO_DAYS => "1 day ago".to_owned(),
        _ => format!("{} days ago", secs / DAY),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn kinds_have_unique_snake_case_names_apart_from_the_api_codes() {
        let api: HashSet<String> = ErrorCode::ALL.into_iter().map(api_code_name).collect();
        let mut seen = HashSet::new();
        for kind in Kind::ALL {
            let name = kind.as_str();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(seen.insert(name), "{name} twice");
            assert!(!api.contains(name), "{name} is also an API code");
        }
    }

    #[test]
    fn api_errors_keep_their_code_name_and_message() {
        let e = DesktopError::from_client(
            ClientError::from(ErrorCode::InstallFailed.with("container web exited")),
            Some(1),
            2,
        );
        assert_eq!(e.code, "install_failed");
        assert_eq!(e.message, "container web exited");
        assert!(e.is_api(ErrorCode::InstallFailed));
        assert_eq!(api_code_name(ErrorCode::Unauthenticated), "unauthenticated");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"install_failed","message":"container web exited"}"#
        );
    }

    #[test]
    fn unreachable_says_when_the_node_was_last_seen() {
        let err = ClientError::Unreachable {
            address: "node.local:7443".into(),
            reason: "Connection refused (os error 111)".into(),
        };
        let e = DesktopError::from_client(err, Some(1_000), 1_000 + 3 * 60 + 20);
        assert!(e.is(Kind::Unreachable));
        assert_eq!(
            e.message,
            "node unreachable: last seen 3 min ago (Connection refused (os error 111))"
        );
        let never = DesktopError::timeout(Duration::from_secs(3), None, 5);
        assert!(never.is(Kind::Timeout));
        assert_eq!(
            never.message,
            "node unreachable: no answer within 3 s, never reached"
        );
    }

    #[test]
    fn a_changed_certificate_is_loud() {
        let e = DesktopError::from_client(
            ClientError::FingerprintMismatch {
                address: "n:7443".into(),
                expected: [1; 32],
                presented: [2; 32],
            },
            None,
            0,
        );
        assert!(e.is(Kind::FingerprintMismatch));
        assert!(e.message.contains("someone may be intercepting"), "{e}");
        assert!(e.message.contains("02:02:02"), "{e}");
    }

    #[test]
    fn other_client_errors_map_to_their_kind() {
        let tls = ClientError::Tls {
            address: "n:1".into(),
            reason: "handshake".into(),
        };
        assert!(DesktopError::from_client(tls, None, 0).is(Kind::Tls));
        let proto = ClientError::Protocol {
            address: "n:1".into(),
            reason: "not json".into(),
        };
        assert!(DesktopError::from_client(proto, None, 0).is(Kind::Protocol));
        let io = ClientError::Io {
            path: "/home/u/Downloads/Archipelago/a.archy-backup.part".into(),
            source: std::io::Error::other("No space left on device"),
        };
        let e = DesktopError::from_client(io, None, 0);
        assert!(e.is(Kind::LocalFile));
        assert!(e.message.contains("a.archy-backup.part: No space"), "{e}");
        let bad = archipelago_client::Address::parse("http://x").unwrap_err();
        assert!(DesktopError::from_client(bad.into(), None, 0).is(Kind::InvalidAddress));
        let slow = ClientError::Timeout {
            address: "n:1".into(),
            after: Duration::from_secs(600),
        };
        let e = DesktopError::from_client(slow, Some(0), 30);
        assert!(e.is(Kind::Timeout));
        assert!(e.message.contains("600 s, last seen 30 s ago"), "{e}");
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(45), "45 s ago");
        assert_eq!(ago(180), "3 min ago");
        assert_eq!(ago(3 * 3600 + 5), "3 h ago");
        assert_eq!(ago(86_400 + 5), "1 day ago");
        assert_eq!(ago(5 * 86_400), "5 days ago");
    }
}
