//! The daemon's systemd client (`archipelagod::systemd_dbus`) against a
//! real user manager: the `archipelagod` binary of this build, copied into
//! an nspawn node and run as the service user (`archipelagod units …`),
//! drives a hand-written hello-web Quadlet unit over D-Bus — reload, list,
//! start and stop that wait for their job, the errors a person sees for a
//! unit that does not exist, one that fails to start and a job that
//! outlives its timeout, and the change
//! notifications that let a dying container trigger a reconcile without
//! polling. Figures compare its start job with `systemctl --user start` of
//! the same unit in the same run.
//!
//! Needs what `nspawn_node.rs` needs (root, the node rootfs,
//! systemd-nspawn); a missing piece fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::cmd;
use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{ExecOutput, Node, RunAs, SERVICE_HOME};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{
    archipelagod_binary, hello_unit, hello_web_image, nothing_left, page, rootfs, serial, wait_page,
};
use std::time::{Duration, Instant};

/// A unit whose image the registry does not have: its start job fails.
const NOPE_UNIT: &str = "[Unit]
Description=an image that does not exist

[Container]
Image=10.99.0.1:5000/archipelago/nope:1
";

/// A plain user unit whose start job takes 30 s.
const SLOW_UNIT: &str = "[Unit]
Description=a start that takes 30 s

[Service]
Type=oneshot
ExecStart=/bin/sleep 30
";

/// The service user's Quadlet folder and plain user unit folder.
const QUADLET_DIR: &str = "/var/lib/archipelago/.config/containers/systemd";
const USER_UNIT_DIR: &str = "/var/lib/archipelago/.config/systemd/user";
const BIN: &str = "/usr/local/bin/archipelagod";

/// `archipelagod units ARGS…` as the service user.
fn units(node: &NspawnNode, args: &[&str]) -> ExecOutput {
    let mut command = vec![BIN, "units"];
    command.extend_from_slice(args);
    node.exec(RunAs::ServiceUser, &command).unwrap()
}

