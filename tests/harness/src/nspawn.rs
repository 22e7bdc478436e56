//! nspawn nodes: the node's root file system booted by `systemd-nspawn`
//! inside the run's namespace, with a fresh overlay on the shared rootfs
//! each time (the rootfs is never written) and the service user's home on a
//! plain folder, so that rootless podman inside keeps its usual overlay
//! storage. Boots to a Quadlet container answering in about 2 s.
//!
//! `systemd-nspawn` comes from Debian 12's `systemd-container`, unpacked
//! into the cache instead of installed (installing it would upgrade the
//! host's systemd); see `tests/node/fetch-nspawn.sh`.

use crate::cmd::{self, HarnessError, Result};
use crate::network::TestNetwork;
use crate::node::{ExecOutput, Node, RunAs, SERVICE_HOME, SERVICE_UID, SERVICE_USER};
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `tests/node/fetch-nspawn.sh` unpacks `systemd-nspawn`.
pub const NSPAWN_BIN: &str = "/var/cache/archipelago/nspawn/usr/bin/systemd-nspawn";
/// Where the harness mounts the cgroup v2 hierarchy (the host itself runs
/// on v1). Each node gets a cgroup of its own below it, so that nodes never
/// share cgroup paths, and so that every process of a node — nspawn, the
/// node's init and everything below — can be killed at once with
/// `cgroup.kill`, even when the harness itself was killed.
pub const CGROUP_MOUNT: &str = "/var/tmp/archipelago-test/cgroup";
/// The folder of the harness's node cgroups in that hierarchy.
pub const CGROUP_PARENT: &str = "/var/tmp/archipelago-test/cgroup/archipelago-test";

/// Exit status of nspawn when the node asked for a reboot.
const REBOOT_STATUS: i32 = 133;
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// One nspawn node of a run.
#[derive(Debug)]
pub struct NspawnNode {
    name: String,
    ip: Ipv4Addr,
    dir: PathBuf,
    rootfs: PathBuf,
    netns: PathBuf,
    child: Option<Child>,
    leader: Option<u32>,
    boots: u32,
    /// The node's own cgroup (see [`CGROUP_MOUNT`]).
    cgroup: PathBuf,
}

impl NspawnNode {
    /// Creates and boots a fresh node from `rootfs` in `net`.
    pub fn boot_new(net: &TestNetwork, rootfs: &Path, index: usize) -> Result<Self> {
        let ip = net.allocate_ip();
        // Short and unique on the host: nspawn names the bridge port
        // `vb-<name>`, at most 15 characters.
        let name = format!("a{}n{index}", std::process::id() % 100_000);
        let dir = net.dir().join(format!("node-{index}"));
        let cgroup = Path::new(CGROUP_PARENT).join(format!("{}-node-{index}", net.name()));
        let mut node = Self {
            name,
            ip,
            dir,
            rootfs: rootfs.to_owned(),
            netns: net.netns_path(),
            child: None,
            leader: None,
            boots: 0,
            cgroup,
        };
        node.prepare()?;
        node.boot()?;
        Ok(node)
    }

