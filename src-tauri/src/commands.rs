//! The commands the frontend invokes: thin wrappers over [`Nodes`], which
//! holds the logic and is tested on its own. Tauri turns the frontend's
//! `camelCase` arguments (`nodeId`) into these `snake_case` ones; every error
//! reaches the frontend as [`DesktopError`] `{code, message}`.
//!
//! Adding a command: here, in [`handler`], in `build.rs`'s `COMMANDS` and
//! in `capabilities/main.json` (or the window may not call it).

use std::sync::Arc;

use archipelago_api::methods::{
    AppSettings, BackupInfo, BackupListResult, CatalogIconResult, CatalogListResult,
    InstallProgress, LogEntry, LogsResult, PackageListResult, PackageStatus, StatsResult,
    UninstallResult, UpdateResult,
};
use tauri::ipc::Channel;
use tauri::{Runtime, State};

use crate::error::DesktopError;
use crate::nodes::Nodes;
use crate::types::{NodeEntry, NodeOverview, ProbeResult, TransferProgress};

type Result<T> = std::result::Result<T, DesktopError>;
type App<'a> = State<'a, Arc<Nodes>>;

/// The invoke handler with every command.
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        nodes_list,
        node_probe,
        node_add,
        node_remove,
        node_login,
        node_logout,
        nodes_overview,
        node_overview,
        catalog_list,
        catalog_icon,
        package_list,
        package_status,
        package_install,
        package_start,
        package_stop,
        package_restart,
        package_uninstall,
        package_logs,
        package_logs_follow,
        package_logs_stop,
        package_stats,
        package_open_ui,
        update_app,
        set_app_settings,
        backup_app,
        list_backups,
        delete_backup,
        download_backup,
        restore_backup,
        upload_and_restore,
    ]
}

#[tauri::command]
pub async fn nodes_list(app: App<'_>) -> Result<Vec<NodeEntry>> {
    app.list().await
}

#[tauri::command]
pub async fn node_probe(app: App<'_>, address: String) -> Result<ProbeResult> {
    app.probe(&address).await
}

#[tauri::command]
pub async fn node_add(
    app: App<'_>,
    address: String,
    fingerprint: String,
    name: Option<String>,
) -> Result<NodeEntry> {
    app.add(&address, &fingerprint, name.as_deref()).await
}

#[tauri::command]
pub async fn node_remove(app: App<'_>, node_id: String) -> Result<()> {
    app.remove(&node_id).await
}

#[tauri::command]
pub async fn node_login(app: App<'_>, node_id: String, password: String) -> Result<NodeEntry> {
    app.login(&node_id, &password).await
}

#[tauri::command]
pub async fn node_logout(app: App<'_>, node_id: String) -> Result<NodeEntry> {
    app.logout(&node_id).await
}

#[tauri::command]
pub async fn nodes_overview(app: App<'_>) -> Result<Vec<NodeOverview>> {
    app.inner().overview_all().await
}

#[tauri::command]
pub async fn node_overview(app: App<'_>, node_id: String) -> Result<NodeOverview> {
    app.overview(&node_id).await
}

#[tauri::command]
pub async fn catalog_list(app: App<'_>, node_id: String) -> Result<CatalogListResult> {
    app.catalog_list(&node_id).await
}

