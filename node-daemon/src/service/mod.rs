//! What the API's methods do on a node: install, start, stop, restart,
//! uninstall, status, logs, stats, the catalog and the node's vital signs.
//!
//! Every change goes the same way (pillar 2): edit the state file, then run
//! a reconcile pass over the new desired state and watch what it did. The
//! operations never start or stop units themselves, except `restart`, which
//! is a request and not a state. The state file has one writer, this
//! service; the daemon loop asks it for the desired state before each pass,
//! and a pass always works from the newest state (see
//! [`crate::reconcile::reconcile_latest`]).
//!
//! Crash safety: an install writes the state only after its images are
//! pulled, so a daemon killed before that leaves images and nothing else; a
//! daemon killed after it finishes the install in its next pass. An
//! uninstall first records the removal in the state ([`Removal`]), so a
//! daemon killed half way finishes removing what it should and keeps what
//! the user asked to keep.
//!
//! One operation per app at a time: a second install of an app that is
//! being installed waits for the first and answers with its outcome.

mod backups;
mod update;

pub use backups::SCHEDULE_TICK;

use crate::api::{Events, Handler};
use crate::catalogs;
use crate::fsutil::{self, FsError};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::manifest::{self, Manifest, Strictness, is_valid_app_id};
use crate::nodeinfo;
use crate::podman::{LogLine, LogStream, PodmanApi, PodmanError, PullEvent};
use crate::quadlet;
use crate::reconcile::{Context, Desired, PassError, PassReport, Paused, reconcile_latest};
use crate::state::{InstalledApp, NodeState, Removal, StateStore};
use crate::systemd::SystemdManager;
use archipelago_api::methods::{
    self as m, AppParams, CatalogApp, ContainerStatsEntry, ContainerStatus, Empty, Health,
    InstallProgress, LogEntry, LogsParams, Method, PackageStatus, Phase, UiLink, UninstallParams,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_api::{ActiveState, ApiError, AppId, ErrorCode, RunState, UnitState};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// How often an operation looks at its units while waiting for health.
const HEALTH_POLL: Duration = Duration::from_millis(250);
/// How long a version started again (a rollback) may keep being restarted
/// by systemd before the wait gives up on it.
const RESTART_PATIENCE: Duration = Duration::from_secs(60);
/// Added to an app's longest start timeout before an operation gives up.
const HEALTH_MARGIN: Duration = Duration::from_secs(10);
/// How long containers without a health check must stay up to count as
/// healthy.
const SETTLE: Duration = Duration::from_secs(3);
/// Log lines quoted in the error of a failed install, per container.
const FAILURE_LOG_LINES: usize = 15;

/// The state file as last read.
#[derive(Debug, Default, PartialEq, Eq)]
enum Seen {
    /// Not read yet.
    #[default]
    Never,
    Missing,
    Bytes(Vec<u8>),
}

impl Seen {
    fn read(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(b) => Ok(Self::Bytes(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::Missing),
            Err(e) => Err(e),
        }
    }
}

/// What the service last read or wrote of the state file.
#[derive(Debug, Default)]
struct Current {
    /// The last good state (`None` until one could be read).
    state: Option<NodeState>,
    desired: Arc<Desired>,
    /// The file's bytes this view was built from.
    seen: Seen,
    /// Why the file could not be used, when it could not.
    error: Option<String>,
}

/// The node's operations, shared by the API server and the daemon loop.
pub struct NodeService<S, P> {
    ctx: Arc<Context<S, P>>,
    strictness: Strictness,
    store: StateStore,
    journal: Arc<dyn Journal>,
    /// One state edit at a time.
    edit: tokio::sync::Mutex<()>,
    current: Mutex<Current>,
    /// One operation per app at a time.
    app_locks: Mutex<HashMap<AppId, Arc<tokio::sync::Mutex<()>>>>,
    started: Instant,
    settle: Duration,
    /// When each app was last looked at for an automatic update.
    update_checks: Mutex<HashMap<AppId, u64>>,
}

impl<S, P> std::fmt::Debug for NodeService<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeService")
            .field("state", &self.store.path())
            .finish_non_exhaustive()
    }
}

/// A failure of an operation, as the client sees it.
fn err(code: ErrorCode, message: impl Into<String>) -> ApiError {
    code.with(message)
}

fn internal(e: &impl std::fmt::Display) -> ApiError {
    err(ErrorCode::Internal, e.to_string())
}

fn fs_error(e: &FsError) -> ApiError {
    err(ErrorCode::Io, e.to_string())
}

impl<S: SystemdManager + 'static, P: PodmanApi + 'static> NodeService<S, P> {
    /// A service over `ctx`, reading the state file at once.
    pub fn new(ctx: Arc<Context<S, P>>, strictness: Strictness, journal: Arc<dyn Journal>) -> Self {
        let store = StateStore::new(ctx.layout.state_file());
        let service = Self {
            ctx,
            strictness,
            store,
            journal,
            edit: tokio::sync::Mutex::new(()),
            current: Mutex::new(Current::default()),
            app_locks: Mutex::new(HashMap::new()),
            started: Instant::now(),
            settle: SETTLE,
            update_checks: Mutex::new(HashMap::new()),
        };
        service.refresh();
        service
    }