    /// The overlay on the rootfs, the home folder and the node's own
    /// configuration (its address, nspawn's podman limits).
    fn prepare(&self) -> Result<()> {
        let root = self.dir.join("root");
        for d in ["upper", "work", "root", "home"] {
            fs::create_dir_all(self.dir.join(d))?;
        }
        cmd::run(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir={},upperdir={},workdir={}",
                    self.rootfs.display(),
                    self.dir.join("upper").display(),
                    self.dir.join("work").display()
                ))
                .arg(&root),
        )?;
        let home = self.dir.join("home");
        rustix::fs::chown(
            &home,
            Some(rustix::fs::Uid::from_raw(SERVICE_UID)),
            Some(rustix::fs::Gid::from_raw(SERVICE_UID)),
        )
        .map_err(|e| HarnessError::Other(format!("chown {}: {e}", home.display())))?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700))?;
        let net_dir = root.join("etc/systemd/network");
        fs::create_dir_all(&net_dir)?;
        fs::write(
            net_dir.join("10-host0.network"),
            format!(
                "[Match]\nName=host0\n\n[Network]\nAddress={}/24\nLinkLocalAddressing=no\n",
                self.ip
            ),
        )?;
        let conf = root.join("etc/containers/containers.conf.d");
        fs::create_dir_all(&conf)?;
        // No pids controller in nspawn's cgroup tree, keyctl is filtered.
        fs::write(
            conf.join("50-nspawn.conf"),
            "[containers]\npids_limit = 0\nkeyring = false\n",
        )?;
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        if !Path::new(NSPAWN_BIN).is_file() {
            return Err(HarnessError::Other(format!(
                "{NSPAWN_BIN} is missing: run tests/node/fetch-nspawn.sh"
            )));
        }
        self.boots += 1;
        ensure_cgroup_mount()?;
        // A fresh cgroup for every boot: what a killed boot left in the old
        // one (its payload subtree) would confuse the node's new systemd.
        remove_cgroup(&self.cgroup)?;
        fs::create_dir_all(&self.cgroup)?;
        let console = fs::File::create(self.dir.join(format!("console-{}.log", self.boots)))?;
        // Join the node's cgroup, then become nspawn in the run's namespace.
        let child = Command::new("sh")
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(&self.cgroup)
            .arg("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .args([
                "env",
                "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1",
                NSPAWN_BIN,
                "--boot",
            ])
            .arg(format!("--directory={}", self.dir.join("root").display()))
            .arg(format!("--machine={}", self.name))
            .args([
                "--register=no",
                "--keep-unit",
                "--network-bridge=br0",
                "--bind=/dev/net/tun",
                "--bind=/dev/fuse",
                "--console=read-only",
                "--system-call-filter=add_key keyctl request_key",
            ])
            .arg(format!(
                "--bind={}:{SERVICE_HOME}",
                self.dir.join("home").display()
            ))
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                cmd: "nsenter … systemd-nspawn".into(),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// The node's PID 1, child of the nspawn process.
    fn find_leader(&mut self) -> Result<u32> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| HarnessError::Other("node is not running".into()))?;
        let found = cmd::wait_for(
            &format!("{}'s init to start", self.name),
            Duration::from_secs(20),
            Duration::from_millis(20),
            || {
                // nspawn gone (or a zombie): it will not start anything.
                let exited = fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                });
                if exited {
                    return Some(None);
                }
                let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
                tasks
                    .flatten()
                    .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
                    .flat_map(|c| {
                        c.split_whitespace()
                            .filter_map(|p| p.parse::<u32>().ok())
                            .collect::<Vec<_>>()
                    })
                    .find(|child| {
                        fs::read_link(format!("/proc/{child}/exe"))
                            .is_ok_and(|e| e.ends_with("systemd"))
                    })
                    .map(Some)
            },
        )?;
        found.ok_or_else(|| {
            HarnessError::Other(format!(
                "systemd-nspawn for {} exited before the node's init started; its console:\n{}",
                self.name,
                self.console()
            ))
        })
    }

    /// Waits until systemd in the node reports `running` (or `degraded`) and
    /// the service user's manager answers.
    fn wait_booted(&self) -> Result<()> {
        let limit = BOOT_LIMIT;
        let state = cmd::wait_for(
            &format!("{} to boot", self.name),
            limit,
            Duration::from_millis(50),
            || {
                let out = self
                    .exec(RunAs::Root, &["systemctl", "is-system-running"])
                    .ok()?;
                let s = out.stdout.trim().to_owned();
                matches!(s.as_str(), "running" | "degraded").then_some(s)
            },
        )?;
        if state == "degraded" {
            let failed = self.exec(RunAs::Root, &["systemctl", "--failed", "--no-legend"])?;
            eprintln!(
                "harness: {} booted degraded: {}",
                self.name,
                failed.stdout.trim()
            );
        }
        cmd::wait_for(
            &format!("{}'s user manager", self.name),
            limit,
            Duration::from_millis(50),
            || {
                let out = self
                    .exec(
                        RunAs::ServiceUser,
                        &["systemctl", "--user", "is-system-running"],
                    )
                    .ok()?;
                matches!(out.stdout.trim(), "running" | "degraded").then_some(())
            },
        )
    }

    fn wait_exit(&mut self, limit: Duration) -> Result<i32> {
        let Some(child) = self.child.as_mut() else {
            return Ok(0);
        };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                self.leader = None;
                return Ok(status.code().unwrap_or(-1));
            }
            if start.elapsed() > limit {
                return Err(HarnessError::Timeout {
                    what: format!("{} to stop", self.name),
                    after: limit,
                    detail: None,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn leader(&self) -> Result<u32> {
        self.leader
            .ok_or_else(|| HarnessError::Other(format!("{} is not running", self.name)))
    }

    /// The console output of the current boot.
    pub fn console(&self) -> String {
        fs::read_to_string(self.dir.join(format!("console-{}.log", self.boots))).unwrap_or_default()
    }
}

impl Node for NspawnNode {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> Ipv4Addr {
        self.ip
    }

    fn port(&self, node_port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, node_port))
    }

    fn exec(&self, who: RunAs, argv: &[&str]) -> Result<ExecOutput> {
        let leader = self.leader()?.to_string();
        let mut c = Command::new("nsenter");
        c.args(["-t", &leader, "-a", "--wdns=/"]);
        if who == RunAs::ServiceUser {
            c.args(["runuser", "-u", SERVICE_USER, "--", "env"])
                .arg(format!("HOME={SERVICE_HOME}"))
                .arg(format!("XDG_RUNTIME_DIR=/run/user/{SERVICE_UID}"))
                .arg(format!(
                    "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{SERVICE_UID}/bus"
                ));
        }
        c.args(argv);
        let out = cmd::output(&mut c)?;
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn copy_in(&self, contents: &[u8], dest: &str, who: RunAs, mode: u32) -> Result<()> {
        let leader = self.leader()?.to_string();
        // Folders readable as usual, the file private until its mode is set;
        // run as its owner, so that the folders it creates are theirs too.
        let script = "umask 022 && mkdir -p \"$(dirname \"$1\")\" && umask 077 && cat > \"$1\" && chmod \"$2\" \"$1\"";
        let mut c = Command::new("nsenter");
        c.args(["-t", &leader, "-a", "--wdns=/"]);
        if who == RunAs::ServiceUser {
            c.args(["runuser", "-u", SERVICE_USER, "--"]);
        }
        let mut child = c
            .args(["sh", "-c", script, "copy_in", dest, &format!("{mode:o}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(contents)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(HarnessError::Command {
                cmd: format!("copy into {}:{dest}", self.name),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    fn reboot(&mut self) -> Result<Duration> {
        let start = Instant::now();
        // The command's own status is lost with the node: do not wait on it.
        let _ = self.exec(RunAs::Root, &["systemctl", "reboot", "--no-block"]);
        let status = self.wait_exit(Duration::from_secs(60))?;
        if status != REBOOT_STATUS {
            return Err(HarnessError::Other(format!(
                "{} stopped with status {status} instead of rebooting ({REBOOT_STATUS}): {}",
                self.name,
                self.console()
            )));
        }
        self.boot()?;
        Ok(start.elapsed())
    }

    fn power_cut(&mut self) -> Result<()> {
        // Every process of the node at once: nspawn, the node's init and
        // everything below it.
        kill_cgroup(&self.cgroup)?;
        self.wait_exit(Duration::from_secs(20))?;
        Ok(())
    }

    fn boot(&mut self) -> Result<Duration> {
        let start = Instant::now();
        // nspawn can fail to start right after a power cut while the kernel
        // still tears down the last boot's network interfaces: it exits at
        // once, and a second try a moment later boots.
        for attempt in 1.. {
            self.launch()?;
            match self.find_leader() {
                Ok(pid) => {
                    self.leader = Some(pid);
                    break;
                }
                Err(HarnessError::Other(why)) if attempt < 3 => {
                    eprintln!("harness: {why}\nharness: trying again");
                    let _ = self.wait_exit(Duration::from_secs(5));
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        self.wait_booted()?;
        Ok(start.elapsed())
    }

    fn destroy(&mut self) -> Result<()> {
        self.power_cut()?;
        remove_cgroup(&self.cgroup)?;
        crate::network::unmount_below(&self.dir)?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        Ok(())
    }
}

impl Drop for NspawnNode {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            eprintln!("harness: removing node {}: {e}", self.name);
        }
    }
}

/// Mounts the cgroup v2 hierarchy at [`CGROUP_MOUNT`] unless it is already.
fn ensure_cgroup_mount() -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    let mounted = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(CGROUP_MOUNT));
    if !mounted {
        fs::create_dir_all(CGROUP_MOUNT)?;
        cmd::run(Command::new("mount").args(["-t", "cgroup2", "none", CGROUP_MOUNT]))?;
    }
    fs::create_dir_all(CGROUP_PARENT)?;
    Ok(())
}

/// Kills every process in `cgroup` and below, and waits until it is empty.
pub fn kill_cgroup(cgroup: &Path) -> Result<()> {
    if !cgroup.join("cgroup.kill").exists() {
        return Ok(());
    }
    fs::write(cgroup.join("cgroup.kill"), "1")?;
    cmd::wait_for(
        &format!("the processes of {} to end", cgroup.display()),
        Duration::from_secs(20),
        Duration::from_millis(10),
        || {
            let events = fs::read_to_string(cgroup.join("cgroup.events")).ok()?;
            events.lines().any(|l| l == "populated 0").then_some(())
        },
    )
}

/// Kills what is left in `cgroup` and removes it with its sub-cgroups.
pub fn remove_cgroup(cgroup: &Path) -> Result<()> {
    if !cgroup.exists() {
        return Ok(());
    }
    kill_cgroup(cgroup)?;
    let mut dirs = Vec::new();
    collect_dirs(cgroup, &mut dirs)?;
    // Deepest first: a cgroup can only go once its children have.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        fs::remove_dir(&d)?;
    }
    Ok(())
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    out.push(dir.to_owned());
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_dir() {
            collect_dirs(&e.path(), out)?;
        }
    }
    Ok(())
}
