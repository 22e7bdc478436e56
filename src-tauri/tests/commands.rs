//! The commands as the frontend calls them — through Tauri's IPC, on the
//! mock runtime — against fake nodes: the client crate's TLS JSON-RPC test
//! server (a real certificate, real pinning, real HTTP), answering like a
//! node would. Only loopback is used.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    AppSettings, BACKUP_CHUNK_BYTES, BackupChunk, BackupInfo, BackupListResult, BackupUploadResult,
    CatalogIconResult, ContainerStatus, CpuInfo, DiskInfo, Health, InstallProgress, LogEntry,
    MemoryInfo, NodeInfoResult, PackageListResult, PackageStatus, Phase, Session, UiLink,
    UpdateResult,
};
use archipelago_api::rpc::{Response, StreamEvent, format_fingerprint};
use archipelago_api::{ActiveState, RunState};
use archipelago_client::test_server::{TestReply, TestRequest, TestServer};
use archipelago_desktop::Settings;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

const PASSWORD: &str = "correct horse battery staple";
const TOKEN: &str = "session-token-0123456789";

// ---- a fake node ------------------------------------------------------

fn info() -> NodeInfoResult {
    NodeInfoResult {
        version: "0.1.0".into(),
        hostname: "fake-node".into(),
        uptime_secs: 3600,
        disk: DiskInfo {
            total_bytes: 100 << 30,
            free_bytes: 60 << 30,
        },
        memory: MemoryInfo {
            total_bytes: 8 << 30,
            available_bytes: 6 << 30,
        },
        cpu: CpuInfo {
            cores: 4,
            load: [0.5, 0.4, 0.3],
        },
        apps_installed: 1,
        apps_running: 1,
        apps_failed: 0,
    }
}

fn status(id: &str, health: Health) -> PackageStatus {
    PackageStatus {
        id: id.into(),
        name: "Hello Web".into(),
        version: "1.0.0".into(),
        run: RunState::Running,
        health,
        containers: vec![ContainerStatus {
            name: format!("{id}_web"),
            unit: format!("{id}_web.service"),
            active_state: ActiveState::Active,
            sub_state: "running".into(),
        }],
        ui: Some(UiLink {
            scheme: "http".into(),
            port: 8080,
            path: "/".into(),
        }),
        problem: None,
        source: "archipelago".into(),
        update_available: None,
        last_backup: None,
        backup_overdue: false,
        settings: AppSettings::default(),
    }
}

fn progress(phase: Phase, message: &str) -> StreamEvent {
    bytes_progress(phase, message, 0, 0)
}

fn bytes_progress(phase: Phase, message: &str, done: u64, total: u64) -> StreamEvent {
    StreamEvent::Progress(InstallProgress {
        id: "hello-web".into(),
        phase,
        image: None,
        images_done: 0,
        images_total: 1,
        blobs_seen: 0,
        message: message.into(),
        bytes_done: done,
        bytes_total: total,
    })
}

/// The message of an update the node rolled back: several lines, kept as
/// they are.
const ROLLED_BACK: &str = "update of hello-web to 1.1.0 rolled back: container hello-web_web exited with status 1\nlast log lines:\n  panic: config key `port` missing\n1.0.0 is running again";

/// The node's one backup file: more than one piece.
fn backup_bytes() -> Vec<u8> {
    (0..BACKUP_CHUNK_BYTES + 1000)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect()
}

fn backup_info(name: &str, bytes: u64) -> BackupInfo {
    BackupInfo {
        name: name.into(),
        app: "hello-web".into(),
        version: "1.0.0".into(),
        created: 1_700_000_000,
        bytes,
        path: format!("/var/lib/archipelago/backups/{name}"),
        sha256: "ab".repeat(32),
    }
}

const BACKUP_NAME: &str = "hello-web-1.0.0-20250101T000000Z.archy-backup";

