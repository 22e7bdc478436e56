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
