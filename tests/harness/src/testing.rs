//! What every real-node test needs, in one place: the cached rootfs and VM
//! image, the hello-web image and a hand-written unit for it, waiting for
//! its page, one run at a time, and the leftover check. Test code turns the
//! errors into failures; nothing here skips.

use crate::cmd::{HarnessError, Result};
use crate::network::TestNetwork;
use crate::node::{Node, RunAs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One run at a time in a test binary: each test ends by checking that its
/// run left nothing behind, which only means something when no other run of
/// the process is alive.
pub fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a builder script of `tests/node/` once per process and returns the
/// folder it prints.
fn built(script: &str, cell: &'static OnceLock<Result<PathBuf, String>>) -> Result<&'static Path> {
    cell.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join(script))
            .output()
            .map_err(|e| format!("{script}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .as_deref()
    .map_err(|e| HarnessError::Other(e.clone()))
}

/// The node rootfs (built on first use: about two minutes, then cached).
pub fn rootfs() -> Result<&'static Path> {
    static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built("tests/node/build-rootfs.sh", &ROOTFS)
}

/// The VM image folder (built on first use, qemu installed with it).
pub fn vm_image() -> Result<&'static Path> {
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built(crate::vm::BUILD_SCRIPT, &IMAGE)
}

/// The hello-web fixture image as an OCI layout in `dir`: (layout, tag).
pub fn hello_web_image(dir: &Path) -> Result<(PathBuf, String)> {
    let built = crate::fixtures::build_image(dir, "hello-web")
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    Ok((built.oci_dir, built.tag))
}

/// A hand-written Quadlet unit for hello-web pulled from `registry`
/// (`10.99.0.1:5000` on the bridge, `10.0.2.2:5000` from a VM).
///
/// `SuccessExitStatus=143`: with `RunInit=true` the container's init exits
/// with 128+SIGTERM when podman stops it, which systemd counts as a failure
/// unless told (podman 5.4's Quadlet does not add it).
pub fn hello_unit(registry: &str, tag: &str) -> String {
    format!(
        "[Unit]
Description=hello-web, written by hand

[Container]
Image={registry}/archipelago/hello-web:{tag}
PublishPort=8080:8080
RunInit=true

[Service]
SuccessExitStatus=143

[Install]
WantedBy=default.target
"
    )
}

/// The hello-web page from `node`, if it answers.
pub fn page(net: &TestNetwork, node: &dyn Node) -> Option<String> {
    match net.http_get(node.port(8080), "/") {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

/// Waits until hello-web answers on `node`; the time it took, or an error
/// with the unit's status.
pub fn wait_page(net: &TestNetwork, node: &dyn Node, limit: Duration) -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if page(net, node).is_some_and(|b| b.contains(crate::fixtures::HELLO_PAGE)) {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = node
        .exec(
            RunAs::ServiceUser,
            &[
                "systemctl",
                "--user",
                "status",
                "--no-pager",
                "hello.service",
            ],
        )
        .map(|o| o.stdout)
        .unwrap_or_default();
    Err(HarnessError::Timeout {
        what: format!("hello-web to answer on {}", node.port(8080)),
        after: limit,
        detail: Some(status),
    })
}

/// The `archipelagod` executable of this build: cargo builds it if needed,
/// with the same profile and target folder as the test that asks.
pub fn archipelagod_binary() -> Result<&'static Path> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "archipelagod",
                "--bin",
                "archipelagod",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(repo_root())
            .output()
            .map_err(|e| format!("cargo build -p archipelagod: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building archipelagod failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "archipelagod")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| "cargo named no executable for archipelagod".to_owned())
    })
    .as_deref()
    .map_err(|e| HarnessError::Other(e.clone()))
}

/// Where [`install_archipelagod`] puts the daemon in a node.
pub const ARCHIPELAGOD_IN_NODE: &str = "/usr/local/bin/archipelagod";

/// Copies this build's `archipelagod` into `node` (the node is Debian 13; a
/// binary built on this Debian 12 host runs there).
pub fn install_archipelagod(node: &dyn Node) -> Result<()> {
    let bytes = std::fs::read(archipelagod_binary()?)?;
    node.copy_in(&bytes, ARCHIPELAGOD_IN_NODE, RunAs::Root, 0o755)
}

/// Fails with what a finished run left behind, if anything.
pub fn nothing_left() -> Result<()> {
    let left = crate::network::leftovers_of_this_process();
    if left.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Other(format!(
            "the run left things behind: {left:#?}"
        )))
    }
}

/// The service user's home in a node.
pub const NODE_HOME: &str = crate::node::SERVICE_HOME;

/// Runs `argv` in `node` as the service user and fails unless it exits 0.
pub fn as_user(node: &dyn Node, argv: &[&str]) -> Result<crate::node::ExecOutput> {
    let out = node.exec(RunAs::ServiceUser, argv)?;
    if out.success() {
        Ok(out)
    } else {
        Err(HarnessError::Command {
            cmd: argv.join(" "),
            status: out.status.to_string(),
            stderr: format!("{}{}", out.stdout, out.stderr),
        })
    }
}

