//! VM nodes: the node rootfs booted as a qemu virtual machine, for what
//! needs a real kernel and a real reboot (the release gate). The disk image
//! comes from `tests/node/build-vm-image.sh` (`base.img`, the kernel and the
//! initrd, cached); each node boots from its own qcow2 overlay on it, so
//! `base.img` is never written.
//!
//! `/dev/kvm` on these machines is nested PVM, which a stock Debian kernel
//! does not boot under: qemu runs TCG (35–65 s to booted, 3–5 s per
//! podman command). qemu runs inside the run's namespace (`ip netns exec`),
//! so its user network's `hostfwd` ports listen on the namespace's loopback
//! and the guest reaches the namespace's loopback as `10.0.2.2` (the
//! registry, listening on `0.0.0.0:5000` there, is `10.0.2.2:5000` for the
//! guest). The registry therefore sees a VM's pulls coming from `127.0.0.1`.
//!
//! Commands run through the qemu guest agent (`guest-exec`), a fresh
//! connection to its socket per command; the QMP socket stops the machine.
//! Every file of a node (overlay, sockets, logs) is under the run's folder
//! (`vm-<index>`), and qemu is a process of the run's namespace: the run's
//! clean-up removes both even if the test process was killed.

use crate::cmd::{self, HarnessError, Result};
use crate::network::TestNetwork;
use crate::node::{ExecOutput, Node, RunAs, SERVICE_HOME, SERVICE_UID, SERVICE_USER};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Builds (or finds cached) the VM image folder and prints it.
pub const BUILD_SCRIPT: &str = "tests/node/build-vm-image.sh";
/// First forwarded host port: node `i`'s `n`-th port is `20000 + 100 i + n`.
pub const FIRST_HOST_PORT: u16 = 20000;
const QEMU: &str = "qemu-system-x86_64";
/// From launch (or from the reboot request) to booted, under TCG, also
/// while the host's cores are busy with other work (a CI run beside a
/// release gate): then a boot has been seen to take over three minutes.
const BOOT_LIMIT: Duration = Duration::from_secs(420);
/// A single command in the guest (a pull under TCG takes seconds).
const EXEC_LIMIT: Duration = Duration::from_secs(600);
/// One answer of the agent or of QMP.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// One answer of the agent while the guest boots or shuts down: a request
/// the dying agent took is never answered, so do not wait long for it.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// qemu's exit after QMP `quit`.
const QUIT_LIMIT: Duration = Duration::from_secs(20);
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One VM node of a run.
#[derive(Debug)]
pub struct VmNode {
    name: String,
    dir: PathBuf,
    image_dir: PathBuf,
    netns: String,
    /// `(guest port, host port)`.
    forwards: Vec<(u16, u16)>,
    child: Option<Child>,
    boots: u32,
    /// The agent's socket takes one client at a time.
    agent: Mutex<()>,
    next_id: AtomicU64,
}

