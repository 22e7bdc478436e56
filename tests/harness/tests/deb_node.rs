//! The Debian package on real nodes, installed the way a user installs it
//! (`dpkg -i` as root in the node; `release/build-deb.sh` builds it):
//!
//! - on a node whose service user was removed first, the package creates
//!   the user, its subordinate ids, lingering and podman's socket, runs
//!   `archipelagod.service` as that user with its hardening, and prints the
//!   generated API password once; the API answers on port 7443;
//! - a second `dpkg -i` (an upgrade) restarts the daemon and keeps the
//!   password hash and the TLS certificate;
//! - `dpkg -r` stops the service and leaves the user and its data, and so
//!   does `dpkg --purge`; installing again afterwards makes no new password;
//! - on a stock node (the rootfs's own user, uid 1000) the harness's
//!   `install_deb` and `set_node_password` work, as the other node tests
//!   will use them, and after a reboot the daemon starts once, after its
//!   user's manager;
//! - without a running systemd (an image build, in a chroot) the package
//!   sets up the user, lingering and the socket, enables the service, and
//!   makes no password (each machine made from the image needs its own).
//!
//! Needs root, the node rootfs and systemd-nspawn, like the other node
//! tests; a missing piece fails the test: nothing is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_api::rpc::DEFAULT_PORT;
use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{ExecOutput, Node, RunAs, SERVICE_HOME, SERVICE_USER};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::testing::{
    DAEMON_UNIT, as_user, daemon_has_api, daemon_status, dpkg_in_node, install_deb_report,
    node_port_accepts, nothing_left, rootfs, serial, set_node_password,
};
use archipelagod::layout::Layout;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// The first line of the postinst's frame around the generated password.
const BANNER: &str = "archipelagod: the API password of this node";
/// The drop-in the postinst writes.
const DROPIN: &str = "/etc/systemd/system/archipelagod.service.d/50-service-user.conf";
const LINGER: &str = "/var/lib/systemd/linger/archipelago";

/// Runs `argv` as root in `node` and fails unless it exits 0.
fn root(node: &dyn Node, argv: &[&str]) -> ExecOutput {
    let out = node.exec(RunAs::Root, argv).unwrap();
    assert!(out.success(), "{argv:?} failed: {out:?}");
    out
}

/// `sh -c script` as root; its stdout, trimmed.
fn sh(node: &dyn Node, script: &str) -> String {
    root(node, &["sh", "-c", script]).stdout.trim().to_owned()
}

/// `dpkg` with `dpkg_args` in the node, as [`install_deb_report`] runs it;
/// its output (a failure fails the test).
fn dpkg(node: &dyn Node, dpkg_args: &[&str]) -> String {
    let out = dpkg_in_node(node, dpkg_args).unwrap();
    assert!(out.success(), "dpkg {dpkg_args:?} failed: {out:?}");
    format!("{}{}", out.stdout, out.stderr)
}

fn show(node: &dyn Node, property: &str) -> String {
    sh(node, &format!("systemctl show -P {property} {DAEMON_UNIT}"))
}

fn is_active(node: &dyn Node, unit: &str) -> String {
    node.exec(RunAs::Root, &["systemctl", "is-active", unit])
        .unwrap()
        .stdout
        .trim()
        .to_owned()
}

