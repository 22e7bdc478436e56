//! The transport of the node's API: TLS, HTTP/1.1, the JSON-RPC 2.0
//! envelope, login and session checks, and the limits that keep one client
//! from taking the node down. What a method does is the [`Handler`]'s
//! business; the server only decides whether it may be called.
//!
//! One endpoint, `POST /rpc` ([`RPC_PATH`]), one request object per body.
//! Other paths answer 404, other verbs on it 405, both with a JSON-RPC error
//! body. JSON-RPC errors travel with HTTP 200, except a body over the limit
//! (413, [`ErrorCode::RequestTooLarge`]), a body that does not arrive in
//! time (408) and a node at its connection limit (503, [`ErrorCode::Busy`]).
//!
//! `auth.login` is answered here and needs no session; every other method,
//! `auth.logout` included, needs `Authorization: Bearer <token>` of a live
//! session, checked before the handler sees the call. Every call runs as a
//! task of its own, so a client that goes away never cuts an operation (an
//! install, say) in half.
//!
//! Streaming (see `sse`): a request with `Accept: text/event-stream` to a
//! method whose [`Method::STREAMS`](archipelago_api::methods::Method) is
//! set is answered `200 text/event-stream` at once; each
//! [`StreamEvent`](archipelago_api::rpc::StreamEvent) the handler sends
//! becomes `event: <name>` / `data: <json>`, and the JSON-RPC response ends
//! the stream as `event: response`. A comment line is sent every
//! [`Limits::sse_keepalive`] so that dead clients are noticed.
//!
//! Limits ([`Limits`]): at most `max_connections` connections are served at
//! once. **Over the limit**, up to `busy_replies` more connections get a TLS
//! handshake and one `HTTP 503` whose body is a JSON-RPC [`ErrorCode::Busy`]
//! error (with `Retry-After`), then are closed, so a client can tell the
//! user the node is busy rather than show a reset connection; beyond those,
//! connections are closed at once unanswered. The TLS handshake must end
//! within `tls_handshake_timeout`; a request's headers must arrive within
//! `header_read_timeout` of the connection becoming ready for one (which
//! also closes idle keep-alive connections, freeing their slot), and its
//! body within `body_read_timeout`. Bodies are read through
//! [`http_body_util::Limited`], never past `max_body` bytes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use archipelago_api::methods::{AuthLogin, AuthLogout, LoginParams, Method as _};
use archipelago_api::rpc::{self, MAX_REQUEST_BYTES, RPC_PATH};
use archipelago_api::{ApiError, ErrorCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use super::Handler;
use super::auth::Auth;
use super::envelope::{
    MAX_LOGGED_METHOD, ResBody, accepts_event_stream, bearer_token, error_response, json_response,
    lookup, parse_call, truncate,
};
use super::sse::stream_call;

/// The limits a server keeps. [`Default`] is production.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections over `max_connections` that still get an HTTP 503
    /// "busy" answer; any more are closed unanswered.
    pub busy_replies: usize,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Time for a client to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time for a request's headers to arrive, counted from when the
    /// connection is ready for a request — so also how long an idle
    /// keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Time for a request's body to arrive after its headers.
    pub body_read_timeout: Duration,
    /// Interval of the comment lines that keep a quiet event stream alive.
    pub sse_keepalive: Duration,
    /// How long a shutdown waits for open connections (a followed log,
    /// say) before closing them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 128,
            busy_replies: 16,
            max_body: MAX_REQUEST_BYTES,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: rpc::IDLE_CONNECTION_CLOSE,
            body_read_timeout: Duration::from_secs(30),
            sse_keepalive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Largest request head (request line and headers), in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: &str = "5";

/// What every connection shares.
struct Shared<H> {
    auth: Arc<Auth>,
    handler: Arc<H>,
    limits: Limits,
}

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their requests (at most
/// [`Limits::shutdown_grace`]) and returns. Handler calls still running
/// then go on as tasks of the runtime.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    auth: Arc<Auth>,
    handler: Arc<H>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let busy_slots = Arc::new(Semaphore::new(limits.busy_replies));
    let shared = Arc::new(Shared {
        auth,
        handler,
        limits,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "API listening");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = connections.join_next() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!("an API connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
                        let stop = stop_rx.clone();
                        let shared = Arc::clone(&shared);
                        let acceptor = acceptor.clone();
                        connections.spawn(connection(tcp, peer, acceptor, shared, stop, permit));
                    } else if let Ok(permit) = Arc::clone(&busy_slots).try_acquire_owned() {
                        tracing::warn!(%peer, "connection limit reached: answering busy");
                        let limits = shared.limits.clone();
                        connections.spawn(refuse_busy(tcp, peer, acceptor.clone(), limits, permit));
                    } else {
                        tracing::warn!(%peer, "connection limit reached: closing unanswered");
                        drop(tcp);
                    }
                }
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = shared.limits.shutdown_grace;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "API connections still open after the shutdown grace: closing them"
        );
        connections.shutdown().await;
    }
    tracing::info!("API stopped");
}

/// One connection within the limit: TLS, then HTTP/1.1 requests until the
/// client closes, a timeout hits or the server stops.
async fn connection<H: Handler>(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared<H>>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let Some(tls) = handshake(&acceptor, tcp, peer, shared.limits.tls_handshake_timeout).await
    else {
        return;
    };
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&service_shared);
        async move { Ok::<_, Infallible>(route(req, peer, shared).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_connection_end(peer, result),
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            log_connection_end(peer, conn.await);
        }
    }
}

