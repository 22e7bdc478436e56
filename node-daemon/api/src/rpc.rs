//! The JSON-RPC 2.0 envelope as it travels between a client and a node, and
//! the transport rules both sides follow.
//!
//! Transport: HTTPS (TLS 1.3 with a self-signed certificate that clients pin
//! by its SHA-256 fingerprint), `POST /rpc` with one request object per body
//! (batches are refused), the session token in `Authorization: Bearer …`.
//! The answer is one JSON-RPC response; a request sent with
//! `Accept: text/event-stream` to a method that streams (an install's
//! progress, followed logs) is answered with server-sent events instead:
//! zero or more `event: progress` / `event: log` whose data is one
//! [`StreamEvent`], then one `event: response` whose data is the
//! JSON-RPC response.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};
use crate::methods::{InstallProgress, LogEntry};

/// The only protocol version spoken.
pub const JSONRPC_VERSION: &str = "2.0";
/// The path of the endpoint.
pub const RPC_PATH: &str = "/rpc";
/// Largest request body a node accepts; bigger bodies get
/// [`ErrorCode::RequestTooLarge`].
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The TCP port a node listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7443;
/// Media type of a streamed answer.
pub const EVENT_STREAM: &str = "text/event-stream";
/// How long a node keeps a keep-alive connection that carries no request
/// before it closes it (and how long a request's headers may take).
pub const IDLE_CONNECTION_CLOSE: Duration = Duration::from_secs(30);
/// How long a client may keep reusing an idle connection: half of
/// [`IDLE_CONNECTION_CLOSE`]. A client that waited as long as the node
/// would now and then send a request on a connection the node is closing
/// at that very moment, and lose the call to "the node closed the
/// connection" (seen on a slow VM node, whose close arrived late).
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(IDLE_CONNECTION_CLOSE.as_secs() / 2);

const _: () = assert!(
    CLIENT_POOL_IDLE.as_secs() > 0
        && CLIENT_POOL_IDLE.as_secs() * 2 <= IDLE_CONNECTION_CLOSE.as_secs(),
    "a client must stop reusing a connection well before the node closes it"
);

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    /// Echoed in the response; absent for notifications (which a node
    /// still answers, with a null id, because every call here has a result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    /// A request with version 2.0.
    pub fn new(id: u64, method: &str, params: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id: Some(Value::from(id)),
            method: method.to_owned(),
            params: Some(params),
        }
    }
}

/// The error object of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcError {
    /// The stable number ([`ErrorCode::as_i32`]).
    pub code: i32,
    pub message: String,
    /// The code's name, so that a client needs no table to show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

/// Extra data of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    pub name: ErrorCode,
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code.as_i32(),
            message: e.message,
            data: Some(ErrorData { name: e.code }),
        }
    }
}

impl From<RpcError> for ApiError {
    fn from(e: RpcError) -> Self {
        let code = e
            .data
            .map(|d| d.name)
            .or_else(|| ErrorCode::from_i32(e.code))
            .unwrap_or(ErrorCode::Internal);
        Self {
            code,
            message: e.message,
        }
    }
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A successful answer.
    pub fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failed answer.
    pub fn err(id: Value, error: ApiError) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id,
            result: None,
            error: Some(error.into()),
        }
    }

    /// The result, or the error as an [`ApiError`].
    pub fn into_result(self) -> Result<Value, ApiError> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e.into()),
            (Some(v), None) => Ok(v),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// One event of a streamed answer, before its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub enum StreamEvent {
    /// How far an install (or another long operation) got.
    Progress(InstallProgress),
    /// A log line of a followed app.
    Log(LogEntry),
}

impl StreamEvent {
    /// The SSE `event:` name of this event.
    pub const fn sse_name(&self) -> &'static str {
        match self {
            Self::Progress(_) => "progress",
            Self::Log(_) => "log",
        }
    }
}

/// The SSE `event:` name of the final response.
pub const SSE_RESPONSE: &str = "response";

/// A node's certificate fingerprint as people see and type it: the SHA-256
/// of the certificate (DER), in lowercase hex, pairs separated by colons.
pub fn format_fingerprint(sha256: &[u8; 32]) -> String {
    let mut out = String::with_capacity(95);
    for (i, b) in sha256.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Reads a fingerprint written with or without colons, in either case;
/// `None` unless it is exactly 32 bytes of hex.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: Vec<u8> = text
        .trim()
        .bytes()
        .filter(|b| *b != b':')
        .map(|b| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (pair[0] << 4) | pair[1];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_round_trip_with_their_names() {
        let r = Response::err(
            json!(7),
            ApiError {
                code: ErrorCode::Unauthenticated,
                message: "log in first".into(),
            },
        );
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32019,"message":"log in first","data":{"name":"unauthenticated"}}}"#
        );
        let back: Response = serde_json::from_str(&text).unwrap();
        let e = back.into_result().unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
    }

    #[test]
    fn fingerprints_round_trip_in_any_spelling() {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = u8::try_from(i * 7).unwrap();
        }
        let text = format_fingerprint(&d);
        assert_eq!(text.len(), 95);
        assert!(text.starts_with("00:07:0e:15"));
        assert_eq!(parse_fingerprint(&text), Some(d));
        assert_eq!(
            parse_fingerprint(&text.replace(':', "").to_uppercase()),
            Some(d)
        );
        assert_eq!(parse_fingerprint(&text[..90]), None);
        assert_eq!(parse_fingerprint("zz"), None);
    }

    #[test]
    fn an_error_without_data_is_known_by_its_number() {
        let e: ApiError = RpcError {
            code: -32601,
            message: "no such method".into(),
            data: None,
        }
        .into();
        assert_eq!(e.code, ErrorCode::MethodNotFound);
    }
}
