//! The client against a real TLS server (the crate's test server): pinning,
//! typed calls, streamed calls, API errors and transport failures, over the
//! wire as a node would answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use archipelago_api::ErrorCode;
use archipelago_api::RunState;
use archipelago_api::methods::{
    AppParams, AppSettings, Empty, Health, InstallProgress, LogEntry, LogsParams, Method, NodeInfo,
    PackageInstall, PackageLogs, PackageStatus, PackageStatusMethod, Phase, Session,
};
use archipelago_api::rpc::{Response, StreamEvent};
use archipelago_client::test_server::{TestReply, TestServer};
use archipelago_client::{Client, ClientError, fetch_fingerprint};
use serde_json::json;

fn status(id: &str) -> PackageStatus {
    PackageStatus {
        id: id.into(),
        name: "Hello".into(),
        version: "1.0".into(),
        run: RunState::Running,
        health: Health::Healthy,
        containers: vec![],
        ui: None,
        problem: None,
        source: "archipelago".into(),
        update_available: None,
        last_backup: None,
        backup_overdue: false,
        settings: AppSettings::default(),
    }
}

fn progress(phase: Phase, done: u32, message: &str) -> StreamEvent {
    StreamEvent::Progress(InstallProgress {
        id: "hello-web".into(),
        phase,
        image: None,
        images_done: done,
        images_total: 2,
        blobs_seen: done * 3,
        message: message.into(),
        bytes_done: 0,
        bytes_total: 0,
    })
}

fn node_info() -> serde_json::Value {
    json!({
        "version": "0.1.0", "hostname": "node1", "uptime_secs": 5,
        "disk": {"total_bytes": 10, "free_bytes": 5},
        "memory": {"total_bytes": 10, "available_bytes": 5},
        "cpu": {"cores": 2, "load": [0.1, 0.2, 0.3]},
        "apps_installed": 1, "apps_running": 1, "apps_failed": 0
    })
}

#[tokio::test]
async fn calls_with_the_pinned_certificate_work_and_carry_the_token() {
    let server = TestServer::start(|req| TestReply::result(req, &node_info())).unwrap();
    let client = Client::new(&server.address(), server.fingerprint())
        .unwrap()
        .with_token("tok-1");
    let info = client.call::<NodeInfo>(Empty {}).await.unwrap();
    assert_eq!(info.hostname, "node1");
    client.call::<NodeInfo>(Empty {}).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert!(
        first
            .header("user-agent")
            .unwrap()
            .starts_with("archipelago-client/")
    );
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/rpc");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.bearer(), Some("tok-1"));
    assert!(!first.wants_stream());
    let rpc = first.rpc().unwrap();
    assert_eq!(rpc.jsonrpc, "2.0");
    assert_eq!(rpc.method, "node.info");
    assert_eq!(rpc.params, Some(json!({})));
    // Request ids increase.
    assert_eq!(requests[0].rpc_id(), json!(1));
    assert_eq!(requests[1].rpc_id(), json!(2));
}

#[tokio::test]
async fn a_different_certificate_is_refused_before_anything_is_sent() {
    let server = TestServer::start(|req| TestReply::result(req, &node_info())).unwrap();
    let mut pinned = server.fingerprint();
    pinned[0] ^= 1;
    let client = Client::new(&server.address(), pinned)
        .unwrap()
        .with_token("secret-token");
    let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
    match &err {
        ClientError::FingerprintMismatch {
            address,
            expected,
            presented,
        } => {
            assert_eq!(address, &server.address());
            assert_eq!(expected, &pinned);
            assert_eq!(presented, &server.fingerprint());
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("refusing"), "{err}");
    assert_eq!(err.code(), None);
    assert!(server.requests().is_empty(), "a request reached the server");
}

#[tokio::test]
async fn login_keeps_the_token_and_sends_no_authorization_itself() {
    let server = TestServer::start(|req| match req.rpc_method().as_str() {
        "auth.login" => {
            if req.rpc_params() == json!({"password": "hunter2"}) {
                TestReply::result(
                    req,
                    &Session {
                        token: "fresh".into(),
                        expires_at: 99,
                    },
                )
            } else {
                TestReply::error(req, ErrorCode::LoginFailed.with("wrong password"))
            }
        }
        _ => TestReply::result(req, &status("hello-web")),
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint())
        .unwrap()
        .with_token("stale");
    let err = client.login("wrong").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::LoginFailed));
    assert_eq!(client.token().as_deref(), Some("stale"));

    let session = client.login("hunter2").await.unwrap();
    assert_eq!(session.expires_at, 99);
    assert_eq!(client.token().as_deref(), Some("fresh"));
    client
        .call::<PackageStatusMethod>(AppParams {
            id: "hello-web".into(),
        })
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].bearer(), None);
    assert_eq!(requests[1].bearer(), None);
    assert_eq!(requests[2].bearer(), Some("fresh"));
    assert_eq!(requests[2].rpc_method(), PackageStatusMethod::NAME);
}

