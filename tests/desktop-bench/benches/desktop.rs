//! The desktop app's figures under Xvfb, each beside a hello-world Tauri
//! window (`src/main.rs` of this crate: one window, one static page, the
//! same Tauri version, features and profile) measured in the same run (a
//! benchmark: it prints, it does not judge — the targets are in issue 5):
//!
//! 1. app start to dashboard rendered: from asking for a `WebDriver`
//!    session on the release binary (tauri-driver + `WebKitWebDriver`
//!    start it) until the node grid shows all 50 cards, each with a state
//!    (`data-status` not `checking`); median of `BENCH_LAUNCHES` launches;
//! 2. the binary's size;
//! 3. memory with that dashboard shown: PSS and RSS summed over the app's
//!    whole process tree (the app, `WebKitWebProcess`,
//!    `WebKitNetworkProcess`, …; `/proc/<pid>/smaps_rollup`), a few
//!    seconds after the 50 cards were there; also for a launch without
//!    `WebDriver`.
//!
//! The 50 nodes are real daemons: one nspawn node booted with the `.deb`
//! ([`Lab::start`], its daemon on 7443) and 49 more `archipelagod run`
//! instances inside it, started as the service user with
//! `systemd-run --user`, each with its own home, port, TLS certificate and
//! password. The app gets a configuration folder holding the 50 nodes
//! (fingerprints pinned as `archipelagod pairing` prints them) and a session
//! token for each, written with the desktop crate's own code. Xvfb,
//! tauri-driver and so the app run inside the run's network namespace.
//!
//! Run (as root, after `bash tests/desktop/setup.sh`):
//! `ARCHIPELAGO_DEB_PROFILE=release cargo bench -p archipelago-desktop-bench`.
//! It builds the frontend when `frontend/dist` is missing, then both
//! binaries with `cargo build --profile $BENCH_DESKTOP_PROFILE` (default
//! `release`). Prints a table, also written to `target/desktop-bench.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::similar_names,
    clippy::too_many_lines
)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use archipelago_api::rpc::parse_fingerprint;
use archipelago_client::{Address, Client};
use archipelago_desktop::registry::Registry;
use archipelago_desktop::tokens::TokenFile;
use archipelago_harness::node::{Node, RunAs};
use archipelago_lifecycle::{API_PORT, Lab, PASSWORD};
use serde_json::{Value, json};

/// Nodes on the dashboard: the `.deb`'s daemon and this many minus one
/// more instances.
const NODES: usize = 50;
/// Where the extra instances live on the node.
const BENCH_HOMES: &str = "/var/lib/archipelago/bench";
/// tauri-driver's port inside the run's namespace (nothing else listens
/// on its loopback).
const DRIVER_PORT: u16 = 4444;
const NATIVE_PORT: u16 = 4445;
/// Time a launch may take to show the 50 cards before it counts as failed.
const LAUNCH_LIMIT: Duration = Duration::from_secs(60);
/// How long after the dashboard (or the minimal page) is shown memory is
/// read: the first overview's work done, the page idle.
const SETTLE: Duration = Duration::from_secs(5);
/// How long a launch without `WebDriver` runs before its memory is read.
const DIRECT_SETTLE: Duration = Duration::from_secs(10);

/// Counts the node cards and those showing a state.
const CARDS_SCRIPT: &str = r#"
const cards = document.querySelectorAll('[data-testid^="node-card-"]');
let shown = 0, online = 0;
for (const c of cards) {
  const s = c.getAttribute('data-status');
  if (s && s !== 'checking') shown++;
  if (s === 'online') online++;
}
return [cards.length, shown, online];
"#;
/// The minimal window's page is there.
const MINIMAL_SCRIPT: &str =
    "return document.readyState === 'complete' && document.querySelector('h1') !== null";

