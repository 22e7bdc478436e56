//! The security list of the daemon, checked on a real node running the
//! `.deb`: no method but login works without a session; a client pinned to
//! another fingerprint is refused (by the client crate and by `archy`, with
//! its exit code), while `archy` paired with the right one logs in, lists,
//! stops, starts and reads logs; 1 000 malformed bodies each get a JSON-RPC
//! error and the daemon stays up (same process, still answering); the
//! daemon runs as the unprivileged service user; app containers run with
//! no capability.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::cast_possible_truncation
)]

use archipelago_api::ErrorCode;
use archipelago_api::methods::{self, AppParams, Empty, Method};
use archipelago_api::rpc::{RPC_PATH, Response, format_fingerprint};
use archipelago_client::pin::{PinnedVerifier, client_config, provider};
use archipelago_client::{Client, ClientError};
use archipelago_harness::node::Node;
use archipelago_harness::testing::{nothing_left, repo_root, serial};
use archipelago_lifecycle::{API_PORT, Lab, PASSWORD, root, user};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

/// Every method that needs a session.
const GUARDED: [&str; 12] = [
    methods::AuthLogout::NAME,
    methods::NodeInfo::NAME,
    methods::CatalogList::NAME,
    methods::PackageInstall::NAME,
    methods::PackageStart::NAME,
    methods::PackageStop::NAME,
    methods::PackageRestart::NAME,
    methods::PackageUninstall::NAME,
    methods::PackageStatusMethod::NAME,
    methods::PackageList::NAME,
    methods::PackageLogs::NAME,
    methods::PackageStats::NAME,
];

#[test]
fn the_daemon_on_a_real_node_holds_its_security_promises() {
    let _one = serial();
    {
        let lab = Lab::start().unwrap();
        lab.block_on(async {
            let api = lab.api().await.unwrap();
            let status = api.install("hello-web").await.unwrap().1;
            assert_eq!(status.health, methods::Health::Healthy);
        })
        .unwrap();
        no_session_no_method(&lab);
        wrong_fingerprints_are_refused(&lab);
        malformed_bodies(&lab);
        nothing_runs_as_root(&lab);
    }
    nothing_left().unwrap();
}

fn no_session_no_method(lab: &Lab) {
    lab.block_on(async {
        let anonymous = lab.client().unwrap();
        let forged = lab.client().unwrap().with_token("0".repeat(64));
        let session = lab.api().await.unwrap().client;
        let token = session.token().unwrap();
        session.call::<methods::AuthLogout>(Empty {}).await.unwrap();
        let logged_out = lab.client().unwrap().with_token(token);
        for client in [&anonymous, &forged, &logged_out] {
            for method in GUARDED {
                let code = raw_call(client, method).await;
                assert_eq!(
                    code,
                    Some(ErrorCode::Unauthenticated),
                    "{method} without a valid session"
                );
            }
        }
        // A wrong password is refused, and then throttled.
        let e = anonymous.login("not the password").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::LoginFailed), "{e}");
        let e = anonymous.login("not the password").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TooManyAttempts), "{e}");
        eprintln!("a throttled login says: {e}");
        // Let the throttle pass before the next login from this address.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    })
    .unwrap();
}

/// Calls `method` with empty-ish params and returns the error code.
async fn raw_call(client: &Client, method: &str) -> Option<ErrorCode> {
    macro_rules! call {
        ($m:ty, $p:expr) => {
            client.call::<$m>($p).await.err().and_then(|e| e.code())
        };
    }
    let app = || AppParams {
        id: "hello-web".into(),
    };
    match method {
        methods::AuthLogout::NAME => call!(methods::AuthLogout, Empty {}),
        methods::NodeInfo::NAME => call!(methods::NodeInfo, Empty {}),
        methods::CatalogList::NAME => call!(methods::CatalogList, Empty {}),
        methods::PackageInstall::NAME => call!(methods::PackageInstall, app()),
        methods::PackageStart::NAME => call!(methods::PackageStart, app()),
        methods::PackageStop::NAME => call!(methods::PackageStop, app()),
        methods::PackageRestart::NAME => call!(methods::PackageRestart, app()),
        methods::PackageUninstall::NAME => call!(
            methods::PackageUninstall,
            methods::UninstallParams {
                id: "hello-web".into(),
                keep_data: false
            }
        ),
        methods::PackageStatusMethod::NAME => call!(methods::PackageStatusMethod, app()),
        methods::PackageList::NAME => call!(methods::PackageList, Empty {}),
        methods::PackageLogs::NAME => call!(
            methods::PackageLogs,
            methods::LogsParams {
                id: "hello-web".into(),
                container: None,
                lines: 5,
                follow: false
            }
        ),
        methods::PackageStats::NAME => call!(methods::PackageStats, app()),
        other => panic!("no call for {other}"),
    }
}

