//! The Archipelago desktop app's Rust side: the list of nodes with their
//! pinned certificate fingerprints ([`registry`]), their session tokens in
//! the OS keyring or a private file ([`tokens`]), one API client per node
//! ([`nodes`]), the app operations of the marketplace and the dashboard
//! ([`apps`]), the apps' backups and their copies on this computer
//! ([`backups`]), and the thin commands the frontend invokes
//! ([`commands`]).
//!
//! The frontend (`frontend/`) never talks to the network: it calls these
//! commands, and the content security policy (`tauri.conf.json`) keeps it
//! to its own files. Errors reach it as [`DesktopError`] `{code, message}`.
//!
//! [`run_app`] takes the Tauri builder, so tests drive the same commands
//! with `tauri::test::mock_builder()`.

pub mod apps;
pub mod backups;
pub mod commands;
pub mod error;
pub mod files;
pub mod nodes;
pub mod registry;
pub mod settings;
pub mod tokens;
pub mod types;

use std::sync::Arc;

use tauri::{Builder, Runtime};

pub use error::{DesktopError, Kind};
pub use nodes::Nodes;
pub use settings::Settings;
pub use types::{NodeEntry, NodeOverview, ProbeResult};

/// Registers the app's state and commands on `builder`, with `settings`.
pub fn app_builder<R: Runtime>(builder: Builder<R>, settings: Settings) -> Builder<R> {
    builder
        .manage(Arc::new(Nodes::new(settings)))
        .invoke_handler(commands::handler())
}

/// Runs the app until its window closes.
pub fn run_app<R: Runtime>(builder: Builder<R>) -> Result<(), RunError> {
    let settings = Settings::from_env()?;
    tracing::info!(
        config_dir = %settings.config_dir.display(),
        "starting Archipelago {}",
        env!("CARGO_PKG_VERSION")
    );
    let builder = app_builder(builder, settings).setup(|app| {
        use tauri::Manager as _;
        let nodes = app.state::<Arc<Nodes>>();
        tracing::info!("session tokens go to {}", nodes.token_backend());
        if let Some(window) = app.get_webview_window("main") {
            software_rendering(&window);
        }
        Ok(())
    });
    builder.run(tauri::generate_context!())?;
    Ok(())
}

/// Renders the page without `WebKit`'s accelerated compositing, unless
/// `ARCHIPELAGO_DESKTOP_GPU=1`. A dashboard of cards and lists gains
/// nothing from GPU layers, and on Linux each scrolling area then gets its
/// own backing store: measured with 50 nodes on screen, the process tree's
/// PSS falls from 376 MB to 252 MB (`cargo bench -p
/// archipelago-desktop-bench`), with the same start time.
fn software_rendering<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    if std::env::var_os("ARCHIPELAGO_DESKTOP_GPU").is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = window.with_webview(|webview| {
        use webkit2gtk::{SettingsExt as _, WebViewExt as _};
        if let Some(settings) = webview.inner().settings() {
            settings
                .set_hardware_acceleration_policy(webkit2gtk::HardwareAccelerationPolicy::Never);
        }
    }) {
        tracing::warn!("could not turn accelerated compositing off: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

/// Why the app could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Settings(#[from] DesktopError),
    #[error("the window could not run: {0}")]
    Tauri(#[from] tauri::Error),
}

/// The binary's entry point: logs to stderr (`RUST_LOG` filters), then
/// [`run_app`] with the real webview.
pub fn run() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,archipelago_desktop=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    match run_app(tauri::Builder::default()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("archipelago-desktop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
