//! The reconciler against a real node: `archipelagod reconcile --once` of
//! this build, copied into an nspawn node and run as the service user,
//! turns a state file and fixture manifests into secrets, Quadlet files,
//! systemd units (D-Bus) and containers (podman's REST API), and does it
//! level-triggered: a second pass over unchanged input changes nothing; a
//! hand-edited unit file is rewritten and its unit restarted; a killed
//! container comes back; a stopped app's page goes away; a removed app
//! leaves no unit file and no container. Then fixture-chain and
//! fixture-wallet together: the wallet is healthy only while it can call
//! the chain with the secret the chain exports, over the app network.
//!
//! Needs what `podman_rest.rs` needs (root, the node rootfs,
//! systemd-nspawn), plus what the fixture images need (see `fixtures.rs`);
//! a missing piece fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_api::RunState;
use archipelago_harness::fixtures::{self, BuiltImage};
use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{ExecOutput, Node, RunAs};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{
    archipelagod_binary, as_user, install_fixture_manifest, nothing_left, page, rootfs, serial,
    wait_page, write_node_state,
};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/local/bin/archipelagod";
/// The run's registry, seen from a node.
const REGISTRY: &str = "10.99.0.1:5000";
const QUADLET_DIR: &str = "/var/lib/archipelago/.config/containers/systemd";
const HELLO_UNIT: &str = "/var/lib/archipelago/.config/containers/systemd/hello-web_web.container";
const SECRETS_DIR: &str = "/var/lib/archipelago/.local/share/archipelago/secrets";

/// `archipelagod reconcile --once` as the service user, and how long it took.
fn reconcile(node: &NspawnNode) -> (ExecOutput, Duration) {
    let start = Instant::now();
    let out = node
        .exec(RunAs::ServiceUser, &[BIN, "reconcile", "--once"])
        .unwrap();
    let took = start.elapsed();
    eprintln!(
        "--- reconcile --once ({took:?}, {}):\n{}{}",
        if out.success() { "ok" } else { "FAILED" },
        out.stdout,
        out.stderr
    );
    (out, took)
}

/// Like [`reconcile`], and it must succeed.
fn reconcile_ok(node: &NspawnNode) -> (ExecOutput, Duration) {
    let (out, took) = reconcile(node);
    if !out.success() {
        let journal = node
            .exec(RunAs::Root, &["journalctl", "--no-pager", "-n", "80"])
            .map(|o| o.stdout)
            .unwrap_or_default();
        panic!("reconcile --once failed: {out:?}\nthe node's journal:\n{journal}");
    }
    (out, took)
}

