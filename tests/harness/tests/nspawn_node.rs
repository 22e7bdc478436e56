//! The node harness against reality: real nspawn nodes (systemd 257,
//! rootless podman 5 with Quadlet) in the run's own network namespace,
//! pulling from a real registry. These tests need root, the node rootfs
//! (`tests/node/build-rootfs.sh`) and systemd-nspawn
//! (`tests/node/fetch-nspawn.sh`); the README's test command provides all
//! three. A missing piece fails the test: nothing is skipped.
//!
//! Tests run one at a time (one lock): each ends by checking that its run
//! left nothing behind, which only means something when no other run of
//! this process is alive.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::network::{self, TestNetwork};
use archipelago_harness::node::{Node, RunAs, SERVICE_HOME};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{hello_unit, hello_web_image, page, rootfs, serial, wait_page};
use std::process::Command;
use std::time::{Duration, Instant};

fn assert_nothing_left() {
    let left = network::leftovers_of_this_process();
    assert!(left.is_empty(), "the run left things behind: {left:#?}");
}

#[test]
fn a_node_boots_with_systemd_the_user_manager_and_podman_5() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        let start = Instant::now();
        let node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        eprintln!(
            "figure: nspawn boot to user manager up: {:?}",
            start.elapsed()
        );
        let sys = node
            .exec(RunAs::Root, &["systemctl", "is-system-running"])
            .unwrap();
        assert_eq!(sys.stdout.trim(), "running", "{sys:?}\n{}", node.console());
        let user = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "is-system-running"],
            )
            .unwrap();
        assert_eq!(user.stdout.trim(), "running", "{user:?}");
        assert!(
            node.exec(RunAs::Root, &["test", "-S", "/run/user/1000/bus"])
                .unwrap()
                .success()
        );
        let who = node.exec(RunAs::ServiceUser, &["id", "-u"]).unwrap();
        assert_eq!(who.stdout.trim(), "1000");
        let linger = node
            .exec(
                RunAs::Root,
                &["test", "-f", "/var/lib/systemd/linger/archipelago"],
            )
            .unwrap();
        assert!(linger.success());
        let podman = node
            .exec(RunAs::ServiceUser, &["podman", "--version"])
            .unwrap();
        assert!(podman.stdout.starts_with("podman version 5."), "{podman:?}");
        let quadlet = node
            .exec(RunAs::Root, &["test", "-x", "/usr/libexec/podman/quadlet"])
            .unwrap();
        assert!(quadlet.success());
        // copy_in writes as the service user, with the mode asked for.
        node.copy_in(
            b"secret",
            &format!("{SERVICE_HOME}/x/f"),
            RunAs::ServiceUser,
            0o600,
        )
        .unwrap();
        let st = node
            .exec(
                RunAs::Root,
                &["stat", "-c", "%U %a", &format!("{SERVICE_HOME}/x/f")],
            )
            .unwrap();
        assert_eq!(st.stdout.trim(), "archipelago 600");
    }
    assert_nothing_left();
}

