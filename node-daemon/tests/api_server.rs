//! The node's API server end to end: a real server on 127.0.0.1:0 with a
//! temporary layout and a small fake handler, spoken to over TLS (pinning
//! the certificate's fingerprint, as clients do) with hyper's HTTP/1.1
//! client. Covers login and sessions, the envelope and its errors, body and
//! connection limits, streaming, and the certificate across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use archipelago_api::ErrorCode;
use archipelago_api::methods::{AppParams, InstallProgress, LogEntry, Phase};
use archipelago_api::rpc::{self, MAX_REQUEST_BYTES, RPC_PATH, StreamEvent};
use archipelagod::api::auth::{AuthSettings, MIN_BCRYPT_COST};
use archipelagod::api::tls::KEY_FILE;
use archipelagod::api::{Auth, Events, Handler, Limits, TlsIdentity, serve};
use archipelagod::layout::Layout;
use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------- handler

/// Answers a few methods the way the real service would, and records what
/// happened to streamed calls.
#[derive(Debug, Default)]
struct Fake {
    /// Calls that reached the handler.
    calls: AtomicUsize,
    /// `package.logs` calls that ran to their end.
    logs_finished: AtomicUsize,
    /// Event sends that failed (nobody listening).
    sends_failed: AtomicUsize,
    done: Notify,
}

impl Handler for Fake {
    async fn call(
        &self,
        method: &str,
        params: Value,
        events: Option<Events>,
    ) -> Result<Value, archipelago_api::ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match method {
            "node.info" => Ok(json!({ "version": "test" })),
            "package.status" => {
                let p: AppParams = serde_json::from_value(params)
                    .map_err(|e| ErrorCode::InvalidParams.with(e.to_string()))?;
                Ok(json!({ "id": p.id }))
            }
            "package.install" => {
                let p: AppParams = serde_json::from_value(params)
                    .map_err(|e| ErrorCode::InvalidParams.with(e.to_string()))?;
                for (i, phase) in [Phase::Validating, Phase::Pulling, Phase::Starting]
                    .into_iter()
                    .enumerate()
                {
                    if let Some(events) = &events {
                        let progress = InstallProgress {
                            id: p.id.clone(),
                            phase,
                            image: None,
                            images_done: u32::try_from(i).unwrap_or(0),
                            images_total: 3,
                            blobs_seen: 0,
                            message: format!("step {i}"),
                            bytes_done: 0,
                            bytes_total: 0,
                        };
                        let _ = events.send(StreamEvent::Progress(progress)).await;
                    }
                }
                Ok(json!({ "installed": p.id }))
            }
            "package.logs" => {
                // Keeps sending for a while, like a followed log.
                for i in 0..40 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(events) = &events {
                        let line = LogEntry {
                            container: "web".into(),
                            stream: "stdout".into(),
                            text: format!("line {i}"),
                        };
                        if events.send(StreamEvent::Log(line)).await.is_err() {
                            self.sends_failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                self.logs_finished.fetch_add(1, Ordering::SeqCst);
                self.done.notify_waiters();
                Ok(json!({ "lines": [] }))
            }
            _ => Err(ErrorCode::MethodNotFound.with(format!("the fake has no {method}"))),
        }
    }
}

// ----------------------------------------------------------------- server

/// A node's files, kept across server restarts.
struct Node {
    _dir: tempfile::TempDir,
    layout: Layout,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        Self { _dir: dir, layout }
    }
}

