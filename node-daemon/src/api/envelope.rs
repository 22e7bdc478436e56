//! The JSON-RPC envelope as the server reads and writes it over HTTP:
//! which methods exist (and which stream), what a well-formed request is,
//! how answers are encoded, and what the request's headers say. Pure
//! functions, so that every malformed shape is tested without a socket.

use archipelago_api::methods::{
    AuthLogin, AuthLogout, BackupDelete, BackupDownload, BackupList, BackupUpload, CatalogIcon,
    CatalogList, Method, NodeInfo, PackageBackup, PackageInstall, PackageList, PackageLogs,
    PackageRestart, PackageRestore, PackageSettings, PackageStart, PackageStats,
    PackageStatusMethod, PackageStop, PackageUninstall, PackageUpdate,
};
use archipelago_api::rpc::{self, EVENT_STREAM, JSONRPC_VERSION};
use archipelago_api::{ApiError, ErrorCode};
use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::sse::FrameStream;

/// Longest unknown method name quoted back in an error.
pub(super) const MAX_LOGGED_METHOD: usize = 64;

/// Every method of the API, with whether it can stream.
const METHODS: [(&str, bool); 22] = [
    entry::<AuthLogin>(),
    entry::<AuthLogout>(),
    entry::<NodeInfo>(),
    entry::<CatalogList>(),
    entry::<CatalogIcon>(),
    entry::<PackageInstall>(),
    entry::<PackageStart>(),
    entry::<PackageStop>(),
    entry::<PackageRestart>(),
    entry::<PackageUninstall>(),
    entry::<PackageStatusMethod>(),
    entry::<PackageList>(),
    entry::<PackageLogs>(),
    entry::<PackageStats>(),
    entry::<PackageUpdate>(),
    entry::<PackageBackup>(),
    entry::<PackageRestore>(),
    entry::<PackageSettings>(),
    entry::<BackupList>(),
    entry::<BackupDownload>(),
    entry::<BackupUpload>(),
    entry::<BackupDelete>(),
];

const fn entry<M: Method>() -> (&'static str, bool) {
    (M::NAME, M::STREAMS)
}

/// The method's static name and whether it streams; `None` if unknown.
pub(super) fn lookup(method: &str) -> Option<(&'static str, bool)> {
    METHODS.iter().copied().find(|(name, _)| *name == method)
}

/// A response body: a whole JSON document, or an event stream.
pub(super) type ResBody = Either<Full<Bytes>, FrameStream>;

/// A request that has the JSON-RPC shape.
#[derive(Debug)]
pub(super) struct Call {
    pub(super) id: Value,
    pub(super) method: String,
    /// `null` when the request had none.
    pub(super) params: Value,
}

/// Checks the envelope. On failure, the id to answer with (`null` when the
/// request's own could not be read) and the error.
pub(super) fn parse_call(body: &[u8]) -> Result<Call, (Value, ApiError)> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        (
            Value::Null,
            ErrorCode::ParseError.with(format!("the body is not JSON: {e}")),
        )
    })?;
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err((
                Value::Null,
                ErrorCode::InvalidRequest
                    .with("batch requests are not supported: send one request object per POST"),
            ));
        }
        _ => {
            return Err((
                Value::Null,
                ErrorCode::InvalidRequest.with("the body must be a JSON-RPC 2.0 request object"),
            ));
        }
    };
    let id = match obj.remove("id") {
        None => Value::Null,
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_))) => id,
        Some(_) => {
            return Err((
                Value::Null,
                ErrorCode::InvalidRequest.with("`id` must be a string, a number or null"),
            ));
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC_VERSION) {
        return Err((
            id,
            ErrorCode::InvalidRequest.with(format!("`jsonrpc` must be \"{JSONRPC_VERSION}\"")),
        ));
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err((
            id,
            ErrorCode::InvalidRequest.with("`method` must be a string"),
        ));
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Null,
        Some(p @ (Value::Object(_) | Value::Array(_))) => p,
        Some(_) => {
            return Err((
                id,
                ErrorCode::InvalidRequest.with("`params` must be an object or an array"),
            ));
        }
    };
    Ok(Call { id, method, params })
}

pub(super) fn encode(response: &rpc::Response) -> Vec<u8> {
    serde_json::to_vec(response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a response");
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":{},"message":"cannot encode the response"}}}}"#,
            ErrorCode::Internal.as_i32()
        )
        .into_bytes()
    })
}

pub(super) fn json_response(status: StatusCode, response: &rpc::Response) -> Response<ResBody> {
    let mut res = Response::new(Either::Left(Full::new(Bytes::from(encode(response)))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

pub(super) fn error_response(status: StatusCode, error: ApiError) -> Response<ResBody> {
    json_response(status, &rpc::Response::err(Value::Null, error))
}

/// The token of `Authorization: Bearer <token>`.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether any `Accept` header lists `text/event-stream`.
pub(super) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            item.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case(EVENT_STREAM))
        })
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exactly_the_long_operations_and_logs_stream() {
        let streaming: Vec<&str> = METHODS
            .iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            streaming,
            [
                "package.install",
                "package.uninstall",
                "package.logs",
                "package.update",
                "package.backup",
                "package.restore"
            ]
        );
        assert_eq!(lookup("node.info"), Some(("node.info", false)));
        assert_eq!(lookup("node.inf"), None);
    }

    #[test]
    fn the_envelope_is_checked() {
        let code = |body: &[u8]| parse_call(body).unwrap_err().1.code;
        assert_eq!(code(b"{"), ErrorCode::ParseError);
        assert_eq!(code(b"\xff\xfe"), ErrorCode::ParseError);
        assert_eq!(code(b"[]"), ErrorCode::InvalidRequest);
        assert_eq!(
            code(br#"[{"jsonrpc":"2.0","method":"node.info","id":1}]"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(b"42"), ErrorCode::InvalidRequest);
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","method":"x","id":1}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(br#"{"method":"x","id":1}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","method":7,"id":1}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","method":"x","id":{}}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","method":"x","params":3}"#),
            ErrorCode::InvalidRequest
        );
        let (id, _) = parse_call(br#"{"jsonrpc":"2.0","method":7,"id":"a"}"#).unwrap_err();
        assert_eq!(id, json!("a"));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(code(deep.as_bytes()), ErrorCode::ParseError);

        let call = parse_call(br#"{"jsonrpc":"2.0","method":"node.info","id":9}"#).unwrap();
        assert_eq!(
            (call.id, call.method.as_str(), call.params),
            (json!(9), "node.info", Value::Null)
        );
        let call = parse_call(br#"{"jsonrpc":"2.0","method":"m","params":{"a":1}}"#).unwrap();
        assert_eq!((call.id, call.params), (Value::Null, json!({"a": 1})));
    }

    #[test]
    fn bearer_tokens_and_accept_headers_are_read_leniently() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(bearer_token(&h), None);

        assert!(!accepts_event_stream(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, Text/Event-Stream;q=0.9"),
        );
        assert!(accepts_event_stream(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-streams"),
        );
        assert!(!accepts_event_stream(&h));
    }

    #[test]
    fn long_method_names_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("h\u{e9}llo", 2), "h");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
