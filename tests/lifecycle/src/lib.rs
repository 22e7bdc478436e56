//! The lifecycle matrix: every fixture app taken through every state a user
//! can put it in — install, stop, start, restart, a daemon restart, a node
//! reboot, a reinstall, an uninstall — on a real node that runs the daemon
//! from its `.deb`, driven through the API with the same client crate that
//! `archy` and the desktop app use. Each cell checks what the node really
//! did (container ids, unit files, volumes, secrets, data on disk), not only
//! what the API says.
//!
//! [`Lab`] sets up one run: a network namespace, the local registry with
//! the fixture images, an nspawn node with the `.deb` installed, its
//! password set, the fixture apps as a signed community catalog (a
//! throwaway key, added with `archipelagod catalog add`), and a client pinned
//! to the fingerprint `archipelagod pairing` prints. [`Matrix`] records
//! each cell with its time and prints the app × state table.

#![allow(clippy::print_stderr)]

use anyhow::{Context as _, Result, bail, ensure};
use archipelago_api::methods::{
    AppParams, Health, PackageInstall, PackageList, PackageStatus, PackageStatusMethod, Phase,
    UninstallParams,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_api::{ErrorCode, methods};
use archipelago_client::{Client, ClientError};
use archipelago_harness::catalog::{FIXTURE_CATALOG, TestCatalog};
use archipelago_harness::fixtures::{self, BuiltImage};
use archipelago_harness::network::TestNetwork;
use archipelago_harness::node::{Node, RunAs};
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{
    NODE_HOME, install_deb, pairing_fingerprint, rootfs, set_node_password, vm_image,
};
use archipelago_harness::vm::VmNode;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub mod cells;
pub mod chaos;
pub mod report;
pub mod updates;

/// The run's registry, seen from a node.
pub const REGISTRY: &str = "10.99.0.1:5000";
/// The API port.
pub const API_PORT: u16 = archipelago_api::rpc::DEFAULT_PORT;
/// Where a VM node is told to pull [`REGISTRY`]'s images from.
const VM_MIRROR_FILE: &str = "/etc/containers/registries.conf.d/60-archipelago-vm-mirror.conf";
const VM_REGISTRY_MIRROR: &str = "[[registry]]\nlocation = \"10.99.0.1:5000\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"10.0.2.2:5000\"\ninsecure = true\n";
/// The fixture apps a catalog gets.
pub const CATALOG: [&str; 5] = [
    "hello-web",
    "fixture-chain",
    "fixture-wallet",
    "fixture-broken-exit",
    "fixture-broken-unhealthy",
];
/// The password the lab sets on its node.
pub const PASSWORD: &str = "matrix-password-1234";

/// One run's network namespace, registry and fixture images: what every
/// node of the run shares.
#[derive(Debug)]
pub struct Site {
    pub net: TestNetwork,
    pub registry: Registry,
    pub images: Vec<BuiltImage>,
}

impl Site {
    /// The namespace, the registry and the fixture images pushed to it.
    pub fn start() -> Result<Arc<Self>> {
        let net = TestNetwork::create()?;
        let registry = Registry::start(&net)?;
        let images = fixtures::build_all(&net.dir().join("images"))?;
        for i in &images {
            registry.push_oci(&i.oci_dir, &i.tag, &format!("archipelago/{}", i.name))?;
        }
        Ok(Arc::new(Self {
            net,
            registry,
            images,
        }))
    }
}

/// Which kind of throwaway node a [`Lab`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// systemd-nspawn: boots in seconds, shares the host's kernel.
    Nspawn,
    /// A qemu VM: its own kernel, a real reboot (slow under TCG).
    Vm,
}