struct Server {
    addr: SocketAddr,
    pin: [u8; 32],
    handler: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(node: &Node, limits: Limits) -> Self {
        let identity = TlsIdentity::load_or_create(&node.layout).unwrap();
        let auth = Auth::with_settings(
            &node.layout,
            AuthSettings {
                bcrypt_cost: MIN_BCRYPT_COST,
                ..AuthSettings::default()
            },
        )
        .unwrap();
        if !archipelagod::api::auth::password_is_set(&node.layout).unwrap() {
            auth.set_password(PASSWORD).unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(Fake::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            identity.server_config(),
            Arc::new(auth),
            Arc::clone(&handler),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            pin: identity.fingerprint_bytes(),
            handler,
            stop: Some(stop),
            task,
        }
    }

    fn client(&self) -> Client {
        Client {
            addr: self.addr,
            pin: self.pin,
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

// ----------------------------------------------------------------- client

/// Accepts exactly one certificate: the one with the pinned SHA-256.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint does not match the pin".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

type ReqBody = Either<Full<Bytes>, Chunks>;

/// A request body sent chunked (no Content-Length).
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

#[derive(Clone, Copy)]
struct Client {
    addr: SocketAddr,
    pin: [u8; 32],
}

struct Conn {
    sender: SendRequest<ReqBody>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn rpc(&self) -> rpc::Response {
        assert_eq!(
            self.headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "status {}",
            self.status
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not a JSON-RPC response ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error_code(&self) -> ErrorCode {
        let res = self.rpc();
        assert!(res.result.is_none());
        res.into_result().unwrap_err().code
    }
}

fn tls_config(
    pin: [u8; 32],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Client {
    async fn try_connect_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let connector = TlsConnector::from(tls_config(self.pin, versions));
        let tls = connector
            .connect(ServerName::try_from("archipelago-node")?, tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, ReqBody>(TokioIo::new(tls)).await?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, task })
    }

    async fn try_connect(&self) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
        self.try_connect_with(rustls::DEFAULT_VERSIONS).await
    }

    async fn connect(&self) -> Conn {
        self.try_connect().await.unwrap()
    }

    /// One call on a fresh connection.
    async fn call(&self, method: &str, params: Value, token: Option<&str>) -> rpc::Response {
        self.connect().await.call(method, params, token).await
    }

    async fn login(&self) -> String {
        self.connect().await.login().await
    }
}

fn request(method: hyper::Method, path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "archipelago-node")
        .header(header::CONTENT_TYPE, "application/json")
}

impl Conn {
    async fn try_send(
        &mut self,
        req: Request<ReqBody>,
    ) -> Result<hyper::Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    async fn send(&mut self, req: Request<ReqBody>) -> Reply {
        let res = self.try_send(req).await.unwrap();
        let (parts, body) = res.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn post(&mut self, body: impl Into<Bytes>, token: Option<&str>) -> Reply {
        let mut req = request(hyper::Method::POST, RPC_PATH);
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(req.body(Either::Left(Full::new(body.into()))).unwrap())
            .await
    }

    async fn call(&mut self, method: &str, params: Value, token: Option<&str>) -> rpc::Response {
        let body = serde_json::to_vec(&rpc::Request::new(1, method, params)).unwrap();
        let reply = self.post(body, token).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.rpc()
    }

    async fn login(&mut self) -> String {
        let res = self
            .call("auth.login", json!({ "password": PASSWORD }), None)
            .await;
        let session: archipelago_api::methods::Session =
            serde_json::from_value(res.into_result().unwrap()).unwrap();
        session.token
    }

    /// Starts a call asking for an event stream; returns the response head
    /// and its body for the caller to read.
    async fn stream(
        &mut self,
        method: &str,
        params: Value,
        token: &str,
    ) -> hyper::Response<Incoming> {
        let body = serde_json::to_vec(&rpc::Request::new(7, method, params)).unwrap();
        let req = request(hyper::Method::POST, RPC_PATH)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "text/event-stream")
            .body(Either::Left(Full::new(Bytes::from(body))))
            .unwrap();
        self.try_send(req).await.unwrap()
    }
}

/// Reads server-sent events until the body ends or `limit` events came:
/// `(event name, data)` pairs, comment lines skipped.
async fn read_events(body: &mut Incoming, limit: usize) -> Vec<(String, String)> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_owned());
                }
            }
            if let (Some(n), Some(d)) = (name, data) {
                events.push((n, d));
            }
        }
    }
    events
}