fn has_line(out: &ExecOutput, line: &str) -> bool {
    out.stdout.lines().any(|l| l == line)
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn the_reconciler_drives_a_real_node() {
    let _one = serial();
    {
        let binary = std::fs::read(archipelagod_binary().unwrap()).unwrap();
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let images = fixtures::build_all(&net.dir().join("images")).unwrap();
        for i in &images {
            registry
                .push_oci(&i.oci_dir, &i.tag, &format!("archipelago/{}", i.name))
                .unwrap();
        }
        let node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        node.copy_in(&binary, BIN, RunAs::Root, 0o755).unwrap();
        as_user(&node, &["systemctl", "--user", "start", "podman.socket"]).unwrap();

        hello_web(&net, &node, &images);
        chain_and_wallet(&net, &node, &images);
    }
    nothing_left().unwrap();
}

/// hello-web through install, no-op, drift, death, stop and removal.
fn hello_web(net: &TestNetwork, node: &NspawnNode, images: &[BuiltImage]) {
    install_fixture_manifest(node, images, REGISTRY, "hello-web").unwrap();
    write_node_state(node, &[("hello-web", RunState::Running)]).unwrap();

    // Install: files written, unit started (pull included), page up.
    let (out, first) = reconcile_ok(node);
    assert!(has_line(&out, &format!("wrote {HELLO_UNIT}")), "{out:?}");
    assert!(
        has_line(&out, "hello-web: started hello-web_web.service"),
        "{out:?}"
    );
    assert!(has_line(&out, "hello-web: ok"), "{out:?}");
    let up = wait_page(net, node, Duration::from_secs(10)).unwrap();
    eprintln!(
        "figure: first pass (install, pull from the registry, healthy) {first:?} (command included); page answered {up:?} after it"
    );
    let unit = as_user(node, &["cat", HELLO_UNIT]).unwrap().stdout;
    eprintln!("rendered unit:\n{unit}");

    // Level-triggered: unchanged input, nothing changes.
    let (out, _) = reconcile_ok(node);
    assert!(has_line(&out, "no change"), "{out:?}");
    assert!(!out.stdout.contains("wrote "), "{out:?}");
    assert!(!out.stdout.contains("started "), "{out:?}");
    assert!(page(net, node).is_some());
    noop_figures(node);

    // A unit file edited by hand: rewritten, the unit restarted.
    as_user(
        node,
        &[
            "sed",
            "-i",
            "s/^PublishPort=.*/PublishPort=8090:8080/",
            HELLO_UNIT,
        ],
    )
    .unwrap();
    assert!(
        as_user(node, &["cat", HELLO_UNIT])
            .unwrap()
            .stdout
            .contains("PublishPort=8090:8080")
    );
    let (out, _) = reconcile_ok(node);
    assert!(has_line(&out, &format!("wrote {HELLO_UNIT}")), "{out:?}");
    assert!(
        has_line(&out, "hello-web: restarted hello-web_web.service"),
        "{out:?}"
    );
    assert_eq!(as_user(node, &["cat", HELLO_UNIT]).unwrap().stdout, unit);
    wait_page(net, node, Duration::from_secs(10)).unwrap();

    // A container that died: started again (by the pass, or by systemd's
    // own Restart= if it got there first).
    as_user(node, &["podman", "kill", "hello-web_web"]).unwrap();
    let (out, _) = reconcile_ok(node);
    let by_pass = has_line(&out, "hello-web: started hello-web_web.service")
        || has_line(&out, "hello-web: restarted hello-web_web.service");
    eprintln!(
        "after podman kill: the unit came back {}",
        if by_pass {
            "by the pass"
        } else {
            "by systemd's Restart= before the pass looked"
        }
    );
    let back = wait_page(net, node, Duration::from_secs(30)).unwrap();
    eprintln!("figure: page back {back:?} after the pass that followed podman kill");

    // Stopped: the page goes away.
    write_node_state(node, &[("hello-web", RunState::Stopped)]).unwrap();
    let (out, _) = reconcile_ok(node);
    assert!(
        has_line(&out, "hello-web: stopped hello-web_web.service"),
        "{out:?}"
    );
    wait_until("the page to go away", Duration::from_secs(10), || {
        page(net, node).is_none()
    });

    // Removed: no unit file, no container.
    write_node_state(node, &[]).unwrap();
    let (out, _) = reconcile_ok(node);
    assert!(has_line(&out, &format!("removed {HELLO_UNIT}")), "{out:?}");
    let files = as_user(node, &["ls", "-A", QUADLET_DIR]).unwrap().stdout;
    assert!(!files.contains("hello-web"), "unit files left: {files}");
    let ps = as_user(node, &["podman", "ps", "-a", "--format", "{{.Names}}"])
        .unwrap()
        .stdout;
    assert!(!ps.contains("hello-web"), "containers left: {ps}");
    assert!(page(net, node).is_none());
    let (out, _) = reconcile_ok(node);
    assert!(has_line(&out, "no change"), "{out:?}");
}

/// One no-op pass (command included) vs `systemctl --user start` of a unit
/// already running, the floor of asking systemd anything from a command.
fn noop_figures(node: &NspawnNode) {
    let mut ours = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let out = node
            .exec(RunAs::ServiceUser, &[BIN, "reconcile", "--once"])
            .unwrap();
        ours.push(start.elapsed());
        assert!(has_line(&out, "no change"), "{out:?}");
        let start = Instant::now();
        as_user(
            node,
            &["systemctl", "--user", "start", "hello-web_web.service"],
        )
        .unwrap();
        floor.push(start.elapsed());
    }
    let (ours, floor) = (median(ours), median(floor));
    eprintln!(
        "figure: no-op pass, median of 5, command included: `archipelagod reconcile --once` {ours:?} vs `systemctl --user start` of the running unit {floor:?} = {:.2}x",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
}

/// fixture-chain and fixture-wallet installed together.
fn chain_and_wallet(net: &TestNetwork, node: &NspawnNode, images: &[BuiltImage]) {
    install_fixture_manifest(node, images, REGISTRY, "fixture-chain").unwrap();
    install_fixture_manifest(node, images, REGISTRY, "fixture-wallet").unwrap();
    write_node_state(
        node,
        &[
            ("fixture-chain", RunState::Running),
            ("fixture-wallet", RunState::Running),
        ],
    )
    .unwrap();
    let (out, took) = reconcile_ok(node);
    for line in [
        "fixture-chain: started fixture-chain_chain.service",
        "fixture-wallet: started fixture-wallet_wallet.service",
        "fixture-chain: ok",
        "fixture-wallet: ok",
    ] {
        assert!(has_line(&out, line), "no `{line}`: {out:?}");
    }
    eprintln!(
        "figure: first pass of fixture-chain + fixture-wallet (pull, secrets, healthy) {took:?}"
    );
    let wallet = node.port(18081);
    let mut body = String::new();
    wait_until(
        "the wallet page to show a height",
        Duration::from_secs(30),
        || match net.http_get(wallet, "/") {
            Ok((200, b)) if b.contains("id=\"height\"") => {
                body = b;
                true
            }
            _ => false,
        },
    );
    eprintln!("wallet page: {}", body.trim());
    let health = as_user(
        node,
        &["podman", "healthcheck", "run", "fixture-wallet_wallet"],
    )
    .unwrap();
    eprintln!("wallet health: {health:?}");

    let modes = as_user(
        node,
        &["find", SECRETS_DIR, "-type", "f", "-printf", "%m %p\n"],
    )
    .unwrap()
    .stdout;
    eprintln!("secret files:\n{modes}");
    assert!(
        modes.contains("/fixture-chain/files/rpc-password\n"),
        "{modes}"
    );
    for line in modes.lines() {
        assert!(line.starts_with("600 "), "not 0600: {line}");
    }

    let (out, _) = reconcile_ok(node);
    assert!(has_line(&out, "no change"), "{out:?}");

    // Leave nothing: remove both, and the node is clean.
    write_node_state(node, &[]).unwrap();
    reconcile_ok(node);
    let ps = as_user(node, &["podman", "ps", "-a", "--format", "{{.Names}}"])
        .unwrap()
        .stdout;
    assert!(!ps.contains("fixture-"), "containers left: {ps}");
}