impl NodeKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Nspawn => "nspawn",
            Self::Vm => "vm",
        }
    }

    /// A fixture manifest as a node of this kind runs it. A VM emulates
    /// its CPU (TCG, some twenty times slower, and slower still while the
    /// host is busy): there, a health check may take five times as long,
    /// checks come five times less often, and the start period is longer,
    /// or a check that takes 3 s would count as failed.
    pub fn adapt(self, yaml: &str) -> String {
        match self {
            Self::Nspawn => yaml.to_owned(),
            Self::Vm => yaml
                .replace("      interval: 2s\n", "      interval: 10s\n")
                .replace("      timeout: 2s\n", "      timeout: 10s\n")
                .replace("      start_period: 10s\n", "      start_period: 50s\n"),
        }
    }
}

/// The ports a VM node forwards: the API and the fixture apps'.
const VM_PORTS: [u16; 4] = [API_PORT, 8080, 18443, 18081];

/// One node of a run with the daemon installed from its `.deb`, paired, and
/// the fixture catalog published on it. Derefs to the run's [`Site`].
#[derive(Debug)]
pub struct Lab {
    site: Arc<Site>,
    pub kind: NodeKind,
    node: Mutex<Box<dyn Node + Send>>,
    pub fingerprint: [u8; 32],
    /// The fixture catalog; add apps and [`Lab::publish`] to offer more.
    pub catalog: Mutex<TestCatalog>,
}

impl std::ops::Deref for Lab {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

impl Lab {
    /// Everything a run on one nspawn node needs, from scratch.
    pub fn start() -> Result<Self> {
        Self::on(Site::start()?, NodeKind::Nspawn, 1)
    }

    /// Boots node number `index` of `kind` in `site`, installs the `.deb`,
    /// sets the password, publishes the fixture catalog and pairs with it.
    pub fn on(site: Arc<Site>, kind: NodeKind, index: usize) -> Result<Self> {
        let node: Box<dyn Node + Send> = match kind {
            NodeKind::Nspawn => Box::new(NspawnNode::boot_new(&site.net, rootfs()?, index)?),
            NodeKind::Vm => {
                let vm = VmNode::boot_new(&site.net, vm_image()?, index, &VM_PORTS)?;
                // Manifests name the registry as nodes on the bridge see it;
                // a VM on user networking reaches it as 10.0.2.2.
                vm.copy_in(
                    VM_REGISTRY_MIRROR.as_bytes(),
                    VM_MIRROR_FILE,
                    RunAs::Root,
                    0o644,
                )?;
                Box::new(vm)
            }
        };
        let t = Instant::now();
        install_deb(&node)?;
        eprintln!(
            "figure: {}: .deb installed and the daemon up in {:?}",
            node.name(),
            t.elapsed()
        );
        set_node_password(&node, PASSWORD)?;
        let mut catalog =
            TestCatalog::new(&site.net.dir().join(format!("catalog-{}", node.name())))?;
        for app in CATALOG {
            let m = fixtures::load_manifest(app, &site.images, REGISTRY)?;
            catalog.add(app, &kind.adapt(&m.yaml));
        }
        catalog.publish(&node, FIXTURE_CATALOG)?;
        // Pairing as a person does it: the node prints its fingerprint, the
        // client sees the one the node presents, and they must agree.
        let printed = pairing_fingerprint(&node)?;
        let address = node.port(API_PORT).to_string();
        let presented = site
            .net
            .enter(|| runtime().block_on(archipelago_client::fetch_fingerprint(&address)))??;
        ensure!(
            printed == presented,
            "`archipelagod pairing` printed another fingerprint than the node presents"
        );
        Ok(Self {
            site,
            kind,
            node: Mutex::new(node),
            fingerprint: presented,
            catalog: Mutex::new(catalog),
        })
    }

    /// The run's shared part, for another node in it.
    pub fn site(&self) -> Arc<Site> {
        Arc::clone(&self.site)
    }

    /// Adds (or replaces) apps in the fixture catalog, signs it again and
    /// publishes it on the node.
    pub fn publish(&self, apps: &[(&str, &str)]) -> Result<()> {
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, yaml) in apps {
            catalog.add(id, &self.kind.adapt(yaml));
        }
        catalog.publish(&*self.node(), FIXTURE_CATALOG)?;
        Ok(())
    }

