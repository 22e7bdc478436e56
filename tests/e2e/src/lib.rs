//! The desktop app as a user sees it: the built binary in a real window on
//! a virtual display (Xvfb), driven through tauri-driver and `WebKit`'s own
//! `WebDriver` ([`webdriver`]) by the frontend's `data-testid`s.
//!
//! [`DesktopApp::start`] builds the app (the frontend must be built first:
//! `frontend/dist`), starts Xvfb on a free display, tauri-driver on free
//! loopback ports, opens a session on the app with its own configuration
//! folder (tokens in a file, no browser opened) and waits until the page
//! is loaded and Tauri's API is there. Everything it started is stopped
//! when it is dropped, whole process groups included (tauri-driver starts
//! `WebKitWebDriver`, which starts the app).
//!
//! [`DesktopApp::start_with`] takes a [`Launch`]: a run's network
//! namespace, so that the app reaches the run's nodes (Xvfb, tauri-driver,
//! `WebKitWebDriver` and the app all run inside it, started with `ip netns
//! exec`), and optionally a display of the user's instead of Xvfb.
//!
//! Needs what `tests/desktop/setup.sh` installs.

pub mod webdriver;

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

pub use webdriver::{Element, WebDriver};

/// How long the app may take from start to a loaded page.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The app running on a virtual display, with a `WebDriver` session.
#[derive(Debug)]
pub struct DesktopApp {
    pub driver: WebDriver,
    /// Where logs (and the test's screenshots) go.
    pub artifacts: PathBuf,
    /// `:N`.
    pub display: String,
    /// None when the app shows on a display of the user's.
    xvfb: Option<Child>,
    tauri_driver: Child,
}

/// Where the app runs.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// A network namespace (`ip netns` name) to run everything in. The
    /// `WebDriver` client connects to tauri-driver on loopback, so the
    /// caller must itself run inside that namespace (a thread that
    /// entered it, as `TestNetwork::enter` makes); this is checked.
    pub netns: Option<String>,
    /// An X display to show the window on (`:0`); None starts Xvfb.
    pub display: Option<String>,
}

/// The repository's top folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl DesktopApp {
    /// Starts the app with `config_dir` as its configuration folder on
    /// Xvfb, in this process's network namespace; logs go to `artifacts`.
    pub async fn start(config_dir: &Path, artifacts: &Path) -> Result<Self> {
        Self::start_with(config_dir, artifacts, &Launch::default()).await
    }

    /// Starts the app as [`Launch`] says.
    pub async fn start_with(config_dir: &Path, artifacts: &Path, launch: &Launch) -> Result<Self> {
        std::fs::create_dir_all(artifacts)?;
        if let Some(ns) = &launch.netns {
            ensure_inside(ns)?;
        }
        let app = build_desktop()?;
        let tauri_driver = find_tauri_driver()?;
        let in_netns = |program: &Path| match &launch.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        };
        let (xvfb, display) = if let Some(display) = &launch.display {
            (None, display.clone())
        } else {
            let (xvfb, display) = start_xvfb(in_netns(Path::new("Xvfb")), artifacts)?;
            (Some(xvfb), display)
        };
        let mut started = Started {
            xvfb,
            tauri_driver: None,
        };
        let port = free_port()?;
        let native_port = free_port()?;
        let log = std::fs::File::create(artifacts.join("tauri-driver.log"))?;
        started.tauri_driver = Some(
            in_netns(&tauri_driver)
                .args(["--port", &port.to_string()])
                .args(["--native-port", &native_port.to_string()])
                .env("DISPLAY", &display)
                .env("ARCHIPELAGO_DESKTOP_CONFIG_DIR", config_dir)
                // Downloaded backups stay in the run's folder.
                .env(
                    "ARCHIPELAGO_DESKTOP_BACKUP_DIR",
                    config_dir.join("downloads"),
                )
                .env("ARCHIPELAGO_DESKTOP_NO_KEYRING", "1")
                .env("ARCHIPELAGO_DESKTOP_NO_BROWSER", "1")
                .env("RUST_LOG", "warn,archipelago_desktop=debug")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting {}", tauri_driver.display()))?,
        );
        let server = format!("http://127.0.0.1:{port}");
        wait_listening(port, Duration::from_secs(20))
            .await
            .context("tauri-driver did not start listening")?;
        let driver = WebDriver::start(&server, &app).await?;
        driver.wait_ready(START_TIMEOUT).await?;
        let Some(tauri_driver) = started.tauri_driver.take() else {
            bail!("lost track of the processes started");
        };
        Ok(Self {
            driver,
            artifacts: artifacts.to_owned(),
            display,
            xvfb: started.xvfb.take(),
            tauri_driver,
        })
    }

    /// Saves a screenshot as `artifacts/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        // WebKit paints after the DOM changed: let the last change show.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let path = self.artifacts.join(format!("{name}.png"));
        // The X server's own picture of the window, not WebDriver's: the app
        // renders without accelerated compositing, and WebKitWebDriver's
        // snapshot never answers in that mode. This is what a person sees.
        let out = std::process::Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(&path)
            .output()
            .context("running ImageMagick's import (tests/desktop/setup.sh installs it)")?;
        anyhow::ensure!(
            out.status.success(),
            "import -display {} failed: {}",
            self.display,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(path)
    }

    /// Ends the session, then everything started.
    pub async fn stop(self) -> Result<()> {
        let quit = self.driver.quit().await;
        drop(self);
        quit
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        stop_group(&mut self.tauri_driver);
        if let Some(xvfb) = self.xvfb.as_mut() {
            stop_group(xvfb);
        }
    }
}

