//! The level-triggered reconciler (pillar 2): one idempotent pass turns the
//! desired state (installed apps, their manifests and run states) into the
//! current state (secrets, unit files, systemd units, containers). It never
//! looks at what triggered it; a pass over unchanged input writes nothing and
//! asks systemd to change nothing (it only *reads* unit state: one
//! `ListUnitsByNames`, and podman's container listing only when a unit
//! changed state since the last listing, files were written, or the pass is
//! a deep check), and it repairs drift —
//! a unit file edited by hand, a missing or damaged secret, a container
//! publishing other ports than its manifest says, a unit that died.
//!
//! Shaped like a kube-rs controller: [`reconcile`] handles one app against
//! the observed node and returns an [`Action`]; [`error_policy`] turns a
//! failure into one. [`reconcile_pass`] wraps them with the node-wide steps
//! that must happen once per pass (write files, remove orphans, one
//! `Reload`, observe).

use crate::fsutil::{self, FsError, StampCache, TEMP_PREFIX};
use crate::layout::Layout;
use crate::manifest::{self, Manifest, Strictness};
use crate::podman::{ContainerInfo, PodmanApi, PodmanError, PortBinding};
use crate::quadlet::{self, RenderedUnit, UnitKind};
use crate::secrets::{Problem, SecretError, SecretReport, SecretStore};
use crate::state::NodeState;
use crate::systemd::{SystemdError, SystemdManager};
use archipelago_api::{ActiveState, AppId, ErrorCode, RunState, UnitState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The periodic safety net: every app is looked at again at least this often.
pub const REQUEUE_INTERVAL: Duration = Duration::from_secs(30);
/// Sooner, while a unit is on its way up or down.
const REQUEUE_SOON: Duration = Duration::from_secs(5);
/// After a failure.
const REQUEUE_AFTER_ERROR: Duration = Duration::from_secs(10);

/// Every this many passes the file caches are dropped and every file is
/// read and checked in full: about hourly at the 30 s interval. Between
/// deep checks, inotify tells which files changed (see
/// [`StampCache`]); the deep check guards against what it cannot see.
pub const DEEP_CHECK_EVERY: u64 = 120;

/// What the reconciler needs: where things live, the outside systems, and
/// what earlier passes already verified.
#[derive(Debug)]
pub struct Context<S, P> {
    pub layout: Layout,
    pub systemd: S,
    pub podman: P,
    pub secrets: SecretStore,
    /// Reads and writes app data as the containers left it (snapshots,
    /// backups, restores).
    pub data: std::sync::Arc<dyn crate::datatool::DataTool>,
    /// Unit files verified equal to their rendering by an earlier pass.
    unit_stamps: StampCache,
    passes: AtomicU64,
    deep_check_every: u64,
    /// The rendered file names and invalid apps of the last orphan scan
    /// that found the unit folder clean; with all three unchanged since, no
    /// scan is needed.
    clean_scan: Mutex<Option<(BTreeSet<String>, BTreeSet<AppId>)>>,
    /// Unit files changed since systemd last reloaded them. Starts true: a
    /// daemon that died between writing files and reloading left no other
    /// trace, so a new process reloads once.
    reload_pending: AtomicBool,
    /// Apps whose containers must restart to pick up new secret values,
    /// mirrored on disk (see [`Layout::restart_pending_dir`]) so that a
    /// restart a crash interrupted still happens. `None` until loaded.
    restart_pending: Mutex<Option<BTreeSet<AppId>>>,
    /// One pass at a time: a timer and a change may both ask for one.
    pass_lock: tokio::sync::Mutex<()>,
    /// Apps whose files and units passes leave alone while an update,
    /// backup or rollback has them stopped and copies their data (see
    /// [`Context::pause`]).
    paused: Mutex<BTreeMap<AppId, usize>>,
    /// The containers the last full observation listed, with the unit
    /// states seen then. A container only changes through its unit
    /// (Quadlet runs it as the unit's main process), so while no file was
    /// written and every unit is in the same state, a pass reuses this
    /// listing instead of asking podman again (the one slow call of a no-op
    /// pass); deep-check passes always ask.
    containers_seen: Mutex<Option<ContainersSeen>>,
}

/// See [`Context::containers_seen`].
#[derive(Debug)]
struct ContainersSeen {
    units: BTreeMap<String, (ActiveState, String)>,
    containers: HashMap<String, ContainerInfo>,
}

impl<S, P> Context<S, P> {
    pub fn new(layout: Layout, systemd: S, podman: P, secrets: SecretStore) -> Self {
        Self {
            layout,
            systemd,
            podman,
            secrets,
            data: std::sync::Arc::new(crate::datatool::InProcess),
            unit_stamps: StampCache::new(),
            passes: AtomicU64::new(0),
            deep_check_every: DEEP_CHECK_EVERY,
            clean_scan: Mutex::new(None),
            reload_pending: AtomicBool::new(true),
            restart_pending: Mutex::new(None),
            pass_lock: tokio::sync::Mutex::new(()),
            paused: Mutex::new(BTreeMap::new()),
            containers_seen: Mutex::new(None),
        }
    }

    /// True when a unit file or secret that a pass verified may have been
    /// changed since (by the pass itself, or by hand): the daemon loop then
    /// passes again at once, so that drift is repaired within a second.
    pub fn files_changed(&self) -> bool {
        self.unit_stamps.has_news() || self.secrets.has_news()
    }

    /// Forgets that `app` is owed a restart for new secrets (on disk and
    /// in memory): its containers are gone (uninstall).
    pub fn clear_restart_pending(&self, app: &str) -> Result<(), ReconcileError> {
        mark_restart_pending(self, app, false)
    }

    /// Uses `data` to read and write app data.
    #[must_use]
    pub fn with_data_tool(mut self, data: std::sync::Arc<dyn crate::datatool::DataTool>) -> Self {
        self.data = data;
        self
    }

    /// Makes passes leave `apps` alone — no file written, no unit started
    /// or stopped — until the guard is dropped, and waits for a pass in
    /// flight to end: an update, backup or rollback then stops the apps and
    /// copies their data without a pass starting them meanwhile. Pause an
    /// app with the apps that depend on it: starting one of those would
    /// start it too (`Requires=`, `Wants=`). Other apps are reconciled as
    /// usual.
    pub async fn pause(&self, apps: impl IntoIterator<Item = AppId>) -> Paused<'_, S, P> {
        let apps: Vec<AppId> = apps.into_iter().collect();
        {
            let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
            for a in &apps {
                *paused.entry(a.clone()).or_default() += 1;
            }
        }
        drop(self.pass_lock.lock().await);
        Paused { ctx: self, apps }
    }

    /// True when a pause other than the pass's own (`own`, the apps of the
    /// [`Paused`] guard a pass runs for) holds `app`.
    fn is_paused(&self, app: &str, own: &[AppId]) -> bool {
        let held = self
            .paused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(app)
            .copied()
            .unwrap_or(0);
        held > usize::from(own.iter().any(|a| a == app))
    }

    /// Makes the next pass a deep check (files read in full, containers
    /// listed by podman), as after a daemon start.
    pub fn check_deeply_next(&self) {
        self.passes.store(0, Ordering::Relaxed);
    }

    /// Makes every `n`th pass a deep check (the first pass always is).
    #[must_use]
    pub fn with_deep_check_every(mut self, n: u64) -> Self {
        self.deep_check_every = n.max(1);
        self
    }
}