fn main() {
    let launches: usize = std::env::var("BENCH_LAUNCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let profile = std::env::var("BENCH_DESKTOP_PROFILE").unwrap_or_else(|_| "release".into());
    let root = repo_root();

    // Builds first, before the node: nothing else competes for the CPU.
    build_frontend_if_missing(&root);
    let app = build(
        &root,
        &profile,
        "archipelago-desktop",
        "archipelago-desktop",
    );
    let minimal = build(
        &root,
        &profile,
        "archipelago-desktop-bench",
        "tauri-minimal-window",
    );
    let driver = find_tauri_driver();
    eprintln!("desktop bench: app {}", app.display());
    eprintln!("desktop bench: minimal window {}", minimal.display());

    let lab = Lab::start().unwrap();
    let t = Instant::now();
    let nodes = start_nodes(&lab);
    let nodes_took = t.elapsed();
    let work = lab.net.dir().join("desktop-bench");
    let config = work.join("config");
    std::fs::create_dir_all(&work).unwrap();
    write_config(&lab, &config, &nodes);
    eprintln!(
        "desktop bench: {NODES} nodes up, paired and logged in ({nodes_took:.1?} for the extra instances)"
    );

    let display = Display::start(&lab, &work, &driver, &config);
    let mut app_runs = Vec::new();
    let mut minimal_runs = Vec::new();
    for round in 0..launches {
        // Alternating, so that both see the same caches and load.
        let a = lab
            .net
            .enter(|| launch(&app, CARDS_SCRIPT, cards_done))
            .unwrap();
        eprintln!(
            "desktop bench: launch {}: app dashboard in {:.3?} ({} online), PSS {:.1} MB",
            round + 1,
            a.shown,
            a.online,
            mb(a.memory.pss)
        );
        app_runs.push(a);
        let m = lab
            .net
            .enter(|| launch(&minimal, MINIMAL_SCRIPT, |v| (v == &Value::Bool(true), 0)))
            .unwrap();
        eprintln!(
            "desktop bench: launch {}: minimal page in {:.3?}, PSS {:.1} MB",
            round + 1,
            m.shown,
            mb(m.memory.pss)
        );
        minimal_runs.push(m);
    }
    let direct_rounds = launches.min(3);
    let mut app_direct = Vec::new();
    let mut minimal_direct = Vec::new();
    for _ in 0..direct_rounds {
        app_direct.push(display.direct(&lab, &app));
        minimal_direct.push(display.direct(&lab, &minimal));
    }
    drop(display);

    let app_size = std::fs::metadata(&app).unwrap().len();
    let minimal_size = std::fs::metadata(&minimal).unwrap().len();
    let report = Report {
        launches,
        direct_rounds,
        profile,
        app_runs,
        minimal_runs,
        app_direct,
        minimal_direct,
        app_size,
        minimal_size,
        app_file: file_kind(&app),
        deb_profile: std::env::var("ARCHIPELAGO_DEB_PROFILE").unwrap_or_else(|_| "dev".into()),
    };
    let text = report.render();
    println!("\n=== desktop benchmark ===\n{text}");
    let out = target_dir(&root).join("desktop-bench.md");
    std::fs::write(&out, format!("# Desktop benchmark\n\n{text}")).unwrap();
    println!("(also written to {})", out.display());
}

// ---------------------------------------------------------------------------
// Builds

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// `npm run build` in `frontend/` when `frontend/dist` does not exist (the
/// app embeds it; `tests/desktop/setup.sh` installed the packages).
fn build_frontend_if_missing(root: &Path) {
    let frontend = root.join("frontend");
    if frontend.join("dist/index.html").is_file() {
        return;
    }
    eprintln!("desktop bench: building the frontend (npm run build)");
    let status = Command::new("npm")
        .args(["run", "build"])
        .current_dir(&frontend)
        .stdout(Stdio::null())
        .status()
        .expect("running npm (tests/desktop/setup.sh installs it)");
    assert!(status.success(), "npm run build failed in frontend/");
}

/// `cargo build --profile <profile> -p <package> --bin <bin>`; the binary.
/// One package per build, so that nothing else changes its features.
fn build(root: &Path, profile: &str, package: &str, bin: &str) -> PathBuf {
    eprintln!("desktop bench: cargo build --profile {profile} -p {package} --bin {bin}");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--profile", profile, "-p", package, "--bin", bin])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo");
    assert!(out.status.success(), "cargo build of {bin} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == bin)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo named no executable for {bin}"))
}