/// Waits a little for `unit` to be active (the daemon's first pass
/// reloads the user's manager, which is `reloading` meanwhile); its state.
fn settled(node: &dyn Node, unit: &str) -> String {
    let mut state = String::new();
    for _ in 0..100 {
        state = is_active(node, unit);
        if state != "reloading" && state != "activating" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    state
}

/// The service user as the node's passwd sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceUser {
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

fn service_user(node: &dyn Node) -> ServiceUser {
    let line = sh(node, &format!("getent passwd {SERVICE_USER}"));
    let f: Vec<&str> = line.split(':').collect();
    assert_eq!(f.len(), 7, "{line}");
    ServiceUser {
        uid: f[2].parse().unwrap(),
        gid: f[3].parse().unwrap(),
        home: f[5].to_owned(),
        shell: f[6].to_owned(),
    }
}

/// The rootfs creates the service user for the tests that run the daemon
/// by hand; a machine a user installs on has none. Removes it the way an
/// administrator would: lingering off, its manager stopped, `userdel -r`.
fn remove_service_user(node: &dyn Node) {
    let uid = service_user(node).uid;
    root(
        node,
        &[
            "systemd-run",
            "--quiet",
            "--wait",
            "--pipe",
            "--collect",
            "loginctl",
            "disable-linger",
            SERVICE_USER,
        ],
    );
    root(
        node,
        &[
            "systemctl",
            "stop",
            &format!("user@{uid}.service"),
            &format!("user-runtime-dir@{uid}.service"),
        ],
    );
    // The home is a mount point of the nspawn node: userdel removes what is
    // in it and then fails (12) to remove the folder itself.
    let out = node
        .exec(RunAs::Root, &["userdel", "-r", SERVICE_USER])
        .unwrap();
    assert!(
        out.status == 0 || (out.status == 12 && out.stderr.contains(SERVICE_HOME)),
        "userdel: {out:?}"
    );
    sh(
        node,
        &format!(
            "sed -i '/^{SERVICE_USER}:/d' /etc/subuid /etc/subgid; \
             if getent group {SERVICE_USER} >/dev/null; then groupdel {SERVICE_USER}; fi"
        ),
    );
    let left = sh(
        node,
        &format!(
            "getent passwd {SERVICE_USER}; getent group {SERVICE_USER}; ls -A {SERVICE_HOME}; \
             grep ^{SERVICE_USER}: /etc/subuid /etc/subgid; ls {LINGER} 2>/dev/null; true"
        ),
    );
    assert_eq!(left, "", "left of the service user");
}

/// The lines between the password frame's banner and its end: what
/// `archipelagod init` printed.
fn password_frames(dpkg_output: &str) -> Vec<Vec<String>> {
    let mut frames = Vec::new();
    let mut lines = dpkg_output.lines();
    while lines.any(|l| l.contains(BANNER)) {
        frames.push(
            lines
                .by_ref()
                .take_while(|l| !l.starts_with("====="))
                .map(str::to_owned)
                .collect(),
        );
    }
    frames
}

/// The generated password in `archipelagod init`'s output: the one line
/// that is a single word (it prints it indented, alone on its line).
fn printed_password(frame: &[String]) -> String {
    let words: Vec<&str> = frame
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.len() >= 8 && !l.contains(char::is_whitespace))
        .collect();
    assert_eq!(words.len(), 1, "no single password line in {frame:#?}");
    words[0].to_owned()
}

/// `auth.login` on the node's API from inside the node (curl, the
/// password in a root-only file, not on a command line): the session
/// token, or the error.
fn login(node: &dyn Node, password: &str) -> Result<String, String> {
    const FILE: &str = "/run/archipelago-test-login.json";
    let request = archipelago_api::rpc::Request::new(
        1,
        "auth.login",
        serde_json::json!({ "password": password }),
    );
    node.copy_in(
        &serde_json::to_vec(&request).unwrap(),
        FILE,
        RunAs::Root,
        0o600,
    )
    .unwrap();
    let script = format!(
        "curl -sS --insecure --max-time 20 -H 'Content-Type: application/json' \
         --data-binary @{FILE} https://127.0.0.1:{DEFAULT_PORT}/rpc; status=$?; rm -f {FILE}; exit $status"
    );
    let body = sh(node, &script);
    let response: archipelago_api::rpc::Response =
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let result = response.into_result().map_err(|e| format!("{e:?}"))?;
    result["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in {result}"))
}

/// The daemon's process as the kernel sees it: its `/proc/<pid>/status`.
fn daemon_process(node: &dyn Node) -> (u32, String) {
    let pid: u32 = show(node, "MainPID").parse().unwrap();
    assert_ne!(pid, 0, "{DAEMON_UNIT} has no main process");
    (pid, sh(node, &format!("cat /proc/{pid}/status")))
}

fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
}

