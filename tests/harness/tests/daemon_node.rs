//! The daemon loop against a real node: `archipelagod run` of this build,
//! started in an nspawn node as a transient unit of the service user's
//! manager, installs hello-web from a state file with no `reconcile --once`;
//! brings back an app unit stopped behind its back (which systemd's
//! `Restart=on-failure` leaves down) on the unit-change event, well before
//! its 30 s timer could; and neither restarting nor stopping the daemon
//! touches the running container (pillar 1).
//!
//! Needs what `reconcile_node.rs` needs; a missing piece fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_api::RunState;
use archipelago_harness::fixtures::{self};
use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{Node, RunAs};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{
    ARCHIPELAGOD_IN_NODE, as_user, install_archipelagod, install_fixture_manifest, nothing_left,
    page, rootfs, serial, wait_page, write_node_state,
};
use std::time::{Duration, Instant};

const HOME: &str = "/var/lib/archipelago";
/// The run's registry, seen from a node.
const REGISTRY: &str = "10.99.0.1:5000";
const CONTAINER: &str = "hello-web_web";

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Like [`wait_until`], false on timeout.
fn wait_until_or(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Starts `archipelagod run` as the transient user unit `unit`.
fn start_daemon(node: &NspawnNode, unit: &str) {
    as_user(
        node,
        &[
            "systemd-run",
            "--user",
            &format!("--unit={unit}"),
            "--setenv=RUST_LOG=archipelagod=debug",
            "--setenv=NO_COLOR=1",
            ARCHIPELAGOD_IN_NODE,
            "run",
            "--home",
            HOME,
        ],
    )
    .unwrap();
}

fn stop_daemon(node: &NspawnNode, unit: &str) {
    as_user(node, &["systemctl", "--user", "stop", unit]).unwrap();
    let state = node
        .exec(
            RunAs::ServiceUser,
            &["systemctl", "--user", "show", "-P", "ActiveState", unit],
        )
        .unwrap();
    eprintln!("{unit} after stop: {}", state.stdout.trim());
}

/// The daemon's log lines (its stderr, in the node's journal).
fn daemon_log(node: &NspawnNode, unit: &str) -> String {
    node.exec(
        RunAs::Root,
        &[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            &format!("_SYSTEMD_USER_UNIT={unit}.service"),
        ],
    )
    .unwrap()
    .stdout
}

/// The daemon's `pass 1` line, once logged.
fn first_pass(node: &NspawnNode, unit: &str) -> String {
    let mut first = String::new();
    wait_until("the daemon's first pass", Duration::from_secs(60), || {
        first = daemon_log(node, unit)
            .lines()
            .find(|l| l.contains("pass 1 (start)"))
            .map(str::to_owned)
            .unwrap_or_default();
        !first.is_empty()
    });
    first
}

/// `podman inspect` of our container: (id, started at).
fn container(node: &NspawnNode) -> (String, String) {
    let out = as_user(
        node,
        &[
            "podman",
            "inspect",
            "--format",
            "{{.Id}} {{.State.StartedAt}}",
            CONTAINER,
        ],
    )
    .unwrap()
    .stdout;
    let (id, started) = out.trim().split_once(' ').unwrap();
    (id.to_owned(), started.to_owned())
}

#[test]
fn the_daemon_keeps_a_real_node_reconciled() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let images = fixtures::build_all(&net.dir().join("images")).unwrap();
        for i in &images {
            registry
                .push_oci(&i.oci_dir, &i.tag, &format!("archipelago/{}", i.name))
                .unwrap();
        }
        let node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        install_archipelagod(&node).unwrap();
        as_user(&node, &["systemctl", "--user", "start", "podman.socket"]).unwrap();
        install_fixture_manifest(&node, &images, REGISTRY, "hello-web").unwrap();
        write_node_state(&node, &[("hello-web", RunState::Running)]).unwrap();

        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scenario(&net, &node);
        }));
        if let Err(e) = result {
            for unit in ["archipelagod-test", "archipelagod-test2"] {
                eprintln!("--- log of {unit}:\n{}", daemon_log(&node, unit));
            }
            std::panic::resume_unwind(e);
        }
    }
    nothing_left().unwrap();
}