    /// The node (a short-lived guard: never hold it across an await).
    pub fn node(&self) -> MutexGuard<'_, Box<dyn Node + Send>> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The daemon's log on the node.
    pub fn daemon_log(&self) -> String {
        self.node()
            .exec(
                RunAs::Root,
                &[
                    "journalctl",
                    "--no-pager",
                    "-o",
                    "cat",
                    "-u",
                    "archipelagod",
                ],
            )
            .map(|o| o.stdout)
            .unwrap_or_default()
    }

    /// The node's journal of this boot (system and user units, the apps'
    /// containers included), its last `lines`.
    pub fn journal(&self, lines: usize) -> String {
        self.node()
            .exec(
                RunAs::Root,
                &["journalctl", "--no-pager", "-b", "-n", &lines.to_string()],
            )
            .map(|o| o.stdout)
            .unwrap_or_default()
    }

    /// A client pinned to the node's certificate, not logged in.
    pub fn client(&self) -> Result<Client> {
        let address = self.node().port(API_PORT).to_string();
        Ok(Client::new(&address, self.fingerprint)?)
    }

    /// Runs `fut` to its end on a thread inside the run's network
    /// namespace, on a runtime of its own: the client's connections are
    /// made from there.
    pub fn block_on<T: Send>(&self, fut: impl Future<Output = T> + Send) -> Result<T> {
        Ok(self.net.enter(|| runtime().block_on(fut))?)
    }

    /// A client logged in with the node's password (call it inside
    /// [`Lab::block_on`]).
    pub async fn api(&self) -> Result<Api<'_>> {
        let client = self.client()?;
        client.login(PASSWORD).await?;
        Ok(Api { lab: self, client })
    }
}

impl Lab {
    /// Publishes fixture app `app` as version `version`: its image built
    /// again as that version (another digest, see
    /// [`fixtures::build_version`]) and pushed to the registry, its manifest
    /// with the new version and image, then changed by `edit` (to break
    /// it, say), signed into the fixture catalog and copied to the node.
    pub fn publish_version(
        &self,
        app: &str,
        image: &str,
        version: &str,
        edit: impl FnOnce(String) -> Result<String>,
    ) -> Result<BuiltImage> {
        let built = fixtures::build_version(&self.net.dir().join("images"), image, version)?;
        self.registry.push_oci(
            &built.oci_dir,
            &built.tag,
            &format!("{}/{image}", fixtures::NAMESPACE),
        )?;
        let base = fixtures::load_manifest(app, &self.images, REGISTRY)?;
        let old = self
            .images
            .iter()
            .find(|i| i.name == image)
            .with_context(|| format!("no image {image}"))?
            .reference(REGISTRY);
        ensure!(base.yaml.contains(&old), "{app} does not run {image}");
        let yaml = base
            .yaml
            .replace(
                &format!("version: {}", base.manifest.version),
                &format!("version: {version}"),
            )
            .replace(&old, &built.reference(REGISTRY));
        self.publish(&[(app, &edit(yaml)?)])?;
        Ok(built)
    }
}

/// Another node in the lab's network, with the daemon from the `.deb` and
/// the same password, for what needs two nodes (a backup restored on
/// another node). It has no catalog: a restore brings its own manifest.
#[derive(Debug)]
pub struct Peer {
    node: Mutex<NspawnNode>,
    pub fingerprint: [u8; 32],
}

impl Lab {
    /// Boots node number `index` (2, 3, …) in the lab's network and pairs
    /// with it as with the first.
    pub fn boot_peer(&self, index: usize) -> Result<Peer> {
        let node = NspawnNode::boot_new(&self.site.net, rootfs()?, index)?;
        install_deb(&node)?;
        set_node_password(&node, PASSWORD)?;
        let printed = pairing_fingerprint(&node)?;
        let address = node.port(API_PORT).to_string();
        let presented = self
            .net
            .enter(|| runtime().block_on(archipelago_client::fetch_fingerprint(&address)))??;
        ensure!(
            printed == presented,
            "`archipelagod pairing` printed another fingerprint than node {index} presents"
        );
        Ok(Peer {
            node: Mutex::new(node),
            fingerprint: presented,
        })
    }
}

