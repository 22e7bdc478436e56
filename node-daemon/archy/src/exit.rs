//! archy's own errors and the one place where any error becomes an exit
//! code and a message (plain, or `{"code", "name", "message"}` with
//! `--json`). Scripts branch on these codes, so the mapping is a table with
//! a test, not something each command decides.

use archipelago_api::ErrorCode;
use archipelago_client::ClientError;
use serde::Serialize;

use crate::config::ConfigError;

/// Success.
pub const OK: u8 = 0;
/// Anything not listed below.
pub const OTHER: u8 = 1;
/// Bad command line (clap exits with it itself).
pub const USAGE: u8 = 2;
/// The node is unreachable or busy, did not answer in time, or TLS failed.
pub const UNREACHABLE: u8 = 3;
/// Not logged in, session expired, login failed or throttled; or the
/// passphrase or key does not open a backup.
pub const AUTH: u8 = 4;
/// The certificate is not the pinned one (or not the one given to `pair`).
pub const FINGERPRINT: u8 = 5;
/// The app operation failed.
pub const APP: u8 = 6;

/// Errors found by archy itself, before or instead of a call.
#[derive(Debug, thiserror::Error)]
pub enum ArchyError {
    #[error("no node is paired yet: pair one with `archy pair <address>`")]
    NoNodes,
    #[error("no paired node is named `{0}` (see `archy nodes`)")]
    UnknownNode(String),
    #[error(
        "`{0}` cannot name a node: use letters, digits, `.`, `_` and `-`, starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("not logged in to {node}: run `archy --node {node} login`")]
    NotLoggedIn { node: String },
    #[error("the session on {node} has expired: run `archy --node {node} login`")]
    SessionExpired { node: String },
    #[error(
        "the node at {address} presented certificate {presented}, not {given} as given with --fingerprint: someone may be intercepting, or the fingerprint was mistyped; refusing to pair"
    )]
    PairMismatch {
        address: String,
        given: String,
        presented: String,
    },
    #[error(
        "`{name}` is paired with certificate {pinned}, but {address} presents {presented}: if the node was reinstalled, check the new fingerprint on it (`archipelagod pairing`) and pair again with --replace; refusing"
    )]
    AlreadyPaired {
        name: String,
        address: String,
        pinned: String,
        presented: String,
    },
    #[error("`{name}` is already paired at {address}: pass --replace to pair it at {new_address}")]
    NameTaken {
        name: String,
        address: String,
        new_address: String,
    },
    #[error("{0}")]
    NotConfirmed(String),
    #[error("{0}")]
    NoTerminal(String),
    /// Flags that parse but do not go together (found after parsing).
    #[error("{0}")]
    Usage(String),
}

/// The exit code for an error: the first error in the chain that archy
/// knows decides.
pub fn code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ArchyError>() {
            return archy_code(e);
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return client_code(e);
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return OTHER;
        }
    }
    OTHER
}

const fn archy_code(e: &ArchyError) -> u8 {
    match e {
        ArchyError::NotLoggedIn { .. } | ArchyError::SessionExpired { .. } => AUTH,
        ArchyError::PairMismatch { .. } | ArchyError::AlreadyPaired { .. } => FINGERPRINT,
        ArchyError::Usage(_) => USAGE,
        ArchyError::NoNodes
        | ArchyError::UnknownNode(_)
        | ArchyError::InvalidName(_)
        | ArchyError::NameTaken { .. }
        | ArchyError::NotConfirmed(_)
        | ArchyError::NoTerminal(_) => OTHER,
    }
}

fn client_code(e: &ClientError) -> u8 {
    match e {
        ClientError::FingerprintMismatch { .. } => FINGERPRINT,
        ClientError::Unreachable { .. } | ClientError::Timeout { .. } | ClientError::Tls { .. } => {
            UNREACHABLE
        }
        ClientError::Api(api) => api_code(api.code),
        _ => OTHER,
    }
}