fn scenario(net: &TestNetwork, node: &NspawnNode) {
    // a. The running daemon installs the app: no `reconcile --once`.
    let start = Instant::now();
    start_daemon(node, "archipelagod-test");
    wait_page(net, node, Duration::from_secs(120)).unwrap();
    let up = start.elapsed();
    // The page can answer before the pass's start job is done.
    let first = first_pass(node, "archipelagod-test");
    let log = daemon_log(node, "archipelagod-test");
    eprintln!("--- daemon log after install:\n{log}");
    assert!(first.contains("started [hello-web_web.service]"), "{log}");
    eprintln!(
        "figure: daemon start to page answering (install, pull from the registry, healthy) {up:?}"
    );

    // b1. A container killed (SIGKILL: a failure): back, by systemd's
    // Restart=on-failure (RestartSec=5) or by the daemon, whichever first.
    let (id, _) = container(node);
    let log_before = daemon_log(node, "archipelagod-test").lines().count();
    as_user(node, &["podman", "kill", CONTAINER]).unwrap();
    let killed = Instant::now();
    wait_until("the page to go away", Duration::from_secs(5), || {
        page(net, node).is_none()
    });
    wait_page(net, node, Duration::from_secs(60)).unwrap();
    let back = killed.elapsed();
    let (id2, _) = container(node);
    assert_ne!(id, id2, "the killed container was not replaced");
    let log = daemon_log(node, "archipelagod-test");
    let new: Vec<&str> = log.lines().skip(log_before).collect();
    eprintln!("--- daemon log after podman kill:\n{}", new.join("\n"));
    eprintln!(
        "figure: podman kill to page back {back:?} (systemd's Restart=on-failure, RestartSec=5, or the daemon)"
    );

    // b2. A unit stopped behind the daemon's back (systemd's Restart= leaves
    // it down; `podman stop` is not that case: systemd restarts it): only
    // the reconciler brings it back, and the unit-change event makes that
    // happen well within the 30 s timer.
    let log_before = daemon_log(node, "archipelagod-test").lines().count();
    let stopped = Instant::now();
    // The daemon may start the unit again while it is still stopping: its
    // start job then cancels the stop job, and systemctl says so.
    let out = node
        .exec(
            RunAs::ServiceUser,
            &["systemctl", "--user", "stop", "hello-web_web.service"],
        )
        .unwrap();
    assert!(out.success() || out.stderr.contains("canceled"), "{out:?}");
    eprintln!("systemctl --user stop: {out:?}");
    wait_page(net, node, Duration::from_secs(40)).unwrap();
    let back = stopped.elapsed();
    let (id3, _) = container(node);
    assert_ne!(id2, id3, "the stopped container was not replaced");
    // The page can answer before the pass's start job is done and logged.
    let by_event = |l: &str| {
        l.contains("(units changed: ")
            && l.contains("hello-web_web.service")
            && l.contains("started [hello-web_web.service]")
    };
    let mut new = Vec::new();
    let found = wait_until_or(Duration::from_secs(15), || {
        new = daemon_log(node, "archipelagod-test")
            .lines()
            .skip(log_before)
            .map(str::to_owned)
            .collect();
        new.iter().any(|l| by_event(l))
    });
    eprintln!("--- daemon log after the unit stop:\n{}", new.join("\n"));
    assert!(
        found,
        "no pass on the unit change started the unit again:\n{}",
        new.join("\n")
    );
    eprintln!(
        "figure: `systemctl --user stop` of the app unit (no Restart=) to page back {back:?}, by the daemon's unit-change pass (timer: 30 s)"
    );
    assert!(
        back < Duration::from_secs(10),
        "page back after {back:?}: not the unit-change event"
    );

    restart_and_stop(net, node);
}

/// c and d: restarting, then stopping the daemon leave the container be.
fn restart_and_stop(net: &TestNetwork, node: &NspawnNode) {
    // c. Restarting the daemon does not restart the container.
    let before = container(node);
    stop_daemon(node, "archipelagod-test");
    let start = Instant::now();
    start_daemon(node, "archipelagod-test2");
    let first = first_pass(node, "archipelagod-test2");
    eprintln!(
        "figure: daemon start to first pass logged {:?} (journal polling included): {first}",
        start.elapsed()
    );
    assert!(!first.contains("started ["), "{first}");
    assert!(!first.contains("restarted ["), "{first}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        container(node),
        before,
        "the daemon restart touched the container"
    );
    assert!(page(net, node).is_some());

    // d. Stopping the daemon leaves the container running.
    stop_daemon(node, "archipelagod-test2");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        container(node),
        before,
        "stopping the daemon touched the container"
    );
    let state = as_user(
        node,
        &[
            "podman",
            "inspect",
            "--format",
            "{{.State.Status}}",
            CONTAINER,
        ],
    )
    .unwrap()
    .stdout;
    assert_eq!(state.trim(), "running");
    assert!(page(net, node).is_some());
    eprintln!(
        "--- log of archipelagod-test2:\n{}",
        daemon_log(node, "archipelagod-test2")
    );
}
