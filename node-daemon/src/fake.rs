//! A scripted stand-in for a node's systemd manager and podman, for unit
//! tests and benchmarks of the reconciler. It behaves like the real pair in
//! the ways the reconciler depends on — a unit exists only after `reload`
//! has seen its Quadlet file, a started container publishes the ports its
//! unit file says *as of the last reload*, stopping removes the container
//! (Quadlet runs `--rm`) — and it records every call. It never replaces the
//! tests on real nodes.

use crate::manifest::Protocol;
use crate::podman::{
    ContainerInfo, ContainerStats, ExecOutcome, LogLine, PODMAN_SOCKET, PodmanApi, PodmanError,
    PortBinding, PullEvent,
};
use crate::podman_pause::Stale;
use crate::systemd::{MainExit, SystemdError, SystemdManager};
use archipelago_api::{ActiveState, UnitState};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Reload,
    Start(String),
    Stop(String),
    Restart(String),
    ResetFailed(String),
    /// `ListUnitsByNames` with this many names.
    ListUnits(usize),
    ListContainers,
    Pull(String),
    RemoveContainer(String),
    RemoveVolume(String),
    RemoveNetwork(String),
    CreateVolume(String),
    RemoveImage(String),
    /// A command run in a container.
    Exec(String, Vec<String>),
    /// A look at podman's pause pid file.
    ClearStalePause,
}

impl Call {
    /// True for calls that change something on the node.
    pub const fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Self::ListUnits(_) | Self::ListContainers | Self::ClearStalePause
        )
    }
}

#[derive(Debug, Clone)]
struct LoadedContainer {
    container_name: String,
    app: String,
    image: String,
    ports: Vec<PortBinding>,
    config_digest: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Services known since the last reload; container units carry details.
    loaded: BTreeMap<String, Option<LoadedContainer>>,
    active: BTreeMap<String, ActiveState>,
    containers: BTreeMap<String, ContainerInfo>,
    fail_start: BTreeSet<String>,
    fail_stop: BTreeSet<String>,
    fail_reloads: u32,
    fail_lists: u32,
    /// Image references pulled (or present from the start).
    images: BTreeSet<String>,
    /// References whose pull fails, with podman's message.
    fail_pulls: BTreeMap<String, String>,
    /// Log lines each container printed.
    logs: BTreeMap<String, Vec<LogLine>>,
    /// Named volumes, with the folder that stands for each.
    volumes: BTreeMap<String, PathBuf>,
    /// Images whose containers fail to start.
    fail_images: BTreeSet<String>,
    /// Files a container of an image writes when it starts.
    start_writes: BTreeMap<String, Vec<(PathBuf, Vec<u8>)>>,
    /// How commands run in a container end (exit 0, no output, by default).
    execs: BTreeMap<String, ExecOutcome>,
    /// A call found podman's socket unreachable (see [`FakeNode::lose_podman`]).
    outage: bool,
    /// What podman's pause pid file is stale for, if it is.
    stale_pause: Option<Stale>,
    calls: Vec<Call>,
}

/// The fake node. Cheap to share by reference.
#[derive(Debug)]
pub struct FakeNode {
    units_dir: PathBuf,
    inner: Mutex<Inner>,
}

