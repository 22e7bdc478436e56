//! `archipelagod`: the node daemon's command line. Today it checks and
//! renders app manifests, manages the state file and talks to the user's
//! systemd manager (`units`) and podman's API (`podman`) the way the daemon
//! does, and runs the daemon loop (`run`); its API arrives on top of the
//! same library.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, bail};
use archipelago_api::{ActiveState, RunState};
use archipelagod::api::auth::Auth;
use archipelagod::api::server::Limits;
use archipelagod::api::tls::TlsIdentity;
use archipelagod::archive;
use archipelagod::journal::UserJournal;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Manifest, Strictness};
use archipelagod::podman::{PodmanApi as _, PortBinding};
use archipelagod::podman_rest::{LogStream, PodmanRest, PullEvent};
use archipelagod::quadlet::render_app;
use archipelagod::reconcile::{AppChanges, Context, Desired, PassReport, reconcile_pass};
use archipelagod::secrets::SecretStore;
use archipelagod::service::NodeService;
use archipelagod::state::{StateError, StateStore};
use archipelagod::systemd::SystemdManager as _;
use archipelagod::systemd_dbus::DbusSystemd;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "archipelagod", version, about = "The Archipelago node daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum CatalogAction {
    /// Every catalog, whether its signature verifies, and its apps.
    List,
    /// Adds a community catalog: a folder laid out like the Archipelago
    /// repository (catalog/catalog.json + .minisig, apps/, icons/), trusted
    /// with its publisher's minisign public key. Refused unless it verifies.
    Add {
        /// Short name apps from it are shown with.
        name: String,
        /// Absolute path of the catalog's folder, or its http(s):// address.
        location: String,
        /// The publisher's public key (`RW…`).
        #[arg(
            long,
            conflicts_with = "key_file",
            required_unless_present = "key_file"
        )]
        key: Option<String>,
        /// The publisher's `.pub` file.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Removes a community catalog (apps installed from it stay).
    Remove { name: String },
    /// Fetches web catalogs again (the daemon does at start and every six
    /// hours); a copy that does not verify is thrown away, the old one kept.
    Refresh {
        /// Only this catalog.
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check app manifests, alone and as one set of installed apps.
    Validate {
        /// Accept images pinned by tag only (apps under development).
        #[arg(long)]
        local: bool,
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Render app manifests into the Quadlet files the node would run.
    Render {
        #[arg(long)]
        local: bool,
        /// Home folder of the service user (paths inside the units).
        #[arg(long, default_value = "/var/lib/archipelago")]
        home: PathBuf,
        /// Render these app ids as stopped.
        #[arg(long = "stopped", value_name = "APP")]
        stopped: Vec<String>,
        /// Folder to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Inspect or repair the node's state file.
    State {
        /// Home folder of the service user.
        #[arg(long, default_value = "/var/lib/archipelago")]
        home: PathBuf,
        #[command(subcommand)]
        action: StateAction,
    },
    /// Talk to this user's systemd manager over D-Bus, as the daemon does
    /// (for troubleshooting: run it as the service user).
    Units {
        #[command(subcommand)]
        action: UnitsAction,
    },
    /// Talk to this user's podman API (`podman.socket`), as the daemon does
    /// (for troubleshooting: run it as the service user).
    Podman {
        #[command(subcommand)]
        action: PodmanAction,
    },
    /// The daemon: reconcile passes on a timer, on unit changes and on state
    /// file changes, until SIGTERM or SIGINT (run it as the service user;
    /// exiting never stops a container).
    Run {
        /// Home folder of the service user (default: `$HOME`).
        #[arg(long)]
        home: Option<PathBuf>,
        /// Accept images pinned by tag only (apps under development).
        #[arg(long)]
        local: bool,
        /// Address and port of the TLS JSON-RPC API.
        #[arg(long, default_value_t = std::net::SocketAddr::from(([0, 0, 0, 0], archipelago_api::rpc::DEFAULT_PORT)))]
        listen: std::net::SocketAddr,
    },
    /// Set the API password (run as the service user). Without
    /// `--password-stdin` a password is generated and printed once.
    Init {
        #[arg(long)]
        home: Option<PathBuf>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Replace an existing password (logs every client out).
        #[arg(long)]
        reset: bool,
    },
    /// Print what a client needs to pair with this node: its addresses and
    /// the API certificate's fingerprint.
    Pairing {
        #[arg(long)]
        home: Option<PathBuf>,
        #[arg(long, default_value_t = archipelago_api::rpc::DEFAULT_PORT)]
        port: u16,
    },
    /// The signed catalogs this node installs apps from (run as the service
    /// user): the official one and community catalogs with their own keys.
    Catalog {
        #[arg(long)]
        home: Option<PathBuf>,
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Pack, unpack or remove app data (the daemon runs this inside the
    /// containers' user namespace; not for people).
    #[command(hide = true)]
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Run the reconciler over the node's state file, as the daemon does
    /// (run it as the service user): secrets, unit files, units, containers.
    Reconcile {
        /// One pass, then exit (`archipelagod run` is the daemon loop).
        #[arg(long, required = true)]
        once: bool,
        /// Home folder of the service user (default: `$HOME`).
        #[arg(long)]
        home: Option<PathBuf>,
        /// Accept images pinned by tag only (apps under development).
        #[arg(long)]
        local: bool,
        /// After the pass, run this many more in the same process and print
        /// what each cost: wall time, CPU time, processes started on the
        /// node meanwhile (a measurement of the no-op pass).
        #[arg(long, value_name = "N", default_value_t = 0)]
        measure: u32,
    },
}

/// `archipelagod data …`: what the daemon runs inside the containers' user
/// namespace (`podman unshare`) to read and write app data.
#[derive(Subcommand, Debug)]
enum DataAction {
    /// Write a tar of each folder, under its prefix, to stdout.
    Pack {
        /// `PREFIX=FOLDER`, e.g. `data=/var/lib/archipelago/.local/share/archipelago/apps/x`.
        #[arg(long = "entry", value_parser = archive::Entry::from_arg, required = true)]
        entries: Vec<archive::Entry>,
    },
    /// Empty each folder, then unpack the tar on stdin's matching parts into it.
    Unpack {
        #[arg(long = "entry", value_parser = archive::Entry::from_arg, required = true)]
        entries: Vec<archive::Entry>,
    },
    /// Remove these paths and everything below them.
    Remove {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PodmanAction {
    /// Print `name app state ports digest` for each of our containers.
    Containers,
    /// Pull an image, printing progress, then its id.
    Pull { reference: String },
    /// Print `true` or `false`: whether the image is in the store.
    Exists { reference: String },
    /// Print a container's last log lines (stderr lines on stderr).
    Logs {
        name: String,
        #[arg(long, default_value_t = 100)]
        tail: usize,
    },
    /// Print one sample of a container's CPU and memory use.
    Stats { name: String },
}

/// How long `units start|stop|restart` wait for their job.
#[derive(clap::Args, Debug)]
struct JobWait {
    /// Give up waiting after this many seconds (the job goes on); default
    /// as the daemon: 900 for start and restart, 120 for stop.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum UnitsAction {
    /// Print `name load active sub` for each unit (one `ListUnitsByNames`).
    List {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print a unit's states, and for a service its result and restarts.
    Show { name: String },
    /// Start a unit and wait until its job is done.
    Start {
        name: String,
        #[command(flatten)]
        wait: JobWait,
    },
    /// Stop a unit and wait until its job is done.
    Stop {
        name: String,
        #[command(flatten)]
        wait: JobWait,
    },
    /// Restart a unit and wait until its job is done.
    Restart {
        name: String,
        #[command(flatten)]
        wait: JobWait,
    },
    /// Clear a unit's failed state.
    ResetFailed { name: String },
    /// Re-run the generators (Quadlet) and reload every unit file.
    Reload,
    /// Print unit names as their active state changes.
    Watch {
        /// Stop watching after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

#[derive(Subcommand, Debug)]
enum StateAction {
    /// Print the installed apps and their run states.
    Show,
    /// Replace a corrupt state file by its last good backup (the corrupt
    /// file is kept aside).
    Recover,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon says what it does unless told otherwise; a command only
    // what `RUST_LOG` asks for.
    let filter = match (&cli.command, std::env::var_os("RUST_LOG")) {
        (Command::Run { .. }, None) => tracing_subscriber::EnvFilter::new("info"),
        _ => tracing_subscriber::EnvFilter::from_default_env(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::AppsFailed) => ExitCode::FAILURE,
        Err(e) => {
            // The messages are written for people: no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a command that ran to its end went.
enum Outcome {
    Ok,
    /// `reconcile`: the pass ran, but some app did not reconcile (the
    /// report says which and why).
    AppsFailed,
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Validate { local, manifests } => {
            let apps = load_all(&manifests, strictness(local))?;
            println!(
                "{} manifest(s) valid: {}",
                apps.len(),
                apps.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        Command::Render {
            local,
            home,
            stopped,
            out,
            manifests,
        } => {
            let apps = load_all(&manifests, strictness(local))?;
            let layout = Layout::under_home(&home);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for app in apps.values() {
                let run = if stopped.contains(&app.id) {
                    RunState::Stopped
                } else {
                    RunState::Running
                };
                for unit in render_app(app, run, |id| apps.get(id), &layout) {
                    let path = out.join(&unit.file_name);
                    std::fs::write(&path, &unit.contents)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{}", path.display());
                }
            }
        }
        Command::State { home, action } => state(&home, action)?,
        Command::Data { action } => {
            let (name, entries, paths) = match action {
                DataAction::Pack { entries } => ("pack", entries, Vec::new()),
                DataAction::Unpack { entries } => ("unpack", entries, Vec::new()),
                DataAction::Remove { paths } => ("remove", Vec::new(), paths),
            };
            archipelagod::datatool::run_helper(name, &entries, &paths)
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        Command::Units { action } => {
            runtime()?.block_on(units(action))?;
        }
        Command::Podman { action } => {
            runtime()?.block_on(podman(action))?;
        }
        Command::Reconcile {
            once: _,
            home,
            local,
            measure,
        } => {
            let home = home_or_env(home)?;
            return runtime()?.block_on(reconcile_once(&home, strictness(local), measure));
        }
        Command::Init {
            home,
            password_stdin,
            reset,
        } => init(home, password_stdin, reset)?,
        Command::Catalog { home, action } => catalog(&layout_for(&home_or_env(home)?), action)?,
        Command::Pairing { home, port } => {
            let layout = Layout::under_home(&home_or_env(home)?);
            print!("{}", archipelagod::api::admin::pairing(&layout, port)?);
        }
        Command::Run {
            home,
            local,
            listen,
        } => {
            let home = home_or_env(home)?;
            daemon_runtime()?.block_on(daemon(&home, strictness(local), listen))?;
        }
    }
    Ok(Outcome::Ok)
}

/// The layout under `home`; `$ARCHIPELAGO_OFFICIAL_CATALOG` points at
/// another copy of the official catalog (a source checkout), still checked
/// against the official key.
fn layout_for(home: &Path) -> Layout {
    let mut layout = Layout::under_home(home);
    if let Some(root) = std::env::var_os("ARCHIPELAGO_OFFICIAL_CATALOG") {
        layout.official_catalog = PathBuf::from(root);
    }
    layout
}

/// `archipelagod catalog list|add|remove`.
fn catalog(layout: &Layout, action: CatalogAction) -> anyhow::Result<()> {
    use archipelagod::catalogs::{self, CatalogsConfig, CommunityCatalog};
    let config_path = layout.catalogs_config();
    match action {
        CatalogAction::List => {
            for source in catalogs::open_all(layout) {
                let kind = if source.official {
                    "official"
                } else {
                    "community"
                };
                match &source.catalog {
                    Ok(c) => println!(
                        "{}	{kind}	key {}	{}	verified: {} apps ({})",
                        source.name,
                        source.key_id(),
                        source.location,
                        c.file().apps.len(),
                        c.trusted_comment()
                    ),
                    Err(e) => println!(
                        "{}	{kind}	key {}	{}	REFUSED: {e}",
                        source.name,
                        source.key_id(),
                        source.location
                    ),
                }
            }
        }
        CatalogAction::Add {
            name,
            location,
            key,
            key_file,
        } => {
            let public_key = match (key, key_file) {
                (Some(k), _) => k,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, None) => bail!("give the catalog's public key with --key or --key-file"),
            };
            let mut config = CatalogsConfig::load(&config_path)?;
            if archipelagod::catalog_fetch::is_url(&location) {
                let key = archipelago_catalog::TrustedKey::parse(&public_key)?;
                let dest = catalogs::root_of(layout, &name, &location)?;
                runtime()?.block_on(archipelagod::catalog_fetch::fetch(&location, &key, &dest))?;
            }
            let opened = config.add(
                CommunityCatalog {
                    name: name.clone(),
                    location,
                    public_key,
                },
                layout,
            )?;
            config.save(&config_path)?;
            println!(
                "added catalog `{name}`: {} apps, signature verified ({})",
                opened.file().apps.len(),
                opened.trusted_comment()
            );
        }
        CatalogAction::Remove { name } => {
            let mut config = CatalogsConfig::load(&config_path)?;
            config.remove(&name)?;
            config.save(&config_path)?;
            println!("removed catalog `{name}` (apps installed from it stay installed)");
        }
        CatalogAction::Refresh { name } => {
            let config = CatalogsConfig::load(&config_path)?;
            let mut failed = 0;
            for c in config
                .catalogs
                .iter()
                .filter(|c| name.as_ref().is_none_or(|n| *n == c.name))
            {
                match runtime()?.block_on(refresh_one(layout, c)) {
                    Ok(Some(apps)) => println!("{}: fetched, verified, {apps} apps", c.name),
                    Ok(None) => println!("{}: a local folder, nothing to fetch", c.name),
                    Err(e) => {
                        failed += 1;
                        println!("{}: {e}", c.name);
                    }
                }
            }
            if failed > 0 {
                bail!(
                    "{failed} catalog(s) could not be refreshed; their previous copies stay in use"
                );
            }
        }
    }
    Ok(())
}

/// Fetches one web catalog again; `None` for a local one.
async fn refresh_one(
    layout: &Layout,
    c: &archipelagod::catalogs::CommunityCatalog,
) -> anyhow::Result<Option<usize>> {
    if !archipelagod::catalog_fetch::is_url(&c.location) {
        return Ok(None);
    }
    let key = archipelago_catalog::TrustedKey::parse(&c.public_key)?;
    let dest = archipelagod::catalogs::root_of(layout, &c.name, &c.location)?;
    Ok(Some(
        archipelagod::catalog_fetch::fetch(&c.location, &key, &dest).await?,
    ))
}

/// Keeps web catalogs fresh while the daemon runs: at start, then every six
/// hours. A failure is logged; the previous copy stays in use.
async fn refresh_web_catalogs(layout: Layout) {
    let mut tick = tokio::time::interval(Duration::from_secs(6 * 3600));
    loop {
        tick.tick().await;
        let config = match archipelagod::catalogs::CatalogsConfig::load(&layout.catalogs_config()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("catalogs: {e}");
                continue;
            }
        };
        for c in &config.catalogs {
            match refresh_one(&layout, c).await {
                Ok(Some(apps)) => tracing::info!("catalog `{}` refreshed: {apps} apps", c.name),
                Ok(None) => {}
                Err(e) => tracing::warn!("catalog `{}` not refreshed: {e:#}", c.name),
            }
        }
    }
}

/// `archipelagod state show|recover`.
fn state(home: &Path, action: StateAction) -> anyhow::Result<()> {
    let store = StateStore::new(Layout::under_home(home).state_file());
    match (action, store.load()) {
        (StateAction::Show, Ok(state)) => {
            for (id, app) in &state.apps {
                println!(
                    "{id}\t{}\t{:?}\t{}",
                    app.version,
                    app.run,
                    app.manifest.display()
                );
            }
        }
        (StateAction::Recover, Ok(_)) => {
            println!("the state file is fine: nothing to recover");
        }
        (
            StateAction::Recover,
            Err(
                StateError::Corrupt {
                    backup: Some(backup),
                    ..
                }
                | StateError::UnsupportedVersion {
                    backup: Some(backup),
                    ..
                }
                | StateError::Missing {
                    backup: Some(backup),
                    ..
                },
            ),
        ) => {
            store.recover(&backup)?;
            println!(
                "restored the last good state ({} app(s)) from {}",
                backup.apps.len(),
                store.backup_path().display()
            );
        }
        (_, Err(e)) => return Err(e.into()),
    }
    Ok(())
}

/// `archipelagod init`: sets the API password, printing a generated one
/// once.
fn init(home: Option<PathBuf>, password_stdin: bool, reset: bool) -> anyhow::Result<()> {
    let layout = Layout::under_home(&home_or_env(home)?);
    match archipelagod::api::admin::init(&layout, password_stdin, reset)? {
        Some(generated) => println!(
            "The node's password (shown only this once; keep it in a password manager):\n\n    {generated}\n\nPair a client with `archipelagod pairing`, then log in with this password."
        ),
        None => println!("Password set."),
    }
    Ok(())
}

/// `--home`, else `$HOME`.
fn home_or_env(home: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match home {
        Some(h) => Ok(h),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("no --home given and $HOME is not set"),
    }
}

/// The commands' async runtime: one thread is plenty.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The reconciler's context on this node: the user's manager, podman's
/// socket, the secrets under `layout`.
async fn connect(layout: Layout) -> anyhow::Result<Context<DbusSystemd, PodmanRest>> {
    let systemd = DbusSystemd::connect_user_bus().await?;
    let podman = PodmanRest::for_this_user();
    let secrets = SecretStore::new(layout.clone());
    let ctx = Context::new(layout, systemd, podman, secrets);
    // App data written by container users is only readable inside their
    // user namespace: go in with `podman unshare` where podman is.
    if let Some(tool) = archipelagod::datatool::Unshare::find() {
        Ok(ctx.with_data_tool(std::sync::Arc::new(tool)))
    } else {
        tracing::warn!("podman not found: app data is copied as the service user sees it");
        Ok(ctx)
    }
}

/// The daemon's runtime: two worker threads, so that a slow bcrypt check
/// or TLS handshake never holds up the reconcile loop.
fn daemon_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// How long the daemon waits for the user's systemd manager at start (a
/// node booting starts the daemon while the user's manager comes up).
const BUS_WAIT: Duration = Duration::from_secs(60);

/// Connects to the user's manager, retrying while it is not up yet.
async fn connect_waiting(layout: Layout) -> anyhow::Result<Context<DbusSystemd, PodmanRest>> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(layout.clone()).await {
            Ok(ctx) => return Ok(ctx),
            Err(e) if start.elapsed() < BUS_WAIT => {
                tracing::info!("waiting for the user's systemd manager: {e:#}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `archipelagod run`: the API and the loop of passes until SIGTERM or
/// SIGINT. The API's port is bound first, so that clients can connect at
/// once; calls wait for the manager's connection like the loop does.
async fn daemon(
    home: &Path,
    strictness: Strictness,
    listen: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let shutdown =
        archipelagod::daemon::shutdown_signal().context("catching SIGTERM and SIGINT")?;
    let started = Instant::now();
    let layout = layout_for(home);
    // Bound first: a client connecting now waits in the backlog, not refused.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let identity = TlsIdentity::load_or_create(&layout)?;
    let auth = Arc::new(Auth::open(&layout)?);
    if !archipelagod::api::auth::password_is_set(&layout)? {
        tracing::warn!(
            "no password is set, so nobody can log in: run `archipelagod init` as the service user"
        );
    }
    tokio::spawn(refresh_web_catalogs(layout.clone()));
    let ctx = connect_waiting(layout).await?;
    let changes = ctx.systemd.unit_changes().await?;
    let service = Arc::new(NodeService::new(
        Arc::new(ctx),
        strictness,
        Arc::new(UserJournal),
    ));
    // Automatic updates and scheduled backups, each app as its settings say.
    let scheduler = Arc::clone(&service);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(archipelagod::service::SCHEDULE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            scheduler.scheduled().await;
        }
    });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(archipelagod::api::server::serve(
        listener,
        identity.server_config(),
        auth,
        Arc::clone(&service),
        Limits::default(),
        async move {
            let _ = stop_rx.changed().await;
        },
    ));
    tracing::info!(
        "API listening on {listen} {:?} after start; certificate fingerprint {}",
        started.elapsed(),
        identity.fingerprint()
    );
    let result = archipelagod::daemon::run(&service, changes, shutdown).await;
    let _ = stop_tx.send(true);
    if let Err(e) = server.await {
        tracing::warn!("the API server ended badly: {e}");
    }
    result
}

/// `archipelagod reconcile --once`: one pass, a short report.
async fn reconcile_once(
    home: &Path,
    strictness: Strictness,
    measure: u32,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let layout = Layout::under_home(home);
    let state = StateStore::new(layout.state_file()).load()?;
    let desired = Desired::load(&state, strictness, &layout);
    let ctx = connect(layout).await?;
    let report = reconcile_pass(&desired, &ctx).await?;
    let ok = print_report(&report);
    println!("pass done in {:.3} s", start.elapsed().as_secs_f64());
    if measure > 0 {
        measure_passes(&desired, &ctx, measure).await?;
    }
    Ok(if ok { Outcome::Ok } else { Outcome::AppsFailed })
}

/// Runs `n` passes and prints, per pass, the wall and CPU time (this
/// process's) and the processes started on the node meanwhile (from the
/// pid namespace's last pid): the figures of the no-op pass.
async fn measure_passes(
    desired: &Desired,
    ctx: &Context<DbusSystemd, PodmanRest>,
    n: u32,
) -> anyhow::Result<()> {
    let cpu = || rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let last_pid = || -> Option<u64> {
        std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut changed = 0;
    let pid_before = last_pid();
    for _ in 0..n {
        let (c0, t0) = (cpu(), Instant::now());
        let report = reconcile_pass(desired, ctx).await?;
        let wall = t0.elapsed();
        let c1 = cpu();
        let ns = |t: rustix::time::Timespec| {
            i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
        };
        walls.push(wall.as_secs_f64() * 1e3);
        #[allow(clippy::cast_precision_loss)]
        cpus.push((ns(c1) - ns(c0)) as f64 / 1e6);
        if report.changed() {
            changed += 1;
        }
    }
    let spawned = match (pid_before, last_pid()) {
        (Some(a), Some(b)) => b.saturating_sub(a).to_string(),
        _ => "unknown".to_owned(),
    };
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (wall_median, wall_max) = stats(&mut walls);
    let (cpu_median, cpu_max) = stats(&mut cpus);
    println!(
        "measured {n} passes over {} app(s): wall median {wall_median:.3} ms max {wall_max:.3} ms; \
         CPU median {cpu_median:.3} ms max {cpu_max:.3} ms; passes that changed something: {changed}; \
         processes started on the node meanwhile: {spawned}",
        desired.apps().len()
    );
    Ok(())
}

/// Prints what a pass did; true when every app reconciled and none is
/// invalid.
fn print_report(report: &PassReport) -> bool {
    for path in &report.written {
        println!("wrote {}", path.display());
    }
    for path in &report.removed {
        println!("removed {}", path.display());
    }
    for (app, s) in &report.secrets {
        let repaired: Vec<String> = s
            .repaired
            .iter()
            .map(|r| format!("{} ({:?})", r.secret, r.problem))
            .collect();
        println!(
            "secrets of {app}: generated [{}] repaired [{}] env files written [{}] removed [{}]",
            s.generated.join(", "),
            repaired.join(", "),
            s.env_files_written.join(", "),
            s.env_files_removed.join(", ")
        );
    }
    for unit in &report.orphans_stopped {
        println!("stopped {unit} (its app is no longer installed)");
    }
    for e in &report.orphan_errors {
        println!("error stopping a removed app's unit: {e}");
    }
    let mut ok = report.orphan_errors.is_empty();
    for (app, outcome) in &report.apps {
        let c = &outcome.changes;
        for unit in &c.started {
            println!("{app}: started {unit}");
        }
        for unit in &c.stopped {
            println!("{app}: stopped {unit}");
        }
        for unit in &c.restarted {
            println!("{app}: restarted {unit}");
        }
        for reason in &c.reasons {
            println!("{app}: restart reason: {reason}");
        }
        match &outcome.result {
            Ok(_) => println!("{app}: ok"),
            Err(e) => {
                ok = false;
                let code = e.code();
                println!("{app}: error {code:?} ({}): {e}", code.as_i32());
            }
        }
    }
    for (app, reason) in &report.invalid {
        ok = false;
        println!("{app}: invalid, left as it is: {reason}");
    }
    // A new process reloads the user's manager once whatever it finds (it
    // cannot know whether an earlier one died between writing and
    // reloading): that alone is not a change of the node.
    let changed = !report.written.is_empty()
        || !report.removed.is_empty()
        || !report.secrets.is_empty()
        || !report.orphans_stopped.is_empty()
        || report
            .apps
            .values()
            .any(|o| o.changes != AppChanges::default());
    if report.reloaded {
        println!(
            "reloaded the user's systemd manager{}",
            if changed {
                ""
            } else {
                " (once per new process)"
            }
        );
    }
    if !changed {
        println!("no change");
    }
    ok
}

/// `archipelagod units …`: one connection to the user's manager per run.
async fn units(action: UnitsAction) -> anyhow::Result<()> {
    let mut systemd = DbusSystemd::connect_user_bus().await?;
    let job = |verb: &str, name: &str, start: Instant| {
        println!(
            "{verb} {name}: done in {:.3} s",
            start.elapsed().as_secs_f64()
        );
    };
    if let UnitsAction::Start { wait, .. }
    | UnitsAction::Stop { wait, .. }
    | UnitsAction::Restart { wait, .. } = &action
    {
        if let Some(secs) = wait.timeout {
            systemd.start_timeout = Duration::from_secs(secs);
            systemd.stop_timeout = Duration::from_secs(secs);
        }
    }
    match action {
        UnitsAction::List { names } => {
            for u in systemd.list_units_by_names(&names).await? {
                println!(
                    "{} {} {} {}",
                    u.name,
                    u.load_state,
                    active_str(u.active_state),
                    u.sub_state
                );
            }
        }
        UnitsAction::Show { name } => {
            let d = systemd.unit_details(&name).await?;
            println!(
                "{} {} {} {} result={} restarts={}",
                d.name,
                d.load_state,
                active_str(d.active_state),
                d.sub_state,
                d.result.as_deref().unwrap_or("-"),
                d.n_restarts
                    .map_or_else(|| "-".to_owned(), |n| n.to_string())
            );
        }
        UnitsAction::Start { name, .. } => {
            let start = Instant::now();
            systemd.start_unit(&name).await?;
            job("start", &name, start);
        }
        UnitsAction::Stop { name, .. } => {
            let start = Instant::now();
            systemd.stop_unit(&name).await?;
            job("stop", &name, start);
        }
        UnitsAction::Restart { name, .. } => {
            let start = Instant::now();
            systemd.restart_unit(&name).await?;
            job("restart", &name, start);
        }
        UnitsAction::ResetFailed { name } => systemd.reset_failed_unit(&name).await?,
        UnitsAction::Reload => {
            let start = Instant::now();
            systemd.reload().await?;
            println!("reload: done in {:.3} s", start.elapsed().as_secs_f64());
        }
        UnitsAction::Watch { seconds } => {
            let mut changes = systemd.unit_changes().await?;
            // On stderr, so that stdout holds unit names only.
            eprintln!("watching unit state changes for {seconds} s");
            let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
            loop {
                match tokio::time::timeout_at(until, changes.recv()).await {
                    Ok(Some(name)) => println!("{name}"),
                    Ok(None) => bail!("the connection to the user's manager closed"),
                    Err(_) => break,
                }
            }
        }
    }
    Ok(())
}

/// `archipelagod podman …`: one API call per run (on this user's socket).
async fn podman(action: PodmanAction) -> anyhow::Result<()> {
    let api = PodmanRest::for_this_user();
    match action {
        PodmanAction::Containers => {
            for c in api.list_containers().await? {
                let ports = c.ports.iter().map(port_str).collect::<Vec<_>>();
                println!(
                    "{} {} {} {} {}",
                    c.name,
                    if c.app.is_empty() { "-" } else { &c.app },
                    c.state,
                    if ports.is_empty() {
                        "-".to_owned()
                    } else {
                        ports.join(",")
                    },
                    c.config_digest.as_deref().unwrap_or("-")
                );
            }
        }
        PodmanAction::Pull { reference } => {
            let start = Instant::now();
            let id = api
                .pull(&reference, |event| match event {
                    PullEvent::Blob { digest, seen } => println!("blob {seen}: {digest}"),
                    PullEvent::Message(text) => println!("{text}"),
                    PullEvent::Done { .. } => {
                        println!("pulled in {:.3} s", start.elapsed().as_secs_f64());
                    }
                })
                .await?;
            println!("{id}");
        }
        PodmanAction::Exists { reference } => {
            println!("{}", api.image_exists(&reference).await?);
        }
        PodmanAction::Logs { name, tail } => {
            for line in api.logs(&name, tail).await? {
                match line.stream {
                    LogStream::Stdout => println!("{}", line.text),
                    LogStream::Stderr => eprintln!("{}", line.text),
                }
            }
        }
        PodmanAction::Stats { name } => {
            let s = api.stats(&name).await?;
            match s.mem_usage_bytes {
                Some(used) => println!(
                    "cpu {:.2}% mem {used} / {} bytes",
                    s.cpu_percent, s.mem_limit_bytes
                ),
                None => println!(
                    "cpu {:.2}% mem unknown (no memory controller in the container's cgroup) / {} bytes",
                    s.cpu_percent, s.mem_limit_bytes
                ),
            }
        }
    }
    Ok(())
}

/// `[host_ip:]host_port->container_port/protocol`, as `podman ps` writes it.
fn port_str(p: &PortBinding) -> String {
    let ip = match p.host_ip {
        Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:"),
        Some(ip) => format!("{ip}:"),
        None => String::new(),
    };
    format!("{ip}{}->{}/{}", p.host_port, p.container_port, p.protocol)
}

/// systemd's spelling of an active state.
const fn active_str(state: ActiveState) -> &'static str {
    match state {
        ActiveState::Active => "active",
        ActiveState::Reloading => "reloading",
        ActiveState::Inactive => "inactive",
        ActiveState::Failed => "failed",
        ActiveState::Activating => "activating",
        ActiveState::Deactivating => "deactivating",
        ActiveState::Unknown => "unknown",
    }
}

fn strictness(local: bool) -> Strictness {
    if local {
        Strictness::Local
    } else {
        Strictness::Catalog
    }
}

/// Loads every manifest, then checks them as one set; reports all problems.
fn load_all(
    files: &[PathBuf],
    strictness: Strictness,
) -> anyhow::Result<BTreeMap<String, Manifest>> {
    let mut apps = BTreeMap::new();
    let mut paths: BTreeMap<String, &Path> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in files {
        match manifest::load(f, strictness) {
            Ok(m) => {
                if let Some(other) = paths.insert(m.id.clone(), f) {
                    problems.push(format!(
                        "{} and {} both define app `{}`",
                        other.display(),
                        f.display(),
                        m.id
                    ));
                }
                apps.insert(m.id.clone(), m);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    // Checked as one set, with capability dependencies bound to the app
    // of the set that provides them (what a node installs).
    match manifest::bind_set(
        apps.values()
            .filter_map(|m| paths.get(&m.id).map(|p| (*p, m))),
    ) {
        Ok(bound) if problems.is_empty() => {
            Ok(bound.into_iter().map(|m| (m.id.clone(), m)).collect())
        }
        Ok(_) => bail!("{}", problems.join("\n")),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            bail!("{}", problems.join("\n"))
        }
    }
}
