//! The marketplace and the dashboard's operations on one node's apps: the
//! catalog (icons cached in memory: they only change with the catalog),
//! install, update and uninstall with their progress streamed to the
//! caller, start/stop/restart, the app's update and backup settings, logs
//! (once, or followed until stopped), stats, and the address of an app's
//! web interface, opened in the user's browser. Backups are in
//! [`crate::backups`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use archipelago_api::methods::{
    AppParams, AppSettings, CatalogIcon, CatalogIconResult, CatalogList, CatalogListResult, Empty,
    InstallProgress, LogEntry, LogsParams, LogsResult, PackageInstall, PackageList,
    PackageListResult, PackageLogs, PackageRestart, PackageSettings, PackageStart, PackageStats,
    PackageStatus, PackageStatusMethod, PackageStop, PackageUninstall, PackageUpdate,
    SettingsParams, StatsResult, UiLink, UninstallParams, UninstallResult, UpdateResult,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_client::Address;

use crate::error::{DesktopError, Kind};
use crate::nodes::Nodes;

/// The `stream` of the last entry a followed log sends when the node ended
/// the stream (app removed, node restarted, connection lost); its `text`
/// says why.
pub const END_OF_FOLLOW: &str = "end";

/// Per-node app data kept in memory.
#[derive(Debug, Default)]
pub struct AppCache {
    /// (node id, app id) → icon.
    icons: Mutex<HashMap<(String, String), CatalogIconResult>>,
    /// Follow id → the task forwarding the log lines.
    follows: Mutex<HashMap<String, Follow>>,
    next_follow: AtomicU64,
}

#[derive(Debug)]
struct Follow {
    node_id: String,
    task: tokio::task::AbortHandle,
}

impl AppCache {
    fn icons(&self) -> MutexGuard<'_, HashMap<(String, String), CatalogIconResult>> {
        self.icons.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn follows(&self) -> MutexGuard<'_, HashMap<String, Follow>> {
        self.follows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops a removed node's icons and stops its followed logs.
    pub fn forget_node(&self, node_id: &str) {
        self.icons().retain(|(node, _), _| node != node_id);
        self.follows().retain(|_, follow| {
            let keep = follow.node_id != node_id;
            if !keep {
                follow.task.abort();
            }
            keep
        });
    }

    /// How many logs are followed now.
    pub fn follow_count(&self) -> usize {
        self.follows().len()
    }
}

fn app(id: &str) -> AppParams {
    AppParams { id: id.to_owned() }
}

impl Nodes {
    pub async fn catalog_list(&self, node: &str) -> Result<CatalogListResult, DesktopError> {
        self.call::<CatalogList>(node, Empty {}).await
    }