/// Like [`units`], and it must succeed.
fn units_ok(node: &NspawnNode, args: &[&str]) -> ExecOutput {
    let out = units(node, args);
    assert!(out.success(), "archipelagod units {args:?}: {out:?}");
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

/// The `name load active sub` line `units list` prints for `unit`.
fn listed(node: &NspawnNode, unit: &str) -> String {
    units_ok(node, &["list", unit]).stdout.trim().to_owned()
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

/// The job time `units start|stop|restart` reports: `… done in 0.123 s`.
fn reported(out: &ExecOutput) -> Duration {
    let secs = out
        .stdout
        .trim()
        .rsplit_once(" done in ")
        .and_then(|(_, s)| s.strip_suffix(" s"))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no job time in {out:?}"));
    Duration::from_secs_f64(secs)
}

fn read_node_file(node: &NspawnNode, path: &str) -> String {
    node.exec(RunAs::Root, &["cat", path])
        .map(|o| o.stdout)
        .unwrap_or_default()
}

#[test]
fn the_dbus_client_drives_a_real_user_manager() {
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
        for (path, text) in [
            (
                format!("{QUADLET_DIR}/hello.container"),
                hello_unit("10.99.0.1:5000", &tag),
            ),
            (
                format!("{QUADLET_DIR}/nope.container"),
                NOPE_UNIT.to_owned(),
            ),
            (
                format!("{USER_UNIT_DIR}/slow.service"),
                SLOW_UNIT.to_owned(),
            ),
        ] {
            node.copy_in(text.as_bytes(), &path, RunAs::ServiceUser, 0o644)
                .unwrap();
        }

        // Reload runs the Quadlet generator: the unit exists, not started.
        units_ok(&node, &["reload"]);
        assert_eq!(
            listed(&node, "hello.service"),
            "hello.service loaded inactive dead"
        );
        start_list_and_stop(&net, &registry, &node);
        unknown_units_are_no_such_unit(&node);
        start_figures(&net, &node);
        a_failing_start_is_job_failed(&node);
        a_slow_job_times_out(&node);
        a_killed_container_is_announced(&net, &node);

        // Restart brings it back; stop leaves nothing running.
        units_ok(&node, &["reset-failed", "hello.service"]);
        units_ok(&node, &["restart", "hello.service"]);
        wait_page(&net, &node, Duration::from_secs(2)).unwrap();
        assert_eq!(
            listed(&node, "hello.service"),
            "hello.service loaded active running"
        );
        units_ok(&node, &["stop", "hello.service"]);
        let ps = node
            .exec(RunAs::ServiceUser, &["podman", "ps", "--all", "--quiet"])
            .unwrap();
        assert_eq!(ps.stdout.trim(), "", "{ps:?}");
    }
    nothing_left().unwrap();
}

/// Start returns once the job is done (the page answers right after), the
/// states show in `list` and `show`, stop returns once the container is
/// gone.
fn start_list_and_stop(net: &TestNetwork, registry: &Registry, node: &NspawnNode) {
    let (out, took) = timed(|| units_ok(node, &["start", "hello.service"]));
    let page_after = wait_page(net, node, Duration::from_secs(5)).unwrap();
    eprintln!(
        "figure: first D-Bus start of hello-web incl. pull: job {:?}, command {took:?}, page {page_after:?} after it returned",
        reported(&out)
    );
    assert!(page_after < Duration::from_secs(2), "{page_after:?}");
    assert!(
        !registry
            .pulls_by(&node.address().to_string(), "archipelago/hello-web")
            .is_empty()
    );
    assert_eq!(
        listed(node, "hello.service"),
        "hello.service loaded active running"
    );
    let show = units_ok(node, &["show", "hello.service"]);
    assert_eq!(
        show.stdout.trim(),
        "hello.service loaded active running result=success restarts=0"
    );

    // Names systemd does not know stay, in the order asked.
    let list = units_ok(node, &["list", "nosuch.service", "hello.service"]);
    assert_eq!(
        list.stdout.lines().collect::<Vec<_>>(),
        [
            "nosuch.service not-found inactive dead",
            "hello.service loaded active running"
        ]
    );

    units_ok(node, &["stop", "hello.service"]);
    assert_eq!(
        listed(node, "hello.service"),
        "hello.service loaded inactive dead"
    );
    assert!(
        page(net, node).is_none(),
        "the page still answers after stop"
    );
}

/// A unit that does not exist: `NoSuchUnit`, named, non-zero exit.
fn unknown_units_are_no_such_unit(node: &NspawnNode) {
    for verb in ["start", "stop", "show"] {
        let out = units(node, &[verb, "nosuch.service"]);
        assert!(!out.success(), "{out:?}");
        assert!(
            out.stderr
                .contains("error: unit nosuch.service is not loaded"),
            "{out:?}"
        );
    }
}

/// The floor (`systemctl --user start`) and ours, image local, measured
/// alternately in the same run; then the `list` round trip.
fn start_figures(net: &TestNetwork, node: &NspawnNode) {
    let (_, exec_floor) = timed(|| node.exec(RunAs::ServiceUser, &["true"]).unwrap());
    let mut floor = Vec::new();
    let mut ours = Vec::new();
    let mut ours_job = Vec::new();
    // Alternating which goes first; systemd allows 5 starts in 10 s,
    // reset-failed clears the count.
    for round in 0..6 {
        for ours_now in [round % 2 == 0, round % 2 != 0] {
            units_ok(node, &["reset-failed", "hello.service"]);
            if ours_now {
                let (out, t) = timed(|| units_ok(node, &["start", "hello.service"]));
                ours.push(t);
                ours_job.push(reported(&out));
            } else {
                floor.push(timed(|| systemctl(node, &["start", "hello.service"])).1);
            }
            wait_page(net, node, Duration::from_secs(5)).unwrap();
            units_ok(node, &["stop", "hello.service"]);
        }
    }
    let (floor, ours, ours_job) = (median(floor), median(ours), median(ours_job));
    eprintln!(
        "figure: start of hello-web (image local), median of 6: `archipelagod units start` {ours:?} (D-Bus job {ours_job:?}) vs `systemctl --user start` {floor:?} = {:.2}x; running any command in the node costs {exec_floor:?}",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
    let mut list_cmd = Vec::new();
    let mut list_floor = Vec::new();
    for _ in 0..5 {
        list_cmd.push(timed(|| listed(node, "hello.service")).1);
        list_floor.push(
            timed(|| {
                systemctl(
                    node,
                    &["list-units", "--all", "--no-legend", "hello.service"],
                )
            })
            .1,
        );
    }
    eprintln!(
        "figure: `archipelagod units list hello.service` round trip {:?} vs `systemctl --user list-units hello.service` {:?} (median of 5, command included)",
        median(list_cmd),
        median(list_floor)
    );
}

/// A start that fails: `JobFailed` with systemd's result, non-zero exit.
fn a_failing_start_is_job_failed(node: &NspawnNode) {
    let (out, took) = timed(|| units(node, &["start", "nope.service"]));
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("error: start of nope.service ended with `failed`"),
        "{out:?}"
    );
    eprintln!("figure: failing start (image missing) reported after {took:?}");
    assert_eq!(
        listed(node, "nope.service"),
        "nope.service loaded failed failed"
    );
    units_ok(node, &["reset-failed", "nope.service"]);
    assert_eq!(
        listed(node, "nope.service"),
        "nope.service loaded inactive dead"
    );
}

/// A job that outlives its timeout: `Timeout`, and the job goes on until
/// a stop replaces it (that stop waits for its own job, not for the
/// cancelled start's, whose `JobRemoved` comes first).
fn a_slow_job_times_out(node: &NspawnNode) {
    let (out, took) = timed(|| units(node, &["start", "slow.service", "--timeout", "1"]));
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("error: start of slow.service did not finish within 1 s"),
        "{out:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        listed(node, "slow.service"),
        "slow.service loaded activating start"
    );
    let (_, took) = timed(|| units_ok(node, &["stop", "slow.service"]));
    assert!(took < Duration::from_secs(10), "{took:?}");
    // `sleep` killed by SIGTERM: systemd counts it as failed.
    assert_eq!(
        listed(node, "slow.service"),
        "slow.service loaded failed failed"
    );
}