/// Apps paused by [`Context::pause`]; dropping it resumes them.
#[derive(Debug)]
pub struct Paused<'a, S, P> {
    ctx: &'a Context<S, P>,
    apps: Vec<AppId>,
}

impl<S: SystemdManager, P: PodmanApi> Paused<'_, S, P> {
    /// One whole pass, like [`reconcile_latest`], in which the apps this
    /// guard holds are reconciled too (unless another pause also holds
    /// them); they stay paused for every other pass. The holder starts
    /// them this way without a pass of the daemon's loop starting or
    /// stopping them in between (an update's new version, then its
    /// rollback).
    pub async fn reconcile_latest(
        &self,
        latest: impl FnOnce() -> std::sync::Arc<Desired> + Send,
    ) -> (std::sync::Arc<Desired>, Result<PassReport, PassError>) {
        let _one_pass = self.ctx.pass_lock.lock().await;
        let desired = latest();
        let result = pass_locked(&desired, self.ctx, &self.apps).await;
        (desired, result)
    }
}

impl<S, P> Drop for Paused<'_, S, P> {
    fn drop(&mut self) {
        let mut paused = self
            .ctx
            .paused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for a in &self.apps {
            if let Some(n) = paused.get_mut(a) {
                *n -= 1;
                if *n == 0 {
                    paused.remove(a);
                }
            }
        }
    }
}

/// When to look at an app again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Requeue(Duration),
}

/// A failure reconciling one app.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("secrets of {app}: {source}")]
    Secret {
        app: AppId,
        #[source]
        source: SecretError,
    },
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Podman(#[from] PodmanError),
    #[error(
        "unit {unit} is not loaded after a reload: the Quadlet generator rejected it (see `journalctl --user -t quadlet-generator`)"
    )]
    UnitNotLoaded { unit: String },
    #[error(
        "{} is not a plain folder (a symlink or a file took its place): the app is not started until it is removed",
        .path.display()
    )]
    UnsafeDataPath { path: PathBuf },
}