/// Writes the node's state file, as the daemon would, with these apps
/// installed from `~/apps/<app>/manifest.yml` (see
/// [`install_fixture_manifest`]).
pub fn write_node_state(node: &dyn Node, apps: &[(&str, archipelago_api::RunState)]) -> Result<()> {
    let mut state = archipelagod::state::NodeState::new();
    for (app, run) in apps {
        state.apps.insert(
            (*app).to_owned(),
            archipelagod::state::InstalledApp {
                manifest: PathBuf::from(format!("{NODE_HOME}/apps/{app}/manifest.yml")),
                version: "1.0.0".to_owned(),
                run: *run,
                source: String::new(),
                settings: archipelago_api::methods::AppSettings::default(),
                catalog_sha256: String::new(),
                previous_images: Vec::new(),
                update: None,
            },
        );
    }
    let json = serde_json::to_vec_pretty(&state).map_err(|e| HarnessError::Other(e.to_string()))?;
    let layout = archipelagod::layout::Layout::under_home(Path::new(NODE_HOME));
    node.copy_in(
        &json,
        &layout.state_file().to_string_lossy(),
        RunAs::ServiceUser,
        0o600,
    )
}

/// Puts the fixture manifest of `app`, rendered with the digests of
/// `images` and pulled from `registry`, where [`write_node_state`] points.
pub fn install_fixture_manifest(
    node: &dyn Node,
    images: &[crate::fixtures::BuiltImage],
    registry: &str,
    app: &str,
) -> Result<()> {
    let m = crate::fixtures::load_manifest(app, images, registry)
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    node.copy_in(
        m.yaml.as_bytes(),
        &format!("{NODE_HOME}/apps/{app}/manifest.yml"),
        RunAs::ServiceUser,
        0o644,
    )
}

/// The Debian package of this build (`release/build-deb.sh`, built once per
/// test process): what a user installs. Built with the dev profile, or the
/// one `ARCHIPELAGO_DEB_PROFILE` names (`release` for benchmarks).
pub fn daemon_deb() -> Result<PathBuf> {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DEB.get_or_init(|| {
        let script = repo_root().join("release/build-deb.sh");
        let profile = std::env::var("ARCHIPELAGO_DEB_PROFILE").unwrap_or_else(|_| "dev".to_owned());
        let out = Command::new("bash")
            .arg(&script)
            .args(["--profile", &profile])
            .current_dir(repo_root())
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "release/build-deb.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let deb = stdout.lines().last().unwrap_or_default().trim();
        let deb_path = Path::new(deb);
        if deb_path.extension().is_some_and(|e| e == "deb") && deb_path.is_file() {
            Ok(PathBuf::from(deb))
        } else {
            Err(format!("release/build-deb.sh named no .deb: {stdout}"))
        }
    })
    .clone()
    .map_err(HarnessError::Other)
}

/// The package's system unit.
pub const DAEMON_UNIT: &str = "archipelagod.service";
/// Where [`install_deb`] puts the package in a node while `dpkg` runs.
const DEB_IN_NODE: &str = "/var/tmp/archipelagod.deb";
/// How long the service may take to become active after `dpkg -i`.
const DAEMON_START_LIMIT: Duration = Duration::from_secs(60);

/// What installing the package on a node did and took.
#[derive(Debug, Clone)]
pub struct DebInstall {
    /// `dpkg -i`'s output: its maintainer scripts print there (the
    /// generated password on a first install).
    pub dpkg: crate::node::ExecOutput,
    /// `dpkg -i` alone.
    pub dpkg_time: Duration,
    /// From `dpkg -i` starting to `archipelagod.service` active.
    pub to_active: Duration,
    /// From `dpkg -i` starting to the API port accepting inside the node;
    /// `None` when this build's daemon has no API yet
    /// ([`daemon_has_api`]).
    pub to_listening: Option<Duration>,
}

/// Installs this build's package on `node` the way a user does (`dpkg -i`
/// as root in the node) and waits until `archipelagod.service` is active
/// and, when the daemon has an API, its TLS port accepts.
pub fn install_deb(node: &dyn Node) -> Result<()> {
    install_deb_report(node).map(|_| ())
}

/// [`install_deb`], with `dpkg`'s output and the times it took.
///
/// `dpkg` runs in a transient unit of the node's systemd (`systemd-run
/// --wait --pipe`), as from an administrator's shell: a process entered
/// from outside the node is not in the node's cgroup tree, and logind
/// refuses it some calls (`loginctl enable-linger`).
pub fn install_deb_report(node: &dyn Node) -> Result<DebInstall> {
    let bytes = std::fs::read(daemon_deb()?)?;
    node.copy_in(&bytes, DEB_IN_NODE, RunAs::Root, 0o644)?;
    let start = Instant::now();
    let dpkg = dpkg_in_node(node, &["-i", DEB_IN_NODE])?;
    let dpkg_time = start.elapsed();
    node.exec(RunAs::Root, &["rm", "-f", DEB_IN_NODE])?;
    if !dpkg.success() {
        return Err(HarnessError::Command {
            cmd: format!("dpkg -i {DEB_IN_NODE} in {}", node.name()),
            status: dpkg.status.to_string(),
            stderr: format!("{}{}", dpkg.stdout, dpkg.stderr),
        });
    }
    wait_daemon_active(node, start)?;
    let to_active = start.elapsed();
    let to_listening = if daemon_has_api(node)? {
        wait_api_port(node)?;
        Some(start.elapsed())
    } else {
        None
    };
    Ok(DebInstall {
        dpkg,
        dpkg_time,
        to_active,
        to_listening,
    })
}