fn wrong_fingerprints_are_refused(lab: &Lab) {
    let mut wrong = lab.fingerprint;
    wrong[0] ^= 0xff;
    let address = lab.node().port(API_PORT).to_string();
    lab.block_on(async {
        let client = Client::new(&address, wrong).unwrap();
        match client.login(PASSWORD).await {
            Err(ClientError::FingerprintMismatch { .. }) => {}
            other => panic!("a wrong pin was not refused: {other:?}"),
        }
    })
    .unwrap();
    // archy, as a person runs it: pairing with the wrong fingerprint is
    // refused; with the right one, it pairs, logs in and manages the app.
    let archy = archy_binary();
    let config = lab.net.dir().join("archy-config");
    let run = |args: &[&str], input: Option<&str>| {
        let mut c = lab.net.command(archy.to_str().unwrap());
        c.args(["--config-dir", config.to_str().unwrap()])
            .args(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = input {
            writeln!(stdin, "{text}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let pair = |fingerprint: &[u8; 32]| {
        let fingerprint = format_fingerprint(fingerprint);
        let args = [
            "pair",
            &address,
            "--name",
            "node",
            "--fingerprint",
            &fingerprint,
        ];
        run(&args, None)
    };
    let (code, _, stderr) = pair(&wrong);
    eprintln!("archy pair with a wrong fingerprint: {stderr}");
    assert_eq!(code, Some(5), "{stderr}");
    let ok = |(code, stdout, stderr): (Option<i32>, String, String)| {
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        stdout
    };
    ok(pair(&lab.fingerprint));
    ok(run(&["login", "--password-stdin"], Some(PASSWORD)));
    let list: methods::PackageListResult =
        serde_json::from_str(&ok(run(&["--json", "list"], None))).unwrap();
    assert_eq!(list.apps[0].health, methods::Health::Healthy, "{list:?}");
    ok(run(&["stop", "hello-web"], None));
    let status = ok(run(&["--json", "status", "hello-web"], None));
    assert!(status.contains(r#""health":"stopped""#), "{status}");
    ok(run(&["start", "hello-web"], None));
    let logs = ok(run(&["logs", "hello-web", "--lines", "5"], None));
    eprintln!("archy logs hello-web:\n{logs}");
}

/// The `archy` of this build.
fn archy_binary() -> std::path::PathBuf {
    let status = std::process::Command::new("cargo")
        .args(["build", "--quiet", "-p", "archy", "--bin", "archy"])
        .current_dir(repo_root())
        .status()
        .unwrap();
    assert!(status.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), std::path::PathBuf::from);
    target.join("debug/archy")
}

/// A generator of test bytes (xorshift), so that a failure can be replayed.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The malformed body number `i`.
fn malformed(i: usize, rng: &mut Bytes) -> Vec<u8> {
    let n = (rng.next() % 300) as usize;
    match i % 10 {
        0 => rng.fill(n),
        1 => b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"package.install\",\"params\":{\"id\":5}}"
            .to_vec(),
        2 => b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"package.list\"}]".to_vec(),
        3 => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"package.status\",\"params\":{{\"id\":\"../../../etc/passwd\"}}}}",
            "9".repeat(400)
        )
        .into_bytes(),
        4 => format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        5 => vec![0xff, 0xfe, b'{', 0x80, b'}'],
        6 => b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"package.list\"}".to_vec(),
        7 => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"{}\"}}",
            "x".repeat(n * 10)
        )
        .into_bytes(),
        8 => b"null".to_vec(),
        _ => {
            let mut b = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"package.logs\",\"params\":"
                .to_vec();
            b.extend(rng.fill(n));
            b
        }
    }
}

fn malformed_bodies(lab: &Lab) {
    let pid_before = daemon_pid(lab);
    let url = format!("https://{}{RPC_PATH}", lab.node().port(API_PORT));
    let (errors, took) = lab
        .block_on(async {
            let api = lab.api().await.unwrap();
            let token = api.client.token().unwrap();
            let provider = provider();
            let verifier = Arc::new(PinnedVerifier::new(lab.fingerprint, &provider));
            let http = reqwest::Client::builder()
                .use_preconfigured_tls(client_config(verifier, provider).unwrap())
                .build()
                .unwrap();
            let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);
            let start = Instant::now();
            let mut errors = 0;
            for i in 0..1000 {
                let mut body = malformed(i, &mut rng);
                if i == 500 {
                    // One body over the limit.
                    body = vec![b' '; 2 * 1024 * 1024];
                }
                let mut req = http.post(&url).body(body);
                if i % 2 == 0 {
                    req = req.bearer_auth(&token);
                }
                let res = match req.send().await {
                    Ok(res) => res,
                    // The node may answer 413 from the Content-Length and
                    // close before the client has written the whole body.
                    Err(e) if i == 500 && e.is_request() => {
                        eprintln!("the 2 MiB body was cut off by the node: {e}");
                        errors += 1;
                        continue;
                    }
                    Err(e) => panic!("body {i}: {e}"),
                };
                let status = res.status();
                if i == 500 {
                    assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
                }
                let text = res.bytes().await.unwrap();
                let answer: Response = serde_json::from_slice(&text).unwrap_or_else(|e| {
                    panic!(
                        "body {i}: HTTP {status}, not a JSON-RPC answer ({e}): {}",
                        String::from_utf8_lossy(&text)
                    )
                });
                assert!(answer.error.is_some(), "body {i} did not fail: {answer:?}");
                errors += 1;
            }
            // Still answering properly.
            let list = api
                .client
                .call::<methods::PackageList>(Empty {})
                .await
                .unwrap();
            assert_eq!(list.apps.len(), 1);
            (errors, start.elapsed())
        })
        .unwrap();
    assert_eq!(errors, 1000);
    assert_eq!(daemon_pid(lab), pid_before, "the daemon restarted");
    eprintln!("figure: 1000 malformed bodies answered with errors in {took:.2?}");
}

fn daemon_pid(lab: &Lab) -> String {
    root(
        &*lab.node(),
        &["systemctl", "show", "-P", "MainPID", "archipelagod"],
    )
    .unwrap()
    .trim()
    .to_owned()
}

fn nothing_runs_as_root(lab: &Lab) {
    let pid = daemon_pid(lab);
    let status = root(&*lab.node(), &["cat", &format!("/proc/{pid}/status")]).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert!(uids.iter().all(|u| *u != "0"), "{uid_line}");
    let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(caps.ends_with("0000000000000000"), "{caps}");
    // The app's container: no capability at all (its manifest adds none).
    let inspect = user(
        &*lab.node(),
        &[
            "podman",
            "inspect",
            "--format",
            "{{.EffectiveCaps}} {{.HostConfig.Privileged}} {{.Config.User}}",
            "hello-web_web",
        ],
    )
    .unwrap();
    eprintln!("hello-web_web: EffectiveCaps Privileged User = {inspect}");
    assert!(inspect.starts_with("[] false"), "{inspect}");
    // Every process of the daemon and the apps, by real and effective uid.
    let script = r#"for d in /proc/[0-9]*; do
        c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
        u=$(awk '/^Uid:/ {print $2 "/" $3}' "$d/status" 2>/dev/null)
        echo "$u $c"
    done"#;
    let procs = root(&*lab.node(), &["sh", "-c", script]).unwrap();
    let ours: Vec<&str> = procs
        .lines()
        .filter(|l| {
            ["archipelagod", "conmon", "httpd"]
                .iter()
                .any(|p| l.contains(p))
        })
        .collect();
    assert!(ours.len() >= 3, "{procs}");
    for l in ours {
        assert!(
            !l.starts_with("0/") && !l.contains("/0 "),
            "runs as root: {l}"
        );
    }
}