impl ReconcileError {
    /// The stable wire code.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Fs(_) | Self::UnsafeDataPath { .. } => ErrorCode::Io,
            Self::Secret { .. } => ErrorCode::Secret,
            Self::Systemd(_) | Self::UnitNotLoaded { .. } => ErrorCode::Systemd,
            Self::Podman(_) => ErrorCode::Podman,
        }
    }
}

/// One installed app as the reconciler wants it, with its units rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredApp {
    pub manifest: Manifest,
    /// The run state the user asked for.
    pub run: RunState,
    /// The run state it gets: running while a running app depends on it,
    /// since systemd would start it anyway (`Requires=`, `Wants=`) and
    /// stopping it alone would only make the units flap.
    pub effective_run: RunState,
    /// Its Quadlet files, rendered once when the desired state is built, so
    /// that the periodic pass over unchanged input does not render again.
    pub units: Vec<RenderedUnit>,
    /// A hash of each unit's text: the stamp of a file verified against one
    /// rendering never vouches for another.
    unit_tokens: Vec<u64>,
    /// Per container, in manifest order, what the pass compares against.
    pub containers: Vec<PlannedContainer>,
    /// Data folders its bind mounts need.
    pub data_dirs: Vec<PathBuf>,
}

/// One container as the reconciler checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedContainer {
    /// systemd unit, `<app>_<container>.service`.
    pub service: String,
    /// podman container, `<app>_<container>`.
    pub container_name: String,
    /// The ports the manifest publishes, sorted.
    pub ports: Vec<PortBinding>,
    /// Digest of its unit file, as its running container must carry it.
    pub config_digest: String,
}

/// The whole desired state of a node: a pure function of the installed
/// apps, their manifests and run states. Built whenever those change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    apps: BTreeMap<AppId, DesiredApp>,
    /// Dependencies before their dependants.
    order: Vec<AppId>,
    /// Installed apps whose manifest is invalid: their units are left exactly
    /// as they are until the manifest is fixed.
    invalid: BTreeMap<AppId, String>,
}

impl Desired {
    /// Plans the given (already validated) apps.
    pub fn new(apps: impl IntoIterator<Item = (Manifest, RunState)>, layout: &Layout) -> Self {
        let apps = apps
            .into_iter()
            .map(|(m, r)| (m.id.clone(), (m, r)))
            .collect();
        Self::plan(&apps, BTreeMap::new(), layout)
    }

    /// Loads and validates the manifests of every installed app. An app
    /// whose manifest cannot be read or fails validation (alone or with the
    /// other apps) lands in [`invalid`](Self::invalid) with the reason.
    pub fn load(state: &NodeState, strictness: Strictness, layout: &Layout) -> Self {
        let mut apps: BTreeMap<AppId, (Manifest, RunState)> = BTreeMap::new();
        let mut invalid = BTreeMap::new();
        let mut files: BTreeMap<AppId, PathBuf> = BTreeMap::new();
        for (id, app) in &state.apps {
            match manifest::load(&app.manifest, strictness) {
                Ok(m) if &m.id == id => {
                    files.insert(id.clone(), app.manifest.clone());
                    apps.insert(id.clone(), (m, app.run));
                }
                Ok(m) => {
                    invalid.insert(
                        id.clone(),
                        format!(
                            "{}: id is `{}`, but the app is installed as `{id}`",
                            app.manifest.display(),
                            m.id
                        ),
                    );
                }
                Err(e) => {
                    invalid.insert(id.clone(), e.to_string());
                }
            }
        }
        // Removing an app can break the apps that depend on it: repeat.
        loop {
            let pairs: Vec<(&Path, &Manifest)> = apps
                .iter()
                .filter_map(|(id, (m, _))| files.get(id).map(|f| (f.as_path(), m)))
                .collect();
            let Err(errors) = manifest::validate_set(pairs) else {
                break;
            };
            let bad: Vec<(AppId, String)> = errors
                .into_iter()
                .filter_map(|e| {
                    let id = files.iter().find(|(_, f)| **f == e.file)?.0.clone();
                    Some((id, e.to_string()))
                })
                .collect();
            if bad.is_empty() {
                break;
            }
            for (id, reason) in bad {
                apps.remove(&id);
                invalid.insert(id, reason);
            }
        }
        Self::plan(&apps, invalid, layout)
    }