#[tauri::command]
pub async fn catalog_icon(
    app: App<'_>,
    node_id: String,
    app_id: String,
) -> Result<CatalogIconResult> {
    app.catalog_icon(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_list(app: App<'_>, node_id: String) -> Result<PackageListResult> {
    app.package_list(&node_id).await
}

#[tauri::command]
pub async fn package_status(
    app: App<'_>,
    node_id: String,
    app_id: String,
) -> Result<PackageStatus> {
    app.package_status(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_install(
    app: App<'_>,
    node_id: String,
    app_id: String,
    on_progress: Channel<InstallProgress>,
) -> Result<PackageStatus> {
    app.package_install(&node_id, &app_id, |p| send(&on_progress, p))
        .await
}

#[tauri::command]
pub async fn package_start(app: App<'_>, node_id: String, app_id: String) -> Result<PackageStatus> {
    app.package_start(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_stop(app: App<'_>, node_id: String, app_id: String) -> Result<PackageStatus> {
    app.package_stop(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_restart(
    app: App<'_>,
    node_id: String,
    app_id: String,
) -> Result<PackageStatus> {
    app.package_restart(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_uninstall(
    app: App<'_>,
    node_id: String,
    app_id: String,
    keep_data: bool,
    on_progress: Channel<InstallProgress>,
) -> Result<UninstallResult> {
    app.package_uninstall(&node_id, &app_id, keep_data, |p| send(&on_progress, p))
        .await
}

#[tauri::command]
pub async fn package_logs(
    app: App<'_>,
    node_id: String,
    app_id: String,
    lines: Option<u32>,
) -> Result<LogsResult> {
    app.package_logs(&node_id, &app_id, lines).await
}

#[tauri::command]
pub async fn package_logs_follow(
    app: App<'_>,
    node_id: String,
    app_id: String,
    lines: Option<u32>,
    on_line: Channel<LogEntry>,
) -> Result<String> {
    app.inner()
        .logs_follow(&node_id, &app_id, lines, move |line| {
            on_line.send(line).is_ok()
        })
        .await
}

#[tauri::command]
#[allow(clippy::needless_pass_by_value)] // Tauri commands take their arguments by value.
pub fn package_logs_stop(app: App<'_>, follow_id: String) {
    app.logs_stop(&follow_id);
}

#[tauri::command]
pub async fn package_stats(app: App<'_>, node_id: String, app_id: String) -> Result<StatsResult> {
    app.package_stats(&node_id, &app_id).await
}

#[tauri::command]
pub async fn package_open_ui(app: App<'_>, node_id: String, app_id: String) -> Result<String> {
    app.open_ui(&node_id, &app_id).await
}

#[tauri::command]
pub async fn update_app(
    app: App<'_>,
    node_id: String,
    app_id: String,
    on_progress: Channel<InstallProgress>,
) -> Result<UpdateResult> {
    app.package_update(&node_id, &app_id, |p| send(&on_progress, p))
        .await
}

#[tauri::command]
pub async fn set_app_settings(
    app: App<'_>,
    node_id: String,
    app_id: String,
    settings: AppSettings,
) -> Result<PackageStatus> {
    app.package_settings(&node_id, &app_id, settings).await
}

#[tauri::command]
pub async fn backup_app(
    app: App<'_>,
    node_id: String,
    app_id: String,
    passphrase: String,
    on_progress: Channel<InstallProgress>,
) -> Result<BackupInfo> {
    app.backup(&node_id, &app_id, passphrase, |p| send(&on_progress, p))
        .await
}

#[tauri::command]
pub async fn list_backups(
    app: App<'_>,
    node_id: String,
    app_id: Option<String>,
) -> Result<BackupListResult> {
    app.backup_list(&node_id, app_id.as_deref()).await
}

#[tauri::command]
pub async fn delete_backup(app: App<'_>, node_id: String, name: String) -> Result<()> {
    app.backup_delete(&node_id, &name).await
}

/// Returns where the backup was saved on this computer.
#[tauri::command]
pub async fn download_backup(
    app: App<'_>,
    node_id: String,
    name: String,
    on_progress: Channel<TransferProgress>,
) -> Result<String> {
    let path = app
        .backup_download(&node_id, &name, |p| send(&on_progress, p))
        .await?;
    Ok(path.to_string_lossy().into_owned())
}

#[tauri::command]
pub async fn restore_backup(
    app: App<'_>,
    node_id: String,
    name: String,
    passphrase: String,
    on_progress: Channel<InstallProgress>,
) -> Result<PackageStatus> {
    app.restore(&node_id, &name, passphrase, |p| send(&on_progress, p))
        .await
}

/// Uploads a backup that `download_backup` saved to `node_id`, then
/// restores it there.
#[tauri::command]
pub async fn upload_and_restore(
    app: App<'_>,
    node_id: String,
    local_path: String,
    passphrase: String,
    on_upload: Channel<TransferProgress>,
    on_progress: Channel<InstallProgress>,
) -> Result<PackageStatus> {
    app.upload_and_restore(
        &node_id,
        &local_path,
        passphrase,
        |p| send(&on_upload, p),
        |p| send(&on_progress, p),
    )
    .await
}

/// Progress whose window is gone has nobody to tell: the operation goes on.
fn send<T: tauri::ipc::IpcResponse>(channel: &Channel<T>, message: T) {
    if channel.send(message).is_err() {
        tracing::debug!("a progress message found its window closed");
    }
}
