//! What the app takes from its environment: where its files live (and
//! where downloaded backups go), whether to use the OS keyring, whether
//! "open" may start a browser. Read once at start; tests build their own.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::DesktopError;

/// Overrides the configuration folder (node list, token file).
pub const CONFIG_DIR_ENV: &str = "ARCHIPELAGO_DESKTOP_CONFIG_DIR";
/// `1`: keep tokens in the 0600 file, never in the OS keyring.
pub const NO_KEYRING_ENV: &str = "ARCHIPELAGO_DESKTOP_NO_KEYRING";
/// `1`: "open an app's UI" only returns the address (no browser started),
/// for tests under Xvfb.
pub const NO_BROWSER_ENV: &str = "ARCHIPELAGO_DESKTOP_NO_BROWSER";
/// Overrides the folder downloaded backups are saved in.
pub const BACKUP_DIR_ENV: &str = "ARCHIPELAGO_DESKTOP_BACKUP_DIR";

/// How long the overview waits for each node: a node slower than this is
/// shown as not answering rather than holding up the grid.
pub const OVERVIEW_TIMEOUT: Duration = Duration::from_secs(3);
/// How long probing a new node's certificate may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds `nodes.json` and, without a keyring, `tokens.json`.
    pub config_dir: PathBuf,
    /// Where downloaded backups are saved (and the only folder a backup is
    /// uploaded from); `None` when the system has no downloads folder and
    /// [`BACKUP_DIR_ENV`] is not set: downloading then says so.
    pub backup_dir: Option<PathBuf>,
    pub use_keyring: bool,
    pub open_browser: bool,
    pub overview_timeout: Duration,
    pub probe_timeout: Duration,
}

impl Settings {
    /// From the environment: the folder is `$ARCHIPELAGO_DESKTOP_CONFIG_DIR`
    /// or the user's configuration folder's `archipelago-desktop`
    /// (`~/.config/archipelago-desktop` on Linux).
    pub fn from_env() -> Result<Self, DesktopError> {
        let config_dir = match std::env::var_os(CONFIG_DIR_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => dirs::config_dir()
                .ok_or_else(|| {
                    DesktopError::storage(format!(
                        "cannot find the user's configuration folder: set HOME, or {CONFIG_DIR_ENV}"
                    ))
                })?
                .join("archipelago-desktop"),
        };
        let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
        Ok(Self {
            config_dir,
            backup_dir: backup_dir_from_env(),
            use_keyring: !on(NO_KEYRING_ENV),
            open_browser: !on(NO_BROWSER_ENV),
            overview_timeout: OVERVIEW_TIMEOUT,
            probe_timeout: PROBE_TIMEOUT,
        })
    }

    /// Files in `dir` (downloaded backups in its `downloads`), no keyring,
    /// no browser (tests).
    pub fn isolated(dir: PathBuf) -> Self {
        Self {
            backup_dir: Some(dir.join("downloads")),
            config_dir: dir,
            use_keyring: false,
            open_browser: false,
            overview_timeout: OVERVIEW_TIMEOUT,
            probe_timeout: PROBE_TIMEOUT,
        }
    }
}

/// `$ARCHIPELAGO_DESKTOP_BACKUP_DIR`, or the user's downloads folder's
/// `Archipelago` (`~/Downloads/Archipelago` on Linux, `~/Downloads` when the
/// system names no downloads folder).
fn backup_dir_from_env() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BACKUP_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    dirs::download_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join("Downloads")))
        .map(|downloads| downloads.join("Archipelago"))
}