    fn plan(
        apps: &BTreeMap<AppId, (Manifest, RunState)>,
        invalid: BTreeMap<AppId, String>,
        layout: &Layout,
    ) -> Self {
        let order = topological(apps);
        let mut effective: BTreeMap<&AppId, RunState> =
            apps.iter().map(|(id, (_, r))| (id, *r)).collect();
        for id in order.iter().rev() {
            if effective.get(id) != Some(&RunState::Running) {
                continue;
            }
            if let Some((m, _)) = apps.get(id) {
                for dep in &m.dependencies {
                    if let Some((dep_id, _)) = apps.get_key_value(&dep.app) {
                        effective.insert(dep_id, RunState::Running);
                    }
                }
            }
        }
        let planned = apps
            .iter()
            .map(|(id, (m, run))| {
                let effective_run = effective.get(id).copied().unwrap_or(*run);
                let units =
                    quadlet::render_app(m, effective_run, |d| apps.get(d).map(|(m, _)| m), layout);
                let containers = m
                    .containers
                    .iter()
                    .map(|c| {
                        let service = quadlet::container_service(id, &c.name);
                        let config_digest = units
                            .iter()
                            .find(|u| u.service == service)
                            .and_then(|u| u.config_digest.clone())
                            .unwrap_or_default();
                        let mut ports: Vec<PortBinding> = c
                            .ports
                            .iter()
                            .map(|p| PortBinding {
                                host_ip: p.bind,
                                host_port: p.host,
                                container_port: p.container,
                                protocol: p.protocol,
                            })
                            .collect();
                        ports.sort();
                        PlannedContainer {
                            service,
                            container_name: quadlet::container_name(id, &c.name),
                            ports,
                            config_digest,
                        }
                    })
                    .collect();
                let data_dirs = m
                    .containers
                    .iter()
                    .flat_map(|c| &c.volumes)
                    .filter_map(|v| v.path.as_ref())
                    .map(|p| layout.app_data_dir(id).join(p))
                    .collect();
                let unit_tokens = units
                    .iter()
                    .map(|u| {
                        let mut h = DefaultHasher::new();
                        u.contents.hash(&mut h);
                        h.finish()
                    })
                    .collect();
                (
                    id.clone(),
                    DesiredApp {
                        manifest: m.clone(),
                        run: *run,
                        effective_run,
                        units,
                        unit_tokens,
                        containers,
                        data_dirs,
                    },
                )
            })
            .collect();
        Self {
            apps: planned,
            order,
            invalid,
        }
    }

    pub fn apps(&self) -> &BTreeMap<AppId, DesiredApp> {
        &self.apps
    }

    pub fn invalid(&self) -> &BTreeMap<AppId, String> {
        &self.invalid
    }

    /// Apps with every dependency before its dependants.
    fn ordered(&self) -> impl Iterator<Item = (&AppId, &DesiredApp)> {
        self.order
            .iter()
            .filter_map(|id| self.apps.get_key_value(id))
    }
}

/// App ids in an order where every dependency comes before its dependants.
fn topological(apps: &BTreeMap<AppId, (Manifest, RunState)>) -> Vec<AppId> {
    fn visit(
        id: &AppId,
        apps: &BTreeMap<AppId, (Manifest, RunState)>,
        seen: &mut BTreeSet<AppId>,
        out: &mut Vec<AppId>,
    ) {
        if !seen.insert(id.clone()) {
            return;
        }
        if let Some((m, _)) = apps.get(id) {
            for dep in &m.dependencies {
                if apps.contains_key(&dep.app) {
                    visit(&dep.app, apps, seen, out);
                }
            }
            out.push(id.clone());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(apps.len());
    for id in apps.keys() {
        visit(id, apps, &mut seen, &mut out);
    }
    out
}

/// What the pass saw on the node after writing files.
#[derive(Debug, Default)]
pub struct Observed {
    pub units: HashMap<String, UnitState>,
    pub containers: HashMap<String, ContainerInfo>,
}

/// What one app's reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AppChanges {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    /// Why each restart happened.
    pub reasons: Vec<String>,
}

/// The outcome for one app.
#[derive(Debug)]
pub struct AppOutcome {
    pub changes: AppChanges,
    pub result: Result<Action, ReconcileError>,
    pub action: Action,
}

/// Everything one pass did, for logs, metrics, the API and tests.
#[derive(Debug, Default)]
pub struct PassReport {
    /// Unit files written (new or changed).
    pub written: Vec<PathBuf>,
    /// Unit files of removed apps (or removed containers) deleted.
    pub removed: Vec<PathBuf>,
    pub reloaded: bool,
    /// Per app, the secrets generated or repaired (only apps with changes).
    pub secrets: BTreeMap<AppId, SecretReport>,
    pub apps: BTreeMap<AppId, AppOutcome>,
    /// Installed apps left untouched because their manifest is invalid.
    pub invalid: BTreeMap<AppId, String>,
    /// Units of removed apps that were stopped.
    pub orphans_stopped: Vec<String>,
    /// Units of removed apps that could not be stopped (their files stay,
    /// the next pass tries again).
    pub orphan_errors: Vec<String>,
}

impl PassReport {
    /// True when the pass changed anything on the node.
    pub fn changed(&self) -> bool {
        !self.written.is_empty()
            || !self.removed.is_empty()
            || self.reloaded
            || !self.secrets.is_empty()
            || !self.orphans_stopped.is_empty()
            || self
                .apps
                .values()
                .any(|o| o.changes != AppChanges::default())
    }

    /// The soonest any app wants to be looked at again.
    pub fn next_pass_in(&self) -> Duration {
        self.apps
            .values()
            .map(|o| match o.action {
                Action::Requeue(d) => d,
            })
            .min()
            .unwrap_or(REQUEUE_INTERVAL)
    }
}

/// A failure that stops the whole pass (nothing app-specific).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Podman(#[from] PodmanError),
}