/// Whether the installed `archipelagod` has the API (its `pairing`
/// command): then `archipelagod run` must listen on
/// [`archipelago_api::rpc::DEFAULT_PORT`].
pub fn daemon_has_api(node: &dyn Node) -> Result<bool> {
    Ok(node
        .exec(RunAs::Root, &["archipelagod", "help", "pairing"])?
        .success())
}

/// Whether something accepts TCP connections on `port` of the node's
/// loopback, from inside the node.
pub fn node_port_accepts(node: &dyn Node, port: u16) -> Result<bool> {
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    Ok(node.exec(RunAs::Root, &["bash", "-c", &script])?.success())
}

/// Waits until `archipelagod.service` is active, or fails with its status.
fn wait_daemon_active(node: &dyn Node, since: Instant) -> Result<()> {
    while since.elapsed() < DAEMON_START_LIMIT {
        let out = node.exec(RunAs::Root, &["systemctl", "is-active", DAEMON_UNIT])?;
        if out.stdout.trim() == "active" {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(HarnessError::Timeout {
        what: format!("{DAEMON_UNIT} to be active on {}", node.name()),
        after: DAEMON_START_LIMIT,
        detail: Some(daemon_status(node)),
    })
}

/// Waits until the API port accepts inside the node, or fails with the
/// daemon's status.
fn wait_api_port(node: &dyn Node) -> Result<()> {
    let port = archipelago_api::rpc::DEFAULT_PORT;
    let start = Instant::now();
    while start.elapsed() < DAEMON_START_LIMIT {
        if node_port_accepts(node, port)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(HarnessError::Timeout {
        what: format!("archipelagod to accept on port {port} in {}", node.name()),
        after: DAEMON_START_LIMIT,
        detail: Some(daemon_status(node)),
    })
}

/// `systemctl status` and the last journal lines of the daemon's service.
pub fn daemon_status(node: &dyn Node) -> String {
    let status = node
        .exec(
            RunAs::Root,
            &[
                "systemctl",
                "status",
                "--no-pager",
                "--lines=40",
                DAEMON_UNIT,
            ],
        )
        .map(|o| o.stdout)
        .unwrap_or_default();
    status.trim().to_owned()
}

/// Sets the node's API password with `archipelagod init --reset
/// --password-stdin`, run as the service user. The password never appears
/// in a command line: it goes to a root-only file in the node, which the
/// shell hands to `init` as its standard input and then deletes.
pub fn set_node_password(node: &dyn Node, password: &str) -> Result<()> {
    const FILE: &str = "/run/archipelago-test-password";
    node.copy_in(format!("{password}\n").as_bytes(), FILE, RunAs::Root, 0o600)?;
    let script = "runuser -u \"$2\" -- archipelagod init --reset --password-stdin < \"$1\"; \
                  status=$?; rm -f \"$1\"; exit $status";
    let out = node.exec(
        RunAs::Root,
        &["sh", "-c", script, "sh", FILE, crate::node::SERVICE_USER],
    )?;
    if out.success() {
        Ok(())
    } else {
        Err(HarnessError::Command {
            cmd: "archipelagod init --reset --password-stdin".to_owned(),
            status: out.status.to_string(),
            stderr: format!("{}{}", out.stdout, out.stderr),
        })
    }
}

/// The certificate fingerprint `archipelagod pairing` prints on `node`, as
/// a person reads it off the node to pair a client.
pub fn pairing_fingerprint(node: &dyn Node) -> Result<[u8; 32]> {
    let out = as_user(node, &["archipelagod", "pairing", "--home", NODE_HOME])?;
    out.stdout
        .split_whitespace()
        .find_map(archipelago_api::rpc::parse_fingerprint)
        .ok_or_else(|| {
            HarnessError::Other(format!(
                "no fingerprint in `archipelagod pairing`:\n{}",
                out.stdout
            ))
        })
}

/// `dpkg <dpkg_args>` as root in `node`, from a transient unit of the node's
/// systemd (`systemd-run --wait --pipe`), as from an administrator's shell
/// (see [`install_deb_report`] for why); its output, whatever its status.
pub fn dpkg_in_node(node: &dyn Node, dpkg_args: &[&str]) -> Result<crate::node::ExecOutput> {
    let mut argv = vec![
        "systemd-run",
        "--quiet",
        "--wait",
        "--pipe",
        "--collect",
        "--",
        "dpkg",
    ];
    argv.extend_from_slice(dpkg_args);
    node.exec(RunAs::Root, &argv)
}
