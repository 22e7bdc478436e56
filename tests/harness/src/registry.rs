//! A real OCI registry for the run: Debian's `docker-registry`
//! (Distribution 2.8) with our own config — no auth, storage in the run's
//! folder, listening inside the run's namespace only (on the bridge for
//! nspawn nodes, on the namespace's loopback for VMs' user networking).
//! Its access log shows which node pulled what.

use crate::cmd::{self, HarnessError, Result};
use crate::network::{BRIDGE_IP, TestNetwork};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Port the registry listens on.
pub const REGISTRY_PORT: u16 = 5000;

/// A running registry; killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: PathBuf,
    netns: String,
}

impl Registry {
    /// Starts the registry inside `net` and waits until it accepts
    /// connections.
    pub fn start(net: &TestNetwork) -> Result<Self> {
        let dir = net.dir().join("registry");
        fs::create_dir_all(dir.join("data"))?;
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 0.0.0.0:{REGISTRY_PORT}\n",
                dir.join("data").display()
            ),
        )?;
        let log = fs::File::create(dir.join("registry.log"))?;
        let child = net
            .command("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                cmd: "docker-registry serve (apt-get install docker-registry)".into(),
                source,
            })?;
        let mut reg = Self {
            child,
            dir,
            netns: net.name().to_owned(),
        };
        let addr = SocketAddr::from((BRIDGE_IP, REGISTRY_PORT));
        let up = cmd::wait_for(
            "the registry to listen",
            Duration::from_secs(20),
            Duration::from_millis(50),
            || {
                if let Ok(Some(status)) = reg.child.try_wait() {
                    return Some(Err(HarnessError::Other(format!(
                        "docker-registry exited ({status}): {}",
                        reg.log()
                    ))));
                }
                net.enter(|| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
                    .ok()
                    .filter(|ok| *ok)
                    .map(|_| Ok(()))
            },
        );
        up??;
        Ok(reg)
    }

    /// `10.99.0.1:5000`: how nodes on the bridge name it.
    pub fn address() -> String {
        format!("{BRIDGE_IP}:{REGISTRY_PORT}")
    }

    /// Pushes an OCI layout image (`oci:DIR:TAG`) as `REPO:TAG`, with
    /// Debian's `skopeo`, from inside the namespace.
    pub fn push_oci(&self, oci_dir: &Path, tag: &str, repo: &str) -> Result<()> {
        let dest = format!("docker://{}/{repo}:{tag}", Self::address());
        cmd::run(
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.netns,
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                ])
                .arg(format!("oci:{}:{tag}", oci_dir.display()))
                .arg(&dest),
        )?;
        Ok(())
    }

    /// The registry's log so far (access log included).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of manifest or blob GETs from `client` for `repo`.
    pub fn pulls_by(&self, client: &str, repo: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.starts_with(client) && l.contains("\"GET /v2/") && l.contains(repo))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