/// One whole pass over the node.
pub async fn reconcile_pass<S: SystemdManager, P: PodmanApi>(
    desired: &Desired,
    ctx: &Context<S, P>,
) -> Result<PassReport, PassError> {
    let _one_pass = ctx.pass_lock.lock().await;
    pass_locked(desired, ctx, &[]).await
}

/// One whole pass over the desired state `latest` returns once this pass's
/// turn has come: a pass that waited for another never works from a state
/// older than the one its caller saw.
pub async fn reconcile_latest<S: SystemdManager, P: PodmanApi>(
    ctx: &Context<S, P>,
    latest: impl FnOnce() -> std::sync::Arc<Desired> + Send,
) -> (std::sync::Arc<Desired>, Result<PassReport, PassError>) {
    let _one_pass = ctx.pass_lock.lock().await;
    let desired = latest();
    let result = pass_locked(&desired, ctx, &[]).await;
    (desired, result)
}

/// The files each app's changes wrote, and why an app's could not be.
type FileOutcomes<'a> = (
    BTreeSet<String>,
    BTreeMap<&'a AppId, FileChanges>,
    BTreeMap<&'a AppId, ReconcileError>,
);

/// Writes every app's secrets and unit files, dependencies first (paused
/// apps' are left as they are); the file names rendered for all apps.
fn sync_all_files<'a, S, P>(
    desired: &'a Desired,
    ctx: &Context<S, P>,
    own: &[AppId],
    report: &mut PassReport,
) -> FileOutcomes<'a> {
    let mut rendered: BTreeSet<String> = BTreeSet::new();
    let mut file_changes: BTreeMap<&AppId, FileChanges> = BTreeMap::new();
    let mut file_errors: BTreeMap<&AppId, ReconcileError> = BTreeMap::new();
    for (id, app) in desired.ordered() {
        // Rendered files are never orphans, even when writing them failed.
        rendered.extend(app.units.iter().map(|u| u.file_name.clone()));
        if ctx.is_paused(id, own) {
            continue;
        }
        match sync_files(app, desired, ctx, report) {
            Ok(c) => {
                file_changes.insert(id, c);
            }
            Err(e) => {
                file_errors.insert(id, e);
            }
        }
    }
    (rendered, file_changes, file_errors)
}

