//! Where things live on a node, in one place so that the renderer (which
//! writes these paths into unit files), the secret store and the reconciler
//! always agree.
//!
//! For the service user `archipelago` with home `/var/lib/archipelago`:
//!
//! | what | path |
//! |---|---|
//! | Quadlet units | `~/.config/containers/systemd/` |
//! | state file | `~/.local/state/archipelago/state.json` |
//! | generated secrets | `~/.local/share/archipelago/secrets/<app>/files/<name>` |
//! | secret env files | `~/.local/share/archipelago/secrets/<app>/env/<container>.env` |
//! | app data folders | `~/.local/share/archipelago/apps/<app>/<path>` |
//! | the official catalog (signed, shipped with the daemon) | `/usr/share/archipelago/` |
//! | community catalogs the owner added | `~/.config/archipelago/catalogs.json` |
//! | copies of community catalogs fetched from the web | `~/.local/share/archipelago/catalogs/<name>/` |
//! | manifests of installed apps | `~/.local/share/archipelago/installed/<app>/manifest.yml` |
//! | API config (TLS, password, sessions) | `~/.config/archipelago/` |
//! | backups made on the node | `~/.local/share/archipelago/backups/` |
//! | an update's data snapshot | `~/.local/share/archipelago/snapshots/<app>.tar` |
//! | restores being checked, backup descriptions being written | `~/.local/share/archipelago/staging/` |

use std::path::{Path, PathBuf};

/// Where the `.deb` installs the official catalog.
pub const OFFICIAL_CATALOG: &str = "/usr/share/archipelago";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The service user's Quadlet folder.
    pub units_dir: PathBuf,
    /// Folder of the state file.
    pub state_dir: PathBuf,
    /// Root of the generated secrets (mode 0700).
    pub secrets_root: PathBuf,
    /// Root of the apps' data folders.
    pub data_root: PathBuf,
    /// Root of the official catalog, laid out as the repository
    /// (`catalog/catalog.json`, `apps/`, `icons/`).
    pub official_catalog: PathBuf,
    /// Copies of community catalogs fetched from the web, one folder each.
    pub catalog_cache_dir: PathBuf,
    /// Copies of the manifests apps were installed from, so that a catalog
    /// update never changes an installed app behind the user's back.
    pub installed_dir: PathBuf,
    /// The API's own files: TLS key and certificate, password hash,
    /// sessions (mode 0700).
    pub config_dir: PathBuf,
    /// Backups made on the node, and backups uploaded to restore (0700).
    pub backups_dir: PathBuf,
    /// Data snapshots of updates in progress (0700).
    pub snapshots_dir: PathBuf,
    /// Decrypted backups being checked, descriptions being written (0700).
    pub staging_dir: PathBuf,
}

impl Layout {
    /// The standard layout under a home directory.
    pub fn under_home(home: &Path) -> Self {
        let share = home.join(".local/share/archipelago");
        Self {
            units_dir: home.join(".config/containers/systemd"),
            state_dir: home.join(".local/state/archipelago"),
            secrets_root: share.join("secrets"),
            data_root: share.join("apps"),
            official_catalog: PathBuf::from(OFFICIAL_CATALOG),
            catalog_cache_dir: share.join("catalogs"),
            installed_dir: share.join("installed"),
            config_dir: home.join(".config/archipelago"),
            backups_dir: share.join("backups"),
            snapshots_dir: share.join("snapshots"),
            staging_dir: share.join("staging"),
        }
    }

    /// Folder holding everything secret of one app.
    pub fn app_secrets_dir(&self, app: &str) -> PathBuf {
        self.secrets_root.join(app)
    }

    /// Folder of an app's generated secret files.
    pub fn secret_files_dir(&self, app: &str) -> PathBuf {
        self.app_secrets_dir(app).join("files")
    }

    /// One generated secret of one app.
    pub fn secret_file(&self, app: &str, name: &str) -> PathBuf {
        self.secret_files_dir(app).join(name)
    }

    /// Folder of an app's per-container secret environment files.
    pub fn env_files_dir(&self, app: &str) -> PathBuf {
        self.app_secrets_dir(app).join("env")
    }

    /// The podman `--env-file` holding a container's secret variables.
    pub fn env_file(&self, app: &str, container: &str) -> PathBuf {
        self.env_files_dir(app).join(format!("{container}.env"))
    }

    /// An app's own data directory; bind mounts must stay inside it.
    pub fn app_data_dir(&self, app: &str) -> PathBuf {
        self.data_root.join(app)
    }

    /// The state file.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    /// The community catalogs the node's owner added, with their keys.
    pub fn catalogs_config(&self) -> PathBuf {
        self.config_dir.join("catalogs.json")
    }

    /// The manifest an installed app runs from.
    pub fn installed_manifest(&self, app: &str) -> PathBuf {
        self.installed_dir.join(app).join("manifest.yml")
    }

    /// The manifest an update switches an app to, until it is healthy.
    pub fn next_manifest(&self, app: &str) -> PathBuf {
        self.installed_dir.join(app).join("manifest.next.yml")
    }

    /// An update's snapshot of an app's data.
    pub fn snapshot(&self, app: &str) -> PathBuf {
        self.snapshots_dir.join(format!("{app}.tar"))
    }

    /// Folder of the API's TLS key and certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.config_dir.join("tls")
    }

    /// Markers of apps that must restart to pick up new secret values.
    pub fn restart_pending_dir(&self) -> PathBuf {
        self.state_dir.join("restart-pending")
    }
}