/// Answers the backup methods: one backup to list and download, uploads
/// gathered in `uploaded`.
fn backup_reply(req: &TestRequest, method: &str, uploaded: &Mutex<Vec<u8>>) -> Option<TestReply> {
    let params = req.rpc_params();
    let reply = match method {
        "backup.list" => TestReply::result(
            req,
            &BackupListResult {
                backups: vec![backup_info(BACKUP_NAME, 4096)],
            },
        ),
        "backup.delete" => TestReply::result(req, &json!({})),
        "backup.download" if params["name"] == BACKUP_NAME => {
            let data = backup_bytes();
            let offset = usize::try_from(params["offset"].as_u64().unwrap()).unwrap();
            let end = (offset + BACKUP_CHUNK_BYTES).min(data.len());
            TestReply::result(
                req,
                &BackupChunk {
                    data_base64: BASE64.encode(&data[offset..end]),
                    offset: offset as u64,
                    total: data.len() as u64,
                    eof: end == data.len(),
                },
            )
        }
        "backup.download" => {
            TestReply::error(req, ErrorCode::BackupNotFound.with("no such backup"))
        }
        "backup.upload" => {
            let piece = BASE64
                .decode(params["data_base64"].as_str().unwrap())
                .unwrap();
            let mut all = uploaded.lock().unwrap();
            all.extend_from_slice(&piece);
            let name = params["name"].as_str().unwrap();
            let done = params["sha256"]
                .is_string()
                .then(|| backup_info(name, all.len() as u64));
            TestReply::result(
                req,
                &BackupUploadResult {
                    received: all.len() as u64,
                    done,
                },
            )
        }
        "package.backup" => TestReply::stream(
            &[
                bytes_progress(Phase::Archiving, "archiving data", 0, 4096),
                bytes_progress(Phase::Archiving, "archiving data", 4096, 4096),
            ],
            &Response::ok(
                req.rpc_id(),
                serde_json::to_value(backup_info(BACKUP_NAME, 4096)).unwrap(),
            ),
            9,
        ),
        "package.restore" if params["passphrase"] == "wrong passphrase" => TestReply::stream(
            &[progress(Phase::Verifying, "checking the archive")],
            &Response::err(
                req.rpc_id(),
                ErrorCode::BadPassphrase.with("the passphrase does not open this backup"),
            ),
            9,
        ),
        "package.restore" => TestReply::stream(
            &[
                progress(Phase::Verifying, "checking the archive"),
                progress(Phase::Restoring, "putting data back"),
                progress(Phase::Starting, "starting hello-web_web"),
                progress(Phase::Healthy, "healthy"),
            ],
            &Response::ok(
                req.rpc_id(),
                serde_json::to_value(status("hello-web", Health::Healthy)).unwrap(),
            ),
            9,
        ),
        _ => return None,
    };
    Some(reply)
}

/// Answers `package.update` (rolled back for any app but `hello-web`) and
/// `package.settings`.
fn update_reply(req: &TestRequest, method: &str, id: &str) -> Option<TestReply> {
    let reply = match method {
        "package.update" if id == "hello-web" => TestReply::stream(
            &[
                progress(Phase::Pulling, "Copying blob 3f1e"),
                progress(Phase::Snapshotting, "copying the data aside"),
                progress(Phase::Switching, "new units"),
                progress(Phase::Starting, "starting hello-web_web"),
                progress(Phase::Healthy, "healthy"),
            ],
            &Response::ok(
                req.rpc_id(),
                serde_json::to_value(UpdateResult {
                    status: PackageStatus {
                        version: "1.1.0".into(),
                        ..status(id, Health::Healthy)
                    },
                    from_version: "1.0.0".into(),
                    to_version: "1.1.0".into(),
                    data_snapshot: true,
                })
                .unwrap(),
            ),
            7,
        ),
        "package.update" => TestReply::stream(
            &[
                progress(Phase::Pulling, "Copying blob 3f1e"),
                progress(Phase::Starting, "starting hello-web_web"),
                progress(Phase::RollingBack, "putting 1.0.0 back"),
            ],
            &Response::err(req.rpc_id(), ErrorCode::UpdateRolledBack.with(ROLLED_BACK)),
            7,
        ),
        "package.settings" => {
            let settings: AppSettings =
                serde_json::from_value(req.rpc_params()["settings"].clone()).unwrap();
            TestReply::result(
                req,
                &PackageStatus {
                    settings,
                    ..status(id, Health::Healthy)
                },
            )
        }
        _ => return None,
    };
    Some(reply)
}