impl FakeNode {
    /// A node whose Quadlet folder is `units_dir`.
    pub fn new(units_dir: impl Into<PathBuf>) -> Self {
        Self {
            units_dir: units_dir.into(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls that changed something.
    pub fn mutations(&self) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.is_mutation())
            .cloned()
            .collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// systemd's view of a unit.
    pub fn active_state(&self, unit: &str) -> ActiveState {
        self.lock()
            .active
            .get(unit)
            .copied()
            .unwrap_or(ActiveState::Inactive)
    }

    /// podman's view of a container.
    pub fn container(&self, name: &str) -> Option<ContainerInfo> {
        self.lock().containers.get(name).cloned()
    }

    /// Simulates a container dying: the unit fails, the container is gone.
    pub fn kill(&self, unit: &str) {
        let mut g = self.lock();
        g.active.insert(unit.to_owned(), ActiveState::Failed);
        if let Some(Some(c)) = g.loaded.get(unit).cloned() {
            g.containers.remove(&c.container_name);
        }
    }

    /// Makes the running container report other ports (someone ran it by hand).
    pub fn set_container_ports(&self, name: &str, ports: Vec<PortBinding>) {
        if let Some(c) = self.lock().containers.get_mut(name) {
            c.ports = ports;
        }
    }

    /// Starting this unit will fail from now on.
    pub fn fail_on_start(&self, unit: &str) {
        self.lock().fail_start.insert(unit.to_owned());
    }

    /// Starting this unit works again.
    pub fn allow_start(&self, unit: &str) {
        self.lock().fail_start.remove(unit);
    }

    /// Stopping this unit will fail from now on.
    pub fn fail_on_stop(&self, unit: &str) {
        self.lock().fail_stop.insert(unit.to_owned());
    }

    /// Commands run in `container` end this way.
    pub fn set_exec(&self, container: &str, outcome: ExecOutcome) {
        self.lock().execs.insert(container.to_owned(), outcome);
    }

    /// Containers of `image` fail to start (a new version that is broken).
    pub fn fail_image(&self, image: &str) {
        self.lock().fail_images.insert(image.to_owned());
    }

    /// A container of `image` writes `bytes` to `path` when it starts (a
    /// new version changing its data).
    pub fn write_on_start(&self, image: &str, path: impl Into<PathBuf>, bytes: &[u8]) {
        self.lock()
            .start_writes
            .entry(image.to_owned())
            .or_default()
            .push((path.into(), bytes.to_vec()));
    }

    /// The next `n` `ListUnitsByNames` calls fail.
    pub fn fail_lists(&self, n: u32) {
        self.lock().fail_lists = n;
    }

    /// The next `n` reloads fail (and change nothing).
    pub fn fail_reloads(&self, n: u32) {
        self.lock().fail_reloads = n;
    }

    fn scan_units(&self) -> BTreeMap<String, Option<LoadedContainer>> {
        let mut loaded = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&self.units_dir) else {
            return loaded;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            match ext {
                "container" => {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    loaded.insert(
                        format!("{stem}.service"),
                        Some(parse_container(stem, &text)),
                    );
                }
                "volume" | "network" => {
                    loaded.insert(format!("{stem}-{ext}.service"), None);
                }
                _ => {}
            }
        }
        loaded
    }

    fn start_locked(g: &mut Inner, unit: &str) -> Result<(), SystemdError> {
        let Some(spec) = g.loaded.get(unit).cloned() else {
            return Err(SystemdError::NoSuchUnit(unit.to_owned()));
        };
        let image = spec.as_ref().map(|c| c.image.clone()).unwrap_or_default();
        for (path, bytes) in g.start_writes.get(&image).cloned().unwrap_or_default() {
            let _ = std::fs::write(path, bytes);
        }
        if g.fail_start.contains(unit) || g.fail_images.contains(&image) {
            g.active.insert(unit.to_owned(), ActiveState::Failed);
            return Err(SystemdError::JobFailed {
                verb: "start",
                unit: unit.to_owned(),
                result: "failed".into(),
            });
        }
        g.active.insert(unit.to_owned(), ActiveState::Active);
        if let Some(c) = spec {
            g.containers.insert(
                c.container_name.clone(),
                ContainerInfo {
                    name: c.container_name,
                    app: c.app,
                    state: "running".into(),
                    ports: c.ports,
                    config_digest: c.config_digest,
                },
            );
        }
        Ok(())
    }

    fn stop_locked(g: &mut Inner, unit: &str) {
        g.active.insert(unit.to_owned(), ActiveState::Inactive);
        if let Some(Some(c)) = g.loaded.get(unit) {
            let name = c.container_name.clone();
            g.containers.remove(&name);
        }
    }
}

fn parse_container(stem: &str, text: &str) -> LoadedContainer {
    let mut c = LoadedContainer {
        container_name: stem.to_owned(),
        app: String::new(),
        image: String::new(),
        ports: Vec::new(),
        config_digest: None,
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("ContainerName=") {
            v.clone_into(&mut c.container_name);
        } else if let Some(v) = line.strip_prefix("Image=") {
            v.clone_into(&mut c.image);
        } else if let Some(v) = line.strip_prefix("Label=io.archipelago.app=") {
            v.clone_into(&mut c.app);
        } else if let Some(v) = line.strip_prefix("Label=io.archipelago.config=") {
            c.config_digest = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("PublishPort=") {
            if let Some(p) = parse_publish(v) {
                c.ports.push(p);
            }
        }
    }
    c.ports.sort();
    c
}

/// Parses `[ip:]host:container/proto` (IPv6 in brackets).
pub fn parse_publish(v: &str) -> Option<PortBinding> {
    let (spec, proto) = v.split_once('/').unwrap_or((v, "tcp"));
    let protocol = match proto {
        "udp" => Protocol::Udp,
        _ => Protocol::Tcp,
    };
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once("]:")?;
        (Some(ip.parse().ok()?), rest)
    } else if spec.matches(':').count() == 2 {
        let (ip, rest) = spec.split_once(':')?;
        (Some(ip.parse().ok()?), rest)
    } else {
        (None, spec)
    };
    let (host, container) = rest.split_once(':')?;
    Some(PortBinding {
        host_ip: ip,
        host_port: host.parse().ok()?,
        container_port: container.parse().ok()?,
        protocol,
    })
}

impl SystemdManager for FakeNode {
    async fn reload(&self) -> Result<(), SystemdError> {
        let loaded = self.scan_units();
        let mut g = self.lock();
        g.calls.push(Call::Reload);
        if g.fail_reloads > 0 {
            g.fail_reloads -= 1;
            return Err(SystemdError::Bus("reload refused (fake)".into()));
        }
        // podman's own units are not Quadlet files: a reload keeps them.
        let podman = g.loaded.remove_entry(PODMAN_SOCKET);
        g.loaded = loaded;
        g.loaded.extend(podman);
        Ok(())
    }

