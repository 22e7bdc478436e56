//! `archy` end to end: the real binary against a fake node (the client
//! crate's TLS test server with a handler that plays the node's API), in a
//! throwaway configuration folder. Checks what scripts rely on: exit codes,
//! `--json` on stdout and stderr, files and their modes, and that nothing
//! reaches a node whose certificate is not the pinned one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use archipelago_api::ErrorCode;
use archipelago_api::RunState;
use archipelago_api::methods::{
    Health, InstallProgress, LogEntry, PackageStatus, Phase, Session, UninstallResult,
};
use archipelago_api::rpc::{Response, StreamEvent, format_fingerprint};
use archipelago_client::test_server::{TestReply, TestRequest, TestServer};
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn archy(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_archy"))
        .arg("--config-dir")
        .arg(dir)
        .args(args)
        .env_remove("ARCHY_NODE")
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
        settings: Default::default(),
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
            "package.status" if id != "hello-web" => TestReply::error(
                req,
                ErrorCode::AppNotInstalled.with(format!("{id} is not installed")),
            ),
            "package.status" | "package.start" => TestReply::result(req, &status(&id)),
            "package.list" => TestReply::result(req, &json!({"apps": [status("hello-web")]})),
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
            _ => TestReply::error(req, ErrorCode::MethodNotFound.with(method.clone())),
        }
    }
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