fn test_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn login_gives_a_token_and_failed_logins_are_slowed_down() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();

    let token = client.login().await;
    assert_eq!(token.len(), 64);
    let res = client.call("node.info", Value::Null, Some(&token)).await;
    assert_eq!(res.into_result().unwrap(), json!({ "version": "test" }));

    let res = client
        .call("auth.login", json!({ "password": "wrong password" }), None)
        .await;
    assert_eq!(res.into_result().unwrap_err().code, ErrorCode::LoginFailed);
    // Even the right password must wait now.
    let e = client
        .call("auth.login", json!({ "password": PASSWORD }), None)
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyAttempts);
    assert!(e.message.contains("try again in 1 s"), "{}", e.message);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.login().await;

    // Parameters that are not a password object: InvalidParams, without
    // quoting them back.
    let e = client
        .call(
            "auth.login",
            json!({ "password": 12_345_678, "x": "secret-ish" }),
            None,
        )
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert!(
        !e.message.contains("12345678") && !e.message.contains("secret-ish"),
        "{}",
        e.message
    );
    server.shutdown().await;
}

#[tokio::test]
async fn methods_need_a_live_session_checked_before_the_handler() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();
    let unauthenticated = |res: rpc::Response| {
        let e = res.into_result().unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated, "{e}");
        assert!(e.message.contains("archy login"), "{}", e.message);
    };

    unauthenticated(client.call("node.info", Value::Null, None).await);
    unauthenticated(
        client
            .call("node.info", Value::Null, Some(&"0".repeat(64)))
            .await,
    );
    unauthenticated(
        client
            .call("package.install", json!({ "id": "x" }), Some("garbage"))
            .await,
    );
    unauthenticated(client.call("auth.logout", Value::Null, None).await);
    assert_eq!(
        server.handler.calls.load(Ordering::SeqCst),
        0,
        "the handler saw an unauthenticated call"
    );

    let token = client.login().await;
    let mut conn = client.connect().await;
    assert!(
        conn.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    // Methods the server knows but the handler does not answer reach it.
    let res = conn
        .call("package.stats", json!({ "id": "x" }), Some(&token))
        .await;
    assert_eq!(
        res.into_result().unwrap_err().code,
        ErrorCode::MethodNotFound
    );
    assert_eq!(
        conn.call("auth.logout", Value::Null, Some(&token))
            .await
            .into_result()
            .unwrap(),
        json!({})
    );
    unauthenticated(conn.call("node.info", Value::Null, Some(&token)).await);
    unauthenticated(conn.call("auth.logout", Value::Null, Some(&token)).await);
    assert_eq!(server.handler.calls.load(Ordering::SeqCst), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn requests_outside_post_rpc_get_404_405_and_unknown_methods_method_not_found() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let mut conn = server.client().connect().await;
    let empty = || Either::Left(Full::new(Bytes::new()));

    let reply = conn
        .send(
            request(hyper::Method::POST, "/other")
                .body(empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), ErrorCode::InvalidRequest);
    let reply = conn
        .send(request(hyper::Method::GET, RPC_PATH).body(empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get(header::ALLOW).unwrap(), "POST");
    assert_eq!(reply.error_code(), ErrorCode::InvalidRequest);

    let reply = conn
        .post(r#"{"jsonrpc":"2.0","id":"abc","method":"no.such"}"#, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let res = reply.rpc();
    assert_eq!(res.id, json!("abc"));
    assert_eq!(
        res.into_result().unwrap_err().code,
        ErrorCode::MethodNotFound
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_request_too_large() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();
    let token = client.login().await;

    // With a Content-Length: refused before the body is read.
    let big = vec![b' '; MAX_REQUEST_BYTES + 1];
    let reply = client.connect().await.post(big, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), ErrorCode::RequestTooLarge);

    // Chunked: cut off once past the limit.
    let chunks: VecDeque<Bytes> = (0..20)
        .map(|_| Bytes::from(vec![b' '; 64 * 1024]))
        .collect();
    let req = request(hyper::Method::POST, RPC_PATH)
        .body(Either::Right(Chunks(chunks)))
        .unwrap();
    let reply = client.connect().await.send(req).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), ErrorCode::RequestTooLarge);

    // Exactly at the limit is read (and is a valid call padded with spaces).
    let call = serde_json::to_vec(&rpc::Request::new(3, "node.info", Value::Null)).unwrap();
    let mut padded = call.clone();
    padded.resize(MAX_REQUEST_BYTES, b' ');
    let reply = client.connect().await.post(padded, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.rpc().error.is_none());
    server.shutdown().await;
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

/// JSON that is not a JSON-RPC request object.
const WRONG_SHAPES: &[&str] = &[
    r#"{"jsonrpc":2.0,"id":1,"method":"node.info"}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":["node.info"]}"#,
    r#"{"jsonrpc":"2.0","id":[1],"method":"node.info"}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"node.info","params":"x"}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"node.info","params":17}"#,
    r#"{"jsonrpc":"1.0","id":1,"method":"node.info"}"#,
    r#"{"id":1,"method":"node.info"}"#,
    r#"{"jsonrpc":"2.0","id":1}"#,
    "null",
    "true",
    r#""a string""#,
    "123",
    "{}",
];

/// Bodies whose exact error is the parser's business.
const ODD: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"node.info\ud800"}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"node.info","params":{"a":NaN}}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"node.info",}"#,
    "\u{feff}{}",
    "",
];