/// Answers like a node with password [`PASSWORD`] whose session is
/// [`TOKEN`] (unless `expired`, then every token is refused).
fn node(expired: bool) -> TestServer {
    let uploaded = Mutex::new(Vec::new());
    TestServer::start(move |req: &TestRequest| {
        let method = req.rpc_method();
        if method == "auth.login" {
            return if req.rpc_params()["password"] == PASSWORD {
                TestReply::result(
                    req,
                    &Session {
                        token: TOKEN.into(),
                        expires_at: u64::MAX / 2,
                    },
                )
            } else {
                TestReply::error(req, ErrorCode::LoginFailed.with("wrong password"))
            };
        }
        if expired || req.bearer() != Some(TOKEN) {
            return TestReply::error(req, ErrorCode::Unauthenticated.with("log in first"));
        }
        if let Some(reply) = backup_reply(req, &method, &uploaded) {
            return reply;
        }
        let id = req.rpc_params()["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(reply) = update_reply(req, &method, &id) {
            return reply;
        }
        match method.as_str() {
            "auth.logout" => TestReply::result(req, &json!({})),
            "node.info" => TestReply::result(req, &info()),
            "package.list" => TestReply::result(
                req,
                &PackageListResult {
                    apps: vec![status("hello-web", Health::Healthy)],
                },
            ),
            "package.status" if id == "hello-web" => {
                TestReply::result(req, &status(&id, Health::Healthy))
            }
            "package.status" => TestReply::error(
                req,
                ErrorCode::AppNotInstalled.with(format!("{id} is not installed")),
            ),
            "catalog.icon" => TestReply::result(
                req,
                &CatalogIconResult {
                    media_type: "image/png".into(),
                    data_base64: "iVBORw0KGgo=".into(),
                },
            ),
            "package.install" => TestReply::stream(
                &[
                    progress(Phase::Validating, "checking the manifest"),
                    progress(Phase::Pulling, "Copying blob 3f1e"),
                    progress(Phase::Starting, "starting hello-web_web"),
                    progress(Phase::Healthy, "healthy"),
                ],
                &Response::ok(
                    req.rpc_id(),
                    serde_json::to_value(status(&id, Health::Healthy)).unwrap(),
                ),
                7,
            ),
            "package.logs" => TestReply::stream(
                &[
                    StreamEvent::Log(LogEntry {
                        container: "web".into(),
                        stream: "stdout".into(),
                        text: "listening on :8080".into(),
                    }),
                    StreamEvent::Log(LogEntry {
                        container: "web".into(),
                        stream: "stderr".into(),
                        text: "GET / 200".into(),
                    }),
                ],
                &Response::ok(req.rpc_id(), json!({ "lines": [] })),
                11,
            ),
            _ => TestReply::error(req, ErrorCode::MethodNotFound.with(method.clone())),
        }
    })
    .unwrap()
}

// ---- the app -----------------------------------------------------------

/// Channel messages the app sent, by channel id.
type Sent = Arc<Mutex<HashMap<u32, Vec<Value>>>>;

struct Desktop {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    sent: Sent,
}

fn desktop_with(settings: Settings) -> Desktop {
    let sent: Sent = Arc::default();
    let record = Arc::clone(&sent);
    let builder = mock_builder().channel_interceptor(move |_webview, callback, _index, body| {
        if let InvokeResponseBody::Json(text) = body {
            let value: Value = serde_json::from_str(text).unwrap();
            record
                .lock()
                .unwrap()
                .entry(callback.0)
                .or_default()
                .push(value);
        }
        true
    });
    let app = archipelago_desktop::app_builder(builder, settings)
        .build(mock_context(noop_assets()))
        .unwrap();
    let window = WebviewWindowBuilder::new(&app, "main", WebviewUrl::default())
        .build()
        .unwrap();
    Desktop {
        _app: app,
        window,
        sent,
    }
}

fn desktop(dir: &Path) -> Desktop {
    desktop_with(Settings::isolated(dir.to_owned()))
}

impl Desktop {
    /// Invokes a command as the frontend does; `Err` holds the error value.
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: tauri::http::HeaderMap::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    /// The error code of a command that must fail, and its message.
    fn err(&self, cmd: &str, args: Value) -> (String, String) {
        match self.invoke(cmd, args) {
            Ok(v) => panic!("{cmd} succeeded: {v}"),
            Err(e) => (
                e["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{e}"))
                    .to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            ),
        }
    }

    fn add(&self, server: &TestServer) -> String {
        let entry = self.ok(
            "node_add",
            json!({
                "address": server.address(),
                "fingerprint": format_fingerprint(&server.fingerprint()),
            }),
        );
        entry["id"].as_str().unwrap().to_owned()
    }

    fn sent(&self, channel: u32) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// An address where nothing listens.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

// ---- pairing -----------------------------------------------------------