/// `$TAURI_DRIVER`, else where `tests/desktop/setup.sh` puts it, else
/// `PATH`.
fn find_tauri_driver() -> PathBuf {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("ARCHIPELAGO_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/archipelago"), PathBuf::from);
    let cached = cache.join("cargo-tools/bin/tauri-driver");
    if cached.is_file() {
        return cached;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("tauri-driver"))
        .find(|p| p.is_file())
        .expect("tauri-driver not found: run tests/desktop/setup.sh (as root)")
}

/// What `file` says of the binary (stripped or not), for the report.
fn file_kind(path: &Path) -> String {
    Command::new("file")
        .arg("-b")
        .arg(path)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .and_then(|s| {
            ["not stripped", "stripped"]
                .into_iter()
                .find(|w| s.contains(w))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------
// The 50 nodes

/// One node for the app: address and the fingerprint `archipelagod
/// pairing` printed.
struct BenchNode {
    address: String,
    fingerprint: [u8; 32],
}

/// The lab's daemon plus `NODES - 1` more instances in the same node, as
/// the service user: own home, port and password, started with
/// `systemd-run --user` (so they run under the user's manager, as the
/// `.deb`'s daemon does); the fingerprints their `archipelagod pairing`
/// prints, checked against the certificates they present.
fn start_nodes(lab: &Lab) -> Vec<BenchNode> {
    let extra = NODES - 1;
    let password_file = format!("{BENCH_HOMES}/.password");
    // The password goes to each `init` on stdin, from a 0600 file of the
    // service user's that the script removes.
    lab.node()
        .copy_in(
            format!("{PASSWORD}\n").as_bytes(),
            &password_file,
            RunAs::ServiceUser,
            0o600,
        )
        .unwrap();
    let script = r#"
set -eu
pw="$1"; n="$2"; homes="$3"; base="$4"
daemon="$(command -v archipelagod)"
for i in $(seq 1 "$n"); do
  h="$homes/n$i"
  mkdir -p "$h"
  HOME="$h" "$daemon" init --home "$h" --password-stdin < "$pw" > /dev/null
  systemd-run --user --quiet --unit "bench-n$i" --setenv=HOME="$h" \
    "$daemon" run --home "$h" --listen "0.0.0.0:$((base + i))"
done
rm -f "$pw"
"#;
    let out = lab
        .node()
        .exec(
            RunAs::ServiceUser,
            &[
                "sh",
                "-c",
                script,
                "sh",
                &password_file,
                &extra.to_string(),
                BENCH_HOMES,
                &API_PORT.to_string(),
            ],
        )
        .unwrap();
    assert!(out.success(), "starting the instances failed: {out:?}");

    let ports: Vec<u16> = (0..NODES).map(|i| API_PORT + i as u16).collect();
    let addresses: Vec<SocketAddr> = ports.iter().map(|&p| lab.node().port(p)).collect();
    // Each makes its certificate at start: wait until all accept.
    lab.net
        .enter(|| {
            for addr in &addresses {
                let deadline = Instant::now() + Duration::from_secs(120);
                while TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_err() {
                    assert!(Instant::now() < deadline, "{addr} never accepted");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .unwrap();

    let pairing = r#"
for i in $(seq 1 "$1"); do
  echo "=== $i"
  archipelagod pairing --home "$2/n$i" --port "$(($3 + i))"
done
"#;
    let out = lab
        .node()
        .exec(
            RunAs::ServiceUser,
            &[
                "sh",
                "-c",
                pairing,
                "sh",
                &extra.to_string(),
                BENCH_HOMES,
                &API_PORT.to_string(),
            ],
        )
        .unwrap();
    assert!(out.success(), "archipelagod pairing failed: {out:?}");
    let mut printed = vec![lab.fingerprint];
    for block in out.stdout.split("=== ").skip(1) {
        printed.push(
            block
                .split_whitespace()
                .find_map(parse_fingerprint)
                .unwrap_or_else(|| panic!("no fingerprint in `archipelagod pairing`: {block}")),
        );
    }
    assert_eq!(printed.len(), NODES, "pairing output: {}", out.stdout);

    let nodes: Vec<BenchNode> = addresses
        .iter()
        .zip(printed)
        .map(|(a, fingerprint)| BenchNode {
            address: a.to_string(),
            fingerprint,
        })
        .collect();
    let presented = lab
        .block_on(async {
            let mut all = Vec::new();
            for n in &nodes {
                all.push(
                    archipelago_client::fetch_fingerprint(&n.address)
                        .await
                        .unwrap(),
                );
            }
            all
        })
        .unwrap();
    for (n, p) in nodes.iter().zip(&presented) {
        assert_eq!(
            n.fingerprint, *p,
            "{} presents another certificate than `archipelagod pairing` prints",
            n.address
        );
    }
    let distinct: std::collections::HashSet<_> = presented.iter().collect();
    assert_eq!(distinct.len(), NODES, "two instances share a certificate");
    nodes
}

/// The app's configuration folder: the nodes (with the desktop crate's
/// node list) and a session for each (its token file, as with
/// `ARCHIPELAGO_DESKTOP_NO_KEYRING=1`), logged in with the password.
fn write_config(lab: &Lab, dir: &Path, nodes: &[BenchNode]) {
    let sessions = lab
        .block_on(async {
            let mut all = Vec::new();
            for n in nodes {
                let client = Client::new(&n.address, n.fingerprint).unwrap();
                all.push(client.login(PASSWORD).await.unwrap());
            }
            all
        })
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut registry = Registry::new(dir);
    let tokens = TokenFile::new(dir);
    for (i, (n, session)) in nodes.iter().zip(&sessions).enumerate() {
        let name = format!("node-{:02}", i + 1);
        let address = Address::parse(&n.address).unwrap();
        let record = registry
            .add(&address, n.fingerprint, Some(&name), now)
            .unwrap();
        tokens.set(&record.id, session).unwrap();
    }
    assert_eq!(registry.list().unwrap().len(), NODES);
}

// ---------------------------------------------------------------------------
// The display, the driver, the launches

/// Xvfb and tauri-driver inside the run's namespace, each the leader of its
/// process group.
struct Display {
    xvfb: Child,
    driver: Child,
    /// `:N`.
    name: String,
    config: PathBuf,
    work: PathBuf,
}

impl Display {
    fn start(lab: &Lab, work: &Path, driver: &Path, config: &Path) -> Self {
        let (xvfb, display) = archipelago_e2e::start_xvfb(lab.net.command("Xvfb"), work)
            .expect("starting Xvfb (tests/desktop/setup.sh installs it)");
        let log = std::fs::File::create(work.join("tauri-driver.log")).unwrap();
        let mut cmd = lab.net.command(&driver.to_string_lossy());
        cmd.args(["--port", &DRIVER_PORT.to_string()])
            .args(["--native-port", &NATIVE_PORT.to_string()]);
        let driver = app_env(&mut cmd, &display, config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting tauri-driver");
        let started = Self {
            xvfb,
            driver,
            name: display,
            config: config.to_owned(),
            work: work.to_owned(),
        };
        lab.net
            .enter(|| {
                let deadline = Instant::now() + Duration::from_secs(20);
                while TcpStream::connect(("127.0.0.1", DRIVER_PORT)).is_err() {
                    assert!(Instant::now() < deadline, "tauri-driver is not listening");
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .unwrap();
        started
    }

    /// Starts `binary` directly (no `WebDriver`), reads its tree's memory
    /// after [`DIRECT_SETTLE`], stops it.
    fn direct(&self, lab: &Lab, binary: &Path) -> Memory {
        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::fs::File::create(self.work.join(format!("{name}.direct.log"))).unwrap();
        let mut cmd = lab.net.command(&binary.to_string_lossy());
        let mut child = app_env(&mut cmd, &self.name, &self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(DIRECT_SETTLE);
        // `ip netns exec` execs the program: the child is the app.
        let memory = tree_memory(child.id());
        stop_group(&mut child);
        memory
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        stop_group(&mut self.driver);
        stop_group(&mut self.xvfb);
    }
}

/// The environment the app runs with (tauri-driver passes it on).
fn app_env<'a>(cmd: &'a mut Command, display: &str, config: &Path) -> &'a mut Command {
    cmd.env("DISPLAY", display)
        .env("ARCHIPELAGO_DESKTOP_CONFIG_DIR", config)
        .env("ARCHIPELAGO_DESKTOP_NO_KEYRING", "1")
        .env("ARCHIPELAGO_DESKTOP_NO_BROWSER", "1")
        .env("RUST_LOG", "warn")
}

fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

/// One launch through `WebDriver`.
struct Launch {
    /// Session asked for → the page shows what was waited for.
    shown: Duration,
    /// Session asked for → the session is there (the app started, its
    /// webview connected to the driver).
    session: Duration,
    online: u64,
    memory: Memory,
}

/// `(done, online cards)` from [`CARDS_SCRIPT`]'s answer.
fn cards_done(v: &Value) -> (bool, u64) {
    let n = |i: usize| v.get(i).and_then(Value::as_u64).unwrap_or(0);
    (n(0) == NODES as u64 && n(1) == NODES as u64, n(2))
}

/// Starts `binary` through tauri-driver (call it inside the namespace),
/// waits until `script`'s answer says `done`, waits [`SETTLE`], reads the
/// memory of its process tree and ends the session.
fn launch(binary: &Path, script: &str, done: impl Fn(&Value) -> (bool, u64)) -> Launch {
    let body = json!({
        "capabilities": { "alwaysMatch": {
            "browserName": "wry",
            "tauri:options": { "application": binary },
        }}
    });
    let t = Instant::now();
    let created = webdriver("POST", "/session", Some(&body)).expect("creating a WebDriver session");
    let session_took = t.elapsed();
    let id = created["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id in {created}"))
        .to_owned();
    let execute = format!("/session/{id}/execute/sync");
    let script_body = json!({ "script": script, "args": [] });
    let (shown, online) = loop {
        if let Ok(v) = webdriver("POST", &execute, Some(&script_body)) {
            let (ok, online) = done(&v);
            if ok {
                break (t.elapsed(), online);
            }
        }
        assert!(
            t.elapsed() < LAUNCH_LIMIT,
            "{} did not show what was waited for within {LAUNCH_LIMIT:?}",
            binary.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(SETTLE);
    let pid = find_process(binary).unwrap_or_else(|| panic!("no process of {}", binary.display()));
    let memory = tree_memory(pid);
    let _ = webdriver("DELETE", &format!("/session/{id}"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while find_process(binary).is_some() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Launch {
        shown,
        session: session_took,
        online,
        memory,
    }
}

/// One `WebDriver` call to tauri-driver (HTTP/1.1 on the namespace's
/// loopback); the response's `value`.
fn webdriver(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", DRIVER_PORT)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{DRIVER_PORT}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload)?;
    }
    let value: Value = serde_json::from_slice(&payload).map_err(|e| {
        format!(
            "{e}: {head} {}",
            String::from_utf8_lossy(&payload)
                .chars()
                .take(300)
                .collect::<String>()
        )
    })?;
    let inner = value.get("value").cloned().unwrap_or(Value::Null);
    if inner.get("error").is_some() || !head.starts_with("http/1.1 2") {
        return Err(format!("{method} {path}: {inner}"));
    }
    Ok(inner)
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk")?;
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| e.to_string())?;
        if size == 0 {
            return Ok(out);
        }
        let start = end + 2;
        out.extend_from_slice(data.get(start..start + size).ok_or("short chunk")?);
        data = data.get(start + size + 2..).ok_or("short chunk")?;
    }
}

// ---------------------------------------------------------------------------
// Memory

/// Summed over a process tree, bytes.
#[derive(Debug, Clone, Default)]
struct Memory {
    pss: u64,
    rss: u64,
    /// `comm` → (processes, PSS bytes).
    parts: Vec<(String, usize, u64)>,
}

/// The process running `binary` (only one runs at a time here).
fn find_process(binary: &Path) -> Option<u32> {
    let want = std::fs::canonicalize(binary).ok()?;
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&want))
}

/// `pid` → `(parent, comm)` of every process.
fn processes() -> HashMap<u32, (u32, String)> {
    let mut all = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return all;
    };
    for entry in dir.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        all.insert(pid, (ppid, comm));
    }
    all
}

/// PSS and RSS of `root` and all its descendants
/// (`/proc/<pid>/smaps_rollup`).
fn tree_memory(root: u32) -> Memory {
    let all = processes();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            all.iter()
                .filter(|(_, (ppid, _))| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    let mut memory = Memory::default();
    let mut parts: Vec<(String, usize, u64)> = Vec::new();
    for pid in tree {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let (pss, rss) = (field("Pss:"), field("Rss:"));
        memory.pss += pss;
        memory.rss += rss;
        let comm = all.get(&pid).map(|(_, c)| c.clone()).unwrap_or_default();
        match parts.iter_mut().find(|(c, _, _)| *c == comm) {
            Some(part) => {
                part.1 += 1;
                part.2 += pss;
            }
            None => parts.push((comm, 1, pss)),
        }
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.2));
    memory.parts = parts;
    memory
}

// ---------------------------------------------------------------------------
// The report

struct Report {
    launches: usize,
    direct_rounds: usize,
    profile: String,
    app_runs: Vec<Launch>,
    minimal_runs: Vec<Launch>,
    app_direct: Vec<Memory>,
    minimal_direct: Vec<Memory>,
    app_size: u64,
    minimal_size: u64,
    app_file: String,
    deb_profile: String,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn median_duration(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn parts(m: &Memory) -> String {
    m.parts
        .iter()
        .map(|(comm, n, pss)| {
            if *n > 1 {
                format!("{comm} ×{n} {:.1}", mb(*pss))
            } else {
                format!("{comm} {:.1}", mb(*pss))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    fn render(&self) -> String {
        let shown = median_duration(self.app_runs.iter().map(|r| r.shown).collect());
        let min_shown = median_duration(self.minimal_runs.iter().map(|r| r.shown).collect());
        let session = median_duration(self.app_runs.iter().map(|r| r.session).collect());
        let min_session = median_duration(self.minimal_runs.iter().map(|r| r.session).collect());
        let pss = median_u64(self.app_runs.iter().map(|r| r.memory.pss).collect());
        let rss = median_u64(self.app_runs.iter().map(|r| r.memory.rss).collect());
        let min_pss = median_u64(self.minimal_runs.iter().map(|r| r.memory.pss).collect());
        let min_rss = median_u64(self.minimal_runs.iter().map(|r| r.memory.rss).collect());
        let d_pss = median_u64(self.app_direct.iter().map(|m| m.pss).collect());
        let d_rss = median_u64(self.app_direct.iter().map(|m| m.rss).collect());
        let dm_pss = median_u64(self.minimal_direct.iter().map(|m| m.pss).collect());
        let dm_rss = median_u64(self.minimal_direct.iter().map(|m| m.rss).collect());
        let online = self.app_runs.iter().map(|r| r.online).min().unwrap_or(0);
        let all_shown: Vec<String> = self.app_runs.iter().map(|r| secs(r.shown)).collect();
        let all_min: Vec<String> = self.minimal_runs.iter().map(|r| secs(r.shown)).collect();
        let (n, d) = (self.launches, self.direct_rounds);

        let mut t = String::new();
        let _ = writeln!(t, "| figure | measured | target | minimal window |");
        let _ = writeln!(t, "|---|---|---|---|");
        let _ = writeln!(
            t,
            "| app start to dashboard rendered ({NODES} cards with a state), median of {n} | {} | < 1.5 s | {} (page loaded) |",
            secs(shown),
            secs(min_shown)
        );
        let _ = writeln!(
            t,
            "| binary size (profile `{}`, {}) | {:.2} MB ({} bytes) | < 20 MB | {:.2} MB ({} bytes) |",
            self.profile,
            self.app_file,
            mb(self.app_size),
            self.app_size,
            mb(self.minimal_size),
            self.minimal_size
        );
        let _ = writeln!(
            t,
            "| memory, PSS summed over the process tree, dashboard of {NODES} nodes shown (median of {n}) | {:.1} MB = {:.2}× the minimal window | ≤ 1.3× minimal (≤ {:.1} MB) | {:.1} MB |",
            mb(pss),
            pss as f64 / min_pss as f64,
            mb(min_pss) * 1.3,
            mb(min_pss)
        );
        let _ = writeln!(
            t,
            "| memory, RSS summed over the process tree (same launches) | {:.1} MB = {:.2}× | – | {:.1} MB |",
            mb(rss),
            rss as f64 / min_rss as f64,
            mb(min_rss)
        );
        let _ = writeln!(
            t,
            "| memory, PSS summed, launched without WebDriver ({}s after start, median of {d}) | {:.1} MB = {:.2}× | ≤ 1.3× minimal | {:.1} MB |",
            DIRECT_SETTLE.as_secs(),
            mb(d_pss),
            d_pss as f64 / dm_pss as f64,
            mb(dm_pss)
        );
        let _ = writeln!(
            t,
            "| memory, RSS summed, launched without WebDriver | {:.1} MB = {:.2}× | – | {:.1} MB |",
            mb(d_rss),
            d_rss as f64 / dm_rss as f64,
            mb(dm_rss)
        );

        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "- Start: from asking tauri-driver for a WebDriver session on the binary (it and WebKitWebDriver start the app under Xvfb) until a script in the page counts {NODES} `[data-testid^=node-card-]` whose `data-status` is not `checking` (polled every ~5 ms). Every launch: {}; minimal window (until its page is loaded): {}. Of that, the session itself (app started, webview connected to the driver): median {} (minimal {}). {online} of {NODES} cards `online` in the worst launch.",
            all_shown.join(", "),
            all_min.join(", "),
            secs(session),
            secs(min_session)
        );
        let _ = writeln!(
            t,
            "- Memory: /proc/<pid>/smaps_rollup of the app's process and every descendant, read {}s after the dashboard showed its {NODES} cards (minimal window: {}s after its page loaded), one app at a time. App's tree (last launch, MB PSS): {}. Minimal window's: {}.",
            SETTLE.as_secs(),
            SETTLE.as_secs(),
            self.app_runs
                .last()
                .map(|r| parts(&r.memory))
                .unwrap_or_default(),
            self.minimal_runs
                .last()
                .map(|r| parts(&r.memory))
                .unwrap_or_default()
        );
        let _ = writeln!(
            t,
            "- The {NODES} nodes: one systemd-nspawn node (Debian 13) booted in the run's network namespace with the daemon's `.deb` (profile `{}`) installed, its daemon on 7443, and {} more `archipelagod run` instances in the same node, started as the service user `archipelago` with `systemd-run --user`, each with its own home under {BENCH_HOMES}, port (7444–{}), TLS certificate and password (`archipelagod init --password-stdin`). The app's configuration folder holds the {NODES} nodes with the fingerprints `archipelagod pairing` prints (checked against the certificates presented) and a session token for each (file store, `ARCHIPELAGO_DESKTOP_NO_KEYRING=1`), written with the desktop crate's `Registry` and `TokenFile`. Xvfb, tauri-driver and the app ran inside the run's network namespace.",
            self.deb_profile,
            NODES - 1,
            API_PORT as usize + NODES - 1
        );
        let _ = writeln!(
            t,
            "- Minimal window: `tests/desktop-bench/src/main.rs`, `tauri::Builder::default().run(generate_context!())`, one 1280×800 window with a static page, same Tauri version and features (`custom-protocol`), built with the same profile. Binary sizes are the files `cargo build --profile {}` wrote.",
            self.profile
        );
        t
    }
}
