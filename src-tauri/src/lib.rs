//! The Archipelago desktop app's Rust side: the list of nodes with their
//! pinned certificate fingerprints ([`registry`]), their session tokens in
//! the OS keyring or a private file ([`tokens`]), one API client per node
//! ([`nodes`]), the app operations of the marketplace and the dashboard
//! ([`apps`]), and the thin commands the frontend invokes ([`commands`]).
//!
//! The frontend (`frontend/`) never talks to the network: it calls these
//! commands, and the content security policy (`tauri.conf.json`) keeps it
//! to its own files. Errors reach it as [`DesktopError`] `{code, message}`.
//!
//! [`run_app`] takes the Tauri builder, so tests drive the same commands
//! with `tauri::test::mock_builder()`.

pub mod apps;
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
        Ok(())
    });
    builder.run(tauri::generate_context!())?;
    Ok(())
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