#[test]
fn a_node_is_probed_then_added_with_the_fingerprint_it_presents() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    assert_eq!(app.ok("nodes_list", json!({})), json!([]));

    let probe = app.ok("node_probe", json!({ "address": server.address() }));
    let fingerprint = format_fingerprint(&server.fingerprint());
    assert_eq!(probe["fingerprint"], fingerprint);
    assert_eq!(probe["address"], server.address());

    let entry = app.ok(
        "node_add",
        json!({ "address": server.address(), "fingerprint": fingerprint.to_uppercase(), "name": "Cellar" }),
    );
    assert_eq!(entry["name"], "Cellar");
    assert_eq!(entry["fingerprint"], fingerprint);
    assert_eq!(entry["logged_in"], false);
    assert!(entry["last_seen"].is_u64());
    assert_eq!(app.ok("nodes_list", json!({})), json!([entry]));
    let file = tmp.path().join("nodes.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(tmp.path()), 0o700);
    // Pairing sends nothing past the handshake.
    assert!(server.requests().is_empty());

    // The same node again is refused.
    let (code, _) = app.err(
        "node_add",
        json!({ "address": server.address(), "fingerprint": fingerprint }),
    );
    assert_eq!(code, "already_added");

    // Another run of the app finds it.
    drop(app);
    let again = desktop(tmp.path());
    assert_eq!(again.ok("nodes_list", json!({}))[0]["id"], entry["id"]);
}

#[test]
fn a_wrong_fingerprint_is_refused_and_nothing_is_added() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let (code, message) = app.err(
        "node_add",
        json!({ "address": server.address(), "fingerprint": format_fingerprint(&[0xab; 32]) }),
    );
    assert_eq!(code, "fingerprint_mismatch");
    assert!(message.contains("ab:ab:ab"), "{message}");
    assert!(message.contains("not added"), "{message}");
    assert_eq!(app.ok("nodes_list", json!({})), json!([]));
    assert!(server.requests().is_empty());

    let (code, _) = app.err(
        "node_add",
        json!({ "address": server.address(), "fingerprint": "12:34" }),
    );
    assert_eq!(code, "invalid_fingerprint");
    let (code, _) = app.err("node_probe", json!({ "address": "http://node.local" }));
    assert_eq!(code, "invalid_address");
    let (code, message) = app.err("node_probe", json!({ "address": closed_port() }));
    assert_eq!(code, "unreachable");
    assert!(message.contains("cannot reach"), "{message}");
}

#[test]
fn a_node_presenting_another_certificate_later_is_refused_loudly_never_repinned() {
    let tmp = tempfile::tempdir().unwrap();
    let original = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&original);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    drop(app);

    // The node "was reinstalled" (or someone intercepts): same entry, now
    // pointing at a server with another certificate.
    let impostor = node(false);
    let path = tmp.path().join("nodes.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&original.address(), &impostor.address());
    std::fs::write(&path, text).unwrap();

    let app = desktop(tmp.path());
    let (code, message) = app.err("package_list", json!({ "nodeId": id }));
    assert_eq!(code, "fingerprint_mismatch");
    assert!(message.contains("someone may be intercepting"), "{message}");
    let overview = app.ok("node_overview", json!({ "nodeId": id }));
    assert_eq!(overview["reachable"], false);
    assert_eq!(overview["error"]["code"], "fingerprint_mismatch");
    // Still the old pin, and the impostor never saw a request (nor the token).
    let entry = &app.ok("nodes_list", json!({}))[0];
    assert_eq!(
        entry["fingerprint"],
        format_fingerprint(&original.fingerprint())
    );
    assert!(impostor.requests().is_empty());
}

// ---- sessions ----------------------------------------------------------

#[test]
fn login_stores_the_token_privately_and_never_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);

    let (code, message) = app.err("package_list", json!({ "nodeId": id }));
    assert_eq!(code, "not_logged_in");
    assert!(message.contains("log in"), "{message}");
    assert!(server.requests().is_empty(), "no call without a session");

    let (code, _) = app.err("node_login", json!({ "nodeId": id, "password": "nope" }));
    assert_eq!(code, "login_failed");
    let entry = app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    assert_eq!(entry["logged_in"], true);

    let tokens = tmp.path().join("tokens.json");
    assert_eq!(mode(&tokens), 0o600);
    let stored = std::fs::read_to_string(&tokens).unwrap();
    assert!(stored.contains(TOKEN));
    for file in ["tokens.json", "nodes.json"] {
        let text = std::fs::read_to_string(tmp.path().join(file)).unwrap();
        assert!(!text.contains(PASSWORD), "the password is in {file}");
    }

    let list = app.ok("package_list", json!({ "nodeId": id }));
    assert_eq!(list["apps"][0]["id"], "hello-web");
    let request = server.requests().pop().unwrap();
    assert_eq!(request.bearer(), Some(TOKEN));

    // Another run of the app is still logged in.
    drop(app);
    let app = desktop(tmp.path());
    assert_eq!(app.ok("nodes_list", json!({}))[0]["logged_in"], true);
    let out = app.ok("node_logout", json!({ "nodeId": id }));
    assert_eq!(out["logged_in"], false);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.rpc_method() == "auth.logout")
    );
    assert!(!std::fs::read_to_string(&tokens).unwrap().contains(TOKEN));
}