    async fn start_unit(&self, unit: &str) -> Result<(), SystemdError> {
        let mut g = self.lock();
        g.calls.push(Call::Start(unit.to_owned()));
        if g.active.get(unit).copied() == Some(ActiveState::Active) {
            return Ok(());
        }
        Self::start_locked(&mut g, unit)
    }

    async fn stop_unit(&self, unit: &str) -> Result<(), SystemdError> {
        let mut g = self.lock();
        g.calls.push(Call::Stop(unit.to_owned()));
        if !g.loaded.contains_key(unit) {
            return Err(SystemdError::NoSuchUnit(unit.to_owned()));
        }
        if g.fail_stop.contains(unit) {
            return Err(SystemdError::JobFailed {
                verb: "stop",
                unit: unit.to_owned(),
                result: "timeout".into(),
            });
        }
        Self::stop_locked(&mut g, unit);
        Ok(())
    }

    async fn restart_unit(&self, unit: &str) -> Result<(), SystemdError> {
        let mut g = self.lock();
        g.calls.push(Call::Restart(unit.to_owned()));
        Self::stop_locked(&mut g, unit);
        Self::start_locked(&mut g, unit)
    }

    async fn reset_failed_unit(&self, unit: &str) -> Result<(), SystemdError> {
        let mut g = self.lock();
        g.calls.push(Call::ResetFailed(unit.to_owned()));
        if g.active.get(unit).copied() == Some(ActiveState::Failed) {
            g.active.insert(unit.to_owned(), ActiveState::Inactive);
        }
        Ok(())
    }

    async fn list_units_by_names(&self, units: &[String]) -> Result<Vec<UnitState>, SystemdError> {
        let mut g = self.lock();
        g.calls.push(Call::ListUnits(units.len()));
        if g.fail_lists > 0 {
            g.fail_lists -= 1;
            return Err(SystemdError::Bus("manager not answering (fake)".into()));
        }
        Ok(units
            .iter()
            .map(|u| {
                let loaded = g.loaded.contains_key(u);
                UnitState {
                    name: u.clone(),
                    load_state: if loaded { "loaded" } else { "not-found" }.into(),
                    active_state: g.active.get(u).copied().unwrap_or(ActiveState::Inactive),
                    sub_state: String::new(),
                }
            })
            .collect())
    }

    async fn main_exit(&self, unit: &str) -> Result<Option<MainExit>, SystemdError> {
        let g = self.lock();
        Ok(
            (g.active.get(unit).copied() == Some(ActiveState::Failed)).then(|| MainExit {
                result: "exit-code".into(),
                signal: false,
                status: 1,
            }),
        )
    }
}

impl FakeNode {
    /// Makes pulls of `reference` fail with `message`.
    pub fn fail_pull(&self, reference: &str, message: &str) {
        self.lock()
            .fail_pulls
            .insert(reference.to_owned(), message.to_owned());
    }

    /// What `container` printed, as its logs return it.
    pub fn set_logs(&self, container: &str, lines: Vec<LogLine>) {
        self.lock().logs.insert(container.to_owned(), lines);
    }

    /// The folder standing for named volume `name` (next to the units
    /// folder), whether or not the volume exists.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.units_dir.with_file_name("fake-volumes").join(name)
    }

    /// Whether an image was pulled.
    pub fn has_image(&self, reference: &str) -> bool {
        self.lock().images.contains(reference)
    }

    /// podman locked out as a dead pause process leaves it: a call found
    /// its socket unreachable, its pause pid file is stale (`stale`), and
    /// `podman.socket` has given up.
    pub fn lose_podman(&self, stale: Stale) {
        let mut g = self.lock();
        g.outage = true;
        g.stale_pause = Some(stale);
        g.loaded.insert(PODMAN_SOCKET.to_owned(), None);
        g.active
            .insert(PODMAN_SOCKET.to_owned(), ActiveState::Failed);
    }
}