/// One pass, the pass lock held; apps paused by anyone but `own` (see
/// [`Context::is_paused`]) are left alone.
async fn pass_locked<S: SystemdManager, P: PodmanApi>(
    desired: &Desired,
    ctx: &Context<S, P>,
    own: &[AppId],
) -> Result<PassReport, PassError> {
    let mut report = PassReport {
        invalid: desired.invalid.clone(),
        ..PassReport::default()
    };
    let deep = ctx.passes.fetch_add(1, Ordering::Relaxed) % ctx.deep_check_every == 0;
    if deep {
        ctx.unit_stamps.clear();
        ctx.secrets.deep_check_next();
    }
    ctx.unit_stamps.refresh();
    let units_dir = &ctx.layout.units_dir;
    if !units_dir.is_dir() {
        fsutil::ensure_dir(units_dir, 0o755)?;
    }

    // 1. Secrets and unit files, dependencies first.
    let (rendered, file_changes, mut file_errors) = sync_all_files(desired, ctx, own, &mut report);

    // 2. Units of apps that are no longer installed.
    remove_orphans(desired, &rendered, ctx, &mut report).await?;

    // 3. One reload for everything written or removed (or written by a
    //    pass that never got to its reload).
    if !report.written.is_empty() || !report.removed.is_empty() {
        ctx.reload_pending.store(true, Ordering::SeqCst);
    }
    if ctx.reload_pending.load(Ordering::SeqCst) {
        ctx.systemd.reload().await?;
        ctx.reload_pending.store(false, Ordering::SeqCst);
        report.reloaded = true;
    }

    // 4. Observe, once for all apps.
    let services: Vec<String> = desired
        .apps
        .iter()
        .filter(|(id, _)| !file_errors.contains_key(id))
        .flat_map(|(_, a)| a.containers.iter().map(|c| c.service.clone()))
        .collect();
    let units: HashMap<String, UnitState> = ctx
        .systemd
        .list_units_by_names(&services)
        .await?
        .into_iter()
        .map(|u| (u.name.clone(), u))
        .collect();
    let containers = observe_containers(ctx, &units, deep || report.changed()).await?;
    let observed = Observed { units, containers };

    // 5. Each app's runtime state.
    for (id, app) in desired.ordered() {
        if ctx.is_paused(id, own) {
            continue;
        }
        let mut changes = AppChanges::default();
        let result = match file_errors.remove(id) {
            Some(e) => Err(e),
            None => {
                reconcile(
                    app,
                    file_changes.get(id).unwrap_or(&FileChanges::default()),
                    &observed,
                    ctx,
                    &mut changes,
                )
                .await
            }
        };
        let action = match &result {
            Ok(a) => *a,
            Err(e) => error_policy(id, e, ctx),
        };
        report.apps.insert(
            id.clone(),
            AppOutcome {
                changes,
                result,
                action,
            },
        );
    }
    if report
        .apps
        .values()
        .any(|o| o.changes != AppChanges::default() || o.result.is_err())
    {
        // Containers changed, or may have: the next pass looks again.
        *ctx.containers_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
    if report.changed() {
        tracing::info!(
            written = report.written.len(),
            removed = report.removed.len(),
            reloaded = report.reloaded,
            "reconcile pass changed the node"
        );
    }
    Ok(report)
}

/// Our containers: listed by podman when `fresh` is asked for (a deep pass,
/// files written), when no listing is kept, or when any unit is in another
/// state than at the kept listing; else the kept listing.
async fn observe_containers<S, P: PodmanApi>(
    ctx: &Context<S, P>,
    units: &HashMap<String, UnitState>,
    fresh: bool,
) -> Result<HashMap<String, ContainerInfo>, PodmanError> {
    let now: BTreeMap<String, (ActiveState, String)> = units
        .iter()
        .map(|(n, u)| (n.clone(), (u.active_state, u.sub_state.clone())))
        .collect();
    if !fresh {
        let seen = ctx
            .containers_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(seen) = seen.as_ref().filter(|s| s.units == now) {
            return Ok(seen.containers.clone());
        }
    }
    let containers: HashMap<String, ContainerInfo> = ctx
        .podman
        .list_containers()
        .await?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    *ctx.containers_seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(ContainersSeen {
        units: now,
        containers: containers.clone(),
    });
    Ok(containers)
}

/// What one app's files changed in this pass, as far as its running
/// containers are concerned.
#[derive(Debug, Default)]
pub struct FileChanges {
    /// New secret values, which running containers do not have yet.
    pub secrets: bool,
    /// Container units whose file was written (a hand edit undone, or a new
    /// rendering). The config digest label catches the same even when the
    /// pass that wrote the file never got to the restart.
    pub units: BTreeSet<String>,
}

/// Materialises secrets and writes the app's unit files where they differ.
fn sync_files<S, P>(
    app: &DesiredApp,
    desired: &Desired,
    ctx: &Context<S, P>,
    report: &mut PassReport,
) -> Result<FileChanges, ReconcileError> {
    let m = &app.manifest;
    let secrets = ctx
        .secrets
        .materialise(m)
        .map_err(|source| ReconcileError::Secret {
            app: m.id.clone(),
            source,
        })?;
    // A container holds the values it started with (an env file is read at
    // start, a bind-mounted file keeps its old inode after our rename), so a
    // new value means a restart; a mode or owner fix keeps the value.
    let mut written = FileChanges {
        secrets: secrets.generated.len()
            + secrets.env_files_written.len()
            + secrets.env_files_removed.len()
            > 0
            || secrets.repaired.iter().any(|r| {
                !matches!(
                    r.problem,
                    Problem::WrongMode(_) | Problem::WrongOwner(_) | Problem::StaleTemp
                )
            }),
        units: BTreeSet::new(),
    };
    if written.secrets {
        // Remembered on disk before anything restarts: this app, and the
        // apps that read its exported secrets, must restart even if this
        // pass or this process does not get that far.
        let mut apps = vec![m.id.clone()];
        apps.extend(
            desired
                .apps
                .iter()
                .filter(|(_, d)| {
                    d.manifest
                        .containers
                        .iter()
                        .flat_map(|c| &c.secrets)
                        .any(|u| u.from.as_deref() == Some(m.id.as_str()))
                })
                .map(|(id, _)| id.clone()),
        );
        for id in apps {
            mark_restart_pending(ctx, &id, true)?;
        }
    }
    if secrets.changed() {
        report.secrets.insert(m.id.clone(), secrets);
    }
    for dir in &app.data_dirs {
        if !ctx.unit_stamps.unchanged(dir) {
            ensure_data_dir(&ctx.layout.app_data_dir(&m.id), dir)?;
            ctx.unit_stamps.record(dir);
        }
    }
    for (u, token) in app.units.iter().zip(&app.unit_tokens) {
        let path = ctx.layout.units_dir.join(&u.file_name);
        if ctx.unit_stamps.unchanged_as(&path, *token) {
            continue;
        }
        if fsutil::read_optional(&path)?.as_deref() == Some(u.contents.as_bytes()) {
            ctx.unit_stamps.record_as(&path, *token);
        } else {
            ctx.unit_stamps.forget(&path);
            fsutil::atomic_write(&path, u.contents.as_bytes(), 0o644)?;
            tracing::info!(app = %m.id, file = %u.file_name, "wrote unit file");
            report.written.push(path);
            if u.kind == UnitKind::Container {
                written.units.insert(u.service.clone());
            }
        }
    }
    Ok(written)
}

/// Stops and deletes units of ours that no installed app renders any more.
/// Files of apps with an invalid manifest and files without our marker are
/// never touched.
async fn remove_orphans<S: SystemdManager, P>(
    desired: &Desired,
    rendered: &BTreeSet<String>,
    ctx: &Context<S, P>,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let dir = &ctx.layout.units_dir;
    {
        let mut clean_scan = ctx
            .clean_scan
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let invalid: BTreeSet<AppId> = desired.invalid.keys().cloned().collect();
        if clean_scan
            .as_ref()
            .is_some_and(|(r, i)| r == rendered && *i == invalid)
            && ctx.unit_stamps.unchanged(dir)
        {
            return Ok(());
        }
        *clean_scan = None;
    }
    let entries = std::fs::read_dir(dir).map_err(|e| FsError::new("list", dir, e))?;
    let mut orphans: Vec<(UnitKind, String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::new("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMP_PREFIX) {
            fsutil::remove_if_exists(&entry.path())?;
            continue;
        }
        if rendered.contains(&name) {
            continue;
        }
        let Some(app) = quadlet::app_of_unit_file(&name) else {
            continue;
        };
        if desired.invalid.contains_key(app) {
            continue;
        }
        let Some(text) = fsutil::read_optional(&entry.path())? else {
            continue;
        };
        if !quadlet::is_managed(&String::from_utf8_lossy(&text)) {
            continue;
        }
        let (kind, service) = match name.rsplit_once('.') {
            Some((stem, "container")) => (UnitKind::Container, format!("{stem}.service")),
            Some((stem, ext @ ("volume" | "network"))) => {
                let kind = if ext == "volume" {
                    UnitKind::Volume
                } else {
                    UnitKind::Network
                };
                (kind, format!("{stem}-{ext}.service"))
            }
            _ => continue,
        };
        orphans.push((kind, service, entry.path()));
    }
    // Containers first, then what they used.
    orphans.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (_, service, path) in orphans {
        match ctx.systemd.stop_unit(&service).await {
            Ok(()) => report.orphans_stopped.push(service),
            Err(SystemdError::NoSuchUnit(_)) => {}
            Err(e) => {
                // Keep its file (removing it would leave a running unit
                // without one) and carry on with the rest of the node.
                tracing::warn!(unit = %service, error = %e, "could not stop a unit of an uninstalled app");
                report.orphan_errors.push(format!("{service}: {e}"));
                continue;
            }
        }
        fsutil::remove_if_exists(&path)?;
        tracing::info!(file = %path.display(), "removed unit file of an uninstalled app");
        report.removed.push(path);
    }
    if report.removed.is_empty() && report.orphan_errors.is_empty() {
        ctx.unit_stamps.record(dir);
        let invalid = desired.invalid.keys().cloned().collect();
        *ctx.clean_scan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((rendered.clone(), invalid));
    } else if !report.removed.is_empty() {
        fsutil::sync_dir(dir)?;
    }
    Ok(())
}

/// Brings one app's units to its run state. Assumes its files are in place
/// and systemd has reloaded them; `written` says what this pass wrote.
pub async fn reconcile<S: SystemdManager, P>(
    app: &DesiredApp,
    written: &FileChanges,
    observed: &Observed,
    ctx: &Context<S, P>,
    changes: &mut AppChanges,
) -> Result<Action, ReconcileError> {
    let run = app.effective_run;
    let mut action = Action::Requeue(REQUEUE_INTERVAL);
    let secrets_pending = written.secrets || restart_pending(ctx, &app.manifest.id)?;
    let mut all_restarted = true;
    for c in &app.containers {
        let unit = &c.service;
        let Some(state) = observed
            .units
            .get(unit)
            .filter(|u| u.load_state == "loaded")
        else {
            return Err(ReconcileError::UnitNotLoaded { unit: unit.clone() });
        };
        match (run, state.active_state) {
            (RunState::Running, ActiveState::Failed) => {
                ctx.systemd.reset_failed_unit(unit).await?;
                ctx.systemd.start_unit(unit).await?;
                changes.reasons.push(format!("{unit} had failed"));
                changes.started.push(unit.clone());
            }
            (
                RunState::Running,
                ActiveState::Inactive | ActiveState::Deactivating | ActiveState::Unknown,
            ) => {
                ctx.systemd.start_unit(unit).await?;
                changes.started.push(unit.clone());
            }
            (RunState::Running, ActiveState::Activating) => {
                action = Action::Requeue(REQUEUE_SOON);
                all_restarted = false;
            }
            (RunState::Running, ActiveState::Active | ActiveState::Reloading) => {
                let reason = if secrets_pending {
                    Some("its secrets changed".to_owned())
                } else if written.units.contains(unit) {
                    Some("its unit file was rewritten".to_owned())
                } else {
                    container_drift(c, observed.containers.get(&c.container_name))
                };
                if let Some(reason) = reason {
                    ctx.systemd.restart_unit(unit).await?;
                    changes.reasons.push(format!("{unit}: {reason}"));
                    changes.restarted.push(unit.clone());
                }
            }
            (
                RunState::Stopped,
                ActiveState::Active | ActiveState::Activating | ActiveState::Reloading,
            ) => {
                ctx.systemd.stop_unit(unit).await?;
                changes.stopped.push(unit.clone());
            }
            (RunState::Stopped, _) => {}
        }
    }
    if secrets_pending && all_restarted {
        mark_restart_pending(ctx, &app.manifest.id, false)?;
    }
    Ok(action)
}

/// Creates the data folder `dir` below the app's data folder `base`, one
/// component at a time, refusing any component that is not a real folder:
/// a container that owns an outer folder could have swapped an inner one
/// for a symlink, and podman would follow it at the next start.
fn ensure_data_dir(base: &Path, dir: &Path) -> Result<(), ReconcileError> {
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    let mut at = base.to_owned();
    fsutil::ensure_dir(&at, 0o700)?;
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => return Err(ReconcileError::UnsafeDataPath { path: at }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fsutil::ensure_dir(&at, 0o700)?,
            Err(e) => return Err(FsError::new("stat", &at, e).into()),
        }
    }
    Ok(())
}

