//! The daemon's podman client (`archipelagod::podman_rest`) against a real
//! rootless podman: the `archipelagod` binary of this build, copied into an
//! nspawn node and run as the service user (`archipelagod podman …`), talks
//! to the user's `podman.socket` — image presence, a pull with progress
//! from the run's registry, the failed pull that podman answers with HTTP
//! 200, the container list of a hand-written, labelled hello-web Quadlet
//! unit (app, state, bind-all port, config digest), its logs, the error for
//! a container that does not exist, and stats. Figures compare one
//! `podman containers` round trip with `podman ps --format json` in the
//! same node.
//!
//! Needs what `nspawn_node.rs` needs (root, the node rootfs,
//! systemd-nspawn); a missing piece fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{ExecOutput, Node, RunAs};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{
    archipelagod_binary, hello_unit, hello_web_image, nothing_left, page, rootfs, serial, wait_page,
};
use std::time::{Duration, Instant};

/// The service user's Quadlet folder.
const QUADLET_DIR: &str = "/var/lib/archipelago/.config/containers/systemd";
const BIN: &str = "/usr/local/bin/archipelagod";
/// What the run's registry serves hello-web as, seen from a node.
const HELLO_REPO: &str = "10.99.0.1:5000/archipelago/hello-web";

/// `archipelagod podman ARGS…` as the service user.
fn podman_api(node: &NspawnNode, args: &[&str]) -> ExecOutput {
    let mut command = vec![BIN, "podman"];
    command.extend_from_slice(args);
    node.exec(RunAs::ServiceUser, &command).unwrap()
}

/// Like [`podman_api`], and it must succeed.
fn podman_api_ok(node: &NspawnNode, args: &[&str]) -> ExecOutput {
    let out = podman_api(node, args);
    assert!(out.success(), "archipelagod podman {args:?}: {out:?}");
    out
}

/// `systemctl --user ARGS…` as the service user; must succeed.
fn systemctl(node: &NspawnNode, args: &[&str]) -> ExecOutput {
    let mut command = vec!["systemctl", "--user"];
    command.extend_from_slice(args);
    let out = node.exec(RunAs::ServiceUser, &command).unwrap();
    assert!(out.success(), "systemctl --user {args:?}: {out:?}");
    out
}

/// How long `f` took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// hello-web's hand-written unit with our labels, as the renderer sets them.
fn labelled_hello_unit(tag: &str) -> String {
    hello_unit("10.99.0.1:5000", tag).replace(
        "[Container]\n",
        "[Container]\n\
         Label=io.archipelago.managed=true\n\
         Label=io.archipelago.app=hello\n\
         Label=io.archipelago.config=abc123\n",
    )
}

#[test]
fn the_rest_client_talks_to_a_real_rootless_podman() {
    let _one = serial();
    {
        let binary = std::fs::read(archipelagod_binary().unwrap()).unwrap();
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let (oci, tag) = hello_web_image(&net.dir().join("images")).unwrap();
        registry
            .push_oci(&oci, &tag, "archipelago/hello-web")
            .unwrap();
        let node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        node.copy_in(&binary, BIN, RunAs::Root, 0o755).unwrap();

        // Before the socket is up: the error says how to start it.
        let out = podman_api(&node, &["containers"]);
        eprintln!("before podman.socket: {:?}", out.stderr.trim());
        assert!(!out.success(), "{out:?}");
        assert!(
            out.stderr.contains("systemctl --user start podman.socket"),
            "{out:?}"
        );
        systemctl(&node, &["start", "podman.socket"]);

        let reference = format!("{HELLO_REPO}:{tag}");
        pull_and_exists(&registry, &node, &reference);
        a_missing_image_fails_clearly(&node);

        node.copy_in(
            labelled_hello_unit(&tag).as_bytes(),
            &format!("{QUADLET_DIR}/hello.container"),
            RunAs::ServiceUser,
            0o644,
        )
        .unwrap();
        systemctl(&node, &["daemon-reload"]);
        systemctl(&node, &["start", "hello.service"]);
        wait_page(&net, &node, Duration::from_secs(5)).unwrap();

        containers_lists_ours(&node);
        logs_and_stats(&net, &node);
        list_figures(&node);

        systemctl(&node, &["stop", "hello.service"]);
        let listed = podman_api_ok(&node, &["containers"]);
        assert_eq!(listed.stdout.trim(), "", "{listed:?}");
    }
    nothing_left().unwrap();
}

/// Absent, then pulled with progress and an id, then present.
fn pull_and_exists(registry: &Registry, node: &NspawnNode, reference: &str) {
    let out = podman_api_ok(node, &["exists", reference]);
    assert_eq!(out.stdout.trim(), "false", "{out:?}");

    let (out, took) = timed(|| podman_api_ok(node, &["pull", reference]));
    eprintln!("pull printed:\n{}", out.stdout.trim_end());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let id = *lines.last().unwrap();
    assert_eq!(id.len(), 64, "no image id last: {out:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{out:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("blob 1: sha256:")),
        "no blob progress: {out:?}"
    );
    eprintln!("figure: `archipelagod podman pull` of hello-web (registry on the bridge) {took:?}");
    assert!(
        !registry
            .pulls_by(&node.address().to_string(), "archipelago/hello-web")
            .is_empty()
    );

    let out = podman_api_ok(node, &["exists", reference]);
    assert_eq!(out.stdout.trim(), "true", "{out:?}");
    // By id too.
    let out = podman_api_ok(node, &["exists", id]);
    assert_eq!(out.stdout.trim(), "true", "{out:?}");
}