impl VmNode {
    /// Creates a fresh overlay on `image_dir/base.img` (the folder printed by
    /// `tests/node/build-vm-image.sh`) and boots it inside `net`, forwarding
    /// each guest port of `forward` from a loopback port of the namespace
    /// (see [`Node::port`]). `index` makes the node's name, folder and host
    /// ports unique within the run.
    pub fn boot_new(
        net: &TestNetwork,
        image_dir: &Path,
        index: usize,
        forward: &[u16],
    ) -> Result<Self> {
        let image_dir = fs::canonicalize(image_dir).map_err(|e| {
            HarnessError::Other(format!(
                "VM image {}: {e} (run {BUILD_SCRIPT})",
                image_dir.display()
            ))
        })?;
        for f in ["base.img", "vmlinuz", "initrd"] {
            if !image_dir.join(f).is_file() {
                return Err(HarnessError::Other(format!(
                    "{} has no {f}: run {BUILD_SCRIPT}",
                    image_dir.display()
                )));
            }
        }
        let forwards = forward
            .iter()
            .enumerate()
            .map(|(i, &guest)| {
                let host = index
                    .checked_mul(100)
                    .and_then(|o| o.checked_add(i + usize::from(FIRST_HOST_PORT)))
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|_| i < 100)
                    .ok_or_else(|| {
                        HarnessError::Other(format!("no host port for node {index}'s port {guest}"))
                    })?;
                Ok((guest, host))
            })
            .collect::<Result<Vec<_>>>()?;
        let dir = net.dir().join(format!("vm-{index}"));
        fs::create_dir_all(&dir)?;
        let mut node = Self {
            name: format!("vm-{index}"),
            dir,
            image_dir,
            netns: net.name().to_owned(),
            forwards,
            child: None,
            boots: 0,
            agent: Mutex::new(()),
            next_id: AtomicU64::new(1),
        };
        cmd::run(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                .arg(node.image_dir.join("base.img"))
                .arg(node.overlay()),
        )?;
        node.boot()?;
        Ok(node)
    }

    fn overlay(&self) -> PathBuf {
        self.dir.join("overlay.qcow2")
    }

    fn qga_socket(&self) -> PathBuf {
        self.dir.join("qga.sock")
    }

    fn qmp_socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    fn serial_path(&self) -> PathBuf {
        self.dir.join(format!("serial-{}.log", self.boots))
    }

    fn qemu_log_path(&self) -> PathBuf {
        self.dir.join(format!("qemu-{}.log", self.boots))
    }

    /// The serial console of the current qemu process (kernel and systemd
    /// messages; a reboot inside the guest keeps the same file).
    pub fn serial_log(&self) -> String {
        fs::read_to_string(self.serial_path()).unwrap_or_default()
    }

    /// The host port that forwards to `guest_port`, if it was asked for.
    pub fn host_port(&self, guest_port: u16) -> Option<u16> {
        self.forwards
            .iter()
            .find(|(g, _)| *g == guest_port)
            .map(|(_, h)| *h)
    }

    fn launch(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Err(HarnessError::Other(format!(
                "{} is already running",
                self.name
            )));
        }
        self.boots += 1;
        for sock in [self.qga_socket(), self.qmp_socket()] {
            match fs::remove_file(&sock) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        let netdev: String = std::iter::once("user,id=n0".to_owned())
            .chain(
                self.forwards
                    .iter()
                    .map(|(guest, host)| format!("hostfwd=tcp:127.0.0.1:{host}-:{guest}")),
            )
            .collect::<Vec<_>>()
            .join(",");
        let log = fs::File::create(self.qemu_log_path())?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, QEMU])
            .args(["-name", &self.name])
            .args([
                "-accel",
                "tcg,thread=multi",
                "-cpu",
                "qemu64",
                "-m",
                "2048",
                "-smp",
                "2",
            ])
            .args(["-nodefaults", "-display", "none"])
            .arg("-kernel")
            .arg(self.image_dir.join("vmlinuz"))
            .arg("-initrd")
            .arg(self.image_dir.join("initrd"))
            // udev's first pass is slow under TCG on a busy host: systemd's
            // default 90 s for a device (the guest agent's port, the serial
            // console) has run out before it, and the agent never started.
            .args([
                "-append",
                "root=/dev/vda rw console=ttyS0 quiet systemd.default_device_timeout_sec=400",
            ])
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=qcow2,cache=unsafe",
                self.overlay().display()
            ))
            .args(["-netdev", &netdev, "-device", "virtio-net-pci,netdev=n0"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=qga0,path={},server=on,wait=off",
                self.qga_socket().display()
            ))
            .args(["-device", "virtio-serial-pci"])
            .args([
                "-device",
                "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            ])
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                self.qmp_socket().display()
            ))
            .arg("-serial")
            .arg(format!("file:{}", self.serial_path().display()))
            .args(["-device", "virtio-rng-pci"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = c.spawn().map_err(|source| HarnessError::Spawn {
            cmd: format!(
                "{} (run {BUILD_SCRIPT}, which installs qemu)",
                cmd::describe(&c)
            ),
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Fails if qemu has exited (reaping it).
    fn check_running(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Err(HarnessError::Other(format!("{} is not running", self.name)));
        };
        if let Some(status) = child.try_wait()? {
            self.child = None;
            return Err(HarnessError::Other(format!(
                "qemu of {} exited ({status}): {}\n--- serial console (end) ---\n{}",
                self.name,
                fs::read_to_string(self.qemu_log_path())
                    .unwrap_or_default()
                    .trim(),
                tail(&self.serial_log(), 40)
            )));
        }
        Ok(())
    }

    fn timeout(&self, what: &str, after: Duration, last: Option<String>) -> HarnessError {
        HarnessError::Timeout {
            what: format!("{} {what}", self.name),
            after,
            detail: Some(format!(
                "{}\n--- serial console (end) ---\n{}",
                last.unwrap_or_default(),
                tail(&self.serial_log(), 40)
            )),
        }
    }

    /// Polls `check` (which gets the node back) every `every` until it gives
    /// `Some`, qemu exits or [`BOOT_LIMIT`] has passed since `start`.
    fn poll<T>(
        &mut self,
        what: &str,
        start: Instant,
        every: Duration,
        mut check: impl FnMut(&Self) -> Result<Option<T>>,
    ) -> Result<T> {
        let mut last = None;
        loop {
            self.check_running()?;
            match check(self) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last = Some(e.to_string()),
            }
            if start.elapsed() >= BOOT_LIMIT {
                return Err(self.timeout(what, BOOT_LIMIT, last));
            }
            std::thread::sleep(every);
        }
    }

    /// Waits until the agent answers, systemd reports `running` (or
    /// `degraded`), the service user's manager answers and the guest has its
    /// default route (DHCP from qemu's user network).
    fn wait_booted(&mut self, start: Instant) -> Result<()> {
        let every = Duration::from_millis(500);
        self.poll("to answer through the guest agent", start, every, |n| {
            n.connect_agent(PROBE_LIMIT).map(Some)
        })?;
        let state = self.poll("to boot", start, every, |n| {
            let out = n.probe(RunAs::Root, &["systemctl", "is-system-running"])?;
            let s = out.stdout.trim().to_owned();
            Ok(matches!(s.as_str(), "running" | "degraded").then_some(s))
        })?;
        if state == "degraded" {
            let failed = self.exec(RunAs::Root, &["systemctl", "--failed", "--no-legend"])?;
            eprintln!(
                "harness: {} booted degraded: {}",
                self.name,
                failed.stdout.trim()
            );
        }
        self.poll("'s user manager", start, every, |n| {
            let out = n.probe(
                RunAs::ServiceUser,
                &["systemctl", "--user", "is-system-running"],
            )?;
            Ok(matches!(out.stdout.trim(), "running" | "degraded").then_some(()))
        })?;
        self.poll("'s default route (DHCP)", start, every, |n| {
            let out = n.probe(RunAs::Root, &["ip", "-4", "route", "show", "default"])?;
            Ok(out.stdout.contains("default").then_some(()))
        })
    }

    /// [`Node::exec`] while the guest may be booting or shutting down.
    fn probe(&self, who: RunAs, argv: &[&str]) -> Result<ExecOutput> {
        self.run_in_guest(who, argv, None, PROBE_LIMIT)
    }

    fn boot_id(&self) -> Result<String> {
        let out = self.probe(RunAs::Root, &["cat", "/proc/sys/kernel/random/boot_id"])?;
        let id = out.stdout.trim();
        if !out.success() || id.is_empty() {
            return Err(HarnessError::Other(format!(
                "no boot id from {}: {out:?}",
                self.name
            )));
        }
        Ok(id.to_owned())
    }

    /// A synchronised connection to the guest agent: stale answers of
    /// earlier connections are skipped with `guest-sync-delimited`.
    fn connect_agent(&self, limit: Duration) -> Result<JsonSocket> {
        let stream = UnixStream::connect(self.qga_socket())?;
        let mut agent = JsonSocket {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            limit,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed)
            + u64::from(std::process::id()) * 1_000_000;
        // 0xFF resets the agent's JSON parser (a half request of an earlier
        // client); the answer to the sync starts with 0xFF too.
        agent.stream.write_all(&[0xFF])?;
        agent.send(&json!({"execute": "guest-sync-delimited", "arguments": {"id": id}}))?;
        let deadline = Instant::now() + limit;
        loop {
            agent.set_deadline(deadline)?;
            let mut skipped = Vec::new();
            agent
                .reader
                .read_until(0xFF, &mut skipped)
                .map_err(|e| agent_error("guest-sync-delimited", &e))?;
            if skipped.last() != Some(&0xFF) {
                return Err(HarnessError::Other(
                    "the guest agent closed the connection".into(),
                ));
            }
            let answer = agent.read_json("guest-sync-delimited", deadline)?;
            if answer.get("return").and_then(Value::as_u64) == Some(id) {
                return Ok(agent);
            }
        }
    }

    /// Starts `argv` in the guest through the agent; returns the agent
    /// connection and the guest's process id, or why the program could
    /// not be started.
    fn spawn_in_guest(
        &self,
        who: RunAs,
        argv: &[&str],
        input: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Spawned> {
        let mut full: Vec<String> = Vec::new();
        if who == RunAs::ServiceUser {
            full.extend(["runuser", "-u", SERVICE_USER, "--", "env"].map(str::to_owned));
            full.push(format!("HOME={SERVICE_HOME}"));
            full.push(format!("XDG_RUNTIME_DIR=/run/user/{SERVICE_UID}"));
            full.push(format!(
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{SERVICE_UID}/bus"
            ));
        }
        full.extend(argv.iter().map(|a| (*a).to_owned()));
        let Some((program, program_args)) = full.split_first() else {
            return Err(HarnessError::Other("exec of an empty command".into()));
        };
        let mut arguments = json!({
            "path": program,
            "arg": program_args,
            "env": [PATH, "HOME=/root", "LANG=C.UTF-8"],
            "capture-output": true,
        });
        if let Some(input) = input {
            arguments["input-data"] = Value::String(BASE64.encode(input));
        }
        let mut agent = self.connect_agent(limit)?;
        agent.send(&json!({"execute": "guest-exec", "arguments": arguments}))?;
        let answer = agent.read_json("guest-exec", Instant::now() + limit)?;
        if let Some(desc) = answer.pointer("/error/desc").and_then(Value::as_str) {
            if desc.contains("Failed to execute child process") {
                return Ok(Spawned::NotStarted(desc.to_owned()));
            }
        }
        let pid = answer
            .pointer("/return/pid")
            .and_then(Value::as_i64)
            .ok_or_else(|| HarnessError::Other(format!("guest-exec answered {answer}")))?;
        Ok(Spawned::Running(agent, pid))
    }

    fn run_in_guest(
        &self,
        who: RunAs,
        argv: &[&str],
        input: Option<&[u8]>,
        limit: Duration,
    ) -> Result<ExecOutput> {
        let _one = self
            .agent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut agent, pid) = match self.spawn_in_guest(who, argv, input, limit)? {
            Spawned::Running(agent, pid) => (agent, pid),
            // What a shell or nsenter reports for a program it cannot run.
            Spawned::NotStarted(why) => {
                return Ok(ExecOutput {
                    status: 127,
                    stdout: String::new(),
                    stderr: why,
                });
            }
        };
        let start = Instant::now();
        let mut every = Duration::from_millis(20);
        loop {
            let status =
                agent.call(&json!({"execute": "guest-exec-status", "arguments": {"pid": pid}}))?;
            if status.get("exited").and_then(Value::as_bool) == Some(true) {
                let text = |key: &str| -> Result<String> {
                    let b64 = status.get(key).and_then(Value::as_str).unwrap_or_default();
                    let bytes = BASE64.decode(b64).map_err(|e| {
                        HarnessError::Other(format!("guest-exec-status {key}: {e}"))
                    })?;
                    Ok(String::from_utf8_lossy(&bytes).into_owned())
                };
                let code = status
                    .get("exitcode")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok());
                return Ok(ExecOutput {
                    status: code.unwrap_or(-1),
                    stdout: text("out-data")?,
                    stderr: text("err-data")?,
                });
            }
            if start.elapsed() > EXEC_LIMIT {
                return Err(HarnessError::Timeout {
                    what: format!("`{}` in {}", argv.join(" "), self.name),
                    after: EXEC_LIMIT,
                    detail: None,
                });
            }
            std::thread::sleep(every);
            every = (every * 2).min(Duration::from_millis(200));
        }
    }

    /// Asks qemu to quit through QMP: the guest gets no shutdown at all,
    /// while qemu still writes out its own block caches (with
    /// `cache=unsafe`, a SIGKILL could lose writes the guest had flushed,
    /// which no real power cut does).
    fn qmp_quit(&self) -> Result<()> {
        let stream = UnixStream::connect(self.qmp_socket())?;
        let mut qmp = JsonSocket {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            limit: ANSWER_LIMIT,
        };
        let deadline = Instant::now() + ANSWER_LIMIT;
        let greeting = qmp.read_json("QMP greeting", deadline)?;
        if greeting.get("QMP").is_none() {
            return Err(HarnessError::Other(format!("QMP greeted with {greeting}")));
        }
        qmp.call(&json!({"execute": "qmp_capabilities"}))?;
        qmp.send(&json!({"execute": "quit"}))?;
        Ok(())
    }

    fn wait_exit(&mut self, limit: Duration) -> Result<bool> {
        let Some(child) = self.child.as_mut() else {
            return Ok(true);
        };
        let start = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                self.child = None;
                return Ok(true);
            }
            if start.elapsed() > limit {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What `guest-exec` did with a command.
#[derive(Debug)]
enum Spawned {
    /// Started: the connection to poll its status on and its process id.
    Running(JsonSocket, i64),
    /// The agent could not run the program (missing, not executable).
    NotStarted(String),
}

/// A JSON-lines conversation on a unix socket (the guest agent or QMP).
#[derive(Debug)]
struct JsonSocket {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    /// How long [`JsonSocket::call`] waits for each answer.
    limit: Duration,
}

impl JsonSocket {
    fn send(&mut self, request: &Value) -> Result<()> {
        let mut line = request.to_string();
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        Ok(())
    }

    fn set_deadline(&mut self, deadline: Instant) -> Result<()> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(left))?;
        Ok(())
    }

    /// The next JSON line (QMP's events are skipped).
    fn read_json(&mut self, what: &str, deadline: Instant) -> Result<Value> {
        loop {
            self.set_deadline(deadline)?;
            let mut line = Vec::new();
            let n = (&mut self.reader)
                .take(64 << 20)
                .read_until(b'\n', &mut line)
                .map_err(|e| agent_error(what, &e))?;
            if n == 0 {
                return Err(HarnessError::Other(format!(
                    "{what}: the socket was closed"
                )));
            }
            let text = String::from_utf8_lossy(&line);
            if text.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(text.trim()).map_err(|e| {
                HarnessError::Other(format!("{what}: not JSON ({e}): {}", text.trim()))
            })?;
            if value.get("event").is_none() {
                return Ok(value);
            }
        }
    }

    /// Sends `request` and returns its `return`, or its `error` as an error.
    fn call(&mut self, request: &Value) -> Result<Value> {
        let what = request
            .get("execute")
            .and_then(Value::as_str)
            .unwrap_or("request")
            .to_owned();
        self.send(request)?;
        let mut answer = self.read_json(&what, Instant::now() + self.limit)?;
        if let Some(err) = answer.get("error") {
            return Err(HarnessError::Other(format!("{what}: {err}")));
        }
        answer
            .get_mut("return")
            .map(Value::take)
            .ok_or_else(|| HarnessError::Other(format!("{what} answered {answer}")))
    }
}