/// The daemon runs as the service user, without any privilege.
fn check_daemon_process(node: &dyn Node, user: &ServiceUser) {
    let (pid, status) = daemon_process(node);
    let ids = |v: u32| format!("{v}\t{v}\t{v}\t{v}");
    assert_eq!(status_field(&status, "Uid"), ids(user.uid), "pid {pid}");
    assert_eq!(status_field(&status, "Gid"), ids(user.gid), "pid {pid}");
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "CapBnd"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    // Its view of the file system: no /home or /root, its user's runtime
    // dir with the bus and podman's socket (writable: podman's stale pause
    // pid file goes), a read-only /usr.
    let view = |script: &str| {
        node.exec(
            RunAs::Root,
            &["nsenter", "-t", &pid.to_string(), "-m", "sh", "-c", script],
        )
        .unwrap()
    };
    sh(node, "mkdir -p /home/someone && touch /root/.someone");
    let out = view("ls -A /home /root");
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "/home:\n\n/root:",
        "hidden homes: {out:?}"
    );
    let run = format!("/run/user/{}", user.uid);
    assert!(
        view(&format!(
            "test -S {run}/bus && test -S {run}/podman/podman.sock"
        ))
        .success()
    );
    let own = view(&format!("findmnt -no OPTIONS -T {run}"));
    assert!(own.stdout.starts_with("rw"), "{own:?}");
    let ro = view("findmnt -no OPTIONS -T /usr; findmnt -no OPTIONS -T /etc");
    assert!(
        ro.stdout.lines().filter(|l| l.starts_with("ro")).count() == 2,
        "{ro:?}"
    );
    let rw = view(&format!("findmnt -no OPTIONS -T {SERVICE_HOME}"));
    assert!(rw.stdout.starts_with("rw"), "{rw:?}");
}

/// The unit's hardening as systemd reports it.
fn check_hardening(node: &dyn Node) {
    let expected = [
        ("User", "archipelago"),
        ("Group", "archipelago"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "no"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("UMask", "0077"),
        ("ReadWritePaths", "/var/lib/archipelago /run/user"),
        ("Restart", "on-failure"),
    ];
    let mut argv = vec!["systemctl", "show", DAEMON_UNIT];
    let props: Vec<String> = expected
        .iter()
        .map(|(p, _)| format!("--property={p}"))
        .collect();
    argv.extend(props.iter().map(String::as_str));
    argv.extend([
        "--property=SystemCallFilter",
        "--property=TemporaryFileSystem",
        "--property=ExecStart",
    ]);
    let out = root(node, &argv).stdout;
    eprintln!(
        "--- the unit's hardening (systemctl show):\n{}",
        out.lines()
            .filter(|l| !l.starts_with("SystemCallFilter="))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let value = |p: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{p}=")))
            .unwrap_or_else(|| panic!("systemctl show says nothing of {p}:\n{out}"))
    };
    for (p, v) in expected {
        assert_eq!(value(p), v, "{p}");
    }
    assert!(
        value("ExecStart").contains("argv[]=/usr/bin/archipelagod run ;"),
        "{}",
        value("ExecStart")
    );
    assert!(
        value("TemporaryFileSystem") == "/home:ro /root:ro",
        "{}",
        value("TemporaryFileSystem")
    );
    // @system-service, as an allow list: what a service needs, no mount,
    // no reboot, no module loading.
    let filter: Vec<&str> = value("SystemCallFilter").split_whitespace().collect();
    assert!(
        !filter.is_empty() && !filter[0].starts_with('~'),
        "{filter:?}"
    );
    for call in ["openat", "connect", "accept4", "epoll_wait", "socket"] {
        assert!(filter.contains(&call), "{call} not allowed");
    }
    for call in [
        "mount",
        "reboot",
        "init_module",
        "kexec_load",
        "swapon",
        "ptrace",
        "settimeofday",
        "pivot_root",
    ] {
        assert!(!filter.contains(&call), "{call} allowed");
    }
}

/// What an upgrade must keep: the password hash, the TLS key and
/// certificate, the pairing fingerprint, the uid and its ranges.
fn kept_state(node: &dyn Node) -> String {
    let layout = Layout::under_home(Path::new(SERVICE_HOME));
    let password = archipelagod::api::auth::password_file(&layout);
    let tls = layout.tls_dir();
    let cert = tls.join(archipelagod::api::tls::CERT_FILE);
    let key = tls.join(archipelagod::api::tls::KEY_FILE);
    let hashes = sh(
        node,
        &format!(
            "sha256sum {} {} {}; id {SERVICE_USER}; grep -H ^{SERVICE_USER}: /etc/subuid /etc/subgid",
            password.display(),
            cert.display(),
            key.display()
        ),
    );
    let pairing = root(
        node,
        &[
            "runuser",
            "-u",
            SERVICE_USER,
            "--",
            "archipelagod",
            "pairing",
        ],
    )
    .stdout;
    let fingerprint = pairing
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 95 && l.matches(':').count() == 31)
        .unwrap_or_else(|| panic!("no fingerprint in `archipelagod pairing`:\n{pairing}"))
        .to_owned();
    format!("{hashes}\nfingerprint {fingerprint}")
}