/// Whether `app` still has to restart for new secret values.
fn restart_pending<S, P>(ctx: &Context<S, P>, app: &str) -> Result<bool, ReconcileError> {
    Ok(with_restart_pending(ctx, |set| set.contains(app))?)
}

/// Runs `f` on the apps owed a restart, read from disk the first time.
fn with_restart_pending<S, P, T>(
    ctx: &Context<S, P>,
    f: impl FnOnce(&mut BTreeSet<AppId>) -> T,
) -> Result<T, FsError> {
    let mut pending = ctx
        .restart_pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let set = match &mut *pending {
        Some(set) => set,
        None => pending.insert(load_restart_pending(&ctx.layout)?),
    };
    Ok(f(set))
}

/// Records (on disk first) whether `app` has to restart for new secrets.
fn mark_restart_pending<S, P>(
    ctx: &Context<S, P>,
    app: &str,
    on: bool,
) -> Result<(), ReconcileError> {
    let dir = ctx.layout.restart_pending_dir();
    let marker = dir.join(app);
    if on {
        fsutil::ensure_dir(&dir, 0o700)?;
        fsutil::atomic_write(&marker, b"", 0o600)?;
    } else if fsutil::remove_if_exists(&marker)? {
        fsutil::sync_dir(&dir)?;
    }
    with_restart_pending(ctx, |set| {
        if on {
            set.insert(app.to_owned());
        } else {
            set.remove(app);
        }
    })?;
    Ok(())
}