/// Change notifications: a watcher sees the killed container's unit, with
/// no polling on its side; it ends after the seconds asked.
fn a_killed_container_is_announced(net: &TestNetwork, node: &NspawnNode) {
    units_ok(node, &["reset-failed", "hello.service"]);
    units_ok(node, &["start", "hello.service"]);
    wait_page(net, node, Duration::from_secs(5)).unwrap();
    let out_file = format!("{SERVICE_HOME}/watch.out");
    let err_file = format!("{SERVICE_HOME}/watch.err");
    let script = format!("exec {BIN} units watch --seconds 20 >{out_file} 2>{err_file}");
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed(|| {
                node.exec(RunAs::ServiceUser, &["sh", "-c", &script])
                    .unwrap()
            })
        });
        cmd::wait_for(
            "the watcher to subscribe",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || {
                read_node_file(node, &err_file)
                    .contains("watching")
                    .then_some(())
            },
        )
        .unwrap();
        let kill = node
            .exec(RunAs::ServiceUser, &["podman", "kill", "systemd-hello"])
            .unwrap();
        assert!(kill.success(), "{kill:?}");
        let killed = Instant::now();
        cmd::wait_for(
            "hello.service in the watcher's output",
            Duration::from_secs(10),
            Duration::from_millis(10),
            || {
                read_node_file(node, &out_file)
                    .lines()
                    .any(|l| l == "hello.service")
                    .then_some(())
            },
        )
        .unwrap();
        eprintln!(
            "figure: podman kill -> hello.service printed by `units watch` within {:?} (polled every 10 ms)",
            killed.elapsed()
        );
        let (out, took) = watcher.join().unwrap();
        assert!(
            out.success(),
            "{out:?}\n{}",
            read_node_file(node, &err_file)
        );
        assert!(
            took >= Duration::from_secs(20) && took < Duration::from_secs(25),
            "watch --seconds 20 ran {took:?}"
        );
        eprintln!(
            "watch printed: {:?}",
            read_node_file(node, &out_file).lines().collect::<Vec<_>>()
        );
    });
    let show = units_ok(node, &["show", "hello.service"]);
    eprintln!("after the kill: {}", show.stdout.trim());
    assert!(
        !show.stdout.contains(" active "),
        "hello.service still active after its container was killed: {show:?}"
    );
    assert!(!show.stdout.contains("result=success"), "{show:?}");
}