/// Processes started so far, stopped if starting fails half-way.
struct Started {
    xvfb: Option<Child>,
    tauri_driver: Option<Child>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for child in [self.tauri_driver.as_mut(), self.xvfb.as_mut()]
            .into_iter()
            .flatten()
        {
            stop_group(child);
        }
    }
}

/// Stops a child started as the leader of its process group, with all it
/// started.
fn stop_group(child: &mut Child) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.wait();
}

/// Builds the desktop app (dev profile) and returns its binary. The
/// frontend must have been built: its files are embedded.
pub fn build_desktop() -> Result<PathBuf> {
    let root = repo_root();
    if !root.join("frontend/dist/index.html").is_file() {
        bail!(
            "frontend/dist is missing: build the frontend first (cd frontend && npm ci && npm run build)"
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = root.join("src-tauri/Cargo.toml");
    let out = Command::new(&cargo)
        .args(["build", "--bin", "archipelago-desktop"])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .context("running cargo build for the desktop app")?;
    if !out.status.success() {
        bail!(
            "cargo build of the desktop app failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| msg["target"]["name"] == "archipelago-desktop")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| anyhow!("cargo named no executable for archipelago-desktop"))
}

/// `$TAURI_DRIVER`, else where `tests/desktop/setup.sh` puts it, else
/// `PATH`.
fn find_tauri_driver() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("TAURI_DRIVER") {
        return Ok(PathBuf::from(path));
    }
    let cache = std::env::var_os("ARCHIPELAGO_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/archipelago"), PathBuf::from);
    let cached = cache.join("cargo-tools/bin/tauri-driver");
    if cached.is_file() {
        return Ok(cached);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("tauri-driver"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("tauri-driver not found: run tests/desktop/setup.sh (as root)"))
}

/// Starts Xvfb (`xvfb`, a command naming it) on a display it picks
/// itself; returns it and `:N`. Its log goes to `artifacts/xvfb.log`.
pub fn start_xvfb(mut xvfb: Command, artifacts: &Path) -> Result<(Child, String)> {
    let log = std::fs::File::create(artifacts.join("xvfb.log"))?;
    let mut xvfb = xvfb
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting Xvfb (tests/desktop/setup.sh installs it)")?;
    let mut line = String::new();
    let read = xvfb
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    let number = line.trim();
    if !matches!(read, Some(Ok(n)) if n > 0) || number.parse::<u32>().is_err() {
        stop_group(&mut xvfb);
        bail!(
            "Xvfb did not say which display it took; see {}",
            artifacts.join("xvfb.log").display()
        );
    }
    Ok((xvfb, format!(":{number}")))
}

/// Fails unless the calling thread is inside the network namespace `ns`:
/// the `WebDriver` client talks to tauri-driver on that namespace's
/// loopback.
fn ensure_inside(ns: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let ours = std::fs::metadata("/proc/thread-self/ns/net")?;
    let theirs = std::fs::metadata(Path::new("/var/run/netns").join(ns))
        .with_context(|| format!("no network namespace {ns}"))?;
    if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
        bail!("start the app from a thread inside the network namespace {ns} (TestNetwork::enter)");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn wait_listening(port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