fn agent_error(what: &str, e: &std::io::Error) -> HarnessError {
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
        HarnessError::Other(format!("{what}: no answer"))
    } else {
        HarnessError::Other(format!("{what}: {e}"))
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Node for VmNode {
    fn name(&self) -> &str {
        &self.name
    }

    /// `127.0.0.1`: with qemu's user networking the guest's connections to
    /// the registry (`10.0.2.2:5000` in the guest) leave qemu from the
    /// namespace's loopback, so that is the address the registry sees.
    fn address(&self) -> Ipv4Addr {
        Ipv4Addr::LOCALHOST
    }

    /// `127.0.0.1:<host port>` inside the run's namespace, forwarded to
    /// `node_port` in the guest. Only the ports given to
    /// [`VmNode::boot_new`] are forwarded; any other gives port 0, which
    /// refuses every connection.
    fn port(&self, node_port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.host_port(node_port).unwrap_or(0)))
    }

    fn exec(&self, who: RunAs, argv: &[&str]) -> Result<ExecOutput> {
        self.run_in_guest(who, argv, None, ANSWER_LIMIT)
    }

    fn copy_in(&self, contents: &[u8], dest: &str, who: RunAs, mode: u32) -> Result<()> {
        // As in the nspawn flavour: folders readable as usual, the file
        // private until its mode is set; run as its owner, so that the
        // folders it creates are theirs too.
        let script = "umask 022 && mkdir -p \"$(dirname \"$1\")\" && umask 077 && cat > \"$1\" && chmod \"$2\" \"$1\"";
        let mode = format!("{mode:o}");
        let mut argv = Vec::new();
        if who == RunAs::ServiceUser {
            argv.extend(["runuser", "-u", SERVICE_USER, "--"]);
        }
        argv.extend(["sh", "-c", script, "copy_in", dest, &mode]);
        let out = self.run_in_guest(RunAs::Root, &argv, Some(contents), ANSWER_LIMIT)?;
        if !out.success() {
            return Err(HarnessError::Command {
                cmd: format!("copy into {}:{dest}", self.name),
                status: out.status.to_string(),
                stderr: out.stderr,
            });
        }
        Ok(())
    }

    fn reboot(&mut self) -> Result<Duration> {
        let start = Instant::now();
        let before = self.boot_id()?;
        {
            // Fire and forget: the agent dies with the old boot, its answer
            // about the command's status may never come.
            let _one = self
                .agent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Spawned::NotStarted(why) = self.spawn_in_guest(
                RunAs::Root,
                &["systemctl", "reboot", "--no-block"],
                None,
                ANSWER_LIMIT,
            )? {
                return Err(HarnessError::Other(format!(
                    "reboot of {}: {why}",
                    self.name
                )));
            }
        }
        self.poll(
            "to come back from the reboot",
            start,
            Duration::from_millis(500),
            |n| {
                let id = n.boot_id()?;
                Ok((id != before).then_some(()))
            },
        )?;
        self.wait_booted(start)?;
        Ok(start.elapsed())
    }

    fn power_cut(&mut self) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        let quit = self.qmp_quit();
        if quit.is_err() || !self.wait_exit(QUIT_LIMIT)? {
            if let Some(child) = self.child.as_mut() {
                let _ = child.kill();
            }
            if !self.wait_exit(QUIT_LIMIT)? {
                return Err(HarnessError::Other(format!(
                    "qemu of {} did not die",
                    self.name
                )));
            }
        }
        Ok(())
    }

    fn boot(&mut self) -> Result<Duration> {
        let start = Instant::now();
        self.launch()?;
        self.wait_booted(start)?;
        Ok(start.elapsed())
    }

    fn destroy(&mut self) -> Result<()> {
        self.power_cut()?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        Ok(())
    }
}

impl Drop for VmNode {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            eprintln!("harness: removing node {}: {e}", self.name);
        }
    }
}