impl Peer {
    /// The node (a short-lived guard: never hold it across an await).
    pub fn node(&self) -> MutexGuard<'_, NspawnNode> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client logged in to the peer (call it inside [`Lab::block_on`]).
    pub async fn client(&self) -> Result<Client> {
        let address = self.node().port(API_PORT).to_string();
        let client = Client::new(&address, self.fingerprint)?;
        client.login(PASSWORD).await?;
        Ok(client)
    }
}

/// A current-thread runtime for one thread inside the namespace.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::abort()
        }
    }
}

/// The API of the lab's node, logged in.
#[derive(Debug)]
pub struct Api<'a> {
    pub lab: &'a Lab,
    pub client: Client,
}

impl Api<'_> {
    /// Installs `app`, streaming its progress; the phases seen and the
    /// status.
    pub async fn install(&self, app: &str) -> Result<(Vec<Phase>, PackageStatus), ClientError> {
        let mut phases = Vec::new();
        let status = self
            .client
            .call_streaming::<PackageInstall>(AppParams { id: app.into() }, |e| {
                if let StreamEvent::Progress(p) = e {
                    if phases.last() != Some(&p.phase) {
                        phases.push(p.phase);
                    }
                }
            })
            .await?;
        Ok((phases, status))
    }

    pub async fn uninstall(&self, app: &str, keep_data: bool) -> Result<methods::UninstallResult> {
        Ok(self
            .client
            .call::<methods::PackageUninstall>(UninstallParams {
                id: app.into(),
                keep_data,
            })
            .await?)
    }

    pub async fn status(&self, app: &str) -> Result<PackageStatus, ClientError> {
        self.client
            .call::<PackageStatusMethod>(AppParams { id: app.into() })
            .await
    }

    /// Waits until the API answers again (after a daemon restart or a
    /// reboot) and `app` is healthy.
    pub async fn wait_healthy(&self, app: &str, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < limit {
            match self.status(app).await {
                Ok(s) if s.health == Health::Healthy => return Ok(start.elapsed()),
                Ok(s) => last = format!("{:?}: {:?}", s.health, s.problem),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{app} not healthy after {limit:?}: {last}")
    }

    /// Waits until the API answers a call at all.
    pub async fn wait_api(&self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            match self.client.call::<PackageList>(methods::Empty {}).await {
                Ok(_) => return Ok(start.elapsed()),
                Err(e) if start.elapsed() > limit => bail!("the API did not come back: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Runs `argv` in the node as the service user; its stdout, or an error.
pub fn user(node: &dyn Node, argv: &[&str]) -> Result<String> {
    let out = node.exec(RunAs::ServiceUser, argv)?;
    ensure!(out.success(), "`{}` failed: {out:?}", argv.join(" "));
    Ok(out.stdout)
}

/// Where podman keeps the files of named volume `name` on `node`.
pub fn volume_dir(node: &dyn Node, name: &str) -> Result<String> {
    let out = user(
        node,
        &[
            "podman",
            "volume",
            "inspect",
            "--format",
            "{{.Mountpoint}}",
            name,
        ],
    )?;
    Ok(out.trim().to_owned())
}

/// Runs `argv` in the node as root; its stdout, or an error.
pub fn root(node: &dyn Node, argv: &[&str]) -> Result<String> {
    let out = node.exec(RunAs::Root, argv)?;
    ensure!(out.success(), "`{}` failed: {out:?}", argv.join(" "));
    Ok(out.stdout)
}

/// `<id> <started at>` of each container of `app`, sorted by name.
pub fn containers(node: &dyn Node, app: &str) -> Result<Vec<String>> {
    let out = user(
        node,
        &[
            "podman",
            "ps",
            "-a",
            "--filter",
            &format!("label=io.archipelago.app={app}"),
            "--format",
            "{{.Names}} {{.ID}} {{.CreatedAt}} {{.State}}",
        ],
    )?;
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    Ok(v)
}

/// Lists, one `<kind> <name>` per line, what of app `$1` the node (the
/// service user's home `$2`) still has: unit files, containers, volumes, networks, its folders, and units
/// systemd still knows. One command for all of it: on a VM node under TCG
/// each command costs seconds.
const LEFTOVERS_SCRIPT: &str = r#"set -e
app=$1
share=$2/.local/share/archipelago
units=$(ls -1 "$2/.config/containers/systemd" 2>/dev/null || true)
for f in $units; do
  case "$f" in "${app}_"*|"$app.network") echo "unit-file $f" ;; esac
done
label="label=io.archipelago.app=$app"
c=$(podman ps -a -q --filter "$label"); for x in $c; do echo "container $x"; done
v=$(podman volume ls -q --filter "$label"); for x in $v; do echo "volume $x"; done
n=$(podman network ls -q --filter "$label"); for x in $n; do echo "network $x"; done
for d in "$share/secrets/$app" "$share/apps/$app" "$share/installed/$app"; do
  if [ -e "$d" ]; then echo "folder $d"; fi
done
u=$(systemctl --user list-units --all --plain --no-legend "${app}_*" "$app-network.service")
printf '%s\n' "$u" | while read -r line; do
  if [ -n "$line" ]; then echo "unit $line"; fi
done
"#;

/// What of `app` is left on the node; empty when nothing is.
pub fn leftovers(node: &dyn Node, app: &str) -> Result<Vec<String>> {
    let out = node.exec(
        RunAs::ServiceUser,
        &["sh", "-c", LEFTOVERS_SCRIPT, "leftovers", app, NODE_HOME],
    )?;
    // Not `user`: its error would quote the whole script.
    ensure!(
        out.success(),
        "looking for what is left of {app} failed (exit {}): {}",
        out.status,
        out.stderr.trim()
    );
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// One cell's outcome.
#[derive(Debug, Clone)]
pub struct Cell {
    pub ok: bool,
    pub took: Duration,
    pub detail: String,
}

/// The app × state table of a run.
#[derive(Debug, Default)]
pub struct Matrix {
    /// Names the node and suite in progress lines (`[vm] …`).
    pub label: String,
    /// In the order cells were first recorded.
    pub states: Vec<String>,
    pub apps: Vec<String>,
    pub cells: BTreeMap<(String, String), Vec<Cell>>,
    /// Shared by the matrices of one gate run: set by the first red cell,
    /// it makes every other matrix stop at its next cell.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Matrix {
    /// A matrix whose progress lines start with `[label]`, stopping when
    /// `stop` is set (and setting it at its own first red cell).
    pub fn labelled(label: &str, stop: Arc<AtomicBool>) -> Self {
        Self {
            label: label.to_owned(),
            stop: Some(stop),
            ..Self::default()
        }
    }

    /// Times `f` as the cell (app, state), records it, and passes its
    /// result on.
    pub async fn cell<T>(
        &mut self,
        app: &str,
        state: &str,
        f: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            bail!("stopped before {app} / {state}: a cell elsewhere failed");
        }
        let tag = if self.label.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.label)
        };
        eprintln!("matrix: {tag}{app} / {state} …");
        let start = Instant::now();
        let result = f.await;
        let took = start.elapsed();
        self.record(
            app,
            state,
            result.is_ok(),
            took,
            match &result {
                Ok(_) => String::new(),
                Err(e) => format!("{e:#}"),
            },
        );
        eprintln!(
            "matrix: {tag}{app} / {state}: {} in {took:.2?}",
            if result.is_ok() { "ok" } else { "FAILED" }
        );
        result.with_context(|| format!("{app} / {state}"))
    }

    /// Records a cell measured elsewhere.
    pub fn record(&mut self, app: &str, state: &str, ok: bool, took: Duration, detail: String) {
        if !self.states.iter().any(|s| s == state) {
            self.states.push(state.to_owned());
        }
        if !self.apps.iter().any(|a| a == app) {
            self.apps.push(app.to_owned());
        }
        self.cells
            .entry((app.to_owned(), state.to_owned()))
            .or_default()
            .push(Cell { ok, took, detail });
        if !ok {
            if let Some(stop) = &self.stop {
                stop.store(true, Ordering::SeqCst);
            }
        }
    }

    /// The table as the gate's report reads it.
    pub fn suite(&self, name: &str, node: &str) -> report::Suite {
        report::Suite {
            name: name.to_owned(),
            node: node.to_owned(),
            states: self.states.clone(),
            apps: self.apps.clone(),
            cells: self
                .cells
                .iter()
                .map(|((app, state), runs)| report::CellRuns {
                    app: app.clone(),
                    state: state.clone(),
                    runs: runs
                        .iter()
                        .map(|c| report::Run {
                            ok: c.ok,
                            secs: c.took.as_secs_f64(),
                            detail: c.detail.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Whether every recorded cell passed.
    pub fn green(&self) -> bool {
        self.cells.values().flatten().all(|c| c.ok)
    }

    /// The table in Markdown: per cell ✔ or ✘, passes/runs and the median
    /// time.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| state |");
        for app in &self.apps {
            let _ = write!(out, " {app} |");
        }
        out.push_str("\n|---|");
        for _ in &self.apps {
            out.push_str("---|");
        }
        out.push('\n');
        for state in &self.states {
            let _ = write!(out, "| {state} |");
            for app in &self.apps {
                match self.cells.get(&(app.clone(), state.clone())) {
                    Some(runs) => {
                        let ok = runs.iter().filter(|c| c.ok).count();
                        let mut times: Vec<Duration> = runs.iter().map(|c| c.took).collect();
                        times.sort();
                        let median = times[times.len() / 2];
                        let mark = if ok == runs.len() { "✔" } else { "✘" };
                        let _ = write!(out, " {mark} {ok}/{} ({median:.1?}) |", runs.len());
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// The failed cells with their reasons.
    pub fn failures(&self) -> Vec<String> {
        self.cells
            .iter()
            .flat_map(|((app, state), runs)| {
                runs.iter()
                    .filter(|c| !c.ok)
                    .map(move |c| format!("{app} / {state}: {}", c.detail))
            })
            .collect()
    }
}

/// How many times the matrix runs (`ARCHY_ITERATIONS`, default 1).
pub fn iterations() -> Result<u32> {
    iterations_or(1)
}

/// `ARCHY_ITERATIONS`, or `default` when it is not set.
pub fn iterations_or(default: u32) -> Result<u32> {
    match std::env::var("ARCHY_ITERATIONS") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| format!("ARCHY_ITERATIONS={v:?} is not a number ≥ 1")),
        Err(_) => Ok(default),
    }
}

/// A suite's run on one lab: what [`run_alone`] and the release gate take.
pub type SuiteFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Runs `suite` on a fresh one-node lab (nspawn), one such run on the
/// machine at a time, and prints its table under `title` with the daemon's
/// log if it stopped. The body of each lifecycle test, which then asserts
/// on the table. Errors when the lab could not be set up or left
/// something behind.
pub fn run_alone(
    title: &str,
    suite: impl for<'a> FnOnce(&'a Lab, &'a mut Matrix) -> SuiteFuture<'a>,
) -> Result<Matrix> {
    let _one = archipelago_harness::testing::serial();
    let mut matrix = Matrix::default();
    let wall = Instant::now();
    {
        let lab = Lab::start()?;
        if let Err(e) = lab.block_on(suite(&lab, &mut matrix))? {
            eprintln!("--- daemon log:\n{}", lab.daemon_log());
            eprintln!("{title} stopped at: {e:#}");
        }
    }
    eprintln!(
        "\n{title}, wall time {:.1?}:\n\n{}",
        wall.elapsed(),
        matrix.markdown()
    );
    for f in matrix.failures() {
        eprintln!("FAILED {f}");
    }
    archipelago_harness::testing::nothing_left()?;
    Ok(matrix)
}

/// Whether an error is the API's `code`.
pub fn is_code(e: &ClientError, code: ErrorCode) -> bool {
    e.code() == Some(code)
}