    /// How long containers without a health check must stay up to count
    /// as healthy (default [`SETTLE`]).
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// The reconciler's context.
    pub fn context(&self) -> &Context<S, P> {
        &self.ctx
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The desired state every pass works from.
    pub fn desired(&self) -> Arc<Desired> {
        self.current().desired.clone()
    }

    /// The last good state, if any.
    pub fn state(&self) -> Option<NodeState> {
        self.current().state.clone()
    }

    /// Re-reads the state file and the manifests when the file changed
    /// (an operator's edit, a recovered backup); true when it did. A file
    /// that cannot be read leaves the last good state in force.
    pub fn refresh(&self) -> bool {
        let path = self.store.path();
        let seen = match Seen::read(path) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read the state file {}: {e}", path.display());
                return false;
            }
        };
        if self.current().seen == seen {
            return false;
        }
        let loaded = self.store.load();
        let mut current = self.current();
        current.seen = seen;
        match loaded {
            Ok(state) => {
                let desired = Desired::load(&state, self.strictness, &self.ctx.layout);
                tracing::info!(
                    "loaded the state file: {} app(s), {} invalid",
                    state.apps.len(),
                    desired.invalid().len()
                );
                for (app, reason) in desired.invalid() {
                    tracing::warn!("{app}: invalid, left as it is: {reason}");
                }
                current.desired = Arc::new(desired);
                current.state = Some(state);
                current.error = None;
            }
            Err(e) => {
                tracing::error!(
                    "{e}{}",
                    if current.state.is_some() {
                        " (going on with the last good state)"
                    } else {
                        ""
                    }
                );
                current.error = Some(e.to_string());
            }
        }
        true
    }

    /// The corrupt-state error while the state file is unusable: what
    /// would change the node is refused before it begins (an install would
    /// otherwise pull and write for nothing).
    fn check_state_usable(&self) -> Result<(), ApiError> {
        self.refresh();
        match &self.current().error {
            Some(e) => Err(err(ErrorCode::StateCorrupt, e.clone())),
            None => Ok(()),
        }
    }

    /// Edits the state under the edit lock and saves it; the new desired
    /// state is in force when this returns.
    async fn edit_state(
        &self,
        f: impl FnOnce(&mut NodeState) -> Result<(), ApiError>,
    ) -> Result<NodeState, ApiError> {
        let _one_edit = self.edit.lock().await;
        self.check_state_usable()?;
        let mut state = self.current().state.clone().unwrap_or_default();
        f(&mut state)?;
        self.store
            .save(&state)
            .map_err(|e| err(ErrorCode::StateCorrupt, e.to_string()))?;
        let desired = Desired::load(&state, self.strictness, &self.ctx.layout);
        let seen = Seen::read(self.store.path()).unwrap_or_default();
        let mut current = self.current();
        current.seen = seen;
        current.desired = Arc::new(desired);
        current.state = Some(state.clone());
        current.error = None;
        Ok(state)
    }

    /// One reconcile pass over the newest desired state: first the rollback
    /// of any update a dead daemon left half done, then the pass, then
    /// whatever uninstall a dead daemon left half done.
    pub async fn pass(&self) -> Result<PassReport, crate::reconcile::PassError> {
        // An update a dead daemon left half done is rolled back before
        // anything starts: the new version never runs unchecked.
        self.finish_updates().await;
        let (_, result) = reconcile_latest(&self.ctx, || self.desired()).await;
        if result.is_ok() {
            self.finish_removals().await;
        }
        result
    }

    /// Finishes uninstalls recorded in the state that no operation is
    /// working on (a daemon was killed in the middle of one).
    async fn finish_removals(&self) {
        let removing: Vec<(AppId, Removal)> = self
            .state()
            .map(|s| s.removing.into_iter().collect())
            .unwrap_or_default();
        for (id, removal) in removing {
            let lock = self.app_lock(&id);
            let Ok(_busy) = lock.try_lock() else {
                continue;
            };
            tracing::info!(app = %id, "finishing an interrupted uninstall");
            match self.clean_up(&id, removal.keep_data).await {
                Ok(_) => {
                    if let Err(e) = self
                        .edit_state(|s| {
                            s.removing.remove(&id);
                            Ok(())
                        })
                        .await
                    {
                        tracing::warn!(app = %id, "{e}");
                    }
                }
                Err(e) => tracing::warn!(app = %id, "could not finish its uninstall: {e}"),
            }
        }
    }

    fn app_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.app_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    fn layout(&self) -> &Layout {
        &self.ctx.layout
    }

    // ----- installs ---------------------------------------------------

    /// `package.install`.
    pub async fn install(
        &self,
        id: &str,
        events: Option<&Events>,
    ) -> Result<PackageStatus, ApiError> {
        check_id(id)?;
        let lock = self.app_lock(id);
        let (_guard, waited) = match lock.try_lock() {
            Ok(g) => (g, false),
            Err(_) => (lock.lock().await, true),
        };
        let begun = SystemTime::now();
        let progress = Progress::new(id, events);
        progress.send(Phase::Validating, format!("checking {id}"));
        self.check_state_usable()?;
        let state = self.state().unwrap_or_default();
        if state.apps.contains_key(id) {
            return if waited {
                // Another client's install of the same app just finished.
                self.status(id).await
            } else {
                Err(err(
                    ErrorCode::AlreadyInstalled,
                    format!("{id} is already installed (uninstall it first to install it anew)"),
                ))
            };
        }
        let (origin, catalog_text, source) = self.catalog_manifest(id)?;
        let manifest = self.check_install(id, &origin, &catalog_text, &state)?;
        let had_data =
            self.layout().app_data_dir(id).exists() || self.layout().app_secrets_dir(id).exists();

        // Pull while nothing is installed: a failure here leaves nothing.
        let images: BTreeSet<&str> = manifest
            .containers
            .iter()
            .map(|c| c.image.as_str())
            .collect();
        let total = u32::try_from(images.len()).unwrap_or(u32::MAX);
        for (done, image) in (0u32..).zip(&images) {
            self.pull(image, done, total, &progress).await?;
        }

        let text = bound_text(&origin, &catalog_text, &manifest)?;
        self.record_installed(
            id,
            &text,
            manifest.version.clone(),
            source.clone(),
            crate::backup::sha256_hex(catalog_text.as_bytes()),
        )
        .await?;
        tracing::info!(app = id, version = %manifest.version, "installing");
        progress.send(Phase::Starting, format!("starting {id}"));
        let outcome = match self.pass_for(id).await {
            Ok(()) => self.wait_healthy(id, &manifest).await,
            Err(reason) => Err(reason),
        };
        match outcome {
            Ok(()) => {
                progress.send(Phase::Healthy, format!("{id} is healthy"));
                tracing::info!(app = id, "installed and healthy");
                let status = self.status(id).await;
                progress.send(Phase::Done, format!("{id} installed"));
                status
            }
            Err(reason) => Err(self
                .undo_install(id, begun, &manifest, had_data, &reason, &progress)
                .await),
        }
    }

    /// Writes an app's manifest to `installed/<app>/manifest.yml` and
    /// records the app as installed and running (ending a removal recorded
    /// earlier), in one state edit; the desired state is in force when this
    /// returns.
    async fn record_installed(
        &self,
        id: &str,
        text: &[u8],
        version: String,
        source: String,
        catalog_sha256: String,
    ) -> Result<(), ApiError> {
        let had_manifest = self.layout().installed_manifest(id).exists();
        let installed = self.write_installed_manifest(id, text)?;
        let app = InstalledApp {
            manifest: installed.clone(),
            version,
            run: RunState::Running,
            source,
            settings: archipelago_api::methods::AppSettings::default(),
            catalog_sha256,
            previous_images: Vec::new(),
            update: None,
        };
        let edited = self
            .edit_state(|s| {
                s.removing.remove(id);
                s.apps.insert(id.to_owned(), app);
                Ok(())
            })
            .await;
        if edited.is_err() && !had_manifest {
            // Not recorded: nothing of the app may stay behind.
            let _ = std::fs::remove_file(&installed);
            if let Some(dir) = installed.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        edited.map(|_| ())
    }

    /// Writes `installed/<app>/manifest.yml`: what a clean-up reads to know
    /// the app's volumes and units.
    fn write_installed_manifest(&self, id: &str, text: &[u8]) -> Result<PathBuf, ApiError> {
        let installed = self.layout().installed_manifest(id);
        fsutil::ensure_dir(&self.layout().installed_dir, 0o755).map_err(|e| fs_error(&e))?;
        if let Some(dir) = installed.parent() {
            fsutil::ensure_dir(dir, 0o755).map_err(|e| fs_error(&e))?;
        }
        fsutil::atomic_write(&installed, text, 0o644).map_err(|e| fs_error(&e))?;
        Ok(installed)
    }

    /// Undoes a failed install and says why it failed, with the failing
    /// containers' last log lines.
    async fn undo_install(
        &self,
        id: &str,
        since: SystemTime,
        manifest: &Manifest,
        had_data: bool,
        reason: &str,
        progress: &Progress<'_>,
    ) -> ApiError {
        use std::fmt::Write as _;
        let logs = self.failure_logs(id, manifest, since).await;
        progress.send(Phase::RollingBack, format!("{reason}; undoing the install"));
        tracing::warn!(app = id, "install failed, rolling back: {reason}");
        let undo = self.remove(id, had_data, progress).await;
        let mut message = format!("install of {id} failed: {reason}.");
        message.push_str(&logs);
        match undo {
            Ok(_) => message.push_str(if had_data {
                " The install was undone; the data kept from an earlier install is still there."
            } else {
                " Everything the install did was undone."
            }),
            Err(e) => {
                let _ = write!(
                    message,
                    " Undoing the install failed too ({}); the daemon finishes it in its next passes.",
                    e.message
                );
            }
        }
        err(ErrorCode::InstallFailed, message)
    }

    /// Loads and checks the manifest an install would use, alone and with
    /// the apps already installed.
    fn check_install(
        &self,
        id: &str,
        file: &Path,
        text: &str,
        state: &NodeState,
    ) -> Result<Manifest, ApiError> {
        let manifest = manifest::from_yaml(file, text, self.strictness)
            .map_err(|e| err(ErrorCode::InvalidManifest, e.to_string()))?;
        if manifest.id != id {
            return Err(err(
                ErrorCode::InvalidManifest,
                format!(
                    "{}: its id is `{}`, not `{id}`",
                    file.display(),
                    manifest.id
                ),
            ));
        }
        let desired = self.desired();
        let provided = |capability: &str| {
            desired
                .apps()
                .values()
                .any(|d| d.manifest.provides.iter().any(|p| p == capability))
        };
        let missing: Vec<String> = manifest
            .dependencies
            .iter()
            .filter(|d| !d.optional)
            .filter(|d| {
                if d.capability {
                    !provided(&d.app)
                } else {
                    !state.apps.contains_key(&d.app)
                }
            })
            .map(|d| {
                if d.capability {
                    format!("an app that provides {}", d.app)
                } else {
                    d.app.clone()
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(err(
                ErrorCode::MissingDependency,
                format!(
                    "{id} needs {}: install {} first (`archy catalog` lists the apps)",
                    missing.join(", "),
                    plural(&missing, "it", "them")
                ),
            ));
        }
        let mut set: Vec<(&Path, &Manifest)> = state
            .apps
            .iter()
            .filter_map(|(other, a)| {
                desired
                    .apps()
                    .get(other)
                    .map(|d| (a.manifest.as_path(), &d.manifest))
            })
            .collect();
        set.push((file, &manifest));
        // Capability dependencies (`bitcoin-node`) are bound to the
        // installed app that provides them: the installed manifest names
        // app ids only.
        match manifest::bind_set(set) {
            Ok(mut bound) => bound
                .pop()
                .ok_or_else(|| internal(&"an empty set came back")),
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let port = errors
                    .iter()
                    .any(|e| e.fields().iter().any(|f| f.contains("ports")));
                Err(err(
                    if port {
                        ErrorCode::PortConflict
                    } else {
                        ErrorCode::InvalidManifest
                    },
                    text.join("; "),
                ))
            }
        }
    }

    /// Pulls one image unless it is already in the store.
    async fn pull(
        &self,
        image: &str,
        done: u32,
        total: u32,
        progress: &Progress<'_>,
    ) -> Result<(), ApiError> {
        let present = self
            .ctx
            .podman
            .image_exists(image)
            .await
            .map_err(|e| err(ErrorCode::Podman, e.to_string()))?;
        if present {
            progress.pulling(image, done + 1, total, 0, "already on the node".to_owned());
            return Ok(());
        }
        progress.pulling(image, done, total, 0, format!("pulling {image}"));
        let started = Instant::now();
        let mut blobs = 0u32;
        let result = self
            .ctx
            .podman
            .pull(image, |event| match event {
                PullEvent::Blob { digest, seen } => {
                    blobs = u32::try_from(seen).unwrap_or(u32::MAX);
                    let short: String = digest.chars().take(19).collect();
                    progress.pulling(image, done, total, blobs, format!("copying blob {short}"));
                }
                PullEvent::Message(text) => {
                    progress.pulling(image, done, total, blobs, text);
                }
                PullEvent::Done { .. } => {}
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(image, "pulled in {:?}", started.elapsed());
                progress.pulling(image, done + 1, total, blobs, format!("pulled {image}"));
                Ok(())
            }
            Err(e) => {
                let message = match e {
                    PodmanError::PullFailed { message, .. } => message,
                    other => other.to_string(),
                };
                Err(err(
                    ErrorCode::InstallFailed,
                    format!(
                        "could not pull {image}: {message}. {}",
                        pull_advice(&message)
                    ),
                ))
            }
        }
    }

    /// Runs a pass and says why `id` did not reconcile, if it did not.
    async fn pass_for(&self, id: &str) -> Result<(), String> {
        let (_, report) = reconcile_latest(&self.ctx, || self.desired()).await;
        outcome_of(id, report)
    }

    /// Runs a pass in which the apps `held` pauses are reconciled (they
    /// stay paused for the daemon's own passes), and says why `id` did not
    /// reconcile, if it did not.
    async fn pass_for_held(&self, id: &str, held: &Paused<'_, S, P>) -> Result<(), String> {
        let (_, report) = held.reconcile_latest(|| self.desired()).await;
        outcome_of(id, report)
    }

    /// Waits until every container unit of `id` is active (with
    /// `Notify=healthy`, active means healthy; without a health check, it
    /// must stay active for [`SETTLE`]), or one failed or is being
    /// restarted after exiting, or the app's start timeout passed.
    async fn wait_healthy(&self, id: &str, manifest: &Manifest) -> Result<(), String> {
        self.wait_healthy_with(id, manifest, Duration::ZERO).await
    }

    /// [`Self::wait_healthy`] for a version known to work, started again
    /// (a rollback): a unit systemd restarts after a first exit (e.g. its
    /// port not yet released by the version before) fails the wait only
    /// when it is still restarting after [`RESTART_PATIENCE`].
    async fn wait_healthy_again(&self, id: &str, manifest: &Manifest) -> Result<(), String> {
        self.wait_healthy_with(id, manifest, RESTART_PATIENCE).await
    }

    async fn wait_healthy_with(
        &self,
        id: &str,
        manifest: &Manifest,
        patience: Duration,
    ) -> Result<(), String> {
        let timeout = manifest
            .containers
            .iter()
            .map(|c| {
                c.start_timeout.map_or(
                    Duration::from_secs(quadlet::DEFAULT_START_TIMEOUT_SECS),
                    |t| t.0,
                )
            })
            .max()
            .unwrap_or_default()
            + HEALTH_MARGIN;
        let services = container_services(id, manifest);
        // A container without a health check is active as soon as its
        // process runs: it must also stay up for a moment to count.
        let settle = if manifest.containers.iter().all(|c| c.health.is_some()) {
            Duration::ZERO
        } else {
            self.settle
        };
        let start = Instant::now();
        let mut up_since: Option<Instant> = None;
        let mut restarting_since: Option<Instant> = None;
        loop {
            let units = self
                .ctx
                .systemd
                .list_units_by_names(&services)
                .await
                .map_err(|e| e.to_string())?;
            if units.iter().all(|u| u.active_state == ActiveState::Active) {
                restarting_since = None;
                let since = *up_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    return Ok(());
                }
            } else {
                up_since = None;
            }
            if let Some(u) = units.iter().find(|u| u.active_state == ActiveState::Failed) {
                return Err(format!("{} failed", u.name));
            }
            // Counted from the first restart seen, until all are up.
            if let Some(u) = units.iter().find(|u| failing(u)) {
                let since = *restarting_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= patience {
                    return Err(format!("{} exited and is being restarted", u.name));
                }
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "not healthy after {} s ({})",
                    timeout.as_secs(),
                    units
                        .iter()
                        .map(|u| format!("{} {:?}/{}", u.name, u.active_state, u.sub_state))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    /// The last log lines of each container of `id` that is not up, for
    /// the error of a failed install.
    async fn failure_logs(&self, id: &str, manifest: &Manifest, since: SystemTime) -> String {
        use std::fmt::Write as _;
        let services: Vec<(String, String)> = manifest
            .containers
            .iter()
            .map(|c| (c.name.clone(), quadlet::container_service(id, &c.name)))
            .collect();
        let names: Vec<String> = services.iter().map(|(_, s)| s.clone()).collect();
        let units = self
            .ctx
            .systemd
            .list_units_by_names(&names)
            .await
            .unwrap_or_default();
        let mut out = String::new();
        for (container, service) in &services {
            let up = units
                .iter()
                .any(|u| &u.name == service && u.active_state == ActiveState::Active);
            if up {
                continue;
            }
            let lines = self
                .journal
                .last_lines(
                    service,
                    &quadlet::container_name(id, container),
                    Some(since),
                    FAILURE_LOG_LINES,
                )
                .await;
            let exit = match self.ctx.systemd.main_exit(service).await {
                Ok(Some(exit)) => format!(
                    " Container {container} ({service}) {exit}{}.",
                    if !exit.signal && exit.status == 137 {
                        ", the status of a container killed (as one failing its health check is)"
                    } else {
                        ""
                    }
                ),
                Ok(None) | Err(_) => String::new(),
            };
            out.push_str(&exit);
            if lines.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                " Last log lines of container {container} ({service}):\n{}\n",
                collapse_repeats(&lines)
                    .iter()
                    .map(|l| format!("  | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        out
    }

    // ----- uninstalls -------------------------------------------------

    /// `package.uninstall`.
    pub async fn uninstall(
        &self,
        id: &str,
        keep_data: bool,
        events: Option<&Events>,
    ) -> Result<m::UninstallResult, ApiError> {
        check_id(id)?;
        let lock = self.app_lock(id);
        let _guard = lock.lock().await;
        let state = self.state().unwrap_or_default();
        if !state.apps.contains_key(id) && !state.removing.contains_key(id) {
            return Err(err(
                ErrorCode::AppNotInstalled,
                format!("{id} is not installed"),
            ));
        }
        let dependants = self.dependants(id, false);
        if !dependants.is_empty() {
            return Err(err(
                ErrorCode::HasDependants,
                format!(
                    "{} depend{} on {id}: uninstall {} first",
                    dependants.join(", "),
                    plural(&dependants, "s", ""),
                    plural(&dependants, "it", "them")
                ),
            ));
        }
        let progress = Progress::new(id, events);
        let removed = self.remove(id, keep_data, &progress).await?;
        progress.send(Phase::Done, format!("{id} uninstalled"));
        Ok(m::UninstallResult {
            id: id.to_owned(),
            kept_data: keep_data,
            removed,
        })
    }

    /// Takes `id` out of the state, lets a pass stop and delete its units,
    /// then removes what is left of it. The caller holds the app's lock.
    async fn remove(
        &self,
        id: &str,
        keep_data: bool,
        progress: &Progress<'_>,
    ) -> Result<Vec<String>, ApiError> {
        progress.send(Phase::Stopping, format!("stopping {id}"));
        self.edit_state(|s| {
            s.apps.remove(id);
            s.removing.insert(id.to_owned(), Removal { keep_data });
            Ok(())
        })
        .await?;
        let (_, report) = reconcile_latest(&self.ctx, || self.desired()).await;
        let report = report.map_err(|e| err(ErrorCode::Systemd, e.to_string()))?;
        if !report.orphan_errors.is_empty() {
            return Err(err(
                ErrorCode::Systemd,
                format!(
                    "could not stop every unit of {id}: {}; the daemon tries again in its next passes",
                    report.orphan_errors.join("; ")
                ),
            ));
        }
        let mut removed: Vec<String> = report
            .removed
            .iter()
            .filter_map(|p| p.file_name())
            .map(|f| format!("unit {}", f.to_string_lossy()))
            .collect();
        progress.send(Phase::Removing, format!("removing what is left of {id}"));
        removed.extend(self.clean_up(id, keep_data).await?);
        self.edit_state(|s| {
            s.removing.remove(id);
            Ok(())
        })
        .await?;
        tracing::info!(app = id, keep_data, "uninstalled");
        Ok(removed)
    }

    /// Removes the containers, network, and (unless kept) the volumes,
    /// secrets and data of an app whose units are gone. Idempotent.
    async fn clean_up(&self, id: &str, keep_data: bool) -> Result<Vec<String>, ApiError> {
        let podman = |e: PodmanError| err(ErrorCode::Podman, e.to_string());
        let mut removed = Vec::new();
        let containers = self.ctx.podman.list_containers().await.map_err(podman)?;
        for c in containers.iter().filter(|c| c.app == id) {
            if self
                .ctx
                .podman
                .remove_container(&c.name)
                .await
                .map_err(podman)?
            {
                removed.push(format!("container {}", c.name));
            }
        }
        let network = format!("archipelago-{id}");
        if self
            .ctx
            .podman
            .remove_network(&network)
            .await
            .map_err(podman)?
        {
            removed.push(format!("network {network}"));
        }
        let installed = self.layout().installed_manifest(id);
        let manifest = manifest::load(&installed, Strictness::Local).ok();
        // A unit that failed stays in the manager's memory, as not-found
        // and failed, after its file is gone: forget it.
        if let Some(m) = &manifest {
            let mut units: Vec<String> = m
                .containers
                .iter()
                .map(|c| quadlet::container_service(id, &c.name))
                .collect();
            units.extend(
                m.volumes
                    .iter()
                    .map(|v| format!("{id}_{}-volume.service", v.name)),
            );
            units.push(format!("{id}-network.service"));
            for unit in units {
                if self.ctx.systemd.reset_failed_unit(&unit).await.is_ok() {
                    tracing::debug!(unit, "cleared a failed state");
                }
            }
        }
        if !keep_data {
            // The volumes' names come from the manifest the app ran with.
            if let Some(m) = &manifest {
                for v in &m.volumes {
                    let name = format!("{id}_{}", v.name);
                    if self.ctx.podman.remove_volume(&name).await.map_err(podman)? {
                        removed.push(format!("volume {name}"));
                    }
                }
            }
            if self.layout().app_secrets_dir(id).exists() {
                self.ctx
                    .secrets
                    .remove_app(id)
                    .map_err(|e| err(ErrorCode::Secret, e.to_string()))?;
                removed.push("generated secrets".to_owned());
            }
            let data = self.layout().app_data_dir(id);
            match std::fs::remove_dir_all(&data) {
                Ok(()) => removed.push(format!("data {}", data.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(err(
                        ErrorCode::Io,
                        format!(
                            "could not remove the data of {id} at {}: {e} (files written by a container user the daemon cannot delete: remove them with `podman unshare rm -rf {}`)",
                            data.display(),
                            data.display()
                        ),
                    ));
                }
            }
            if let Some(dir) = installed.parent() {
                match std::fs::remove_dir_all(dir) {
                    Ok(()) | Err(_) => {}
                }
            }
        }
        self.ctx
            .clear_restart_pending(id)
            .map_err(|e| err(e.code(), e.to_string()))?;
        Ok(removed)
    }

    // ----- run state --------------------------------------------------

    /// `package.start`.
    pub async fn start(&self, id: &str) -> Result<PackageStatus, ApiError> {
        self.set_run(id, RunState::Running).await
    }

    /// `package.stop`.
    pub async fn stop(&self, id: &str) -> Result<PackageStatus, ApiError> {
        self.set_run(id, RunState::Stopped).await
    }

    async fn set_run(&self, id: &str, run: RunState) -> Result<PackageStatus, ApiError> {
        check_id(id)?;
        let lock = self.app_lock(id);
        let _guard = lock.lock().await;
        let manifest = self.installed(id)?;
        if run == RunState::Stopped {
            let running = self.dependants(id, true);
            if !running.is_empty() {
                return Err(err(
                    ErrorCode::HasDependants,
                    format!(
                        "{} need{} {id} running: stop {} first",
                        running.join(", "),
                        plural(&running, "s", ""),
                        plural(&running, "it", "them")
                    ),
                ));
            }
        }
        self.edit_state(|s| {
            if let Some(app) = s.apps.get_mut(id) {
                app.run = run;
            }
            Ok(())
        })
        .await?;
        let verb = if run == RunState::Running {
            "start"
        } else {
            "stop"
        };
        self.pass_for(id)
            .await
            .map_err(|reason| err(ErrorCode::Systemd, format!("{verb} of {id}: {reason}")))?;
        if run == RunState::Running {
            self.wait_healthy(id, &manifest)
                .await
                .map_err(|reason| err(ErrorCode::Systemd, format!("{verb} of {id}: {reason}")))?;
        }
        self.status(id).await
    }

    /// `package.restart`: restarts each container, dependencies first, and
    /// waits until healthy.
    pub async fn restart(&self, id: &str) -> Result<PackageStatus, ApiError> {
        check_id(id)?;
        let lock = self.app_lock(id);
        let _guard = lock.lock().await;
        let manifest = self.installed(id)?;
        let desired = self.desired();
        if desired.apps().get(id).map(|d| d.effective_run) != Some(RunState::Running) {
            return Err(err(
                ErrorCode::Systemd,
                format!("{id} is stopped: start it instead"),
            ));
        }
        for c in &manifest.containers {
            let unit = quadlet::container_service(id, &c.name);
            self.ctx
                .systemd
                .restart_unit(&unit)
                .await
                .map_err(|e| err(ErrorCode::Systemd, e.to_string()))?;
        }
        self.wait_healthy(id, &manifest)
            .await
            .map_err(|reason| err(ErrorCode::Systemd, format!("restart of {id}: {reason}")))?;
        self.status(id).await
    }

    /// `id` and every installed app that depends on it, directly or not,
    /// optionally or not: starting any of them would start `id` too.
    fn with_dependants(&self, id: &str) -> Vec<AppId> {
        let desired = self.desired();
        let mut out = vec![id.to_owned()];
        let mut i = 0;
        while let Some(current) = out.get(i).cloned() {
            for (other, d) in desired.apps() {
                if !out.contains(other)
                    && d.manifest.dependencies.iter().any(|dep| dep.app == current)
                {
                    out.push(other.clone());
                }
            }
            i += 1;
        }
        out
    }

    /// The installed apps that need `id` (not optionally); with `running`,
    /// only those that run.
    fn dependants(&self, id: &str, running: bool) -> Vec<String> {
        self.desired()
            .apps()
            .iter()
            .filter(|(other, d)| {
                other.as_str() != id
                    && (!running || d.effective_run == RunState::Running)
                    && d.manifest
                        .dependencies
                        .iter()
                        .any(|dep| dep.app == id && !dep.optional)
            })
            .map(|(other, _)| other.clone())
            .collect()
    }

    /// The manifest of an installed app, or why there is none.
    fn installed(&self, id: &str) -> Result<Manifest, ApiError> {
        let desired = self.desired();
        if let Some(d) = desired.apps().get(id) {
            return Ok(d.manifest.clone());
        }
        if let Some(reason) = desired.invalid().get(id) {
            return Err(err(
                ErrorCode::InvalidManifest,
                format!("{id} is installed but its manifest is not valid: {reason}"),
            ));
        }
        Err(err(
            ErrorCode::AppNotInstalled,
            format!("{id} is not installed"),
        ))
    }

    // ----- observation ------------------------------------------------

    /// `package.status`.
    pub async fn status(&self, id: &str) -> Result<PackageStatus, ApiError> {
        check_id(id)?;
        let state = self.state().unwrap_or_default();
        if !state.apps.contains_key(id) {
            return Err(err(
                ErrorCode::AppNotInstalled,
                format!("{id} is not installed"),
            ));
        }
        let mut all = self.statuses(&state, Some(id)).await?;
        all.pop()
            .ok_or_else(|| err(ErrorCode::AppNotInstalled, format!("{id} is not installed")))
    }

    /// `package.list`.
    pub async fn list(&self) -> Result<Vec<PackageStatus>, ApiError> {
        let state = self.state().unwrap_or_default();
        self.statuses(&state, None).await
    }

    /// The status of every installed app (or of `only`), with one call to
    /// systemd.
    async fn statuses(
        &self,
        state: &NodeState,
        only: Option<&str>,
    ) -> Result<Vec<PackageStatus>, ApiError> {
        let desired = self.desired();
        let ids: Vec<&AppId> = state
            .apps
            .keys()
            .filter(|id| only.is_none_or(|o| o == id.as_str()))
            .collect();
        let services: Vec<String> = ids
            .iter()
            .filter_map(|id| desired.apps().get(*id))
            .flat_map(|d| d.containers.iter().map(|c| c.service.clone()))
            .collect();
        let units: HashMap<String, UnitState> = self
            .ctx
            .systemd
            .list_units_by_names(&services)
            .await
            .map_err(|e| err(ErrorCode::Systemd, e.to_string()))?
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        let offered = self.offered_updates(state);
        let last_backups = self.last_backups();
        let now = backups::now();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let installed = &state.apps[id];
            let last_backup = last_backups.get(id).copied();
            let backup_overdue = backups::overdue(&installed.settings, last_backup, now);
            let Some(d) = desired.apps().get(id) else {
                out.push(PackageStatus {
                    id: id.clone(),
                    name: id.clone(),
                    version: installed.version.clone(),
                    run: installed.run,
                    health: Health::Unknown,
                    containers: Vec::new(),
                    ui: None,
                    problem: desired.invalid().get(id).cloned(),
                    source: installed.source.clone(),
                    update_available: offered.get(id).cloned(),
                    last_backup,
                    backup_overdue,
                    settings: installed.settings.clone(),
                });
                continue;
            };
            let containers: Vec<ContainerStatus> = d
                .manifest
                .containers
                .iter()
                .zip(&d.containers)
                .map(|(c, planned)| {
                    let unit = units.get(&planned.service);
                    ContainerStatus {
                        name: c.name.clone(),
                        unit: planned.service.clone(),
                        active_state: unit.map_or(ActiveState::Unknown, |u| u.active_state),
                        sub_state: unit
                            .map_or_else(|| "unknown".to_owned(), |u| u.sub_state.clone()),
                    }
                })
                .collect();
            let (health, problem) = match &installed.update {
                // Between versions: not healthy, whatever the units say.
                Some(u) => (
                    Health::Starting,
                    Some(format!(
                        "updating from {} (rolled back if the new version does not get healthy)",
                        u.from_version
                    )),
                ),
                None => summarise(d.effective_run, &containers),
            };
            out.push(PackageStatus {
                id: id.clone(),
                name: d.manifest.name.clone(),
                version: d.manifest.version.clone(),
                run: installed.run,
                health,
                containers,
                ui: d.manifest.ui.as_ref().map(|u| UiLink {
                    scheme: match u.scheme {
                        manifest::UiScheme::Http => "http".to_owned(),
                        manifest::UiScheme::Https => "https".to_owned(),
                    },
                    port: u.port,
                    path: u.path.clone(),
                }),
                problem,
                source: installed.source.clone(),
                update_available: offered.get(id).cloned(),
                last_backup,
                backup_overdue,
                settings: installed.settings.clone(),
            });
        }
        Ok(out)
    }

    /// `package.logs`.
    pub async fn logs(
        &self,
        p: &LogsParams,
        events: Option<&Events>,
    ) -> Result<m::LogsResult, ApiError> {
        check_id(&p.id)?;
        let manifest = self.installed(&p.id)?;
        if let Some(c) = &p.container {
            if !manifest.containers.iter().any(|x| &x.name == c) {
                return Err(err(
                    ErrorCode::InvalidParams,
                    format!(
                        "{} has no container `{c}` (it has: {})",
                        p.id,
                        manifest
                            .containers
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let lines = usize::try_from(p.lines.min(LogsParams::MAX_LINES)).unwrap_or(100);
        let containers: Vec<&str> = manifest
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| p.container.as_deref().is_none_or(|want| want == *c))
            .collect();
        if let (true, Some(events)) = (p.follow, events) {
            self.follow(&p.id, &containers, lines, events).await;
            return Ok(m::LogsResult { lines: Vec::new() });
        }
        let mut out = Vec::new();
        for c in containers {
            let name = quadlet::container_name(&p.id, c);
            match self.ctx.podman.logs(&name, lines).await {
                Ok(got) => out.extend(got.into_iter().map(|l| entry(c, l))),
                Err(PodmanError::NotFound(_)) => {
                    // Stopped: podman removed the container, the journal
                    // kept its output.
                    let unit = quadlet::container_service(&p.id, c);
                    let lines = self.journal.last_lines(&unit, &name, None, lines).await;
                    out.extend(lines.into_iter().map(|text| LogEntry {
                        container: c.to_owned(),
                        stream: "journal".to_owned(),
                        text,
                    }));
                }
                Err(e) => return Err(err(ErrorCode::Podman, e.to_string())),
            }
        }
        Ok(m::LogsResult { lines: out })
    }

    /// Streams the containers' logs until every one ends or the client
    /// goes away.
    async fn follow(&self, id: &str, containers: &[&str], lines: usize, events: &Events) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, LogLine)>(256);
        let mut tasks = Vec::new();
        for c in containers {
            let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<LogLine>(256);
            let name = quadlet::container_name(id, c);
            let tx = tx.clone();
            let c = (*c).to_owned();
            tasks.push(async move {
                let forward = async {
                    while let Some(l) = line_rx.recv().await {
                        if tx.send((c.clone(), l)).await.is_err() {
                            break;
                        }
                    }
                };
                let (result, ()) =
                    tokio::join!(self.ctx.podman.follow_logs(&name, lines, line_tx), forward);
                if let Err(e) = result {
                    tracing::debug!(container = %name, "log follow ended: {e}");
                }
            });
        }
        drop(tx);
        let all = futures_lite::future::zip(
            async {
                for t in tasks {
                    t.await;
                }
            },
            async {
                loop {
                    tokio::select! {
                        got = rx.recv() => {
                            let Some((c, l)) = got else { break };
                            if events.send(StreamEvent::Log(entry(&c, l))).await.is_err() {
                                break;
                            }
                        }
                        () = events.closed() => break,
                    }
                }
            },
        );
        // The followers run concurrently only if polled together; a closed
        // client ends the forwarding, and dropping `all` ends the rest.
        tokio::select! {
            _ = all => {}
            () = events.closed() => {}
        }
    }

    /// `package.stats`.
    pub async fn stats(&self, id: &str) -> Result<m::StatsResult, ApiError> {
        check_id(id)?;
        let manifest = self.installed(id)?;
        let mut out = Vec::new();
        for c in &manifest.containers {
            let name = quadlet::container_name(id, &c.name);
            match self.ctx.podman.stats(&name).await {
                Ok(s) => out.push(ContainerStatsEntry {
                    container: c.name.clone(),
                    cpu_percent: s.cpu_percent,
                    memory_bytes: s.mem_usage_bytes,
                    memory_limit_bytes: s.mem_limit_bytes,
                }),
                Err(PodmanError::NotFound(_)) => {}
                Err(e) => return Err(err(ErrorCode::Podman, e.to_string())),
            }
        }
        Ok(m::StatsResult { containers: out })
    }

    /// An app's manifest from the first verified catalog that has it:
    /// (where it was read, its text, the catalog's name). The text is the
    /// one whose digest matched: never read the file again.
    fn catalog_manifest(&self, id: &str) -> Result<(PathBuf, String, String), ApiError> {
        let sources = catalogs::open_all(self.layout());
        let Some(found) = catalogs::find(&sources, id) else {
            let refused = catalogs::refusals(&sources);
            return Err(if refused.is_empty() {
                err(
                    ErrorCode::NotInCatalog,
                    format!(
                        "there is no app `{id}` in this node's catalogs ({}); `archy catalog` lists the apps they have",
                        sources
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            } else {
                err(
                    ErrorCode::CatalogUntrusted,
                    format!("no verified catalog has `{id}`: {}", refused.join("; ")),
                )
            });
        };
        let untrusted = |e: archipelago_catalog::CatalogError| {
            err(
                ErrorCode::CatalogUntrusted,
                format!("catalog `{}`: {e}", found.source.name),
            )
        };
        let bytes = found.catalog.manifest(found.entry).map_err(untrusted)?;
        let origin = found.catalog.manifest_path(found.entry);
        let text = String::from_utf8(bytes).map_err(|_| {
            err(
                ErrorCode::InvalidManifest,
                format!("{}: not UTF-8 text", origin.display()),
            )
        })?;
        Ok((origin, text, found.source.name.clone()))
    }

    /// `catalog.list`: the apps of every verified catalog (the first
    /// catalog to offer an id wins), with what is installed, and each
    /// catalog's verdict.
    pub fn catalog(&self) -> m::CatalogListResult {
        let sources = catalogs::open_all(self.layout());
        let state = self.state().unwrap_or_default();
        let mut apps: Vec<CatalogApp> = Vec::new();
        let mut out_sources = Vec::new();
        for source in &sources {
            let mut count = 0u32;
            if let Ok(catalog) = &source.catalog {
                for entry in &catalog.file().apps {
                    if apps.iter().any(|a| a.id == entry.id) {
                        tracing::warn!(
                            "catalog `{}` offers {}, which an earlier catalog offers too: left out",
                            source.name,
                            entry.id
                        );
                        continue;
                    }
                    match self.catalog_app(source, catalog, entry, &state) {
                        Ok(app) => {
                            apps.push(app);
                            count += 1;
                        }
                        Err(e) => {
                            tracing::warn!("catalog `{}`: {} left out: {e}", source.name, entry.id);
                        }
                    }
                }
            }
            out_sources.push(m::CatalogSource {
                name: source.name.clone(),
                location: source.location.clone(),
                key_id: source.key_id(),
                official: source.official,
                apps: count,
                error: source.catalog.as_ref().err().cloned(),
            });
        }
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        m::CatalogListResult {
            apps,
            sources: out_sources,
        }
    }

    /// One catalog entry as the marketplace shows it; its manifest must
    /// match its digest and validate.
    fn catalog_app(
        &self,
        source: &catalogs::Source,
        catalog: &archipelago_catalog::SignedCatalog,
        entry: &archipelago_catalog::CatalogEntry,
        state: &NodeState,
    ) -> Result<CatalogApp, String> {
        let bytes = catalog.manifest(entry).map_err(|e| e.to_string())?;
        let path = catalog.manifest_path(entry);
        let m = manifest::from_yaml(&path, &String::from_utf8_lossy(&bytes), self.strictness)
            .map_err(|e| e.to_string())?;
        if m.id != entry.id {
            return Err(format!(
                "{} has id `{}`, the catalog says `{}`",
                path.display(),
                m.id,
                entry.id
            ));
        }
        Ok(CatalogApp {
            installed: state.apps.get(&entry.id).map(|a| a.version.clone()),
            id: entry.id.clone(),
            name: entry.name.clone(),
            version: m.version.clone(),
            description: entry.description.clone(),
            short_description: entry.short_description.clone(),
            category: entry.category.clone(),
            has_icon: entry.icon.is_some(),
            dependencies: m
                .dependencies
                .iter()
                .filter(|d| !d.optional)
                .map(|d| d.app.clone())
                .collect(),
            source: source.name.clone(),
            upstream: entry.upstream.clone(),
            update_available: state
                .apps
                .get(&entry.id)
                .is_some_and(|a| update::offers_update(a, &entry.manifest_sha256, &m.version)),
        })
    }

    /// `catalog.icon`: an app's icon, checked against its signed digest.
    pub fn icon(&self, id: &str) -> Result<m::CatalogIconResult, ApiError> {
        use base64::Engine as _;
        check_id(id)?;
        let sources = catalogs::open_all(self.layout());
        let Some(found) = catalogs::find(&sources, id) else {
            return Err(err(
                ErrorCode::NotInCatalog,
                format!("no verified catalog has `{id}`"),
            ));
        };
        let icon = found.catalog.icon(found.entry).map_err(|e| {
            err(
                ErrorCode::CatalogUntrusted,
                format!("catalog `{}`: {e}", found.source.name),
            )
        })?;
        let Some(bytes) = icon else {
            return Err(err(
                ErrorCode::NotInCatalog,
                format!("`{id}` has no icon in catalog `{}`", found.source.name),
            ));
        };
        Ok(m::CatalogIconResult {
            media_type: "image/png".to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }

    /// `node.info`.
    pub async fn info(&self) -> Result<m::NodeInfoResult, ApiError> {
        let apps = self.list().await.unwrap_or_default();
        let count = |f: &dyn Fn(&PackageStatus) -> bool| {
            u32::try_from(apps.iter().filter(|a| f(a)).count()).unwrap_or(u32::MAX)
        };
        Ok(m::NodeInfoResult {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            hostname: crate::api::host::hostname().unwrap_or_default(),
            uptime_secs: nodeinfo::uptime(),
            disk: nodeinfo::disk(&self.layout().data_root),
            memory: nodeinfo::memory(),
            cpu: nodeinfo::cpu(),
            apps_installed: count(&|_| true),
            apps_running: count(&|a| a.health == Health::Healthy),
            apps_failed: count(&|a| a.health == Health::Failed),
        })
    }

    /// How long this service has been up.
    pub fn running_for(&self) -> Duration {
        self.started.elapsed()
    }
}

fn entry(container: &str, l: LogLine) -> LogEntry {
    LogEntry {
        container: container.to_owned(),
        stream: match l.stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
        .to_owned(),
        text: l.text,
    }
}

/// Lines with runs of the same line written once, with their count: a
/// container that restarts prints the same complaint each time.
fn collapse_repeats(lines: &[String]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for l in lines {
        match out.last_mut() {
            Some((last, n)) if last == l => *n += 1,
            _ => out.push((l.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(l, n)| if n > 1 { format!("{l} (×{n})") } else { l })
        .collect()
}

/// The manifest an app is installed with: the catalog's text when binding
/// changed nothing, else the bound manifest written out, so that the
/// installed copy names the provider the app was bound to.
fn bound_text(catalog_file: &Path, text: &str, bound: &Manifest) -> Result<Vec<u8>, ApiError> {
    let original = manifest::parse(catalog_file, text)
        .map_err(|e| err(ErrorCode::InvalidManifest, e.to_string()))?;
    if &original == bound {
        return Ok(text.as_bytes().to_vec());
    }
    let yaml = serde_yaml::to_string(bound).map_err(|e| internal(&e))?;
    Ok(format!(
        "# {}: installed with its capability dependencies bound to the apps providing them\n{yaml}",
        catalog_file.display()
    )
    .into_bytes())
}

/// `one` for a single item, else `many`.
fn plural<'a>(items: &[String], one: &'a str, many: &'a str) -> &'a str {
    if items.len() == 1 { one } else { many }
}

/// A unit that is down and will not come up by itself soon.
/// What to do about a failed pull, from podman's message (the update
/// path swaps the first sentence).
fn pull_advice(message: &str) -> &'static str {
    if message.contains("no space left on device") {
        "Nothing was installed: free space on the node (podman needs room in /var/tmp and in its image store) and try again"
    } else {
        "Nothing was installed: check that the node reaches its registry and try again"
    }
}

/// The service unit of each container of app `id`.
fn container_services(id: &str, m: &Manifest) -> Vec<String> {
    m.containers
        .iter()
        .map(|c| quadlet::container_service(id, &c.name))
        .collect()
}

/// Why `id` did not reconcile in a pass, if it did not.
fn outcome_of(id: &str, report: Result<PassReport, PassError>) -> Result<(), String> {
    let report = report.map_err(|e| e.to_string())?;
    if let Some(reason) = report.invalid.get(id) {
        return Err(format!("its manifest is not valid: {reason}"));
    }
    match report.apps.get(id).map(|o| &o.result) {
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(_)) => Ok(()),
        None => Err("the reconciler did not see it".to_owned()),
    }
}

fn failing(u: &UnitState) -> bool {
    u.active_state == ActiveState::Failed || u.sub_state == "auto-restart"
}

/// An app's health from its containers' units and the run state it gets.
pub fn summarise(run: RunState, containers: &[ContainerStatus]) -> (Health, Option<String>) {
    let state = |c: &ContainerStatus| c.active_state;
    if let Some(c) = containers
        .iter()
        .find(|c| c.active_state == ActiveState::Failed || c.sub_state == "auto-restart")
    {
        return (
            Health::Failed,
            Some(format!("container {} failed ({})", c.name, c.sub_state)),
        );
    }
    match run {
        RunState::Running => {
            if containers.iter().all(|c| state(c) == ActiveState::Active) {
                (Health::Healthy, None)
            } else if containers
                .iter()
                .any(|c| matches!(state(c), ActiveState::Activating | ActiveState::Reloading))
            {
                (Health::Starting, None)
            } else if let Some(c) = containers.iter().find(|c| state(c) == ActiveState::Unknown) {
                (
                    Health::Unknown,
                    Some(format!("the state of {} is unknown", c.unit)),
                )
            } else {
                let down: Vec<&str> = containers
                    .iter()
                    .filter(|c| state(c) != ActiveState::Active)
                    .map(|c| c.name.as_str())
                    .collect();
                (
                    Health::Failed,
                    Some(format!("not running: {}", down.join(", "))),
                )
            }
        }
        RunState::Stopped => {
            if containers
                .iter()
                .all(|c| matches!(state(c), ActiveState::Inactive | ActiveState::Unknown))
            {
                (Health::Stopped, None)
            } else {
                (Health::Starting, Some("stopping".to_owned()))
            }
        }
    }
}

/// App ids arrive from the network: anything else is refused before it
/// can become a path.
fn check_id(id: &str) -> Result<(), ApiError> {
    if is_valid_app_id(id) {
        Ok(())
    } else {
        Err(err(
            ErrorCode::InvalidParams,
            format!(
                "{id:?} is not an app id (lowercase letters and digits in dash-separated words, starting with a letter, at most 40 characters)"
            ),
        ))
    }
}

/// Sends an operation's progress, never waiting for a slow client.
struct Progress<'a> {
    id: &'a str,
    events: Option<&'a Events>,
    images: Mutex<(u32, u32)>,
}

impl<'a> Progress<'a> {
    fn new(id: &'a str, events: Option<&'a Events>) -> Self {
        Self {
            id,
            events,
            images: Mutex::new((0, 0)),
        }
    }

    fn emit(&self, p: InstallProgress) {
        if let Some(events) = self.events {
            // A full queue drops a progress line, never the operation.
            let _ = events.try_send(StreamEvent::Progress(p));
        }
    }

    fn send(&self, phase: Phase, message: String) {
        let (done, total) = *self.images.lock().unwrap_or_else(PoisonError::into_inner);
        self.emit(InstallProgress {
            id: self.id.to_owned(),
            phase,
            image: None,
            images_done: done,
            images_total: total,
            blobs_seen: 0,
            message,
            bytes_done: 0,
            bytes_total: 0,
        });
    }

    fn bytes(&self, phase: Phase, done: u64, total: u64, message: String) {
        let (images_done, images_total) =
            *self.images.lock().unwrap_or_else(PoisonError::into_inner);
        self.emit(InstallProgress {
            id: self.id.to_owned(),
            phase,
            image: None,
            images_done,
            images_total,
            blobs_seen: 0,
            message,
            bytes_done: done,
            bytes_total: total,
        });
    }

    fn pulling(&self, image: &str, done: u32, total: u32, blobs: u32, message: String) {
        *self.images.lock().unwrap_or_else(PoisonError::into_inner) = (done, total);
        self.emit(InstallProgress {
            id: self.id.to_owned(),
            phase: Phase::Pulling,
            image: Some(image.to_owned()),
            images_done: done,
            images_total: total,
            blobs_seen: blobs,
            message,
            bytes_done: 0,
            bytes_total: 0,
        });
    }
}

/// Parses a method's parameters; `null` stands for `{}`.
fn params<M: Method>(value: Value) -> Result<M::Params, ApiError> {
    let value = if value.is_null() {
        Value::Object(serde_json::Map::new())
    } else {
        value
    };
    serde_json::from_value(value).map_err(|e| {
        err(
            ErrorCode::InvalidParams,
            format!("invalid params for {}: {e}", M::NAME),
        )
    })
}

fn to_value(v: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| internal(&e))
}

impl<S: SystemdManager + 'static, P: PodmanApi + 'static> Handler for NodeService<S, P> {
    async fn call(
        &self,
        method: &str,
        params_value: Value,
        events: Option<Events>,
    ) -> Result<Value, ApiError> {
        let events = events.as_ref();
        match method {
            m::NodeInfo::NAME => {
                params::<m::NodeInfo>(params_value)?;
                to_value(&self.info().await?)
            }
            m::CatalogList::NAME => {
                let Empty {} = params::<m::CatalogList>(params_value)?;
                to_value(&self.catalog())
            }
            m::PackageInstall::NAME => {
                let AppParams { id } = params::<m::PackageInstall>(params_value)?;
                to_value(&self.install(&id, events).await?)
            }
            m::PackageStart::NAME => {
                let AppParams { id } = params::<m::PackageStart>(params_value)?;
                to_value(&self.start(&id).await?)
            }
            m::CatalogIcon::NAME => {
                let AppParams { id } = params::<m::CatalogIcon>(params_value)?;
                to_value(&self.icon(&id)?)
            }
            m::PackageStop::NAME => {
                let AppParams { id } = params::<m::PackageStop>(params_value)?;
                to_value(&self.stop(&id).await?)
            }
            m::PackageRestart::NAME => {
                let AppParams { id } = params::<m::PackageRestart>(params_value)?;
                to_value(&self.restart(&id).await?)
            }
            m::PackageUninstall::NAME => {
                let UninstallParams { id, keep_data } =
                    params::<m::PackageUninstall>(params_value)?;
                to_value(&self.uninstall(&id, keep_data, events).await?)
            }
            m::PackageStatusMethod::NAME => {
                let AppParams { id } = params::<m::PackageStatusMethod>(params_value)?;
                to_value(&self.status(&id).await?)
            }
            m::PackageList::NAME => {
                params::<m::PackageList>(params_value)?;
                to_value(&m::PackageListResult {
                    apps: self.list().await?,
                })
            }
            m::PackageLogs::NAME => {
                let p = params::<m::PackageLogs>(params_value)?;
                to_value(&self.logs(&p, events).await?)
            }
            m::PackageStats::NAME => {
                let AppParams { id } = params::<m::PackageStats>(params_value)?;
                to_value(&self.stats(&id).await?)
            }
            m::PackageUpdate::NAME => {
                let AppParams { id } = params::<m::PackageUpdate>(params_value)?;
                to_value(&self.update(&id, events).await?)
            }
            m::PackageBackup::NAME => {
                let p = params::<m::PackageBackup>(params_value)?;
                to_value(&self.backup(&p, events).await?)
            }
            m::PackageRestore::NAME => {
                let p = params::<m::PackageRestore>(params_value)?;
                to_value(&self.restore(&p, events).await?)
            }
            m::PackageSettings::NAME => {
                let p = params::<m::PackageSettings>(params_value)?;
                to_value(&self.set_settings(&p).await?)
            }
            m::BackupList::NAME => {
                let p = params::<m::BackupList>(params_value)?;
                if let Some(id) = &p.id {
                    check_id(id)?;
                }
                to_value(&m::BackupListResult {
                    backups: self.backups(p.id.as_deref())?,
                })
            }
            m::BackupDownload::NAME => {
                let p = params::<m::BackupDownload>(params_value)?;
                to_value(&self.download(&p)?)
            }
            m::BackupUpload::NAME => {
                let p = params::<m::BackupUpload>(params_value)?;
                to_value(&self.upload(&p)?)
            }
            m::BackupDelete::NAME => {
                let m::BackupNameParams { name } = params::<m::BackupDelete>(params_value)?;
                self.delete_backup(&name)?;
                to_value(&Empty {})
            }
            other => Err(err(
                ErrorCode::MethodNotFound,
                format!("no method `{other}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, active: ActiveState, sub: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            unit: format!("app_{name}.service"),
            active_state: active,
            sub_state: sub.into(),
        }
    }

    #[test]
    fn health_sums_up_the_containers() {
        use ActiveState::{Activating, Active, Failed, Inactive};
        let run = RunState::Running;
        assert_eq!(
            summarise(run, &[c("a", Active, "running")]).0,
            Health::Healthy
        );
        assert_eq!(
            summarise(
                run,
                &[c("a", Active, "running"), c("b", Activating, "start")]
            )
            .0,
            Health::Starting
        );
        let (h, why) = summarise(run, &[c("a", Active, "running"), c("b", Failed, "failed")]);
        assert_eq!(h, Health::Failed);
        assert!(why.unwrap().contains("container b failed"));
        assert_eq!(
            summarise(run, &[c("a", Activating, "auto-restart")]).0,
            Health::Failed
        );
        assert_eq!(
            summarise(run, &[c("a", Inactive, "dead")]).0,
            Health::Failed
        );
        assert_eq!(
            summarise(RunState::Stopped, &[c("a", Inactive, "dead")]).0,
            Health::Stopped
        );
    }

    #[test]
    fn repeated_log_lines_are_written_once() {
        let lines: Vec<String> = ["a", "b", "b", "b", "a"].map(String::from).to_vec();
        assert_eq!(collapse_repeats(&lines), ["a", "b (×3)", "a"]);
    }

    #[test]
    fn ids_from_the_network_are_checked() {
        assert!(check_id("hello-web").is_ok());
        for bad in ["../etc", "Hello", "", "a/b", "x".repeat(80).as_str()] {
            assert_eq!(check_id(bad).unwrap_err().code, ErrorCode::InvalidParams);
        }
    }

    #[test]
    fn params_refuse_wrong_shapes_with_the_method_named() {
        let e = params::<m::PackageInstall>(serde_json::json!({"id": 5})).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParams);
        assert!(e.message.contains("package.install"), "{}", e.message);
        assert!(params::<m::PackageList>(Value::Null).is_ok());
        assert!(params::<m::PackageList>(serde_json::json!({"x": 1})).is_err());
    }
}
