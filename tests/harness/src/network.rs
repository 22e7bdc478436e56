//! One network namespace per test run, holding a bridge, the registry, the
//! nodes and whatever talks to them. Nothing is addressed on the host's own
//! interfaces: the namespace has only `lo` and the bridge `br0`
//! (10.99.0.1/24), and nodes get 10.99.0.2 upwards. Deleting the namespace
//! removes every interface the run made.
//!
//! A run owns a folder under [`RUNS_DIR`] with its process id; a run that
//! died without cleaning up (SIGKILL, a crashed test binary) is cleaned by
//! the next one, see [`cleanup_stale_runs`].

use crate::cmd::{self, HarnessError, Result};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

/// Where runs keep their files (overlay layers, logs, registry storage).
pub const RUNS_DIR: &str = "/var/tmp/archipelago-test/runs";
/// Prefix of every namespace a run creates.
pub const NETNS_PREFIX: &str = "archy-";
/// The bridge's address: the registry listens here.
pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A run's network namespace and folder. Dropping it deletes both (after
/// the nodes and the registry, which borrow it, are gone).
#[derive(Debug)]
pub struct TestNetwork {
    id: String,
    dir: PathBuf,
    next_host: AtomicU8,
}

impl TestNetwork {
    /// Creates the namespace with its bridge, after cleaning up what dead
    /// runs left behind.
    pub fn create() -> Result<Self> {
        cleanup_stale_runs()?;
        let id = format!(
            "{}{}-{}",
            NETNS_PREFIX,
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Path::new(RUNS_DIR).join(&id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("pid"), std::process::id().to_string())?;
        let net = Self {
            id,
            dir,
            next_host: AtomicU8::new(2),
        };
        cmd::run(Command::new("ip").args(["netns", "add", &net.id]))?;
        let ns = ["-n", net.id.as_str()];
        cmd::run(
            Command::new("ip")
                .args(ns)
                .args(["link", "set", "lo", "up"]),
        )?;
        cmd::run(
            Command::new("ip")
                .args(ns)
                .args(["link", "add", "br0", "type", "bridge"]),
        )?;
        cmd::run(
            Command::new("ip")
                .args(ns)
                .args(["addr", "add", "10.99.0.1/24", "dev", "br0"]),
        )?;
        cmd::run(
            Command::new("ip")
                .args(ns)
                .args(["link", "set", "br0", "up"]),
        )?;
        Ok(net)
    }

    /// The namespace's name (`archy-<pid>-<n>`), also the run's id.
    pub fn name(&self) -> &str {
        &self.id
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `/var/run/netns/<name>`, for `nsenter --net=`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.id)
    }

    /// The next free node address on the bridge.
    pub fn allocate_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 99, 0, self.next_host.fetch_add(1, Ordering::Relaxed))
    }

    /// A command that runs inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.id, program]);
        c
    }

    /// Runs `f` on a thread that has joined the namespace, so that Rust code
    /// (HTTP clients, the CLI's library) talks to nodes from inside it.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let ns = fs::File::open(self.netns_path())?;
        std::thread::scope(|s| {
            s.spawn(|| {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| HarnessError::Other(format!("setns into {}: {e}", self.id)))?;
                Ok(f())
            })
            .join()
            .map_err(|_| HarnessError::Other("a thread inside the test network panicked".into()))?
        })
    }

    /// A plain HTTP/1.0 GET from inside the namespace: status and body.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> Result<(u16, String)> {
        self.enter(|| http_get(addr, path))?
    }
}

fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HarnessError::Other(format!("no HTTP status from {addr}: {head}")))?;
    Ok((status, body.to_owned()))
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        if let Err(e) = teardown(&self.id, &self.dir) {
            eprintln!("harness: cleaning up {}: {e}", self.id);
        }
    }
}

/// Kills what still runs in the namespace, unmounts what is mounted under
/// the run's folder, deletes the namespace and the folder.
fn teardown(id: &str, dir: &Path) -> Result<()> {
    // Nodes first: their cgroups hold every process they ran.
    if let Ok(cgroups) = fs::read_dir(crate::nspawn::CGROUP_PARENT) {
        for cg in cgroups.flatten() {
            if cg
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}-"))
            {
                crate::nspawn::remove_cgroup(&cg.path())?;
            }
        }
    }
    if Path::new("/var/run/netns").join(id).exists() {
        if let Ok(pids) = cmd::run(Command::new("ip").args(["netns", "pids", id])) {
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        // Give the kernel a moment to reap them before the namespace goes.
        std::thread::sleep(Duration::from_millis(100));
        cmd::run(Command::new("ip").args(["netns", "del", id]))?;
    }
    unmount_below(dir)?;
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    Ok(())
}

/// Unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|t| Path::new(t).starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        cmd::run(Command::new("umount").args(["--lazy", t]))?;
    }
    Ok(())
}

/// Cleans the runs whose process is gone. Returns how many.
pub fn cleanup_stale_runs() -> Result<usize> {
    let Ok(entries) = fs::read_dir(RUNS_DIR) else {
        return Ok(0);
    };
    let mut cleaned = 0;
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        let owner: Option<u32> = fs::read_to_string(entry.path().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            teardown(&id, &entry.path())?;
            cleaned += 1;
        }
    }
    // Node cgroups of dead runs (a run killed before its folder existed).
    if let Ok(cgroups) = fs::read_dir(crate::nspawn::CGROUP_PARENT) {
        for cg in cgroups.flatten() {
            let name = cg.file_name().to_string_lossy().into_owned();
            let owner: Option<u32> = name
                .strip_prefix(NETNS_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse().ok());
            if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                crate::nspawn::remove_cgroup(&cg.path())?;
                cleaned += 1;
            }
        }
    }
    // Namespaces of ours without a folder (a run killed mid-setup).
    if let Ok(names) = fs::read_dir("/var/run/netns") {
        for n in names.flatten() {
            let name = n.file_name().to_string_lossy().into_owned();
            let owner: Option<u32> = name
                .strip_prefix(NETNS_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse().ok());
            if let Some(pid) = owner {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    teardown(&name, &Path::new(RUNS_DIR).join(&name))?;
                    cleaned += 1;
                }
            }
        }
    }
    Ok(cleaned)
}

/// What a finished run must not leave behind: namespaces, mounts,
/// folders, cgroups or processes of runs by this process. Returns a
/// description of each.
pub fn leftovers_of_this_process() -> Vec<String> {
    leftovers_of(std::process::id())
}

/// [`leftovers_of_this_process`] for the runs of process `pid`.
pub fn leftovers_of(pid: u32) -> Vec<String> {
    let prefix = format!("{NETNS_PREFIX}{pid}-");
    let mut found = Vec::new();
    if let Ok(names) = fs::read_dir("/var/run/netns") {
        for n in names.flatten() {
            let name = n.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                found.push(format!("network namespace {name}"));
            }
        }
    }
    let runs = Path::new(RUNS_DIR);
    if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
        for t in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)) {
            if let Ok(rest) = Path::new(t).strip_prefix(runs) {
                if rest.to_string_lossy().starts_with(&prefix) {
                    found.push(format!("mount {t}"));
                }
            }
        }
    }
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(cmdline) = fs::read(p.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&prefix) && !cmdline.contains("cargo") {
                found.push(format!(
                    "process {}: {cmdline}",
                    p.file_name().to_string_lossy()
                ));
            }
        }
    }
    if let Ok(entries) = fs::read_dir(runs) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(format!("folder {}", e.path().display()));
            }
        }
    }
    // Node cgroups, and any process anywhere whose cgroup is one of them
    // (a node's init keeps running when nspawn alone is killed).
    if let Ok(cgroups) = fs::read_dir(crate::nspawn::CGROUP_PARENT) {
        for cg in cgroups.flatten() {
            if cg.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(format!("cgroup {}", cg.path().display()));
            }
        }
    }
    if let Ok(procs) = fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(cgroup) = fs::read_to_string(p.path().join("cgroup")) else {
                continue;
            };
            // A zombie holds nothing but its pid until its new parent (the
            // host's PID 1) reaps it.
            let zombie = fs::read_to_string(p.path().join("stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            });
            if !zombie && cgroup.contains(&format!("/archipelago-test/{prefix}")) {
                found.push(format!(
                    "process {} in {}",
                    p.file_name().to_string_lossy(),
                    cgroup.trim()
                ));
            }
        }
    }
    found
}