/// The API error code the node answered with, if the error is one.
pub fn api_error_code(err: &anyhow::Error) -> Option<ErrorCode> {
    err.chain()
        .find_map(|c| c.downcast_ref::<ClientError>())
        .and_then(ClientError::code)
}

/// The exit code for an error the node answered with.
pub const fn api_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Unauthenticated
        | ErrorCode::LoginFailed
        | ErrorCode::TooManyAttempts
        | ErrorCode::BadPassphrase => AUTH,
        ErrorCode::Busy => UNREACHABLE,
        ErrorCode::InvalidManifest
        | ErrorCode::Secret
        | ErrorCode::Systemd
        | ErrorCode::Podman
        | ErrorCode::AppNotInstalled
        | ErrorCode::MissingDependency
        | ErrorCode::PortConflict
        | ErrorCode::InstallFailed
        | ErrorCode::AlreadyInstalled
        | ErrorCode::NotInCatalog
        | ErrorCode::CatalogUntrusted
        | ErrorCode::UpdateRolledBack
        | ErrorCode::BackupFailed
        | ErrorCode::RestoreFailed
        | ErrorCode::BackupNotFound
        | ErrorCode::BackupCorrupt
        | ErrorCode::HasDependants => APP,
        _ => OTHER,
    }
}

/// An error as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonError {
    /// The API error code, when the node answered with an error.
    pub code: Option<i32>,
    /// The API code's name, or archy's own name for the failure.
    pub name: String,
    pub message: String,
}

/// The `--json` form of an error.
pub fn json_error(err: &anyhow::Error) -> JsonError {
    let message = format!("{err:#}");
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            if let ClientError::Api(api) = e {
                return JsonError {
                    code: Some(api.code.as_i32()),
                    name: code_name(api.code),
                    message,
                };
            }
            let name = match e {
                ClientError::FingerprintMismatch { .. } => "fingerprint_mismatch",
                ClientError::Unreachable { .. } => "unreachable",
                ClientError::Timeout { .. } => "timeout",
                ClientError::Tls { .. } => "tls",
                ClientError::Protocol { .. } => "protocol",
                ClientError::InvalidAddress(_) => "invalid_address",
                ClientError::Io { .. } => "io",
                _ => "client",
            };
            return named(name, message);
        }
        if let Some(e) = cause.downcast_ref::<ArchyError>() {
            let name = match e {
                ArchyError::NoNodes => "no_nodes",
                ArchyError::UnknownNode(_) => "unknown_node",
                ArchyError::InvalidName(_) => "invalid_name",
                ArchyError::NotLoggedIn { .. } => "not_logged_in",
                ArchyError::SessionExpired { .. } => "session_expired",
                ArchyError::PairMismatch { .. } => "fingerprint_mismatch",
                ArchyError::AlreadyPaired { .. } => "already_paired",
                ArchyError::NameTaken { .. } => "name_taken",
                ArchyError::NotConfirmed(_) => "not_confirmed",
                ArchyError::NoTerminal(_) => "no_terminal",
                ArchyError::Usage(_) => "usage",
            };
            return named(name, message);
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return named("config", message);
        }
    }
    named("error", message)
}

fn named(name: &str, message: String) -> JsonError {
    JsonError {
        code: None,
        name: name.to_owned(),
        message,
    }
}