#[test]
fn a_quadlet_unit_pulls_from_the_registry_and_survives_reboot_and_power_cut() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let (oci, tag) = hello_web_image(&net.dir().join("images")).unwrap();
        registry
            .push_oci(&oci, &tag, "archipelago/hello-web")
            .unwrap();
        let mut node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();

        // Nothing pre-loaded: the image is not in the node before the start.
        let images = node
            .exec(RunAs::ServiceUser, &["podman", "images", "--quiet"])
            .unwrap();
        assert_eq!(images.stdout.trim(), "", "{images:?}");
        node.copy_in(
            hello_unit("10.99.0.1:5000", &tag).as_bytes(),
            &format!("{SERVICE_HOME}/.config/containers/systemd/hello.container"),
            RunAs::ServiceUser,
            0o644,
        )
        .unwrap();
        let start = Instant::now();
        let reload = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "daemon-reload"],
            )
            .unwrap();
        assert!(reload.success(), "{reload:?}");
        let started = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "start", "hello.service"],
            )
            .unwrap();
        assert!(started.success(), "{started:?}");
        let first = wait_page(&net, &node, Duration::from_secs(30)).unwrap();
        eprintln!(
            "figure: daemon-reload + start incl. pull -> page: {:?}",
            start.elapsed()
        );
        let _ = first;
        let pulls = registry.pulls_by(&node.address().to_string(), "archipelago/hello-web");
        assert!(
            pulls.iter().any(|l| l.contains("/manifests/")),
            "no manifest GET from the node in the registry's log:\n{}",
            registry.log()
        );

        let rebooted = node.reboot().unwrap();
        let after = wait_page(&net, &node, Duration::from_secs(30)).unwrap();
        eprintln!("figure: nspawn reboot to booted {rebooted:?}, then page after {after:?}");

        node.power_cut().unwrap();
        let booted = node.boot().unwrap();
        let after = wait_page(&net, &node, Duration::from_secs(30)).unwrap();
        eprintln!("figure: nspawn power cut, boot {booted:?}, then page after {after:?}");
        let state = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "is-active", "hello.service"],
            )
            .unwrap();
        assert_eq!(state.stdout.trim(), "active");
    }
    assert_nothing_left();
}

#[test]
fn a_failing_test_still_cleans_up() {
    let _one = serial();
    let result = std::thread::spawn(|| {
        let net = TestNetwork::create().unwrap();
        let _node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        panic!("a test failing with a node up");
    })
    .join();
    assert!(result.is_err());
    assert_nothing_left();
}

#[test]
fn an_interrupted_run_is_cleaned_by_the_next_one() {
    let _one = serial();
    // A harness process killed with SIGKILL mid-run, node and registry up.
    let bin = env!("CARGO_BIN_EXE_archipelago-node");
    let mut child = Command::new(bin)
        .args(["up", "--nodes", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "archipelago-node up ended early"
        );
        if line.starts_with("ready") {
            break;
        }
    }
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let prefix = format!("{}{pid}-", network::NETNS_PREFIX);
    assert!(
        std::fs::read_dir("/var/run/netns")
            .unwrap()
            .flatten()
            .any(|n| n.file_name().to_string_lossy().starts_with(&prefix)),
        "the killed run's namespace should still be there before the clean-up"
    );
    let cleaned = network::cleanup_stale_runs().unwrap();
    assert!(cleaned >= 1);
    let left = network::leftovers_of(pid);
    assert!(
        left.is_empty(),
        "the killed run left things behind: {left:#?}"
    );
}

#[test]
fn two_nodes_run_at_once_and_reach_the_registry_each() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let (oci, tag) = hello_web_image(&net.dir().join("images")).unwrap();
        registry
            .push_oci(&oci, &tag, "archipelago/hello-web")
            .unwrap();
        let a = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        let b = NspawnNode::boot_new(&net, rootfs().unwrap(), 2).unwrap();
        assert_ne!(a.address(), b.address());
        for node in [&a, &b] {
            node.copy_in(
                hello_unit("10.99.0.1:5000", &tag).as_bytes(),
                &format!("{SERVICE_HOME}/.config/containers/systemd/hello.container"),
                RunAs::ServiceUser,
                0o644,
            )
            .unwrap();
            assert!(
                node.exec(
                    RunAs::ServiceUser,
                    &["systemctl", "--user", "daemon-reload"]
                )
                .unwrap()
                .success()
            );
            let started = node
                .exec(
                    RunAs::ServiceUser,
                    &["systemctl", "--user", "start", "hello.service"],
                )
                .unwrap();
            assert!(started.success(), "{started:?}");
        }
        for node in [&a, &b] {
            wait_page(&net, node, Duration::from_secs(30)).unwrap();
            assert!(
                !registry
                    .pulls_by(&node.address().to_string(), "archipelago/hello-web")
                    .is_empty()
            );
        }
        // One node's power cut leaves the other alone.
        let mut a = a;
        a.power_cut().unwrap();
        assert!(page(&net, &b).is_some());
    }
    assert_nothing_left();
}
