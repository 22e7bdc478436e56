//! `archy` end to end: the real binary against a fake node (the client
//! crate's TLS test server with a handler that plays the node's API), in a
//! throwaway configuration folder. Checks what scripts rely on: exit codes,
//! `--json` on stdout and stderr, files and their modes, that nothing
//! reaches a node whose certificate is not the pinned one, and that a
//! backup's passphrase reaches the node but never archy's output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use archipelago_api::ErrorCode;
use archipelago_api::RunState;
use archipelago_api::methods::{
    AppSettings, BackupInfo, BackupUploadResult, Health, InstallProgress, LogEntry, PackageStatus,
    Phase, Session, UninstallResult, UpdateResult,
};
use archipelago_api::rpc::{Response, StreamEvent, format_fingerprint};
use archipelago_client::test_server::{TestReply, TestRequest, TestServer, backup_chunk};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn archy(dir: &Path, args: &[&str], stdin: &str) -> Run {
    archy_with(dir, args, stdin, &[])
}

/// `archy` with these environment variables set (and no passphrase from
/// the environment of the tests).
fn archy_with(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_archy"))
        .arg("--config-dir")
        .arg(dir)
        .args(args)
        .env_remove("ARCHY_NODE")
        .env_remove("ARCHY_BACKUP_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn status(id: &str) -> PackageStatus {
    PackageStatus {
        id: id.into(),
        name: "Hello Web".into(),
        version: "1.0.0".into(),
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

fn progress(phase: Phase, done: u32) -> StreamEvent {
    StreamEvent::Progress(InstallProgress {
        id: "hello-web".into(),
        phase,
        image: None,
        images_done: done,
        images_total: 1,
        blobs_seen: done,
        message: format!("step {done}"),
        bytes_done: 0,
        bytes_total: 0,
    })
}

/// A backup's progress while its data is archived.
fn copying(phase: Phase, done: u64) -> StreamEvent {
    StreamEvent::Progress(InstallProgress {
        id: "hello-web".into(),
        phase,
        image: None,
        images_done: 0,
        images_total: 0,
        blobs_seen: 0,
        message: format!("{done} bytes"),
        bytes_done: done,
        bytes_total: 4096,
    })
}

/// An installed app with an update waiting and a backup overdue.
fn chain_status() -> PackageStatus {
    PackageStatus {
        update_available: Some("1.1.0".into()),
        last_backup: Some(now() - 7200),
        backup_overdue: true,
        ..status("chain")
    }
}

const BACKUP: &str = "hello-web-1.0.0-20261127T213000Z.archy-backup";
const PASSPHRASE: &str = "correct horse battery staple";
const KEY: &str = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS0SKQZN";
const RECIPIENT: &str = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
const ROLLBACK: &str = "hello-web 1.1.0 did not get healthy: container hello-web_web exited with status 1; its last lines:\n  error: config key `listen` missing\n  exiting\nhello-web 1.0.0 runs again, with its data as before the update";

/// The backup file the fake node keeps: two pieces.
fn backup_data() -> Vec<u8> {
    (0..700_000u32).map(|i| (i % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn backup_info(name: &str, app: &str, data: &[u8]) -> BackupInfo {
    BackupInfo {
        name: name.into(),
        app: app.into(),
        version: "1.0.0".into(),
        created: 1_795_815_000,
        bytes: data.len() as u64,
        path: format!("/home/archipelago/backups/{name}"),
        sha256: sha256_hex(data),
    }
}

fn log(text: &str) -> StreamEvent {
    StreamEvent::Log(LogEntry {
        container: "web".into(),
        stream: "stdout".into(),
        text: text.into(),
    })
}

/// A node's API, as far as these tests need it. `revoked` makes every
/// session token invalid.
fn fake_node(revoked: Arc<AtomicBool>) -> impl Fn(&TestRequest) -> TestReply {
    // Backups uploaded so far, by name.
    let uploads = Mutex::new(HashMap::<String, Vec<u8>>::new());
    move |req| {
        let method = req.rpc_method();
        if method == "auth.login" {
            return if req.rpc_params() == json!({"password": "hunter2"}) {
                revoked.store(false, Ordering::SeqCst);
                TestReply::result(
                    req,
                    &Session {
                        token: "tok".into(),
                        expires_at: now() + 3600,
                    },
                )
            } else {
                TestReply::error(req, ErrorCode::LoginFailed.with("wrong password"))
            };
        }
        if req.bearer() != Some("tok") || revoked.load(Ordering::SeqCst) {
            return TestReply::error(req, ErrorCode::Unauthenticated.with("log in first"));
        }
        let id = req.rpc_params()["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ok = |value: Value| Response::ok(req.rpc_id(), value);
        match method.as_str() {
            "auth.logout" => TestReply::result(req, &json!({})),
            "package.install" if id == "broken" => TestReply::stream(
                &[progress(Phase::Pulling, 0), progress(Phase::RollingBack, 0)],
                &Response::err(
                    req.rpc_id(),
                    ErrorCode::InstallFailed.with("broken did not become healthy; rolled back"),
                ),
                9,
            ),
            "package.install" => TestReply::stream(
                &[
                    progress(Phase::Validating, 0),
                    progress(Phase::Pulling, 0),
                    progress(Phase::Starting, 1),
                    progress(Phase::Healthy, 1),
                ],
                &ok(serde_json::to_value(status(&id)).unwrap()),
                11,
            ),
            "package.status" if id == "chain" => TestReply::result(req, &chain_status()),
            "package.status" if id != "hello-web" => TestReply::error(
                req,
                ErrorCode::AppNotInstalled.with(format!("{id} is not installed")),
            ),
            "package.status" | "package.start" => TestReply::result(req, &status(&id)),
            "package.list" => {
                TestReply::result(req, &json!({"apps": [status("hello-web"), chain_status()]}))
            }
            "package.uninstall" => TestReply::stream(
                &[],
                &ok(serde_json::to_value(UninstallResult {
                    id: id.clone(),
                    kept_data: req.rpc_params()["keep_data"] == json!(true),
                    removed: vec![format!("unit {id}_web.container")],
                })
                .unwrap()),
                64,
            ),
            "package.logs" if req.rpc_params()["follow"] == json!(true) => TestReply::stream(
                &[log("one"), log("two"), log("three")],
                &ok(json!({"lines": []})),
                5,
            ),
            "package.logs" => TestReply::result(
                req,
                &json!({"lines": [{"container": "web", "stream": "stdout", "text": "old"}]}),
            ),
            _ => backup_methods(req, &uploads),
        }
    }
}

/// The fake node's update, backup, restore and settings methods.
fn backup_methods(req: &TestRequest, uploads: &Mutex<HashMap<String, Vec<u8>>>) -> TestReply {
    let method = req.rpc_method();
    let params = req.rpc_params();
    let id = params["id"].as_str().unwrap_or_default().to_owned();
    let ok = |value: Value| Response::ok(req.rpc_id(), value);
    match method.as_str() {
        "package.update" if id == "hello-web" => TestReply::stream(
            &[
                progress(Phase::Snapshotting, 0),
                progress(Phase::Pulling, 0),
                progress(Phase::Switching, 1),
                progress(Phase::Starting, 1),
                progress(Phase::Healthy, 1),
            ],
            &ok(serde_json::to_value(UpdateResult {
                status: PackageStatus {
                    version: "1.1.0".into(),
                    ..status(&id)
                },
                from_version: "1.0.0".into(),
                to_version: "1.1.0".into(),
                data_snapshot: true,
            })
            .unwrap()),
            13,
        ),
        "package.update" => TestReply::stream(
            &[
                progress(Phase::Switching, 1),
                progress(Phase::RollingBack, 1),
            ],
            &Response::err(req.rpc_id(), ErrorCode::UpdateRolledBack.with(ROLLBACK)),
            17,
        ),
        "package.backup" => TestReply::stream(
            &[
                copying(Phase::Archiving, 0),
                copying(Phase::Archiving, 2048),
                copying(Phase::Archiving, 4096),
            ],
            &ok(serde_json::to_value(backup_info(BACKUP, &id, &backup_data())).unwrap()),
            23,
        ),
        "backup.list" => {
            let all = [
                backup_info(BACKUP, "hello-web", &backup_data()),
                backup_info("chain-2.0-20261120T000000Z.archy-backup", "chain", b"x"),
            ];
            let backups: Vec<_> = all
                .into_iter()
                .filter(|b| params["id"].is_null() || params["id"] == b.app.as_str())
                .collect();
            TestReply::result(req, &json!({ "backups": backups }))
        }
        "backup.download" if params["name"] == BACKUP => TestReply::result(
            req,
            &backup_chunk(&backup_data(), params["offset"].as_u64().unwrap()),
        ),
        "backup.download" | "backup.delete" => TestReply::error(
            req,
            ErrorCode::BackupNotFound.with(format!("no backup {}", params["name"])),
        ),
        "backup.upload" => fake_upload(req, uploads),
        "package.restore" => fake_restore(req, uploads),
        "package.settings" => TestReply::result(
            req,
            &PackageStatus {
                settings: serde_json::from_value(params["settings"].clone()).unwrap(),
                ..status(&id)
            },
        ),
        _ => TestReply::error(req, ErrorCode::MethodNotFound.with(method.clone())),
    }
}

/// `backup.upload`: pieces kept in order, checked against the hash sent
/// with the last one.
fn fake_upload(req: &TestRequest, uploads: &Mutex<HashMap<String, Vec<u8>>>) -> TestReply {
    let params = req.rpc_params();
    let name = params["name"].as_str().unwrap().to_owned();
    let mut uploads = uploads.lock().unwrap();
    let stored = uploads.entry(name.clone()).or_default();
    assert_eq!(params["offset"], stored.len());
    let piece = base64::engine::general_purpose::STANDARD
        .decode(params["data_base64"].as_str().unwrap())
        .unwrap();
    stored.extend_from_slice(&piece);
    let done = params["sha256"].as_str().map(|sha| {
        assert_eq!(sha, sha256_hex(stored));
        backup_info(&name, "hello-web", stored)
    });
    let answer = BackupUploadResult {
        received: stored.len() as u64,
        done,
    };
    TestReply::result(req, &answer)
}

/// `package.restore`: of a backup the node has, with the right secret.
fn fake_restore(req: &TestRequest, uploads: &Mutex<HashMap<String, Vec<u8>>>) -> TestReply {
    let params = req.rpc_params();
    let ok = |value: Value| Response::ok(req.rpc_id(), value);
    let backup = params["backup"].as_str().unwrap();
    if backup != BACKUP && !uploads.lock().unwrap().contains_key(backup) {
        return TestReply::error(
            req,
            ErrorCode::BackupNotFound.with(format!("no backup {backup}")),
        );
    }
    if params["passphrase"] != PASSPHRASE && params["identity"] != KEY {
        return TestReply::error(
            req,
            ErrorCode::BadPassphrase.with("the passphrase or key does not open it"),
        );
    }
    TestReply::stream(
        &[progress(Phase::Verifying, 0), progress(Phase::Restoring, 0)],
        &ok(serde_json::to_value(status("hello-web")).unwrap()),
        31,
    )
}

/// The params of the requests for `method`.
fn params_of(server: &TestServer, method: &str) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.rpc_method() == method)
        .map(TestRequest::rpc_params)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn pair_log_in_and_log_out() {
    let server = TestServer::start(fake_node(Arc::default())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    let fp = format_fingerprint(&server.fingerprint());

    let r = archy(
        &dir,
        &["pair", &server.address(), "--name", "home", "--yes"],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("paired with home"), "{}", r.stdout);
    assert_eq!(mode(&dir.join("nodes.json")), 0o600);
    assert!(server.requests().is_empty(), "pairing sent a request");

    let r = archy(&dir, &["nodes", "--json"], "");
    let nodes: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(nodes[0]["name"], "home");
    assert_eq!(nodes[0]["fingerprint"], fp.as_str());
    assert_eq!(nodes[0]["logged_in"], false);

    // Not logged in yet.
    let r = archy(&dir, &["list"], "");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("not logged in to home"), "{}", r.stderr);

    let r = archy(&dir, &["login", "--password-stdin"], "wrong\n");
    assert_eq!(r.code, 4);
    let r = archy(&dir, &["login", "--password-stdin", "--json"], "hunter2\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("tok"), "the token was printed");
    let session = dir.join("sessions/home");
    assert_eq!(mode(&session), 0o600);
    assert_eq!(mode(&dir.join("sessions")), 0o700);

    let r = archy(&dir, &["logout"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!session.exists());
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.rpc_method(), "auth.logout");
    assert_eq!(last.bearer(), Some("tok"));
    assert_eq!(archy(&dir, &["list"], "").code, 4);

    let r = archy(&dir, &["forget", "home"], "");
    assert_eq!(r.code, 0);
    let r = archy(&dir, &["list", "--json"], "");
    assert_eq!(r.code, 1);
    let error: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(error["name"], "no_nodes");
    assert_eq!(error["code"], Value::Null);
}

/// A fake node, paired as `home` and logged in, in a new folder.
fn logged_in() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let server = TestServer::start(fake_node(Arc::default())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    let pair = ["pair", &server.address(), "--name", "home", "--yes"];
    assert_eq!(archy(&dir, &pair, "").code, 0);
    assert_eq!(
        archy(&dir, &["login", "--password-stdin"], "hunter2\n").code,
        0
    );
    (server, tmp, dir)
}

#[test]
fn install_and_manage_an_app() {
    let (server, _tmp, dir) = logged_in();
    // Install: events as JSON lines on stderr, the result on stdout.
    let r = archy(&dir, &["install", "hello-web", "--json"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result: PackageStatus = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(result, status("hello-web"));
    let phases: Vec<String> = r
        .stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["phase"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(phases, ["validating", "pulling", "starting", "healthy"]);

    // The same for people: phases on stderr (not a terminal), a block on stdout.
    let r = archy(&dir, &["install", "hello-web"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("pulling: step 0"), "{}", r.stderr);
    assert!(r.stdout.contains("health   healthy"), "{}", r.stdout);

    let r = archy(&dir, &["install", "broken", "--json"], "");
    assert_eq!(r.code, 6, "{}", r.stderr);
    let error: Value = serde_json::from_str(r.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(error["code"], -32022);
    assert_eq!(error["name"], "install_failed");

    let r = archy(&dir, &["status", "nope"], "");
    assert_eq!(r.code, 6);
    assert!(r.stderr.contains("nope is not installed"), "{}", r.stderr);

    let r = archy(&dir, &["list"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ID         NAME       VERSION  RUN      HEALTH")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("hello-web  Hello Web  1.0.0    running  healthy")
    );

    let r = archy(&dir, &["logs", "hello-web"], "");
    assert_eq!(r.stdout, "web | old\n");
    let r = archy(&dir, &["logs", "hello-web", "-f"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "web | one\nweb | two\nweb | three\n");
    let logs = server.requests().last().unwrap().clone();
    assert!(logs.wants_stream());
    assert_eq!(logs.rpc_params()["lines"], 100);

    // Uninstall asks first, and there is no terminal to ask on.
    let r = archy(&dir, &["uninstall", "hello-web"], "y\n");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    let r = archy(
        &dir,
        &["uninstall", "hello-web", "--keep-data", "--yes"],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("uninstalled hello-web (data kept)"),
        "{}",
        r.stdout
    );
}

#[test]
fn pairing_refuses_a_certificate_it_was_not_told_about() {
    let server = TestServer::start(fake_node(Arc::default())).unwrap();
    let other = TestServer::start(fake_node(Arc::default())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    let right = format_fingerprint(&server.fingerprint());
    let wrong = format_fingerprint(&other.fingerprint());

    let r = archy(
        &dir,
        &["pair", &server.address(), "--fingerprint", &wrong],
        "",
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("someone may be intercepting"),
        "{}",
        r.stderr
    );
    assert!(!dir.join("nodes.json").exists());

    // Without --yes or --fingerprint, and no terminal to confirm on.
    let r = archy(&dir, &["pair", &server.address()], "y\n");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!dir.join("nodes.json").exists());

    let r = archy(
        &dir,
        &[
            "pair",
            &server.address(),
            "--name",
            "n",
            "--fingerprint",
            &right.replace(':', ""),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Pairing again the same is fine.
    let r = archy(
        &dir,
        &["pair", &server.address(), "--name", "n", "--yes"],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("already paired"), "{}", r.stdout);

    // The name stands for the first certificate.
    let r = archy(
        &dir,
        &["pair", &other.address(), "--name", "n", "--yes"],
        "",
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("--replace"), "{}", r.stderr);
    let r = archy(
        &dir,
        &[
            "pair",
            &other.address(),
            "--name",
            "n",
            "--yes",
            "--replace",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = archy(&dir, &["nodes", "--json"], "");
    let nodes: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(nodes[0]["fingerprint"], wrong.as_str());
    assert_eq!(nodes.as_array().unwrap().len(), 1);
}

#[test]
fn a_node_presenting_another_certificate_gets_nothing() {
    let server = TestServer::start(fake_node(Arc::default())).unwrap();
    let impostor = TestServer::start(fake_node(Arc::default())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    assert_eq!(
        archy(
            &dir,
            &["pair", &server.address(), "--name", "home", "--yes"],
            ""
        )
        .code,
        0
    );
    assert_eq!(
        archy(&dir, &["login", "--password-stdin"], "hunter2\n").code,
        0
    );

    // The node's address now leads to another server (reinstalled, or a
    // man in the middle).
    let nodes = dir.join("nodes.json");
    let text = std::fs::read_to_string(&nodes).unwrap();
    std::fs::write(&nodes, text.replace(&server.address(), &impostor.address())).unwrap();
    let r = archy(&dir, &["list", "--json"], "");
    assert_eq!(r.code, 5, "{}", r.stderr);
    let error: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(error["name"], "fingerprint_mismatch");
    assert!(
        impostor.requests().is_empty(),
        "the session token went to the impostor"
    );
}

#[test]
fn transport_auth_and_usage_failures_have_their_exit_codes() {
    let revoked = Arc::new(AtomicBool::new(false));
    let server = TestServer::start(fake_node(Arc::clone(&revoked))).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    assert_eq!(
        archy(
            &dir,
            &["pair", &server.address(), "--name", "home", "--yes"],
            ""
        )
        .code,
        0
    );
    assert_eq!(
        archy(&dir, &["login", "--password-stdin"], "hunter2\n").code,
        0
    );

    // The node ended the session: exit 4, and the stored session goes.
    revoked.store(true, Ordering::SeqCst);
    let r = archy(&dir, &["info", "--json"], "");
    assert_eq!(r.code, 4, "{}", r.stderr);
    let error: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(error["name"], "unauthenticated");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("archy --node home login")
    );
    assert!(!dir.join("sessions/home").exists());

    // A node that is not there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let r = archy(&dir, &["pair", &closed, "--yes"], "");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);

    assert_eq!(archy(&dir, &["--node", "nope", "info"], "").code, 1);
    assert_eq!(archy(&dir, &["frobnicate"], "").code, 2);
    assert_eq!(archy(&dir, &["logs"], "").code, 2);
    assert_eq!(archy(&dir, &["--help"], "").code, 0);
}

#[test]
fn followed_logs_run_until_ctrl_c() {
    let server = TestServer::start(|req| {
        if req.rpc_method() == "auth.login" {
            return TestReply::result(
                req,
                &Session {
                    token: "tok".into(),
                    expires_at: now() + 3600,
                },
            );
        }
        let first = serde_json::to_string(&log("one")).unwrap();
        TestReply::Sse {
            chunks: vec![format!("event: log\ndata: {first}\n\n").into_bytes()],
            hold_open: true,
        }
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archy");
    assert_eq!(
        archy(&dir, &["pair", &server.address(), "--yes"], "").code,
        0
    );
    assert_eq!(archy(&dir, &["login", "--password-stdin"], "x\n").code, 0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_archy"))
        .arg("--config-dir")
        .arg(&dir)
        .args(["logs", "hello-web", "-f"])
        .env_remove("ARCHY_NODE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "web | one\n");
    // Still running: the stream is open.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none());
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn list_and_status_show_updates_and_overdue_backups() {
    let (_server, _tmp, dir) = logged_in();
    let r = archy(&dir, &["list"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].contains("HEALTH   UPDATE  BACKUP"), "{}", r.stdout);
    let chain = lines.iter().find(|l| l.starts_with("chain")).unwrap();
    assert!(chain.contains(" 1.1.0 "), "{chain}");
    assert!(chain.ends_with("2h 0m ago, overdue"), "{chain}");
    assert!(lines[1].contains("healthy  -       -"), "{}", lines[1]);

    let r = archy(&dir, &["status", "chain"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("update   1.1.0 available: archy update chain"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("backup   2h 0m ago, overdue"),
        "{}",
        r.stdout
    );
    // Nothing to say about either: no line.
    let r = archy(&dir, &["status", "hello-web"], "");
    assert!(!r.stdout.contains("update"), "{}", r.stdout);
    assert!(!r.stdout.contains("backup"), "{}", r.stdout);
}

#[test]
fn update_shows_its_phases_and_a_rollback_in_full() {
    let (_server, _tmp, dir) = logged_in();
    let r = archy(&dir, &["update", "hello-web"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("updated hello-web 1.0.0 → 1.1.0 (its data was snapshotted first)\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("version  1.1.0"), "{}", r.stdout);
    for phase in [
        "snapshotting data:",
        "pulling:",
        "switching versions:",
        "healthy:",
    ] {
        assert!(r.stderr.contains(phase), "{phase}: {}", r.stderr);
    }

    let r = archy(&dir, &["update", "hello-web", "--json"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let result: UpdateResult = serde_json::from_str(&r.stdout).unwrap();
    assert!(result.data_snapshot);
    assert_eq!(result.to_version, "1.1.0");

    // Rolled back: the node's whole message, and the app exit code.
    let r = archy(&dir, &["update", "broken"], "");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("rolling back:"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the update of broken was rolled back: the previous version runs again"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(ROLLBACK), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let r = archy(&dir, &["update", "broken", "--json"], "");
    assert_eq!(r.code, 6, "{}", r.stderr);
    let error: Value = serde_json::from_str(r.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(error["code"], -32029);
    assert_eq!(error["name"], "update_rolled_back");
    assert!(error["message"].as_str().unwrap().contains(ROLLBACK));
}

#[test]
fn a_backup_passphrase_reaches_the_node_and_nothing_else() {
    let (server, tmp, dir) = logged_in();
    let env = [("ARCHY_BACKUP_PASSPHRASE", PASSPHRASE)];
    let r = archy_with(&dir, &["backup", "hello-web"], "", &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("backed up hello-web 1.0.0\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("name     {BACKUP}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("size     683.6 KiB"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("sha256   {}", sha256_hex(&backup_data()))),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("path     /home/archipelago/backups/"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("archiving:"), "{}", r.stderr);

    let r2 = archy_with(
        &dir,
        &["backup", "hello-web", "--target", "/mnt/usb", "--json"],
        "",
        &env,
    );
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let info: BackupInfo = serde_json::from_str(&r2.stdout).unwrap();
    assert_eq!(info.name, BACKUP);
    // The progress events, with their bytes, as JSON lines on stderr.
    let last: Value = serde_json::from_str(r2.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["bytes_done"], 4096);
    for run in [&r, &r2] {
        assert!(!run.stdout.contains(PASSPHRASE), "{}", run.stdout);
        assert!(!run.stderr.contains(PASSPHRASE), "{}", run.stderr);
    }

    // A file wins over the environment.
    let file = tmp.path().join("pass");
    std::fs::write(&file, "from the file\n").unwrap();
    let r = archy_with(
        &dir,
        &[
            "backup",
            "hello-web",
            "--passphrase-file",
            file.to_str().unwrap(),
        ],
        "",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A public key needs no passphrase.
    let r = archy(&dir, &["backup", "hello-web", "--recipient", RECIPIENT], "");
    assert_eq!(r.code, 0, "{}", r.stderr);

    let sent = params_of(&server, "package.backup");
    assert_eq!(
        sent,
        [
            json!({"id": "hello-web", "passphrase": PASSPHRASE, "recipient": null, "target": null}),
            json!({"id": "hello-web", "passphrase": PASSPHRASE, "recipient": null, "target": "/mnt/usb"}),
            json!({"id": "hello-web", "passphrase": "from the file", "recipient": null, "target": null}),
            json!({"id": "hello-web", "passphrase": null, "recipient": RECIPIENT, "target": null}),
        ]
    );

    // Never on the command line.
    assert_eq!(
        archy(&dir, &["backup", "hello-web", "--passphrase", "x"], "").code,
        2
    );
    // No passphrase and no terminal to ask on: nothing is sent.
    if Path::new("/usr/bin/setsid").exists() {
        let out = Command::new("/usr/bin/setsid")
            .arg(env!("CARGO_BIN_EXE_archy"))
            .arg("--config-dir")
            .arg(&dir)
            .args(["backup", "hello-web"])
            .env_remove("ARCHY_NODE")
            .env_remove("ARCHY_BACKUP_PASSPHRASE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("ARCHY_BACKUP_PASSPHRASE"), "{stderr}");
        assert_eq!(params_of(&server, "package.backup").len(), 4);
    }
}

#[test]
fn backups_are_listed_downloaded_and_deleted() {
    let (server, tmp, dir) = logged_in();
    let r = archy(&dir, &["backups"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].ends_with("APP        VERSION  CREATED               SIZE"),
        "{}",
        r.stdout
    );
    assert_eq!(
        lines[1],
        format!("{BACKUP}  hello-web  1.0.0    2026-11-27 21:30 UTC  683.6 KiB")
    );
    assert_eq!(lines.len(), 3);

    let r = archy(&dir, &["backups", "chain", "--json"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list["backups"].as_array().unwrap().len(), 1);
    assert_eq!(list["backups"][0]["app"], "chain");
    assert_eq!(
        params_of(&server, "backup.list").last().unwrap()["id"],
        "chain"
    );

    // Downloaded byte for byte, 0600, checked against the node's hash.
    let out = tmp.path().join("copy.archy-backup");
    let out_arg = out.to_str().unwrap();
    let r = archy(&dir, &["backup-download", BACKUP, "--out", out_arg], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), backup_data());
    assert_eq!(mode(&out), 0o600);
    assert!(
        r.stdout
            .contains(&format!("683.6 KiB, sha256 {}", sha256_hex(&backup_data()))),
        "{}",
        r.stdout
    );
    let offsets: Vec<Value> = params_of(&server, "backup.download")
        .iter()
        .map(|p| p["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(0), json!(524_288)]);
    // Not over an existing file.
    let r = archy(&dir, &["backup-download", BACKUP, "--out", out_arg], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    // Into a folder, under its name; as JSON.
    let folder = tmp.path().join("saved");
    std::fs::create_dir(&folder).unwrap();
    let r = archy(
        &dir,
        &[
            "backup-download",
            BACKUP,
            "-o",
            folder.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(got["sha256"], sha256_hex(&backup_data()));
    assert_eq!(std::fs::read(folder.join(BACKUP)).unwrap(), backup_data());

    let r = archy(
        &dir,
        &["backup-download", "nope.archy-backup", "-o", out_arg],
        "",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let missing = tmp.path().join("missing");
    let r = archy(
        &dir,
        &[
            "backup-download",
            "nope.archy-backup",
            "-o",
            missing.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(!missing.exists());
    assert_eq!(archy(&dir, &["backup-download", "../x"], "").code, 2);

    // Deleting asks first.
    let r = archy(&dir, &["backup-delete", BACKUP], "y\n");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(params_of(&server, "backup.delete").is_empty());
    let r = archy(&dir, &["backup-delete", "nope.archy-backup", "--yes"], "");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        params_of(&server, "backup.delete"),
        [json!({"name": "nope.archy-backup"})]
    );
}

#[test]
fn a_local_backup_is_uploaded_then_restored() {
    let (server, tmp, dir) = logged_in();
    let name = "hello-web-1.0.0-20261201T000000Z.archy-backup";
    let file = tmp.path().join(name);
    std::fs::write(&file, backup_data()).unwrap();
    let path = file.to_str().unwrap();
    let env = [("ARCHY_BACKUP_PASSPHRASE", PASSPHRASE)];

    // Without --local, BACKUP is the node's: the error says what to do.
    let r = archy_with(&dir, &["restore", path], "", &env);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("pass --local"), "{}", r.stderr);

    let r = archy_with(&dir, &["restore", path, "--local"], "", &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("restored hello-web 1.0.0 from {name}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("verifying:"), "{}", r.stderr);
    assert!(r.stderr.contains("restoring:"), "{}", r.stderr);
    assert!(!r.stdout.contains(PASSPHRASE) && !r.stderr.contains(PASSPHRASE));
    let uploads = params_of(&server, "backup.upload");
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[1]["sha256"], sha256_hex(&backup_data()));
    let restores = params_of(&server, "package.restore");
    assert_eq!(
        restores.last().unwrap(),
        &json!({"backup": name, "passphrase": PASSPHRASE, "identity": null})
    );

    // With an age key from a file written by age-keygen.
    let key = tmp.path().join("key.txt");
    std::fs::write(
        &key,
        format!("# created: 2026-11-27T21:30:00Z\n# public key: {RECIPIENT}\n{KEY}\n"),
    )
    .unwrap();
    let r = archy(
        &dir,
        &[
            "restore",
            BACKUP,
            "--identity-file",
            key.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let status: PackageStatus = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(status.id, "hello-web");
    assert!(!r.stdout.contains(KEY) && !r.stderr.contains(KEY));
    assert_eq!(
        params_of(&server, "package.restore").last().unwrap(),
        &json!({"backup": BACKUP, "passphrase": null, "identity": KEY})
    );

    // A wrong passphrase is an authentication failure.
    let r = archy_with(
        &dir,
        &["restore", BACKUP],
        "",
        &[("ARCHY_BACKUP_PASSPHRASE", "wrong")],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);

    // Uploaded alone, it keeps its name.
    let other = tmp.path().join("other.archy-backup");
    std::fs::write(&other, b"small").unwrap();
    let r = archy(&dir, &["backup-upload", other.to_str().unwrap()], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("as other.archy-backup\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("restore it with: archy restore other.archy-backup"),
        "{}",
        r.stdout
    );
}

#[test]
fn settings_change_only_what_is_given() {
    let (server, _tmp, dir) = logged_in();
    let r = archy(&dir, &["settings", "hello-web"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("auto update  off"), "{}", r.stdout);
    assert!(params_of(&server, "package.settings").is_empty());

    let r = archy(
        &dir,
        &[
            "settings",
            "hello-web",
            "--auto-update-hours",
            "24",
            "--backup-every-hours",
            "12",
            "--recipient",
            RECIPIENT,
            "--backup-max-age-hours",
            "48",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("every 12 h, encrypted to {RECIPIENT}, keeping 7")),
        "{}",
        r.stdout
    );
    assert_eq!(
        params_of(&server, "package.settings"),
        [json!({
            "id": "hello-web",
            "settings": {
                "auto_update_hours": 24,
                "backup_schedule": {"every_hours": 12, "recipient": RECIPIENT, "keep": 7},
                "backup_max_age_hours": 48,
            }
        })]
    );

    // The fake node's app has no schedule: --keep alone cannot make one.
    let r = archy(&dir, &["settings", "hello-web", "--keep", "3"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--recipient"), "{}", r.stderr);
    let r = archy(
        &dir,
        &[
            "settings",
            "hello-web",
            "--no-backup-schedule",
            "--keep",
            "3",
        ],
        "",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(params_of(&server, "package.settings").len(), 1);

    let r = archy(
        &dir,
        &[
            "settings",
            "hello-web",
            "--auto-update-hours",
            "6",
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let settings: AppSettings = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        settings,
        AppSettings {
            auto_update_hours: 6,
            ..AppSettings::default()
        }
    );
}