/// A malformed (or unauthorised, or ill-typed) body and, where it is sure,
/// the error code it must get.
fn malformed(rng: &mut XorShift, i: usize) -> (Vec<u8>, Option<ErrorCode>) {
    let valid = br#"{"jsonrpc":"2.0","id":1,"method":"package.status","params":{"id":"hello"}}"#;
    match i % 10 {
        0 => {
            let n = rng.below(300);
            let mut b = rng.bytes(n);
            // Never valid JSON by accident: a stray byte first.
            b.insert(0, b'#');
            (b, Some(ErrorCode::ParseError))
        }
        1 => {
            let mut b = br#"{"jsonrpc":"2.0","id":1,"method":"node."#.to_vec();
            b.extend([0xff, 0xfe, 0xc3]);
            let n = rng.below(20);
            b.extend(rng.bytes(n));
            b.extend(br#""}"#);
            (b, Some(ErrorCode::ParseError))
        }
        2 => (
            WRONG_SHAPES[rng.below(WRONG_SHAPES.len())]
                .as_bytes()
                .to_vec(),
            Some(ErrorCode::InvalidRequest),
        ),
        3 => {
            let n = rng.below(4);
            let items = vec![String::from_utf8_lossy(valid).into_owned(); n].join(",");
            (
                format!("[{items}]").into_bytes(),
                Some(ErrorCode::InvalidRequest),
            )
        }
        4 => {
            // Numbers past f64: not JSON serde can hold.
            let digits = 400 + rng.below(2000);
            let number = format!("1{}", "0".repeat(digits));
            let body =
                format!(r#"{{"jsonrpc":"2.0","id":{number}e{digits},"method":"node.info"}}"#);
            (body.into_bytes(), Some(ErrorCode::ParseError))
        }
        5 => {
            // Nesting deeper than the parser's limit, in params.
            let depth = 200 + rng.below(5000);
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"node.info","params":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            (body.into_bytes(), Some(ErrorCode::ParseError))
        }
        6 => {
            let cut = rng.below(valid.len() - 1);
            (valid[..cut].to_vec(), Some(ErrorCode::ParseError))
        }
        7 => {
            let n = 1 + rng.below(30);
            let name = String::from_utf8_lossy(&rng.bytes(n))
                .replace(['"', '\\'], "")
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>();
            let body = json!({ "jsonrpc": "2.0", "id": i, "method": format!("x.{name}") });
            (
                serde_json::to_vec(&body).unwrap(),
                Some(ErrorCode::MethodNotFound),
            )
        }
        8 => {
            let params = [
                json!({ "id": 5 }),
                json!({}),
                json!({ "id": "a", "extra": true }),
                json!([1, 2]),
            ];
            let params = &params[rng.below(4)];
            let body =
                json!({ "jsonrpc": "2.0", "id": i, "method": "package.status", "params": params });
            (
                serde_json::to_vec(&body).unwrap(),
                Some(ErrorCode::InvalidParams),
            )
        }
        _ => (ODD[rng.below(ODD.len())].as_bytes().to_vec(), None),
    }
}

#[tokio::test]
async fn a_thousand_malformed_bodies_each_get_a_json_rpc_error_and_the_server_keeps_serving() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();
    let token = client.login().await;
    let mut conn = client.connect().await;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..1000 {
        let (body, expected) = malformed(&mut rng, i);
        let reply = conn.post(body.clone(), Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "body {i}: {:?}",
            String::from_utf8_lossy(&body)
        );
        let code = reply.error_code();
        if let Some(expected) = expected {
            assert_eq!(
                code,
                expected,
                "body {i}: {:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    // The same connection, then a new one, still serve valid calls.
    assert!(
        conn.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    let res = client
        .call("package.status", json!({ "id": "hello" }), Some(&token))
        .await;
    assert_eq!(res.into_result().unwrap(), json!({ "id": "hello" }));
    server.shutdown().await;
}

#[tokio::test]
async fn a_streamed_call_sends_its_events_then_the_response() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();
    let token = client.login().await;
    let mut conn = client.connect().await;

    let res = conn
        .stream("package.install", json!({ "id": "hello-web" }), &token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/event-stream"
    );
    let mut body = res.into_body();
    let events = read_events(&mut body, usize::MAX).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["progress", "progress", "progress", "response"]);
    let first: StreamEvent = serde_json::from_str(&events[0].1).unwrap();
    let StreamEvent::Progress(p) = first else {
        panic!("{first:?}")
    };
    assert_eq!((p.id.as_str(), p.phase), ("hello-web", Phase::Validating));
    let response: rpc::Response = serde_json::from_str(&events[3].1).unwrap();
    assert_eq!(response.id, json!(7));
    assert_eq!(
        response.into_result().unwrap(),
        json!({ "installed": "hello-web" })
    );

    // The connection is still usable afterwards.
    assert!(
        conn.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );

    // A handler error ends the stream as an error response.
    let res = conn
        .stream("package.install", json!({ "id": 3 }), &token)
        .await;
    let events = read_events(&mut res.into_body(), usize::MAX).await;
    assert_eq!(events.len(), 1);
    let response: rpc::Response = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(
        response.into_result().unwrap_err().code,
        ErrorCode::InvalidParams
    );

    // Without `Accept: text/event-stream`, or for a method that does not
    // stream, the answer is plain JSON.
    let res = conn
        .call(
            "package.install",
            json!({ "id": "hello-web" }),
            Some(&token),
        )
        .await;
    assert_eq!(
        res.into_result().unwrap(),
        json!({ "installed": "hello-web" })
    );
    let res = conn.stream("node.info", Value::Null, &token).await;
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_handler_keeps_running_after_the_client_drops_a_stream() {
    let node = Node::new();
    let server = Server::start(&node, test_limits()).await;
    let client = server.client();
    let token = client.login().await;
    let handler = Arc::clone(&server.handler);
    let done = handler.done.notified();
    let mut done = std::pin::pin!(done);
    done.as_mut().enable();
    {
        let mut conn = client.connect().await;
        let res = conn
            .stream(
                "package.logs",
                json!({ "id": "hello-web", "follow": true }),
                &token,
            )
            .await;
        let mut body = res.into_body();
        let events = read_events(&mut body, 2).await;
        assert_eq!(events[0].0, "log");
        // Dropping the body and the connection hangs up.
    }
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("the handler ran to its end");
    assert_eq!(handler.logs_finished.load(Ordering::SeqCst), 1);
    assert!(
        handler.sends_failed.load(Ordering::SeqCst) > 0,
        "sends after the hang-up should fail"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_503_busy_then_are_closed_unanswered() {
    let node = Node::new();
    let limits = Limits {
        max_connections: 2,
        busy_replies: 1,
        ..test_limits()
    };
    let server = Server::start(&node, limits).await;
    let client = server.client();
    // Logged in on a connection kept open, so that no closed connection
    // still holds a slot while the server notices it.
    let mut a = client.connect().await;
    let token = a.login().await;
    let mut b = client.connect().await;
    assert!(
        a.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    assert!(
        b.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );

    // Over the limit: HTTP 503 with a JSON-RPC Busy error.
    let reply = client.connect().await.post("{}", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(reply.error_code(), ErrorCode::Busy);

    // While one busy answer is pending (a connection that sends nothing),
    // further connections are closed without one.
    let pending = client.connect().await;
    let refused = async {
        match client.try_connect().await {
            Err(_) => true,
            Ok(mut c) => c
                .try_send(
                    request(hyper::Method::POST, RPC_PATH)
                        .body(Either::Left(Full::new(Bytes::from_static(b"{}"))))
                        .unwrap(),
                )
                .await
                .is_err(),
        }
    };
    assert!(
        refused.await,
        "a connection beyond the busy answers is closed"
    );
    drop(pending);

    // A closed connection frees its slot.
    drop(a);
    let mut slot_reused = false;
    for _ in 0..50 {
        // Until the server has noticed the closed connections, a new one
        // may still be answered busy, or closed.
        if let Ok(mut conn) = client.try_connect().await {
            let body = serde_json::to_vec(&rpc::Request::new(1, "node.info", Value::Null)).unwrap();
            let req = request(hyper::Method::POST, RPC_PATH)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Either::Left(Full::new(Bytes::from(body))))
                .unwrap();
            if conn
                .try_send(req)
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                slot_reused = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slot_reused,
        "a slot freed by a closed connection is used again"
    );
    assert!(
        b.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_free_their_slot() {
    let node = Node::new();
    let limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = Server::start(&node, limits).await;
    let client = server.client();
    let mut idle = client.connect().await;
    let token = idle.login().await;
    assert!(
        idle.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let res = client.call("node.info", Value::Null, Some(&token)).await;
    assert!(res.error.is_none(), "{res:?}");
    assert!(idle.sender.is_closed() || idle.sender.ready().await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn the_certificate_survives_a_restart_and_a_deleted_key_makes_a_new_one() {
    let node = Node::new();
    let first = Server::start(&node, test_limits()).await;
    let pin = first.pin;
    let token = first.client().login().await;
    first.shutdown().await;

    // Same fingerprint, and the session too survived.
    let second = Server::start(&node, test_limits()).await;
    assert_eq!(second.pin, pin);
    let client = second.client();
    assert!(
        client
            .call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    // TLS 1.2 clients are served too.
    let mut conn = client
        .try_connect_with(&[&rustls::version::TLS12])
        .await
        .unwrap();
    assert!(
        conn.call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    second.shutdown().await;

    std::fs::remove_file(node.layout.tls_dir().join(KEY_FILE)).unwrap();
    let third = Server::start(&node, test_limits()).await;
    assert_ne!(third.pin, pin);
    // A client pinning the old fingerprint refuses the new certificate...
    let old = Client {
        addr: third.addr,
        pin,
    };
    assert!(old.try_connect().await.is_err());
    // ...and one pinning the new one is served.
    assert!(
        third
            .client()
            .call("node.info", Value::Null, Some(&token))
            .await
            .error
            .is_none()
    );
    third.shutdown().await;
}