#[test]
fn the_deb_makes_a_node_keeps_it_on_upgrade_and_leaves_the_data_on_removal() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        // Built before the node boots: the build takes longer than a boot.
        archipelago_harness::testing::daemon_deb().unwrap();
        let node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scenario(&net, &node);
        }));
        if let Err(e) = result {
            eprintln!("--- {DAEMON_UNIT}:\n{}", daemon_status(&node));
            let journal = node
                .exec(
                    RunAs::Root,
                    &["journalctl", "--no-pager", "-n", "80", "-u", DAEMON_UNIT],
                )
                .map(|o| o.stdout)
                .unwrap_or_default();
            eprintln!("--- its journal:\n{journal}");
            std::panic::resume_unwind(e);
        }
    }
    nothing_left().unwrap();
}

fn scenario(net: &TestNetwork, node: &NspawnNode) {
    remove_service_user(node);
    let (user, password) = first_install(net, node);
    let kept = upgrade(node, &user, &password);
    removal(node, &user, &kept, &password);
}

/// After a reboot the daemon is up again, started after its user's
/// manager (no failed first start), with the same identity. (On a stock
/// node: the harness waits for the user manager of uid 1000 at boot.)
fn reboot(node: &mut NspawnNode, user: &ServiceUser, kept: &str) {
    let down_up = node.reboot().unwrap();
    let start = std::time::Instant::now();
    let limit = Duration::from_secs(30);
    while !node_port_accepts(node, DEFAULT_PORT).unwrap() {
        assert!(
            start.elapsed() < limit,
            "no API after the reboot:\n{}",
            daemon_status(node)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "figure: reboot: {down_up:?} to booted (user manager up), then {:?} more to port {DEFAULT_PORT} accepting",
        start.elapsed()
    );
    assert_eq!(is_active(node, DAEMON_UNIT), "active");
    assert_eq!(show(node, "NRestarts"), "0", "{}", daemon_status(node));
    let manager = format!("user@{}.service", user.uid);
    let manager_up: u64 = sh(
        node,
        &format!("systemctl show -P ActiveEnterTimestampMonotonic {manager}"),
    )
    .parse()
    .unwrap();
    let daemon_start: u64 = show(node, "ExecMainStartTimestampMonotonic")
        .parse()
        .unwrap();
    assert!(
        manager_up > 0 && manager_up <= daemon_start,
        "the daemon started ({daemon_start}) before {manager} was up ({manager_up})"
    );
    check_daemon_process(node, user);
    assert_eq!(
        kept_state(node),
        kept,
        "the reboot changed the node's identity"
    );
}

/// a and d: the first install makes the node, prints the password once,
/// and the API answers. The service user and the printed password.
fn first_install(net: &TestNetwork, node: &NspawnNode) -> (ServiceUser, String) {
    let first = install_deb_report(node).unwrap();
    let out = format!("{}{}", first.dpkg.stdout, first.dpkg.stderr);
    eprintln!("--- dpkg -i (first install):\n{out}");
    eprintln!(
        "figure: first install: dpkg -i {:?}; dpkg -i to {DAEMON_UNIT} active {:?}; to port {DEFAULT_PORT} accepting {:?}",
        first.dpkg_time, first.to_active, first.to_listening
    );
    let user = service_user(node);
    eprintln!("service user: {user:?}");
    assert!(
        user.uid > 0 && user.uid < 1000,
        "not a system uid: {user:?}"
    );
    assert_eq!(user.home, SERVICE_HOME);
    assert_eq!(user.shell, "/usr/sbin/nologin");
    assert_eq!(
        sh(node, &format!("stat -c '%u %a' {SERVICE_HOME}")),
        format!("{} 700", user.uid)
    );
    for file in ["/etc/subuid", "/etc/subgid"] {
        let lines = sh(
            node,
            &format!("grep -E '^({SERVICE_USER}|{}):' {file}", user.uid),
        );
        let fields: Vec<&str> = lines.split(':').collect();
        assert_eq!(fields.len(), 3, "{file}: {lines}");
        assert!(
            fields[1].parse::<u64>().unwrap() >= 100_000,
            "{file}: {lines}"
        );
        assert_eq!(fields[2], "65536", "{file}: {lines}");
    }
    assert_eq!(
        sh(
            node,
            &format!("test -e {LINGER} && loginctl show-user -P Linger {SERVICE_USER}")
        ),
        "yes"
    );
    assert_eq!(
        settled(node, &format!("user@{}.service", user.uid)),
        "active"
    );
    let user_ctl = |verb: &str| {
        sh(
            node,
            &format!("systemctl --user -M {SERVICE_USER}@ {verb} podman.socket"),
        )
    };
    assert_eq!(user_ctl("is-enabled"), "enabled");
    assert_eq!(user_ctl("is-active"), "active");
    assert_eq!(
        sh(node, &format!("systemctl is-enabled {DAEMON_UNIT}")),
        "enabled"
    );
    assert_eq!(is_active(node, DAEMON_UNIT), "active");
    assert_eq!(show(node, "NRestarts"), "0", "{}", daemon_status(node));
    let dropin = sh(node, &format!("cat {DROPIN}"));
    let manager = format!("user@{}.service", user.uid);
    assert!(dropin.contains(&format!("After={manager}")), "{dropin}");
    assert!(show(node, "After").split_whitespace().any(|u| u == manager));
    check_daemon_process(node, &user);
    check_hardening(node);

    // The password, printed once, and the one that logs in.
    let frames = password_frames(&out);
    assert_eq!(frames.len(), 1, "the password frame, once:\n{out}");
    let password = printed_password(&frames[0]);
    assert_eq!(out.matches(&password).count(), 1, "the password, once");
    let layout = Layout::under_home(Path::new(SERVICE_HOME));
    let hash_file = archipelagod::api::auth::password_file(&layout);
    assert_eq!(
        sh(node, &format!("stat -c '%U %a' {}", hash_file.display())),
        format!("{SERVICE_USER} 600")
    );

    // d. The API: in the node, and from the run's namespace at the node's
    // address, as a client reaches it.
    assert!(
        daemon_has_api(node).unwrap(),
        "archipelagod has no `pairing`: no API yet"
    );
    assert!(first.to_listening.is_some());
    assert!(node_port_accepts(node, DEFAULT_PORT).unwrap());
    let addr = node.port(DEFAULT_PORT);
    net.enter(|| TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
        .unwrap()
        .unwrap_or_else(|e| panic!("{addr} from the run's namespace: {e}"));
    login(node, &password).unwrap();
    (user, password)
}

/// b. A second `dpkg -i` (an upgrade): restarted, nothing else changes.
/// What it kept ([`kept_state`]).
fn upgrade(node: &NspawnNode, user: &ServiceUser, password: &str) -> String {
    let kept = kept_state(node);
    let pid_before = show(node, "MainPID");
    let again = install_deb_report(node).unwrap();
    let out = format!("{}{}", again.dpkg.stdout, again.dpkg.stderr);
    eprintln!("--- dpkg -i (again):\n{out}");
    eprintln!(
        "figure: upgrade: dpkg -i {:?}; dpkg -i to {DAEMON_UNIT} active {:?}; to port {DEFAULT_PORT} accepting {:?}",
        again.dpkg_time, again.to_active, again.to_listening
    );
    assert!(password_frames(&out).is_empty(), "a password again:\n{out}");
    assert!(!out.contains(password));
    assert_ne!(
        show(node, "MainPID"),
        pid_before,
        "the daemon was not restarted"
    );
    assert_eq!(
        kept_state(node),
        kept,
        "the upgrade changed the node's identity"
    );
    assert_eq!(&service_user(node), user);
    login(node, password).unwrap();
    kept
}

/// c. Removal: the daemon stops, the user, its manager and data stay;
/// the same after a purge; installed again, it is the same node.
fn removal(node: &NspawnNode, user: &ServiceUser, kept: &str, password: &str) {
    let manager = format!("user@{}.service", user.uid);
    let out = dpkg(node, &["-r", "archipelagod"]);
    eprintln!("--- dpkg -r:\n{out}");
    assert!(out.contains("keep"), "no word on the apps: {out}");
    assert_ne!(is_active(node, DAEMON_UNIT), "active");
    assert!(!node_port_accepts(node, DEFAULT_PORT).unwrap());
    assert_eq!(
        sh(
            node,
            &format!("ls {DROPIN} /usr/bin/archipelagod 2>/dev/null; true")
        ),
        ""
    );
    assert_eq!(&service_user(node), user);
    assert_eq!(
        settled(node, &manager),
        "active",
        "the apps' manager stopped"
    );
    assert_eq!(kept_state_files(node), kept_files(kept));

    // Purge: the same, said out loud.
    let out = dpkg(node, &["--purge", "archipelagod"]);
    eprintln!("--- dpkg --purge:\n{out}");
    assert!(out.contains("Left on purpose"), "{out}");
    assert_eq!(&service_user(node), user);
    assert_eq!(kept_state_files(node), kept_files(kept));
    assert_eq!(sh(node, &format!("ls {LINGER}")), LINGER);

    // Installed again: enabled and started again, the same password.
    let back = install_deb_report(node).unwrap();
    let out = format!("{}{}", back.dpkg.stdout, back.dpkg.stderr);
    eprintln!("--- dpkg -i (after the purge):\n{out}");
    assert!(password_frames(&out).is_empty(), "a password again:\n{out}");
    assert_eq!(
        sh(node, &format!("systemctl is-enabled {DAEMON_UNIT}")),
        "enabled"
    );
    assert_eq!(kept_state(node), kept);
    login(node, password).unwrap();
}

/// The file hashes of [`kept_state`] (without the daemon, which is gone).
fn kept_state_files(node: &dyn Node) -> String {
    let layout = Layout::under_home(Path::new(SERVICE_HOME));
    let tls = layout.tls_dir();
    sh(
        node,
        &format!(
            "sha256sum {} {} {}",
            archipelagod::api::auth::password_file(&layout).display(),
            tls.join(archipelagod::api::tls::CERT_FILE).display(),
            tls.join(archipelagod::api::tls::KEY_FILE).display()
        ),
    )
}

fn kept_files(kept: &str) -> String {
    kept.lines().take(3).collect::<Vec<_>>().join("\n")
}

#[test]
fn install_deb_set_node_password_and_a_reboot_on_a_stock_node() {
    let _one = serial();
    {
        let net = TestNetwork::create().unwrap();
        archipelago_harness::testing::daemon_deb().unwrap();
        let mut node = NspawnNode::boot_new(&net, rootfs().unwrap(), 1).unwrap();
        let subids = sh(&node, "cat /etc/subuid /etc/subgid");
        let installed = install_deb_report(&node).unwrap();
        eprintln!(
            "figure: stock node: dpkg -i {:?}; to active {:?}; to port {DEFAULT_PORT} accepting {:?}",
            installed.dpkg_time, installed.to_active, installed.to_listening
        );
        // The rootfs's user, its ids and its home are used as they are.
        let user = service_user(&node);
        assert_eq!(user.uid, archipelago_harness::node::SERVICE_UID);
        assert_eq!(sh(&node, "cat /etc/subuid /etc/subgid"), subids);
        check_daemon_process(&node, &user);
        let out = as_user(
            &node,
            &["systemctl", "--user", "is-active", "podman.socket"],
        )
        .unwrap();
        assert_eq!(out.stdout.trim(), "active");
        let out = format!("{}{}", installed.dpkg.stdout, installed.dpkg.stderr);
        let frames = password_frames(&out);
        assert_eq!(frames.len(), 1, "{out}");
        let printed = printed_password(&frames[0]);

        set_node_password(&node, "a test password 1").unwrap();
        assert!(installed.to_listening.is_some(), "no API in this build");
        login(&node, "a test password 1").unwrap();
        assert!(
            login(&node, &printed).is_err(),
            "the old password still logs in"
        );
        let leftovers = sh(&node, "ls /run/archipelago-test-* 2>/dev/null; true");
        assert_eq!(leftovers, "", "password files left in the node");

        let kept = kept_state(&node);
        reboot(&mut node, &user, &kept);
        login(&node, "a test password 1").unwrap();
    }
    nothing_left().unwrap();
}

/// A copy-on-write view of the node rootfs, unmounted and removed on drop.
struct ImageTree {
    dir: tempfile::TempDir,
}

impl ImageTree {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("archipelago-deb-image.")
            .tempdir_in("/var/tmp")
            .unwrap();
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            rootfs().unwrap().display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let status = std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(dir.path().join("root"))
            .status()
            .unwrap();
        assert!(status.success(), "mount overlay: {status}");
        Self { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    /// `sh -c script` chrooted into the tree, as an image builder runs
    /// maintainer scripts: no systemd running.
    fn chroot(&self, script: &str) -> ExecOutput {
        let out = std::process::Command::new("chroot")
            .arg(self.root())
            .args(["sh", "-c", script])
            .output()
            .unwrap();
        ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for ImageTree {
    fn drop(&mut self) {
        if let Err(e) = archipelago_harness::network::unmount_below(self.dir.path()) {
            eprintln!("unmounting {}: {e}", self.dir.path().display());
        }
    }
}

#[test]
fn the_deb_installs_without_systemd_as_in_an_image_build() {
    let _one = serial();
    let deb = archipelago_harness::testing::daemon_deb().unwrap();
    let tree = ImageTree::new();
    let ok = |script: &str| {
        let out = tree.chroot(script);
        assert!(out.success(), "{script}: {out:?}");
        out.stdout.trim().to_owned()
    };
    // An image without the user, as a user's own image would be.
    let out = tree.chroot(&format!(
        "userdel -r {SERVICE_USER}; rm -f {LINGER}; : > /etc/subuid; : > /etc/subgid"
    ));
    assert!(out.status == 0 || out.status == 12, "{out:?}");
    std::fs::copy(&deb, tree.root().join("tmp/archipelagod.deb")).unwrap();
    let out = tree.chroot("dpkg -i /tmp/archipelagod.deb");
    let text = format!("{}{}", out.stdout, out.stderr);
    eprintln!("--- dpkg -i in a chroot:\n{text}");
    assert!(out.success(), "{out:?}");
    assert!(text.contains("no systemd running"), "{text}");
    assert!(
        password_frames(&text).is_empty(),
        "a password baked into an image:\n{text}"
    );

    let uid: u32 = ok(&format!("id -u {SERVICE_USER}")).parse().unwrap();
    assert!(uid > 0 && uid < 1000, "{uid}");
    assert_eq!(
        ok(&format!(
            "grep -c '^{SERVICE_USER}:' /etc/subuid /etc/subgid"
        )),
        "/etc/subuid:1\n/etc/subgid:1"
    );
    assert_eq!(ok(&format!("ls {LINGER}")), LINGER);
    assert_eq!(
        ok(&format!(
            "stat -c '%U %N' {SERVICE_HOME}/.config/systemd/user/sockets.target.wants/podman.socket"
        )),
        format!(
            "{SERVICE_USER} '{SERVICE_HOME}/.config/systemd/user/sockets.target.wants/podman.socket' -> '/usr/lib/systemd/user/podman.socket'"
        )
    );
    assert_eq!(
        ok("readlink /etc/systemd/system/multi-user.target.wants/archipelagod.service"),
        "/usr/lib/systemd/system/archipelagod.service"
    );
    assert!(ok(&format!("cat {DROPIN}")).contains(&format!("After=user@{uid}.service")));
    assert_eq!(ok(&format!("ls -A {SERVICE_HOME}/.config")), "systemd");
}