/// A connection over the limit: one HTTP 503 with a JSON-RPC `Busy` error.
async fn refuse_busy(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    limits: Limits,
    _permit: OwnedSemaphorePermit,
) {
    let Some(tls) = handshake(&acceptor, tcp, peer, limits.tls_handshake_timeout).await else {
        return;
    };
    let service = service_fn(|_req: Request<Incoming>| async {
        let mut res = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy.with(
                "the node is serving as many connections as it allows: try again in a few seconds",
            ),
        );
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
        Ok::<_, Infallible>(res)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    if tokio::time::timeout(limits.header_read_timeout + limits.body_read_timeout, conn)
        .await
        .is_err()
    {
        tracing::debug!(%peer, "busy answer not taken in time");
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender means the server is gone: stop too.
    let _ = stop.wait_for(|s| *s).await;
}

fn log_connection_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// One HTTP request, in a span naming the peer and (once known) the method.
async fn route<H: Handler>(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared<H>>,
) -> Response<ResBody> {
    let span = tracing::info_span!("rpc", %peer, method = tracing::field::Empty);
    let started = Instant::now();
    async move {
        let res = answer(req, peer, &shared).await;
        tracing::debug!(
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis(),
            "answered"
        );
        res
    }
    .instrument(span)
    .await
}

async fn answer<H: Handler>(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: &Shared<H>,
) -> Response<ResBody> {
    if req.uri().path() != RPC_PATH {
        return error_response(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest.with(format!("no such path: the API is `POST {RPC_PATH}`")),
        );
    }
    if req.method() != hyper::Method::POST {
        let mut res = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidRequest.with(format!("{RPC_PATH} takes POST only")),
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, &shared.limits).await {
        Ok(body) => body,
        Err(res) => return res,
    };
    let call = match parse_call(&body) {
        Ok(call) => call,
        Err((id, e)) => return json_response(StatusCode::OK, &rpc::Response::err(id, e)),
    };
    let Some((method, streams)) = lookup(&call.method) else {
        // Only known names go into the log: this one is the client's.
        tracing::Span::current().record("method", "(unknown)");
        let e = ErrorCode::MethodNotFound.with(format!(
            "no method `{}`",
            truncate(&call.method, MAX_LOGGED_METHOD)
        ));
        return json_response(StatusCode::OK, &rpc::Response::err(call.id, e));
    };
    tracing::Span::current().record("method", method);
    let token = bearer_token(&parts.headers);
    let id = call.id;
    let result = match method {
        AuthLogin::NAME => login(Arc::clone(&shared.auth), call.params, peer).await,
        AuthLogout::NAME => shared
            .auth
            .check(token)
            .and_then(|()| shared.auth.logout(token.unwrap_or_default()))
            .map(|()| Value::Object(serde_json::Map::new())),
        _ => {
            if let Err(e) = shared.auth.check(token) {
                return json_response(StatusCode::OK, &rpc::Response::err(id, e));
            }
            if streams && accepts_event_stream(&parts.headers) {
                return stream_call(
                    Arc::clone(&shared.handler),
                    method,
                    call.params,
                    id,
                    shared.limits.sse_keepalive,
                );
            }
            let handler = Arc::clone(&shared.handler);
            let params = call.params;
            let task = tokio::spawn(
                async move { handler.call(method, params, None).await }
                    .instrument(tracing::Span::current()),
            );
            joined(task).await
        }
    };
    if let Err(e) = &result {
        tracing::debug!(code = e.code.as_i32(), "call failed");
    }
    let res = match result {
        Ok(value) => rpc::Response::ok(id, value),
        Err(e) => rpc::Response::err(id, e),
    };
    json_response(StatusCode::OK, &res)
}

/// Reads the body within the size and time limits, or gives the error
/// response to send.
async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limits: &Limits,
) -> Result<Bytes, Response<ResBody>> {
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTooLarge.with(format!(
                "the request body is larger than {} bytes",
                limits.max_body
            )),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        limits.body_read_timeout,
        Limited::new(body, limits.max_body).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot read the request body");
            Err(error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest.with("the request body could not be read"),
            ))
        }
        Err(_) => Err(error_response(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidRequest.with(format!(
                "the request body did not arrive within {} s",
                limits.body_read_timeout.as_secs()
            )),
        )),
    }
}

async fn login(auth: Arc<Auth>, params: Value, peer: SocketAddr) -> Result<Value, ApiError> {
    // The message never quotes the parameters: they hold a password.
    let params: LoginParams = serde_json::from_value(params)
        .map_err(|_| ErrorCode::InvalidParams.with("auth.login takes {\"password\": \"…\"}"))?;
    // A task of its own: a client that hangs up mid-check still gets its
    // failure counted.
    let task = tokio::spawn(
        async move {
            let session = auth.login(&params.password, peer.ip()).await?;
            serde_json::to_value(session)
                .map_err(|_| ErrorCode::Internal.with("cannot encode the session"))
        }
        .instrument(tracing::Span::current()),
    );
    joined(task).await
}

/// The result of a call's task; a panic becomes an internal error.
async fn joined(task: JoinHandle<Result<Value, ApiError>>) -> Result<Value, ApiError> {
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a call panicked");
        Err(ErrorCode::Internal.with("the call failed inside the node; its log says more"))
    })
}
