//! A small HTTPS server that speaks the node's transport — `POST /rpc`,
//! JSON answers, server-sent-event streams — with a throwaway self-signed
//! certificate, so that the client and `archy` can be tested end to end
//! without a node. The answers come from a handler the test writes; every
//! request that got past TLS is recorded, so a test can also check that
//! nothing reached the server.
//!
//! HTTP/1.1 is written by hand, one request per connection
//! (`Connection: close`): a test must control exactly how a stream is cut
//! into chunks, which a full server would hide. Only for tests (feature
//! `test-server`).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use archipelago_api::ApiError;
use archipelago_api::methods::{BACKUP_CHUNK_BYTES, BackupChunk};
use archipelago_api::rpc::{Request, Response, SSE_RESPONSE, StreamEvent};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use base64::Engine as _;

use crate::pin;

/// One HTTP request as the server read it.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// `POST`, `GET`, …
    pub method: String,
    pub path: String,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestRequest {
    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC request in the body, if it is one.
    pub fn rpc(&self) -> Option<Request> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON-RPC method name, or `""`.
    pub fn rpc_method(&self) -> String {
        self.rpc().map(|r| r.method).unwrap_or_default()
    }

    /// The JSON-RPC id (null when absent or unreadable).
    pub fn rpc_id(&self) -> Value {
        self.rpc().and_then(|r| r.id).unwrap_or(Value::Null)
    }

    /// The JSON-RPC params (null when absent).
    pub fn rpc_params(&self) -> Value {
        self.rpc().and_then(|r| r.params).unwrap_or(Value::Null)
    }

    /// The token of `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// Whether the client asked for a streamed answer.
    pub fn wants_stream(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains(archipelago_api::rpc::EVENT_STREAM))
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum TestReply {
    /// An ordinary answer.
    Json { status: u16, body: Vec<u8> },
    /// A `text/event-stream` answer, written chunk by chunk with a flush and
    /// a short pause between chunks (so they arrive separately). With
    /// `hold_open` the server then waits for the client to hang up.
    Sse {
        chunks: Vec<Vec<u8>>,
        hold_open: bool,
    },
    /// Close the connection without answering.
    Hangup,
}

impl TestReply {
    /// HTTP 200 with a successful JSON-RPC response to `req`.
    pub fn result(req: &TestRequest, result: &impl Serialize) -> Self {
        let value = serde_json::to_value(result).unwrap_or(Value::Null);
        Self::response(200, &Response::ok(req.rpc_id(), value))
    }

    /// HTTP 200 with a JSON-RPC error response to `req`.
    pub fn error(req: &TestRequest, error: ApiError) -> Self {
        Self::response(200, &Response::err(req.rpc_id(), error))
    }

    /// Any response with any status.
    pub fn response(status: u16, response: &Response) -> Self {
        Self::Json {
            status,
            body: serde_json::to_vec(response).unwrap_or_default(),
        }
    }

    /// A stream of `events` then the response, as SSE, cut into chunks of
    /// `chunk_size` bytes (so that events and even line ends are split).
    pub fn stream(events: &[StreamEvent], response: &Response, chunk_size: usize) -> Self {
        let mut text = String::new();
        for event in events {
            let data = serde_json::to_string(event).unwrap_or_default();
            let _ = write!(text, "event: {}\ndata: {data}\n\n", event.sse_name());
        }
        let data = serde_json::to_string(response).unwrap_or_default();
        let _ = write!(text, "event: {SSE_RESPONSE}\ndata: {data}\n\n");
        Self::Sse {
            chunks: text
                .as_bytes()
                .chunks(chunk_size.max(1))
                .map(<[u8]>::to_vec)
                .collect(),
            hold_open: false,
        }
    }
}

/// The piece of the file `data` at `offset`, as a node answers
/// `backup.download` (empty and `eof` at or past the end).
pub fn backup_chunk(data: &[u8], offset: u64) -> BackupChunk {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = start.saturating_add(BACKUP_CHUNK_BYTES).min(data.len());
    BackupChunk {
        data_base64: base64::engine::general_purpose::STANDARD.encode(&data[start..end]),
        offset,
        total: data.len() as u64,
        eof: end == data.len(),
    }
}

type Handler = dyn Fn(&TestRequest) -> TestReply + Send + Sync;

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    fingerprint: [u8; 32],
    requests: Arc<Mutex<Vec<TestRequest>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1` with a new self-signed certificate,
    /// on a thread of its own (so that it also serves while a test blocks,
    /// e.g. on a child process).
    pub fn start(
        handler: impl Fn(&TestRequest) -> TestReply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .map_err(io::Error::other)?;
        let cert: CertificateDer<'static> = certified.cert.der().clone();
        let fingerprint = pin::certificate_fingerprint(cert.as_ref());
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(pin::provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("test-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        () = serve(listener, acceptor, handler, recorded) => {}
                        _ = stop => {}
                    }
                });
            })?;
        Ok(Self {
            address,
            fingerprint,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The SHA-256 of the server's certificate.
    pub const fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Every request that got past TLS, in order.
    pub fn requests(&self) -> Vec<TestRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<TestRequest>>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let handler = Arc::clone(&handler);
        let requests = Arc::clone(&requests);
        tokio::spawn(async move {
            // A failed handshake (a client refusing the certificate) is
            // part of what is tested: nothing to report here.
            let _ = connection(tcp, acceptor, handler, requests).await;
        });
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<TestRequest>>>,
) -> io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let Some(request) = read_request(&mut tls).await? else {
        return Ok(());
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    match handler(&request) {
        TestReply::Json { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            tls.write_all(head.as_bytes()).await?;
            tls.write_all(&body).await?;
        }
        TestReply::Sse { chunks, hold_open } => {
            tls.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
            )
            .await?;
            tls.flush().await?;
            for chunk in chunks {
                tls.write_all(&chunk).await?;
                tls.flush().await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if hold_open {
                let mut sink = [0u8; 1024];
                while tls.read(&mut sink).await? > 0 {}
            }
        }
        TestReply::Hangup => return Ok(()),
    }
    tls.flush().await?;
    tls.shutdown().await
}

/// Reads one request: head, then a `content-length` body. `None` when the
/// client hung up first.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> io::Result<Option<TestRequest>> {
    const MAX: usize = 2 * 1024 * 1024;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX {
            return Err(io::Error::other("request head too large"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(TestRequest {
        method,
        path,
        headers,
        body,
    }))
}

const fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
