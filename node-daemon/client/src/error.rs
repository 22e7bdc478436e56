//! What can go wrong talking to a node, as distinct cases a caller can act
//! on: the node could not be reached, its certificate is not the pinned one
//! (loudly), TLS failed, it answered something that is not the API, or it
//! answered with an API error (whose stable code [`ClientError::code`]
//! gives) — or, copying a backup, a local file could not be used.

use std::path::PathBuf;
use std::time::Duration;

use archipelago_api::rpc::format_fingerprint;
use archipelago_api::{ApiError, ErrorCode};

use crate::address::AddressError;
use crate::pin;

/// An error of a call to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address is not one a node can have.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),

    /// The node presented another certificate than the one pinned at
    /// pairing. Nothing was sent to it.
    #[error(
        "the node at {address} presented certificate {}, not the pinned {}: someone may be intercepting, or the node was reinstalled; refusing",
        format_fingerprint(.presented),
        format_fingerprint(.expected)
    )]
    FingerprintMismatch {
        address: String,
        expected: [u8; 32],
        presented: [u8; 32],
    },

    /// No connection could be made, or it broke before the answer was read.
    #[error("cannot reach the node at {address}: {reason}")]
    Unreachable { address: String, reason: String },

    /// The node accepted the call but did not answer in time.
    #[error("the node at {address} did not answer within {} s", .after.as_secs())]
    Timeout { address: String, after: Duration },

    /// The TLS handshake failed for another reason than the certificate.
    #[error("TLS with the node at {address} failed: {reason}")]
    Tls { address: String, reason: String },

    /// The answer is not a JSON-RPC response, or not valid SSE, or does not
    /// fit the method's result type.
    #[error("the node at {address} answered something this client does not understand: {reason}")]
    Protocol { address: String, reason: String },

    /// The node answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),

    /// A file on this computer could not be read or written (a backup
    /// being copied to or from the node).
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// The API error code, when the node answered with an error.
    pub const fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(e) => Some(e.code),
            _ => None,
        }
    }

    pub(crate) fn protocol(address: &impl ToString, reason: impl Into<String>) -> Self {
        Self::Protocol {
            address: address.to_string(),
            reason: reason.into(),
        }
    }

    /// Sorts a transport error: a certificate refused by the pinning
    /// verifier, another TLS failure, a timeout, or an unreachable node.
    pub(crate) fn from_transport(
        err: &reqwest::Error,
        address: &impl ToString,
        expected: Option<[u8; 32]>,
        call_timeout: Duration,
    ) -> Self {
        let address = address.to_string();
        if let (Some(presented), Some(expected)) = (pin::find_presented(err), expected) {
            return Self::FingerprintMismatch {
                address,
                expected,
                presented,
            };
        }
        if let Some(tls) = pin::find_tls_error(err) {
            return Self::Tls {
                address,
                reason: tls.to_string(),
            };
        }
        if err.is_timeout() {
            if err.is_connect() {
                return Self::Unreachable {
                    address,
                    reason: "no answer to the connection attempt".to_owned(),
                };
            }
            return Self::Timeout {
                address,
                after: call_timeout,
            };
        }
        let eof = pin::find_in_chain(err, &|e| {
            e.downcast_ref::<std::io::Error>()
                .filter(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
                .map(|_| ())
        });
        let reason = if eof.is_some() {
            "the node closed the connection before answering in full".to_owned()
        } else {
            root_cause(err)
        };
        let reason = if err.is_body() || err.is_decode() {
            format!("the connection broke while reading the answer ({reason})")
        } else {
            reason
        };
        Self::Unreachable { address, reason }
    }
}

/// The innermost message of an error chain (`Connection refused (os error
/// 111)` rather than `error sending request for url …`).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    for _ in 0..32 {
        let Some(e) = next else { break };
        last = e.to_string();
        next = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| -> &(dyn std::error::Error + 'static) { inner })
            .or_else(|| e.source());
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_loudly_what_happened() {
        let e = ClientError::FingerprintMismatch {
            address: "node.local:7443".into(),
            expected: [0xaa; 32],
            presented: [0xbb; 32],
        };
        let text = e.to_string();
        assert!(text.starts_with("the node at node.local:7443 presented certificate bb:bb:"));
        assert!(text.contains("not the pinned aa:aa:"));
        assert!(text.contains("someone may be intercepting"));
        assert!(text.ends_with("refusing"));
        assert_eq!(e.code(), None);
    }

    #[test]
    fn api_errors_keep_their_code_and_message() {
        let e = ClientError::from(ErrorCode::AppNotInstalled.with("hello-web is not installed"));
        assert_eq!(e.code(), Some(ErrorCode::AppNotInstalled));
        assert_eq!(e.to_string(), "hello-web is not installed (code -32016)");
    }

    #[test]
    fn the_root_cause_looks_inside_io_errors() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(root_cause(&outer), "refused");
    }
}