#[test]
fn a_session_the_node_refuses_is_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(true);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    let (code, message) = app.err("package_list", json!({ "nodeId": id }));
    assert_eq!(code, "unauthenticated");
    assert!(message.contains("log in again"), "{message}");
    assert_eq!(app.ok("nodes_list", json!({}))[0]["logged_in"], false);
}

#[test]
fn removing_a_node_forgets_its_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    assert_eq!(app.ok("node_remove", json!({ "nodeId": id })), Value::Null);
    assert_eq!(app.ok("nodes_list", json!({})), json!([]));
    let stored = std::fs::read_to_string(tmp.path().join("tokens.json")).unwrap();
    assert!(!stored.contains(TOKEN));
    let (code, _) = app.err("package_list", json!({ "nodeId": id }));
    assert_eq!(code, "unknown_node");
}

// ---- the overview ------------------------------------------------------

#[test]
fn the_overview_shows_each_node_and_why_one_is_unreachable() {
    let tmp = tempfile::tempdir().unwrap();
    let up = node(false);
    let down = node(false);
    let app = desktop(tmp.path());
    let up_id = app.add(&up);
    let down_id = app.add(&down);
    let logged_out = node(false);
    let logged_out_id = app.add(&logged_out);
    app.ok(
        "node_login",
        json!({ "nodeId": up_id, "password": PASSWORD }),
    );
    app.ok(
        "node_login",
        json!({ "nodeId": down_id, "password": PASSWORD }),
    );
    drop(down);

    let all = app.ok("nodes_overview", json!({}));
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["node"]["id"], up_id);
    assert_eq!(all[0]["reachable"], true);
    assert_eq!(all[0]["info"]["hostname"], "fake-node");
    assert_eq!(all[0]["error"], Value::Null);

    assert_eq!(all[1]["node"]["id"], down_id);
    assert_eq!(all[1]["reachable"], false);
    assert_eq!(all[1]["info"], Value::Null);
    assert_eq!(all[1]["error"]["code"], "unreachable");
    let message = all[1]["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("node unreachable: last seen just now"),
        "{message}"
    );
    assert_eq!(all[1]["node"]["logged_in"], true);

    assert_eq!(all[2]["node"]["id"], logged_out_id);
    assert_eq!(all[2]["reachable"], true);
    assert_eq!(all[2]["error"]["code"], "not_logged_in");
}

#[test]
fn fifty_silent_nodes_cost_one_timeout_not_fifty() {
    let tmp = tempfile::tempdir().unwrap();
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let nodes: Vec<Value> = (0..50)
        .map(|i| {
            json!({
                "id": format!("{i:016x}"),
                "name": format!("node {i}"),
                "address": format!("127.0.0.1:{port}"),
                "fingerprint": format_fingerprint(&[u8::try_from(i).unwrap(); 32]),
                "added_at": 0,
                "last_seen": null,
            })
        })
        .collect();
    std::fs::write(
        tmp.path().join("nodes.json"),
        serde_json::to_vec(&json!({ "version": 1, "nodes": nodes })).unwrap(),
    )
    .unwrap();
    let mut settings = Settings::isolated(tmp.path().to_owned());
    settings.overview_timeout = Duration::from_millis(800);
    let app = desktop_with(settings);

    let start = Instant::now();
    let all = app.ok("nodes_overview", json!({}));
    let took = start.elapsed();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 50);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    for (i, overview) in all.iter().enumerate() {
        assert_eq!(
            overview["node"]["name"],
            format!("node {i}"),
            "in list order"
        );
        assert_eq!(overview["reachable"], false);
        assert_eq!(overview["error"]["code"], "timeout");
        assert_eq!(
            overview["error"]["message"],
            "node unreachable: no answer within 0.8 s, never reached"
        );
    }
}

// ---- apps --------------------------------------------------------------