fn load_restart_pending(layout: &Layout) -> Result<BTreeSet<AppId>, FsError> {
    let dir = layout.restart_pending_dir();
    match std::fs::read_dir(&dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| manifest::is_valid_app_id(n))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(FsError::new("list", dir, e)),
    }
}

/// Why a running container no longer matches its unit file or its
/// manifest's ports, if it does not.
fn container_drift(c: &PlannedContainer, info: Option<&ContainerInfo>) -> Option<String> {
    let Some(info) = info else {
        return Some("its container is missing".to_owned());
    };
    if info.config_digest.as_deref() != Some(c.config_digest.as_str()) {
        return Some("it runs an older version of its unit file".to_owned());
    }
    let same = if info.ports.is_sorted() {
        info.ports == c.ports
    } else {
        let mut have = info.ports.clone();
        have.sort();
        have == c.ports
    };
    (!same).then(|| "its published ports differ from the manifest".to_owned())
}

/// What to do after a failed reconcile of one app: log it (the error says
/// what to do) and look again soon.
pub fn error_policy<S, P>(app: &str, err: &ReconcileError, _ctx: &Context<S, P>) -> Action {
    tracing::warn!(app, code = err.code().as_i32(), error = %err, "reconcile failed");
    Action::Requeue(REQUEUE_AFTER_ERROR)
}