/// podman answers a failed pull with HTTP 200 and a last `error` line: the
/// command fails and says why.
fn a_missing_image_fails_clearly(node: &NspawnNode) {
    let missing = "10.99.0.1:5000/archipelago/nope:1";
    let out = podman_api(node, &["pull", missing]);
    eprintln!("missing image: {:?}", out.stderr.trim());
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("error: pull of {missing} failed: ")),
        "{out:?}"
    );
    assert!(out.stderr.contains("manifest unknown"), "{out:?}");
    let out = podman_api_ok(node, &["exists", missing]);
    assert_eq!(out.stdout.trim(), "false", "{out:?}");
}

/// Our container, its app, state, bind-all port and config digest.
fn containers_lists_ours(node: &NspawnNode) {
    let out = podman_api_ok(node, &["containers"]);
    assert_eq!(
        out.stdout.trim(),
        "systemd-hello hello running 8080->8080/tcp abc123",
        "{out:?}"
    );
    // The raw port entry (`podman ps --format json` prints the API's
    // list entries): podman writes bind-all as `"host_ip": ""`.
    let ps = node
        .exec(RunAs::ServiceUser, &["podman", "ps", "--format", "json"])
        .unwrap();
    let ps: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    eprintln!("podman's port entry: {}", ps[0]["Ports"]);
}

/// httpd's request lines in the logs after a page fetch; a clear error for
/// a container that does not exist; stats or the error that says why not.
fn logs_and_stats(net: &TestNetwork, node: &NspawnNode) {
    assert!(page(net, node).is_some());
    let out = podman_api_ok(node, &["logs", "systemd-hello", "--tail", "5"]);
    eprintln!(
        "logs --tail 5: stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    let all: Vec<&str> = out.stdout.lines().chain(out.stderr.lines()).collect();
    assert!(all.len() <= 5, "{out:?}");
    // `httpd -v` logs one `[client]:port: response:200` line per request,
    // on stderr: it must come back on stderr.
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("[::ffff:10.99.0.1]:") && l.ends_with(": response:200")),
        "{out:?}"
    );

    let out = podman_api(node, &["logs", "nosuch", "--tail", "5"]);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("error: container nosuch does not exist"),
        "{out:?}"
    );

    let controllers = node
        .exec(
            RunAs::Root,
            &[
                "cat",
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers",
            ],
        )
        .unwrap();
    let out = podman_api_ok(node, &["stats", "systemd-hello"]);
    eprintln!(
        "stats: {:?} (controllers of the user's manager: {:?})",
        out.stdout.trim(),
        controllers.stdout.trim()
    );
    let s = out.stdout.trim();
    assert!(s.starts_with("cpu ") && s.ends_with(" bytes"), "{out:?}");
    let cpu: f64 = s[4..s.find('%').unwrap()].parse().unwrap();
    assert!(cpu >= 0.0, "{out:?}");
    let numbers: Vec<u64> = s
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if controllers.stdout.split_whitespace().any(|c| c == "memory") {
        assert!(numbers.len() == 2 && numbers[0] > 0, "{out:?}");
    } else {
        // No memory controller: podman cannot know, and we say so.
        assert!(s.contains("mem unknown (no memory controller"), "{out:?}");
        assert_eq!(numbers.len(), 1, "{out:?}");
    }
    assert!(*numbers.last().unwrap() > 0, "{out:?}");
    let out = podman_api(node, &["stats", "nosuch"]);
    assert!(!out.success(), "{out:?}");
    eprintln!("stats of a missing container: {:?}", out.stderr.trim());
}

/// One `list_containers` round trip (command included) vs the floor,
/// `podman ps --format json` in the same node, alternately.
fn list_figures(node: &NspawnNode) {
    let (_, exec_floor) = timed(|| node.exec(RunAs::ServiceUser, &["true"]).unwrap());
    let mut ours = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..7 {
        ours.push(timed(|| podman_api_ok(node, &["containers"])).1);
        floor.push(
            timed(|| {
                let out = node
                    .exec(
                        RunAs::ServiceUser,
                        &[
                            "podman",
                            "ps",
                            "--all",
                            "--format",
                            "json",
                            "--filter",
                            "label=io.archipelago.managed=true",
                        ],
                    )
                    .unwrap();
                assert!(out.success(), "{out:?}");
            })
            .1,
        );
    }
    let (ours, floor) = (median(ours), median(floor));
    eprintln!(
        "figure: list of our containers, median of 7, command included: `archipelagod podman containers` {ours:?} vs `podman ps --all --format json --filter label=…` {floor:?} = {:.2}x; running any command in the node costs {exec_floor:?}",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
}