#[test]
fn install_progress_arrives_through_the_channel_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));

    let result = app.ok(
        "package_install",
        json!({ "nodeId": id, "appId": "hello-web", "onProgress": "__CHANNEL__:4242" }),
    );
    assert_eq!(result["health"], "healthy");
    let phases: Vec<Value> = app.sent(4242).iter().map(|m| m["phase"].clone()).collect();
    assert_eq!(
        phases,
        vec![
            json!("validating"),
            json!("pulling"),
            json!("starting"),
            json!("healthy")
        ]
    );
    let install = server
        .requests()
        .into_iter()
        .find(|r| r.rpc_method() == "package.install")
        .unwrap();
    assert!(install.wants_stream());
    assert_eq!(install.rpc_params(), json!({ "id": "hello-web" }));
}

#[test]
fn icons_are_asked_once_and_api_errors_keep_their_code() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    let args = json!({ "nodeId": id, "appId": "hello-web" });
    let first = app.ok("catalog_icon", args.clone());
    assert_eq!(app.ok("catalog_icon", args), first);
    let asked = server
        .requests()
        .iter()
        .filter(|r| r.rpc_method() == "catalog.icon")
        .count();
    assert_eq!(asked, 1);

    let (code, message) = app.err("package_status", json!({ "nodeId": id, "appId": "nope" }));
    assert_eq!(code, "app_not_installed");
    assert_eq!(message, "nope is not installed");
}

#[test]
fn followed_logs_stream_through_the_channel_and_say_when_they_end() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));

    let (code, _) = app.err(
        "package_logs_follow",
        json!({ "nodeId": id, "appId": "nope", "onLine": "__CHANNEL__:7" }),
    );
    assert_eq!(code, "app_not_installed");

    let follow = app.ok(
        "package_logs_follow",
        json!({ "nodeId": id, "appId": "hello-web", "lines": 50, "onLine": "__CHANNEL__:8" }),
    );
    assert!(follow.as_str().unwrap().starts_with("follow-"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.sent(8).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines = app.sent(8);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["text"], "listening on :8080");
    assert_eq!(lines[1]["stream"], "stderr");
    assert_eq!(lines[2]["stream"], "end");
    let request = server
        .requests()
        .into_iter()
        .rfind(|r| r.rpc_method() == "package.logs")
        .unwrap();
    assert_eq!(request.rpc_params()["follow"], true);
    assert_eq!(request.rpc_params()["lines"], 50);
    // Stopping an ended follow is fine.
    assert_eq!(
        app.ok("package_logs_stop", json!({ "followId": follow })),
        Value::Null
    );
    // Without `lines`, only new lines: the history comes from package_logs.
    app.ok(
        "package_logs_follow",
        json!({ "nodeId": id, "appId": "hello-web", "onLine": "__CHANNEL__:9" }),
    );
    // The follow's request leaves after the command returned.
    let deadline = Instant::now() + Duration::from_secs(10);
    let follows = || {
        server
            .requests()
            .into_iter()
            .filter(|r| r.rpc_method() == "package.logs")
            .collect::<Vec<_>>()
    };
    while follows().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(follows()[1].rpc_params()["lines"], 0);
}

#[test]
fn an_apps_ui_address_is_on_its_node() {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    let url = app.ok(
        "package_open_ui",
        json!({ "nodeId": id, "appId": "hello-web" }),
    );
    assert_eq!(url, "http://127.0.0.1:8080/");
}

// ---- updates and backups -----------------------------------------------

/// A desktop logged in to a fake node: (tmp, server, app, node id).
fn logged_in() -> (tempfile::TempDir, TestServer, Desktop, String) {
    let tmp = tempfile::tempdir().unwrap();
    let server = node(false);
    let app = desktop(tmp.path());
    let id = app.add(&server);
    app.ok("node_login", json!({ "nodeId": id, "password": PASSWORD }));
    (tmp, server, app, id)
}

fn requests_of(server: &TestServer, method: &str) -> Vec<TestRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.rpc_method() == method)
        .collect()
}

