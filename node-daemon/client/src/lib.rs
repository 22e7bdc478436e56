//! The client of an Archipelago node's API, shared by `archy`, the desktop
//! app and the tests, so that there is one implementation of the transport
//! rules of [`archipelago_api::rpc`]:
//!
//! - HTTPS to `https://<host>:<port>/rpc`, HTTP/1.1, no proxies, no
//!   redirects. The node's certificate is self-signed: instead of web PKI the
//!   client pins it by the SHA-256 of its DER ([`pin`]), and a different
//!   certificate fails with [`ClientError::FingerprintMismatch`] before
//!   anything is sent. [`fetch_fingerprint`] reads a node's fingerprint for
//!   first-time pairing (to show the user, who confirms it).
//! - Typed calls: `client.call::<PackageStatusMethod>(params)` with the
//!   method's parameter and result types from [`archipelago_api::methods`].
//! - Streamed calls ([`Client::call_streaming`]): progress and log events
//!   are handed to a callback as they arrive, then the result is returned.
//! - The session token from [`Client::login`] is kept in the client (shared
//!   by its clones) and sent as `Authorization: Bearer …` on every call but
//!   `auth.login`.
//!
//! - Backup files are copied to and from a node piece by piece
//!   ([`Client::download_backup`], [`Client::upload_backup`]; see
//!   [`transfer`]).
//!
//! Timeouts: 10 s to connect, 10 minutes for an ordinary call (an install
//! waits until the app is healthy), none for a stream (followed logs run
//! until the caller drops the future).
//!
//! Not here: where pairings and tokens are stored (archy keeps files, the
//! desktop app the OS keyring), retries (every failure is reported as it
//! happened; whether to retry is the caller's decision).

mod address;
mod error;
pub mod pin;
mod sse;
#[cfg(feature = "test-server")]
pub mod test_server;
pub mod transfer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use archipelago_api::ErrorCode;
use archipelago_api::methods::{AuthLogin, AuthLogout, Empty, LoginParams, Method, Session};
use archipelago_api::rpc::{
    CLIENT_POOL_IDLE, EVENT_STREAM, Request, Response, SSE_RESPONSE, StreamEvent,
};
use serde_json::Value;

pub use address::{Address, AddressError};
pub use archipelago_api as api;
pub use error::ClientError;
pub use sse::{SseError, SseEvent, SseParser};
pub use transfer::DownloadedBackup;

/// How long connecting (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary (not streamed) call may take, answer included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long [`fetch_fingerprint`] waits for the certificate.
pub const FETCH_FINGERPRINT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest ordinary answer read; a longer one is refused as a protocol
/// error rather than filling memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A connection to one node, pinned to its certificate. Cheap to clone;
/// clones share the connection pool, the session token and the request ids.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    address: Address,
    url: String,
    fingerprint: [u8; 32],
    http: reqwest::Client,
    token: RwLock<Option<String>>,
    next_id: AtomicU64,
}