    /// An app's icon, from memory after the first time.
    pub async fn catalog_icon(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<CatalogIconResult, DesktopError> {
        let key = (node.to_owned(), app_id.to_owned());
        if let Some(icon) = self.apps.icons().get(&key) {
            return Ok(icon.clone());
        }
        let icon = self.call::<CatalogIcon>(node, app(app_id)).await?;
        self.apps.icons().insert(key, icon.clone());
        Ok(icon)
    }

    pub async fn package_list(&self, node: &str) -> Result<PackageListResult, DesktopError> {
        self.call::<PackageList>(node, Empty {}).await
    }

    pub async fn package_status(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<PackageStatus, DesktopError> {
        self.call::<PackageStatusMethod>(node, app(app_id)).await
    }

    pub async fn package_start(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<PackageStatus, DesktopError> {
        self.call::<PackageStart>(node, app(app_id)).await
    }

    pub async fn package_stop(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<PackageStatus, DesktopError> {
        self.call::<PackageStop>(node, app(app_id)).await
    }

    pub async fn package_restart(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<PackageStatus, DesktopError> {
        self.call::<PackageRestart>(node, app(app_id)).await
    }

    pub async fn package_stats(
        &self,
        node: &str,
        app_id: &str,
    ) -> Result<StatsResult, DesktopError> {
        self.call::<PackageStats>(node, app(app_id)).await
    }

    /// The last `lines` (default 100, at most 10 000) of each container.
    pub async fn package_logs(
        &self,
        node: &str,
        app_id: &str,
        lines: Option<u32>,
    ) -> Result<LogsResult, DesktopError> {
        self.call::<PackageLogs>(node, logs_params(app_id, lines, false))
            .await
    }

    /// Installs an app; each progress report goes to `on_progress`.
    pub async fn package_install(
        &self,
        node: &str,
        app_id: &str,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<PackageStatus, DesktopError> {
        self.call_streaming::<PackageInstall>(node, app(app_id), progress_only(on_progress))
            .await
    }

    /// Updates an app to the version its catalog offers; each progress
    /// report goes to `on_progress`. A new version that does not get
    /// healthy is rolled back by the node: the error is then
    /// `update_rolled_back`, its message naming the container, its exit
    /// status and its last log lines.
    pub async fn package_update(
        &self,
        node: &str,
        app_id: &str,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<UpdateResult, DesktopError> {
        self.call_streaming::<PackageUpdate>(node, app(app_id), progress_only(on_progress))
            .await
    }

    /// Replaces an app's update and backup settings.
    pub async fn package_settings(
        &self,
        node: &str,
        app_id: &str,
        settings: AppSettings,
    ) -> Result<PackageStatus, DesktopError> {
        let params = SettingsParams {
            id: app_id.to_owned(),
            settings,
        };
        self.call::<PackageSettings>(node, params).await
    }

    /// Uninstalls an app, keeping its data when asked.
    pub async fn package_uninstall(
        &self,
        node: &str,
        app_id: &str,
        keep_data: bool,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<UninstallResult, DesktopError> {
        let params = UninstallParams {
            id: app_id.to_owned(),
            keep_data,
        };
        self.call_streaming::<PackageUninstall>(node, params, progress_only(on_progress))
            .await
    }

    /// Follows an app's logs: the last `lines` (none by default: the
    /// frontend shows [`Nodes::package_logs`] first), then new ones as they come,
    /// each given to `on_line` until it returns false, [`Nodes::logs_stop`]
    /// is called, or the node ends the stream (then a last entry with
    /// stream [`END_OF_FOLLOW`] says why). Returns the follow's id once the
    /// node said the app is there.
    pub async fn logs_follow(
        self: &Arc<Self>,
        node: &str,
        app_id: &str,
        lines: Option<u32>,
        on_line: impl Fn(LogEntry) -> bool + Send + Sync + 'static,
    ) -> Result<String, DesktopError> {
        // Errors a person must see (not logged in, no such app, node down)
        // come now, not in a stream nobody reads yet.
        self.package_status(node, app_id).await?;
        let follow_id = format!(
            "follow-{}",
            self.apps.next_follow.fetch_add(1, Ordering::Relaxed) + 1
        );
        let me = Arc::clone(self);
        let (node_id, params, id) = (
            node.to_owned(),
            logs_params(app_id, Some(lines.unwrap_or(0)), true),
            follow_id.clone(),
        );
        // Held while spawning, so that a task ending at once finds itself
        // in the map to remove.
        let mut follows = self.apps.follows();
        let task = tokio::spawn(async move {
            let on_line = Arc::new(on_line);
            let closed = Arc::new(tokio::sync::Notify::new());
            let forward = {
                let (on_line, closed) = (Arc::clone(&on_line), Arc::clone(&closed));
                move |event| {
                    if let StreamEvent::Log(line) = event
                        && !on_line(line)
                    {
                        closed.notify_one();
                    }
                }
            };
            tokio::select! {
                ended = me.call_streaming::<PackageLogs>(&node_id, params, forward) => {
                    let why = match ended {
                        Ok(_) => "the node ended the log stream".to_owned(),
                        Err(e) => e.message,
                    };
                    on_line(LogEntry {
                        container: String::new(),
                        stream: END_OF_FOLLOW.to_owned(),
                        text: why,
                    });
                }
                () = closed.notified() => {}
            }
            me.apps.follows().remove(&id);
        });
        follows.insert(
            follow_id.clone(),
            Follow {
                node_id: node.to_owned(),
                task: task.abort_handle(),
            },
        );
        Ok(follow_id)
    }

    /// Stops following; an unknown (already ended) follow is no error.
    pub fn logs_stop(&self, follow_id: &str) {
        if let Some(follow) = self.apps.follows().remove(follow_id) {
            follow.task.abort();
        }
    }

    /// The address of an app's web interface on its node, opened in the
    /// user's browser (unless the settings say not to).
    pub async fn open_ui(&self, node: &str, app_id: &str) -> Result<String, DesktopError> {
        let record = self.record(node)?;
        let status = self.package_status(node, app_id).await?;
        let ui = status.ui.ok_or_else(|| {
            DesktopError::new(Kind::NoUi, format!("{} has no web interface", status.name))
        })?;
        let url = ui_url(&record.address, &ui)?;
        if self.settings.open_browser {
            open::that_detached(&url).map_err(|e| {
                DesktopError::new(
                    Kind::OpenFailed,
                    format!("cannot start a browser for {url}: {e}"),
                )
            })?;
        }
        Ok(url)
    }
}

/// A stream handler that passes progress reports on (and nothing else: the
/// operations that report progress send no log lines).
pub(crate) fn progress_only(
    mut on_progress: impl FnMut(InstallProgress) + Send,
) -> impl FnMut(StreamEvent) + Send {
    move |event| {
        if let StreamEvent::Progress(p) = event {
            on_progress(p);
        }
    }
}

fn logs_params(app_id: &str, lines: Option<u32>, follow: bool) -> LogsParams {
    LogsParams {
        id: app_id.to_owned(),
        container: None,
        lines: lines
            .unwrap_or(LogsParams::DEFAULT_LINES)
            .min(LogsParams::MAX_LINES),
        follow,
    }
}

/// `scheme://host:port/path` for an app's UI on the node at `address`.
/// What the node sends is checked: only http(s), a path without spaces or
/// control characters.
pub fn ui_url(address: &str, ui: &UiLink) -> Result<String, DesktopError> {
    let bad = |why: &str| DesktopError::new(Kind::Protocol, format!("the node's UI link {why}"));
    let address = Address::parse(address).map_err(|e| bad(&e.0))?;
    if ui.scheme != "http" && ui.scheme != "https" {
        return Err(bad(&format!("has scheme `{}`, not http(s)", ui.scheme)));
    }
    if ui.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("has a path with spaces or control characters"));
    }
    let host = address.host();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let path = if ui.path.starts_with('/') {
        ui.path.clone()
    } else {
        format!("/{}", ui.path)
    };
    Ok(format!("{}://{host}:{}{path}", ui.scheme, ui.port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn link(scheme: &str, port: u16, path: &str) -> UiLink {
        UiLink {
            scheme: scheme.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn ui_urls_use_the_node_host_and_the_app_port() {
        assert_eq!(
            ui_url("node.local:7443", &link("http", 8080, "/")).unwrap(),
            "http://node.local:8080/"
        );
        assert_eq!(
            ui_url("[fe80::1]:7443", &link("https", 3000, "admin")).unwrap(),
            "https://[fe80::1]:3000/admin"
        );
        assert_eq!(
            ui_url("10.0.0.2:7443", &link("http", 80, "")).unwrap(),
            "http://10.0.0.2:80/"
        );
    }

    #[test]
    fn odd_ui_links_are_refused() {
        assert!(ui_url("n:1", &link("file", 80, "/")).is_err());
        assert!(ui_url("n:1", &link("javascript", 80, "/")).is_err());
        assert!(ui_url("n:1", &link("http", 80, "/a b")).is_err());
        assert!(ui_url("n:1", &link("http", 80, "/\n")).is_err());
    }

    #[test]
    fn log_lines_are_capped() {
        assert_eq!(logs_params("a", None, false).lines, 100);
        assert_eq!(logs_params("a", Some(1_000_000), true).lines, 10_000);
    }
}