#[test]
fn an_update_streams_its_phases_and_returns_both_versions() {
    let (_tmp, server, app, id) = logged_in();
    let result = app.ok(
        "update_app",
        json!({ "nodeId": id, "appId": "hello-web", "onProgress": "__CHANNEL__:31" }),
    );
    assert_eq!(result["from_version"], "1.0.0");
    assert_eq!(result["to_version"], "1.1.0");
    assert_eq!(result["status"]["version"], "1.1.0");
    assert_eq!(result["data_snapshot"], true);
    let phases: Vec<Value> = app.sent(31).iter().map(|m| m["phase"].clone()).collect();
    assert_eq!(
        phases,
        vec![
            json!("pulling"),
            json!("snapshotting"),
            json!("switching"),
            json!("starting"),
            json!("healthy")
        ]
    );
    let update = requests_of(&server, "package.update").pop().unwrap();
    assert!(update.wants_stream());
    assert_eq!(update.rpc_params(), json!({ "id": "hello-web" }));
}

#[test]
fn a_rolled_back_update_reaches_the_page_with_its_code_and_whole_message() {
    let (_tmp, _server, app, id) = logged_in();
    let (code, message) = app.err(
        "update_app",
        json!({ "nodeId": id, "appId": "bad-update", "onProgress": "__CHANNEL__:32" }),
    );
    assert_eq!(code, "update_rolled_back");
    assert_eq!(message, ROLLED_BACK, "the node's words, every line");
    let last = app.sent(32).pop().unwrap();
    assert_eq!(last["phase"], "rolling_back");
}

#[test]
fn backups_are_listed_per_app_or_all() {
    let (_tmp, server, app, id) = logged_in();
    let list = app.ok(
        "list_backups",
        json!({ "nodeId": id, "appId": "hello-web" }),
    );
    assert_eq!(list["backups"][0]["name"], BACKUP_NAME);
    assert_eq!(list["backups"][0]["bytes"], 4096);
    app.ok("list_backups", json!({ "nodeId": id }));
    let asked: Vec<Value> = requests_of(&server, "backup.list")
        .iter()
        .map(TestRequest::rpc_params)
        .collect();
    assert_eq!(
        asked,
        vec![json!({ "id": "hello-web" }), json!({ "id": null })]
    );

    assert_eq!(
        app.ok(
            "delete_backup",
            json!({ "nodeId": id, "name": BACKUP_NAME })
        ),
        Value::Null
    );
    let (code, _) = app.err(
        "delete_backup",
        json!({ "nodeId": id, "name": "../../etc/passwd" }),
    );
    assert_eq!(code, "invalid_input");
    assert_eq!(requests_of(&server, "backup.delete").len(), 1);
}

#[test]
fn a_backup_needs_a_long_passphrase_and_reports_bytes() {
    let (_tmp, server, app, id) = logged_in();
    let (code, message) = app.err(
        "backup_app",
        json!({ "nodeId": id, "appId": "hello-web", "passphrase": "short", "onProgress": "__CHANNEL__:40" }),
    );
    assert_eq!(code, "invalid_input");
    assert!(message.contains("at least 8"), "{message}");
    assert!(requests_of(&server, "package.backup").is_empty());

    let passphrase = "a long enough passphrase";
    let info = app.ok(
        "backup_app",
        json!({ "nodeId": id, "appId": "hello-web", "passphrase": passphrase, "onProgress": "__CHANNEL__:41" }),
    );
    assert_eq!(info["name"], BACKUP_NAME);
    let sent = app.sent(41);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["phase"], "archiving");
    assert_eq!(sent[1]["bytes_done"], 4096);
    assert_eq!(sent[1]["bytes_total"], 4096);
    let request = requests_of(&server, "package.backup").pop().unwrap();
    assert!(request.wants_stream());
    assert_eq!(
        request.rpc_params(),
        json!({ "id": "hello-web", "passphrase": passphrase, "recipient": null, "target": null })
    );
}