/// Never prints the token.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.inner.address.to_string())
            .field(
                "fingerprint",
                &archipelago_api::rpc::format_fingerprint(&self.inner.fingerprint),
            )
            .field("logged_in", &self.token().is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the node at `address` (`host`, `host:port`; the port is
    /// 7443 when not given) whose certificate has this SHA-256 fingerprint.
    /// Connects lazily, on the first call.
    pub fn new(address: &str, fingerprint: [u8; 32]) -> Result<Self, ClientError> {
        let address = Address::parse(address)?;
        let provider = pin::provider();
        let verifier = Arc::new(pin::PinnedVerifier::new(fingerprint, &provider));
        let http = http_client(verifier, provider, &address)?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: address.rpc_url(),
                address,
                fingerprint,
                http,
                token: RwLock::new(None),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The same client, with a session token from an earlier login.
    #[must_use]
    pub fn with_token(self, token: impl Into<String>) -> Self {
        self.set_token(Some(token.into()));
        self
    }

    /// The node's address as `host:port`.
    pub fn address(&self) -> String {
        self.inner.address.to_string()
    }

    /// The pinned certificate fingerprint.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.inner.fingerprint
    }

    /// The session token, when logged in.
    pub fn token(&self) -> Option<String> {
        self.inner
            .token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces (or, with `None`, forgets) the session token.
    pub fn set_token(&self, token: Option<String>) {
        *self
            .inner
            .token
            .write()
            .unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// Logs in with the node's password; the client keeps the token for the
    /// calls that follow, and the session is returned to be stored.
    pub async fn login(&self, password: &str) -> Result<Session, ClientError> {
        let session = self
            .call::<AuthLogin>(LoginParams {
                password: password.to_owned(),
            })
            .await?;
        self.set_token(Some(session.token.clone()));
        Ok(session)
    }

    /// Ends the session on the node and forgets the token. A token the node
    /// no longer knows counts as logged out.
    pub async fn logout(&self) -> Result<(), ClientError> {
        match self.call::<AuthLogout>(Empty {}).await {
            Ok(Empty {}) => {}
            Err(e) if e.code() == Some(ErrorCode::Unauthenticated) => {}
            Err(e) => return Err(e),
        }
        self.set_token(None);
        Ok(())
    }

    /// Calls a method and returns its result.
    pub async fn call<M: Method>(&self, params: M::Params) -> Result<M::Output, ClientError> {
        let (id, response) = self.send::<M>(&params, false).await?;
        let body = self.read_body(response).await?;
        self.decode::<M>(id, &body)
    }

    /// Calls a method asking for a streamed answer: each progress or log
    /// event goes to `on_event` as it arrives, in order, then the result is
    /// returned. A method that does not stream is called as by
    /// [`Client::call`]. Has no timeout: with followed logs it runs until
    /// the node ends the stream or the caller drops the future.
    pub async fn call_streaming<M: Method>(
        &self,
        params: M::Params,
        mut on_event: impl FnMut(StreamEvent) + Send,
    ) -> Result<M::Output, ClientError> {
        let (id, mut response) = self.send::<M>(&params, M::STREAMS).await?;
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with(EVENT_STREAM));
        if !is_stream {
            // Errors found before streaming began come as a plain response.
            let body = self.read_body(response).await?;
            return self.decode::<M>(id, &body);
        }
        let mut parser = SseParser::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| self.transport(&e))?;
            let events = match &chunk {
                Some(bytes) => parser.push(bytes),
                None => parser.finish(),
            }
            .map_err(|e| ClientError::protocol(&self.inner.address, e.to_string()))?;
            for event in events {
                match event.event.as_str() {
                    "progress" | "log" => {
                        let parsed: StreamEvent =
                            serde_json::from_str(&event.data).map_err(|e| {
                                ClientError::protocol(
                                    &self.inner.address,
                                    format!("a `{}` event is not a stream event: {e}", event.event),
                                )
                            })?;
                        on_event(parsed);
                    }
                    SSE_RESPONSE => return self.decode::<M>(id, event.data.as_bytes()),
                    // Event kinds a newer node may add: nothing to do here.
                    _ => {}
                }
            }
            if chunk.is_none() {
                return Err(ClientError::protocol(
                    &self.inner.address,
                    "the stream ended before the response",
                ));
            }
        }
    }

    /// Sends one request; returns its id and the answer's head.
    async fn send<M: Method>(
        &self,
        params: &M::Params,
        stream: bool,
    ) -> Result<(u64, reqwest::Response), ClientError> {
        let params = serde_json::to_value(params).map_err(|e| {
            ClientError::protocol(
                &self.inner.address,
                format!(
                    "the parameters of {} cannot be written as JSON: {e}",
                    M::NAME
                ),
            )
        })?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&Request::new(id, M::NAME, params)).map_err(|e| {
            ClientError::protocol(&self.inner.address, format!("request not written: {e}"))
        })?;
        let mut request = self
            .inner
            .http
            .post(&self.inner.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if stream {
            request = request.header(reqwest::header::ACCEPT, EVENT_STREAM);
        } else {
            request = request
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(CALL_TIMEOUT);
        }
        if M::NAME != AuthLogin::NAME {
            if let Some(token) = self.token() {
                request = request.bearer_auth(token);
            }
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        Ok((id, response))
    }

    /// Reads a whole (not streamed) answer, up to [`MAX_RESPONSE_BYTES`].
    /// Whatever the HTTP status, the body should be a JSON-RPC response;
    /// the status only matters when it is not.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::protocol(
                    &self.inner.address,
                    format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() && serde_json::from_slice::<Response>(&body).is_err() {
            return Err(ClientError::protocol(
                &self.inner.address,
                format!(
                    "HTTP {status} without a JSON-RPC response: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            ));
        }
        Ok(body)
    }

    /// Turns the bytes of a JSON-RPC response into the method's result.
    fn decode<M: Method>(&self, id: u64, body: &[u8]) -> Result<M::Output, ClientError> {
        let address = &self.inner.address;
        let response: Response = serde_json::from_slice(body).map_err(|e| {
            ClientError::protocol(
                address,
                format!("the answer is not a JSON-RPC response: {e}"),
            )
        })?;
        // A node that could not read the request answers with a null id.
        if response.id != Value::Null && response.id != id {
            return Err(ClientError::protocol(
                address,
                format!("the answer is for request {}, not {id}", response.id),
            ));
        }
        let result = response.into_result()?;
        serde_json::from_value(result).map_err(|e| {
            ClientError::protocol(
                address,
                format!(
                    "the result of {} does not have the expected shape: {e}",
                    M::NAME
                ),
            )
        })
    }

    fn transport(&self, err: &reqwest::Error) -> ClientError {
        ClientError::from_transport(
            err,
            &self.inner.address,
            Some(self.inner.fingerprint),
            CALL_TIMEOUT,
        )
    }
}

/// Connects to the node at `address` and returns the SHA-256 fingerprint of
/// the certificate it presents, without trusting it: the connection is
/// refused right after the certificate arrives, so nothing is sent. For
/// first-time pairing — show the fingerprint to the user and have them
/// compare it with the one the node shows (`archipelagod pairing`).
pub async fn fetch_fingerprint(address: &str) -> Result<[u8; 32], ClientError> {
    let address = Address::parse(address)?;
    let provider = pin::provider();
    let (verifier, seen) = pin::PinnedVerifier::recording(&provider);
    let http = http_client(Arc::new(verifier), provider, &address)?;
    let result = http
        .post(address.rpc_url())
        .timeout(FETCH_FINGERPRINT_TIMEOUT)
        .send()
        .await;
    if let Some(fingerprint) = *seen.lock().unwrap_or_else(PoisonError::into_inner) {
        return Ok(fingerprint);
    }
    Err(match result {
        Err(e) => ClientError::from_transport(&e, &address, None, FETCH_FINGERPRINT_TIMEOUT),
        Ok(_) => ClientError::Tls {
            address: address.to_string(),
            reason: "the connection was made without the server presenting a certificate"
                .to_owned(),
        },
    })
}

/// An HTTP client that trusts what `verifier` accepts and nothing else.
fn http_client(
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    address: &Address,
) -> Result<reqwest::Client, ClientError> {
    let setup = |reason: String| ClientError::Tls {
        address: address.to_string(),
        reason,
    };
    let tls = pin::client_config(verifier, provider).map_err(|e| setup(e.to_string()))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        // Idle connections are dropped before the node closes them, so that
        // no call is sent on a connection that is being closed.
        .pool_idle_timeout(CLIENT_POOL_IDLE)
        // A followed stream has no timeout: keepalives notice a dead peer.
        .tcp_keepalive(Duration::from_secs(30))
        .user_agent(concat!("archipelago-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| setup(format!("the HTTP client cannot be built: {e}")))
}