/// `snake_case` name of an API error code, as on the wire.
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// Prints an error to stderr, as JSON or for people (the whole chain of
/// context, which carries the hint on what to do).
pub fn report(err: &anyhow::Error, json: bool) {
    if json {
        let text = serde_json::to_string(&json_error(err))
            .unwrap_or_else(|_| r#"{"code":null,"name":"error","message":"?"}"#.to_owned());
        eprintln!("{text}");
        return;
    }
    eprintln!("archy: error: {err:#}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn api(code: ErrorCode) -> anyhow::Error {
        ClientError::Api(code.with("m")).into()
    }

    #[test]
    fn every_api_code_has_an_exit_code() {
        for code in ErrorCode::ALL {
            let exit = api_code(code);
            assert!([OTHER, UNREACHABLE, AUTH, APP].contains(&exit), "{code:?}");
        }
    }

    #[test]
    fn api_errors_map_to_their_exit_codes() {
        assert_eq!(super::code(&api(ErrorCode::Unauthenticated)), AUTH);
        assert_eq!(super::code(&api(ErrorCode::LoginFailed)), AUTH);
        assert_eq!(super::code(&api(ErrorCode::TooManyAttempts)), AUTH);
        assert_eq!(super::code(&api(ErrorCode::InstallFailed)), APP);
        assert_eq!(super::code(&api(ErrorCode::AppNotInstalled)), APP);
        assert_eq!(super::code(&api(ErrorCode::MissingDependency)), APP);
        assert_eq!(super::code(&api(ErrorCode::HasDependants)), APP);
        assert_eq!(super::code(&api(ErrorCode::Busy)), UNREACHABLE);
        assert_eq!(super::code(&api(ErrorCode::BadPassphrase)), AUTH);
        assert_eq!(super::code(&api(ErrorCode::UpdateRolledBack)), APP);
        assert_eq!(super::code(&api(ErrorCode::BackupFailed)), APP);
        assert_eq!(super::code(&api(ErrorCode::RestoreFailed)), APP);
        assert_eq!(super::code(&api(ErrorCode::BackupCorrupt)), APP);
        assert_eq!(super::code(&api(ErrorCode::BackupNotFound)), APP);
        assert_eq!(super::code(&api(ErrorCode::Internal)), OTHER);
        assert_eq!(super::code(&api(ErrorCode::MethodNotFound)), OTHER);
    }

    #[test]
    fn transport_errors_map_to_their_exit_codes() {
        let unreachable: anyhow::Error = ClientError::Unreachable {
            address: "a:1".into(),
            reason: "refused".into(),
        }
        .into();
        assert_eq!(super::code(&unreachable), UNREACHABLE);
        let tls: anyhow::Error = ClientError::Tls {
            address: "a:1".into(),
            reason: "x".into(),
        }
        .into();
        assert_eq!(super::code(&tls), UNREACHABLE);
        let mismatch: anyhow::Error = ClientError::FingerprintMismatch {
            address: "a:1".into(),
            expected: [1; 32],
            presented: [2; 32],
        }
        .into();
        assert_eq!(super::code(&mismatch), FINGERPRINT);
        let protocol: anyhow::Error = ClientError::Protocol {
            address: "a:1".into(),
            reason: "x".into(),
        }
        .into();
        assert_eq!(super::code(&protocol), OTHER);
    }

    #[test]
    fn archy_errors_map_to_their_exit_codes_through_context() {
        let e = anyhow::Error::from(ArchyError::NotLoggedIn { node: "n".into() });
        assert_eq!(super::code(&e), AUTH);
        let e = Err::<(), _>(ArchyError::AlreadyPaired {
            name: "n".into(),
            address: "a".into(),
            pinned: "p".into(),
            presented: "q".into(),
        })
        .context("pairing")
        .unwrap_err();
        assert_eq!(super::code(&e), FINGERPRINT);
        assert_eq!(super::code(&anyhow::anyhow!("plain")), OTHER);
        assert_eq!(super::code(&ArchyError::NoNodes.into()), OTHER);
        assert_eq!(super::code(&ArchyError::Usage("x".into()).into()), USAGE);
    }

    #[test]
    fn json_errors_name_the_failure() {
        let e = json_error(&api(ErrorCode::AppNotInstalled));
        assert_eq!(e.code, Some(-32016));
        assert_eq!(e.name, "app_not_installed");
        assert_eq!(e.message, "m (code -32016)");
        let e = json_error(&ArchyError::SessionExpired { node: "n".into() }.into());
        assert_eq!(e.code, None);
        assert_eq!(e.name, "session_expired");
        let text = serde_json::to_string(&json_error(&anyhow::anyhow!("x"))).unwrap();
        assert_eq!(text, r#"{"code":null,"name":"error","message":"x"}"#);
    }
}