#[tokio::test]
async fn a_streamed_call_delivers_its_events_in_order_then_the_result() {
    let events = vec![
        progress(Phase::Validating, 0, "checking the manifest"),
        progress(Phase::Pulling, 0, "Copying blob 3f1e"),
        StreamEvent::Log(LogEntry {
            container: "web".into(),
            stream: "stdout".into(),
            text: "listening".into(),
        }),
        progress(Phase::Pulling, 1, "Copying blob 77aa"),
        progress(Phase::Healthy, 2, "hello-web is healthy"),
    ];
    let sent = events.clone();
    let server = TestServer::start(move |req| {
        assert!(req.wants_stream());
        let response = Response::ok(
            req.rpc_id(),
            serde_json::to_value(status("hello-web")).unwrap(),
        );
        // Chunks of 7 bytes: every event and most line ends are split.
        TestReply::stream(&sent, &response, 7)
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint())
        .unwrap()
        .with_token("t");
    let mut seen = Vec::new();
    let result = client
        .call_streaming::<PackageInstall>(
            AppParams {
                id: "hello-web".into(),
            },
            |e| seen.push(e),
        )
        .await
        .unwrap();
    assert_eq!(seen, events);
    assert_eq!(result, status("hello-web"));
    assert_eq!(
        server.requests()[0].header("accept"),
        Some("text/event-stream")
    );
}

#[tokio::test]
async fn a_stream_in_crlf_with_comments_is_read_byte_by_byte() {
    let server = TestServer::start(|req| {
        let response =
            serde_json::to_string(&Response::ok(req.rpc_id(), json!({"lines": []}))).unwrap();
        let text = format!(
            ": keep-alive\r\n\r\nevent: log\r\ndata: {{\"kind\":\"log\",\"container\":\"web\",\"stream\":\"stderr\",\"text\":\"x\"}}\r\n\r\nevent: response\r\ndata: {response}\r\n\r\n"
        );
        TestReply::Sse {
            chunks: text.as_bytes().chunks(1).map(<[u8]>::to_vec).collect(),
            hold_open: false,
        }
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let mut seen = Vec::new();
    let result = client
        .call_streaming::<PackageLogs>(
            LogsParams {
                id: "hello-web".into(),
                container: None,
                lines: 10,
                follow: true,
            },
            |e| seen.push(e),
        )
        .await
        .unwrap();
    assert!(result.lines.is_empty());
    assert_eq!(
        seen,
        vec![StreamEvent::Log(LogEntry {
            container: "web".into(),
            stream: "stderr".into(),
            text: "x".into(),
        })]
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_its_response_is_a_protocol_error() {
    let server = TestServer::start(|_| TestReply::Sse {
        chunks: vec![b"event: progress\ndata: {\"kind\":\"progress\",\"id\":\"a\",\"phase\":\"pulling\",\"images_done\":0,\"images_total\":1,\"blobs_seen\":0,\"message\":\"m\"}\n\n".to_vec()],
        hold_open: false,
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let mut count = 0;
    let err = client
        .call_streaming::<PackageInstall>(AppParams { id: "a".into() }, |_| count += 1)
        .await
        .unwrap_err();
    assert_eq!(count, 1);
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("before the response"), "{err}");
}

#[tokio::test]
async fn an_error_before_streaming_comes_back_as_an_api_error() {
    let server = TestServer::start(|req| {
        TestReply::error(req, ErrorCode::Unauthenticated.with("log in first"))
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let err = client
        .call_streaming::<PackageInstall>(AppParams { id: "a".into() }, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test]
async fn a_streamed_error_response_is_an_api_error() {
    let server = TestServer::start(|req| {
        let response = Response::err(
            req.rpc_id(),
            ErrorCode::InstallFailed.with("hello-web did not become healthy; rolled back"),
        );
        TestReply::stream(&[progress(Phase::RollingBack, 0, "undoing")], &response, 64)
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let err = client
        .call_streaming::<PackageInstall>(AppParams { id: "a".into() }, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InstallFailed));
    assert!(err.to_string().contains("rolled back"));
}

#[tokio::test]
async fn api_errors_come_back_with_their_code() {
    let server = TestServer::start(|req| {
        TestReply::error(
            req,
            ErrorCode::AppNotInstalled.with("nope is not installed"),
        )
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let err = client
        .call::<PackageStatusMethod>(AppParams { id: "nope".into() })
        .await
        .unwrap_err();
    match &err {
        ClientError::Api(e) => {
            assert_eq!(e.code, ErrorCode::AppNotInstalled);
            assert_eq!(e.message, "nope is not installed");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    assert_eq!(err.code(), Some(ErrorCode::AppNotInstalled));
}

#[tokio::test]
async fn an_http_error_status_with_a_json_rpc_body_is_an_api_error() {
    let server = TestServer::start(|_| {
        TestReply::response(
            503,
            &Response::err(json!(null), ErrorCode::Busy.with("too many connections")),
        )
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Busy));
}

#[tokio::test]
async fn answers_that_are_not_the_api_are_protocol_errors() {
    let server = TestServer::start(|req| match req.rpc_id().as_u64() {
        Some(1) => TestReply::Json {
            status: 200,
            body: b"<html>hello</html>".to_vec(),
        },
        Some(2) => TestReply::Json {
            status: 404,
            body: b"not found".to_vec(),
        },
        // The answer of another request.
        Some(3) => TestReply::result(
            &archipelago_client::test_server::TestRequest {
                body: br#"{"jsonrpc":"2.0","id":77,"method":"x"}"#.to_vec(),
                ..req.clone()
            },
            &node_info(),
        ),
        // A result of the wrong shape.
        _ => TestReply::result(req, &json!({"hostname": 3})),
    })
    .unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    for want in [
        "not a JSON-RPC response",
        "HTTP 404",
        "request 77",
        "expected shape",
    ] {
        let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
        assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
        assert!(err.to_string().contains(want), "{err} should say {want}");
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let client = Client::new(&address, [0; 32]).unwrap();
    let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&address), "{err}");
    let err = fetch_fingerprint(&address).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_hangup_is_reported_not_hidden() {
    let server = TestServer::start(|_| TestReply::Hangup).unwrap();
    let client = Client::new(&server.address(), server.fingerprint()).unwrap();
    let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("closed the connection"), "{err}");
}

#[tokio::test]
async fn fetch_fingerprint_reads_the_certificate_and_sends_nothing() {
    let server = TestServer::start(|req| TestReply::result(req, &node_info())).unwrap();
    let fingerprint = fetch_fingerprint(&server.address()).await.unwrap();
    assert_eq!(fingerprint, server.fingerprint());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_tls_failure_that_is_not_the_certificate_is_a_tls_error() {
    // A plain TCP server that answers the TLS hello with HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let client = Client::new(&address, [0; 32]).unwrap();
    let err = client.call::<NodeInfo>(Empty {}).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
}

/// The desktop app runs calls on a multi-threaded runtime (Tauri commands):
/// the client and its futures must be `Send`.
#[test]
fn clients_and_their_calls_can_move_between_threads() {
    fn send<T: Send + Sync>(_: &T) {}
    fn send_future<T: Send>(_: T) {}
    let client = Client::new("node.local", [0; 32]).unwrap();
    send(&client);
    send_future(client.call::<NodeInfo>(Empty {}));
    send_future(client.call_streaming::<PackageInstall>(AppParams { id: "a".into() }, |_| {}));
    send_future(fetch_fingerprint("node.local"));
}