#[test]
fn a_backup_is_downloaded_privately_then_restored_on_another_node() {
    let (tmp, source, app, source_id) = logged_in();
    let path = app.ok(
        "download_backup",
        json!({ "nodeId": source_id, "name": BACKUP_NAME, "onProgress": "__CHANNEL__:50" }),
    );
    let path = Path::new(path.as_str().unwrap()).to_owned();
    assert_eq!(path, tmp.path().join("downloads").join(BACKUP_NAME));
    assert_eq!(std::fs::read(&path).unwrap(), backup_bytes());
    assert_eq!(mode(&path), 0o600);
    let total = backup_bytes().len() as u64;
    let sent = app.sent(50);
    assert_eq!(sent.len(), 2, "one message per piece: {sent:?}");
    assert_eq!(
        sent[0],
        json!({ "done": BACKUP_CHUNK_BYTES, "total": total })
    );
    assert_eq!(sent[1], json!({ "done": total, "total": total }));
    assert_eq!(requests_of(&source, "backup.download").len(), 2);

    let (code, _) = app.err(
        "download_backup",
        json!({ "nodeId": source_id, "name": "gone.archy-backup", "onProgress": "__CHANNEL__:51" }),
    );
    assert_eq!(code, "backup_not_found");
    let (code, _) = app.err(
        "download_backup",
        json!({ "nodeId": source_id, "name": "../escape", "onProgress": "__CHANNEL__:52" }),
    );
    assert_eq!(code, "invalid_input");

    let target = node(false);
    let target_id = app.add(&target);
    app.ok(
        "node_login",
        json!({ "nodeId": target_id, "password": PASSWORD }),
    );
    let status = app.ok(
        "upload_and_restore",
        json!({
            "nodeId": target_id,
            "localPath": path,
            "passphrase": "a long enough passphrase",
            "onUpload": "__CHANNEL__:53",
            "onProgress": "__CHANNEL__:54",
        }),
    );
    assert_eq!(status["health"], "healthy");
    let uploads = requests_of(&target, "backup.upload");
    assert_eq!(uploads.len(), 2);
    let mut uploaded = Vec::new();
    for piece in &uploads {
        assert_eq!(piece.rpc_params()["name"], BACKUP_NAME);
        uploaded.extend(
            BASE64
                .decode(piece.rpc_params()["data_base64"].as_str().unwrap())
                .unwrap(),
        );
    }
    assert_eq!(uploaded, backup_bytes());
    assert_eq!(
        app.sent(53).last().unwrap(),
        &json!({ "done": total, "total": total })
    );
    let phases: Vec<Value> = app.sent(54).iter().map(|m| m["phase"].clone()).collect();
    assert_eq!(
        phases,
        vec![
            json!("verifying"),
            json!("restoring"),
            json!("starting"),
            json!("healthy")
        ]
    );
    let restore = requests_of(&target, "package.restore").pop().unwrap();
    assert_eq!(
        restore.rpc_params(),
        json!({ "backup": BACKUP_NAME, "passphrase": "a long enough passphrase", "identity": null })
    );
    assert!(requests_of(&source, "package.restore").is_empty());
}

#[test]
fn only_downloaded_backups_are_uploaded() {
    let (tmp, server, app, id) = logged_in();
    let elsewhere = tmp.path().join("nodes.json");
    for local in [
        elsewhere.to_string_lossy().into_owned(),
        "/etc/passwd".into(),
    ] {
        let (code, message) = app.err(
            "upload_and_restore",
            json!({
                "nodeId": id,
                "localPath": local,
                "passphrase": "a long enough passphrase",
                "onUpload": "__CHANNEL__:60",
                "onProgress": "__CHANNEL__:61",
            }),
        );
        assert!(
            code == "invalid_input" || code == "local_file",
            "{code}: {message}"
        );
    }
    assert!(requests_of(&server, "backup.upload").is_empty());
}

#[test]
fn a_backup_on_the_node_is_restored_there_and_a_wrong_passphrase_says_so() {
    let (_tmp, server, app, id) = logged_in();
    let status = app.ok(
        "restore_backup",
        json!({ "nodeId": id, "name": BACKUP_NAME, "passphrase": "a long enough passphrase", "onProgress": "__CHANNEL__:70" }),
    );
    assert_eq!(status["id"], "hello-web");
    assert_eq!(app.sent(70).len(), 4);
    let (code, message) = app.err(
        "restore_backup",
        json!({ "nodeId": id, "name": BACKUP_NAME, "passphrase": "wrong passphrase", "onProgress": "__CHANNEL__:71" }),
    );
    assert_eq!(code, "bad_passphrase");
    assert_eq!(message, "the passphrase does not open this backup");
    assert!(requests_of(&server, "backup.upload").is_empty());
}

#[test]
fn app_settings_are_sent_whole() {
    let (_tmp, server, app, id) = logged_in();
    let settings = json!({
        "auto_update_hours": 24,
        "backup_schedule": { "every_hours": 12, "recipient": "age1example", "keep": 3 },
        "backup_max_age_hours": 48,
    });
    let status = app.ok(
        "set_app_settings",
        json!({ "nodeId": id, "appId": "hello-web", "settings": settings }),
    );
    assert_eq!(status["settings"], settings);
    let request = requests_of(&server, "package.settings").pop().unwrap();
    assert_eq!(
        request.rpc_params(),
        json!({ "id": "hello-web", "settings": settings })
    );
}