impl PodmanApi for FakeNode {
    async fn list_containers(&self) -> Result<Vec<ContainerInfo>, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::ListContainers);
        Ok(g.containers.values().cloned().collect())
    }

    async fn pull(
        &self,
        reference: &str,
        mut progress: impl FnMut(PullEvent) + Send,
    ) -> Result<String, PodmanError> {
        let failure = {
            let mut g = self.lock();
            g.calls.push(Call::Pull(reference.to_owned()));
            g.fail_pulls.get(reference).cloned()
        };
        if let Some(message) = failure {
            return Err(PodmanError::PullFailed {
                reference: reference.to_owned(),
                message,
            });
        }
        progress(PullEvent::Blob {
            digest: "sha256:fake-layer".to_owned(),
            seen: 1,
        });
        // A pull takes a while: let other tasks run, as a real one would.
        tokio::task::yield_now().await;
        self.lock().images.insert(reference.to_owned());
        let id = "fake-image-id".to_owned();
        progress(PullEvent::Done { id: id.clone() });
        Ok(id)
    }

    async fn image_exists(&self, reference: &str) -> Result<bool, PodmanError> {
        Ok(self.lock().images.contains(reference))
    }

    async fn logs(&self, container: &str, tail: usize) -> Result<Vec<LogLine>, PodmanError> {
        let g = self.lock();
        let lines = g.logs.get(container).cloned().unwrap_or_default();
        Ok(lines[lines.len().saturating_sub(tail)..].to_vec())
    }

    async fn follow_logs(
        &self,
        container: &str,
        tail: usize,
        lines: tokio::sync::mpsc::Sender<LogLine>,
    ) -> Result<(), PodmanError> {
        for line in self.logs(container, tail).await? {
            if lines.send(line).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn stats(&self, container: &str) -> Result<ContainerStats, PodmanError> {
        if self.lock().containers.contains_key(container) {
            Ok(ContainerStats {
                cpu_percent: 0.5,
                mem_usage_bytes: Some(1 << 20),
                mem_limit_bytes: 1 << 30,
            })
        } else {
            Err(PodmanError::NotFound(format!("container {container}")))
        }
    }

    async fn remove_container(&self, name: &str) -> Result<bool, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::RemoveContainer(name.to_owned()));
        Ok(g.containers.remove(name).is_some())
    }

    async fn remove_volume(&self, name: &str) -> Result<bool, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::RemoveVolume(name.to_owned()));
        if let Some(dir) = g.volumes.remove(name) {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(true)
    }

    async fn volume_mountpoint(&self, name: &str) -> Result<Option<PathBuf>, PodmanError> {
        Ok(self.lock().volumes.get(name).cloned())
    }

    async fn create_volume(&self, name: &str, _app: &str) -> Result<PathBuf, PodmanError> {
        let dir = self.volume_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| PodmanError::Api(e.to_string()))?;
        let mut g = self.lock();
        g.calls.push(Call::CreateVolume(name.to_owned()));
        g.volumes.insert(name.to_owned(), dir.clone());
        Ok(dir)
    }

    async fn exec(&self, container: &str, cmd: &[String]) -> Result<ExecOutcome, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::Exec(container.to_owned(), cmd.to_vec()));
        if !g.containers.contains_key(container) {
            return Err(PodmanError::NotFound(format!("container {container}")));
        }
        Ok(g.execs.get(container).cloned().unwrap_or(ExecOutcome {
            exit_code: 0,
            output: Vec::new(),
        }))
    }

    async fn remove_image(&self, reference: &str) -> Result<bool, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::RemoveImage(reference.to_owned()));
        Ok(g.images.remove(reference))
    }

    async fn remove_network(&self, name: &str) -> Result<bool, PodmanError> {
        self.lock().calls.push(Call::RemoveNetwork(name.to_owned()));
        Ok(true)
    }

    fn take_outage(&self) -> bool {
        std::mem::take(&mut self.lock().outage)
    }

    fn clear_stale_pause(&self) -> Result<Option<Stale>, PodmanError> {
        let mut g = self.lock();
        g.calls.push(Call::ClearStalePause);
        Ok(g.stale_pause.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse() {
        let p = parse_publish("127.0.0.1:50001:50001/tcp").unwrap();
        assert_eq!((p.host_port, p.container_port), (50001, 50001));
        assert!(p.host_ip.is_some());
        let p = parse_publish("[::1]:18000:8000/udp").unwrap();
        assert_eq!(p.protocol, Protocol::Udp);
        assert!(parse_publish("8080:80/tcp").unwrap().host_ip.is_none());
    }
}
