//! Every method of a node's API with its parameters and result, as types.
//! The daemon dispatches on [`Method::NAME`]; clients call
//! `client.call::<PackageInstall>(params)` and get the result type back, so
//! a renamed field breaks the build, not a user.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::state::{ActiveState, AppId, RunState};

/// One API method.
pub trait Method {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// Whether the method answers with server-sent events when asked to
    /// (see [`crate::rpc`]).
    const STREAMS: bool = false;
    type Params: Serialize + DeserializeOwned + Send;
    type Output: Serialize + DeserializeOwned + Send;
}

macro_rules! method {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty => $output:ty $(, streams = $streams:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;
        impl Method for $ty {
            const NAME: &'static str = $name;
            $(const STREAMS: bool = $streams;)?
            type Params = $params;
            type Output = $output;
        }
    };
}

method!(
    /// Exchanges the node's password for a session token. The only method
    /// that needs no session.
    AuthLogin, "auth.login", LoginParams => Session);
method!(
    /// Ends the session whose token the request carries.
    AuthLogout, "auth.logout", Empty => Empty);
method!(
    /// The node's version, uptime and resources.
    NodeInfo, "node.info", Empty => NodeInfoResult);
method!(
    /// The apps this node can install.
    CatalogList, "catalog.list", Empty => CatalogListResult);
method!(
    /// One catalog app's icon (PNG, at most 64 KiB), from the catalog that
    /// signed it.
    CatalogIcon, "catalog.icon", AppParams => CatalogIconResult);
method!(
    /// Installs an app: validate, secrets, pull (progress streamed), units,
    /// start, wait until healthy. A failed install leaves nothing behind.
    PackageInstall, "package.install", AppParams => PackageStatus, streams = true);
method!(
    /// Starts an installed app and waits until it is healthy.
    PackageStart, "package.start", AppParams => PackageStatus);
method!(
    /// Stops an installed app (it stays stopped across reboots).
    PackageStop, "package.stop", AppParams => PackageStatus);
method!(
    /// Restarts an installed app's containers and waits until healthy.
    PackageRestart, "package.restart", AppParams => PackageStatus);
method!(
    /// Removes an app: units, containers, volumes, network, secrets and,
    /// unless asked to keep it, its data.
    PackageUninstall, "package.uninstall", UninstallParams => UninstallResult, streams = true);
method!(
    /// One installed app's state.
    PackageStatusMethod, "package.status", AppParams => PackageStatus);
method!(
    /// Every installed app's state.
    PackageList, "package.list", Empty => PackageListResult);
method!(
    /// The last lines of an app's logs, and new ones as they come when
    /// `follow` is set and the answer is streamed.
    PackageLogs, "package.logs", LogsParams => LogsResult, streams = true);
method!(
    /// CPU and memory of an app's containers.
    PackageStats, "package.stats", AppParams => StatsResult);
method!(
    /// Updates an app to the version its catalog offers now: the new images
    /// are pulled while the old version runs (progress streamed), the data
    /// is snapshotted when the images change, the units are switched and the
    /// node waits until healthy. A new version that does not get healthy is
    /// rolled back (units, images, data) and the error says why.
    PackageUpdate, "package.update", AppParams => UpdateResult, streams = true);
method!(
    /// Makes an encrypted backup of one app (data, volumes, generated
    /// secrets, manifest) on the node: in its backup folder, or in
    /// `target` (a folder on the node, an external disk say).
    PackageBackup, "package.backup", BackupParams => BackupInfo, streams = true);
method!(
    /// Restores an app from a backup (on this node or uploaded from
    /// another): the archive is decrypted and checked in full before
    /// anything changes, then the app is installed at the archived version
    /// with its data and secrets and started until healthy.
    PackageRestore, "package.restore", RestoreParams => PackageStatus, streams = true);
method!(
    /// An app's update and backup settings (replaced as a whole).
    PackageSettings, "package.settings", SettingsParams => PackageStatus);
method!(
    /// The backups in the node's backup folder, newest first.
    BackupList, "backup.list", BackupListParams => BackupListResult);
method!(
    /// One piece of a backup in the node's backup folder, for a client
    /// that copies it to the user's computer.
    BackupDownload, "backup.download", BackupChunkParams => BackupChunk);
method!(
    /// One piece of a backup sent to the node's backup folder (to restore
    /// it there); the last piece carries the SHA-256 of the whole file.
    BackupUpload, "backup.upload", BackupUploadParams => BackupUploadResult);
method!(
    /// Deletes a backup from the node's backup folder.
    BackupDelete, "backup.delete", BackupNameParams => Empty);

/// Bytes of backup per `backup.download` / `backup.upload` call: well
/// under the request limit once base64-encoded.
pub const BACKUP_CHUNK_BYTES: usize = 512 * 1024;

/// No parameters, or no result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginParams {
    pub password: String,
}

/// Never prints the password.
impl std::fmt::Debug for LoginParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginParams").finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

/// Never prints the token.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppParams {
    pub id: AppId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UninstallParams {
    pub id: AppId,
    /// Keep the app's data folders and volumes for a later install.
    #[serde(default)]
    pub keep_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct UninstallResult {
    pub id: AppId,
    /// Whether data was kept (as asked).
    pub kept_data: bool,
    /// What was removed, for the user to see (`unit hello-web_web.container`,
    /// `volume systemd-hello-web_data`, …).
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct NodeInfoResult {
    pub version: String,
    pub hostname: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub uptime_secs: u64,
    /// The filesystem holding the apps' data.
    pub disk: DiskInfo,
    pub memory: MemoryInfo,
    pub cpu: CpuInfo,
    pub apps_installed: u32,
    pub apps_running: u32,
    pub apps_failed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct DiskInfo {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub total_bytes: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub free_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct MemoryInfo {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub total_bytes: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct CpuInfo {
    pub cores: u32,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct CatalogListResult {
    pub apps: Vec<CatalogApp>,
    /// Every catalog the node is configured with, in the order they are
    /// searched, and whether each one verified.
    pub sources: Vec<CatalogSource>,
}

/// One catalog a node takes apps from: the official one shipped with the
/// daemon, or a community catalog its owner added with its own public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct CatalogSource {
    /// Short name apps are shown with (`archipelago` for the official one).
    pub name: String,
    /// Folder or URL the catalog is read from.
    pub location: String,
    /// The minisign key id its signature must carry (16 hex digits).
    pub key_id: String,
    /// Whether this is the catalog shipped with the daemon.
    pub official: bool,
    /// Apps it offers (0 when it was refused).
    pub apps: u32,
    /// Why the catalog was refused (bad signature, tampered manifest,
    /// unreadable), when it was.
    pub error: Option<String>,
}

/// An app's icon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct CatalogIconResult {
    /// Always `image/png`.
    pub media_type: String,
    /// The image, base64 (standard alphabet, padded).
    pub data_base64: String,
}

/// One installable app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct CatalogApp {
    pub id: AppId,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Marketplace category (`bitcoin`, `lightning`, `files`, …).
    pub category: String,
    /// Short description for the marketplace card.
    pub short_description: String,
    /// Whether `catalog.icon` has an icon for this app.
    pub has_icon: bool,
    /// Apps that must be installed first.
    pub dependencies: Vec<AppId>,
    /// Installed version, when installed.
    pub installed: Option<String>,
    /// Name of the catalog the app comes from (see [`CatalogSource`]).
    pub source: String,
    /// Project pages (home page, source code).
    pub upstream: Vec<String>,
    /// Installed, and this catalog's manifest differs from the installed
    /// one: `package.update` installs it.
    #[serde(default)]
    pub update_available: bool,
}

/// The result of `package.update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct UpdateResult {
    pub status: PackageStatus,
    pub from_version: String,
    pub to_version: String,
    /// Whether the data was snapshotted first (the images changed); a
    /// change of settings only is applied without.
    pub data_snapshot: bool,
}

/// Parameters of `package.backup`: exactly one of `passphrase` and
/// `recipient` says who can open the backup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupParams {
    pub id: AppId,
    /// Encrypt with this passphrase (age's scrypt recipient).
    #[serde(default)]
    pub passphrase: Option<String>,
    /// Encrypt to this age public key (`age1…`); its owner holds the
    /// secret key, the node never sees it.
    #[serde(default)]
    pub recipient: Option<String>,
    /// A folder on the node to write the backup into (an external disk);
    /// the node's backup folder when absent.
    #[serde(default)]
    pub target: Option<String>,
}

/// Never prints the passphrase.
impl std::fmt::Debug for BackupParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupParams")
            .field("id", &self.id)
            .field("recipient", &self.recipient)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Parameters of `package.restore`: exactly one of `passphrase` and
/// `identity` opens the backup.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreParams {
    /// A backup's name in the node's backup folder, or the absolute path
    /// of a backup file on the node.
    pub backup: String,
    #[serde(default)]
    pub passphrase: Option<String>,
    /// An age secret key (`AGE-SECRET-KEY-1…`).
    #[serde(default)]
    pub identity: Option<String>,
}

/// Never prints the passphrase or the key.
impl std::fmt::Debug for RestoreParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreParams")
            .field("backup", &self.backup)
            .finish_non_exhaustive()
    }
}

/// One backup archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct BackupInfo {
    /// File name (`<app>-<version>-<UTC time>.archy-backup`).
    pub name: String,
    pub app: AppId,
    /// The app's version in the backup.
    pub version: String,
    /// Unix seconds.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub created: u64,
    /// Size of the encrypted file.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes: u64,
    /// Where it is on the node.
    pub path: String,
    /// SHA-256 of the encrypted file, hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupListParams {
    /// Only this app's backups.
    #[serde(default)]
    pub id: Option<AppId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct BackupListResult {
    pub backups: Vec<BackupInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupNameParams {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupChunkParams {
    pub name: String,
    /// Where the piece starts.
    pub offset: u64,
}

/// A piece of a backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupChunk {
    /// At most [`BACKUP_CHUNK_BYTES`] bytes, base64 (standard, padded).
    pub data_base64: String,
    pub offset: u64,
    /// Size of the whole file.
    pub total: u64,
    /// True when this piece reaches the end of the file.
    pub eof: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupUploadParams {
    pub name: String,
    /// Must equal the bytes received so far (a broken upload resumes
    /// where the node says it stopped).
    pub offset: u64,
    /// At most [`BACKUP_CHUNK_BYTES`] bytes, base64.
    pub data_base64: String,
    /// On the last piece: the SHA-256 (hex) of the whole file. The node
    /// checks it, then keeps the file under `name`.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupUploadResult {
    /// Bytes the node has.
    pub received: u64,
    /// The backup, once the last piece arrived and checked.
    pub done: Option<BackupInfo>,
}

/// An app's update and backup settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct AppSettings {
    /// Update automatically when the catalog offers a new version, looking
    /// every this many hours; 0 (the default) never updates by itself.
    #[serde(default)]
    pub auto_update_hours: u32,
    /// Back up by itself on a schedule.
    #[serde(default)]
    pub backup_schedule: Option<BackupSchedule>,
    /// Warn when the last backup is older than this many hours; 0 never
    /// warns.
    #[serde(default)]
    pub backup_max_age_hours: u32,
}

/// Scheduled backups. They are encrypted to a public key, so that no
/// passphrase or secret key is ever kept on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct BackupSchedule {
    /// Every this many hours (at least 1).
    pub every_hours: u32,
    /// age public key (`age1…`).
    pub recipient: String,
    /// How many of the app's backups to keep in the node's backup folder
    /// (older ones are deleted after a new one succeeded); at least 1.
    pub keep: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsParams {
    pub id: AppId,
    pub settings: AppSettings,
}

/// An installed app as the node sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct PackageStatus {
    pub id: AppId,
    pub name: String,
    pub version: String,
    /// What the user asked for.
    pub run: RunState,
    /// What the node observes, summed over the containers.
    pub health: Health,
    pub containers: Vec<ContainerStatus>,
    /// Where a person opens the app, relative to the node's address.
    pub ui: Option<UiLink>,
    /// Why the app is not as asked, when it is not.
    pub problem: Option<String>,
    /// The catalog the app was installed from (empty for apps installed
    /// before catalogs were named).
    #[serde(default)]
    pub source: String,
    /// The version the catalog offers now, when it differs from what is
    /// installed (`package.update` installs it).
    #[serde(default)]
    pub update_available: Option<String>,
    /// When the last backup in the node's backup folder was made (unix
    /// seconds).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_backup: Option<u64>,
    /// The last backup is older than the app's limit, or there is none.
    #[serde(default)]
    pub backup_overdue: bool,
    #[serde(default)]
    pub settings: AppSettings,
}

/// An app's observed condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub enum Health {
    /// Every container up and passing its health check.
    Healthy,
    /// On its way up (or a health check not yet passed).
    Starting,
    /// Stopped, as asked.
    Stopped,
    /// A container failed, or the app is not in the state asked for.
    Failed,
    /// The node could not tell (its manifest is invalid, systemd did not
    /// answer).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct ContainerStatus {
    /// `<app>_<container>`: the podman container name.
    pub name: String,
    /// The systemd unit running it.
    pub unit: String,
    pub active_state: ActiveState,
    pub sub_state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct UiLink {
    /// `http` or `https`.
    pub scheme: String,
    pub port: u16,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct PackageListResult {
    pub apps: Vec<PackageStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    pub id: AppId,
    /// One container (its name in the manifest); all when absent.
    #[serde(default)]
    pub container: Option<String>,
    /// How many of the last lines per container (at most 10 000).
    #[serde(default = "LogsParams::default_lines")]
    pub lines: u32,
    /// Keep the stream open and send new lines as `log` events.
    #[serde(default)]
    pub follow: bool,
}

impl LogsParams {
    /// Lines sent when the caller does not say.
    pub const DEFAULT_LINES: u32 = 100;
    /// The most lines one call returns per container.
    pub const MAX_LINES: u32 = 10_000;

    const fn default_lines() -> u32 {
        Self::DEFAULT_LINES
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LogEntry {
    /// The container's name in the manifest.
    pub container: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LogsResult {
    /// The lines (when streamed, they came as events and this is empty).
    pub lines: Vec<LogEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct StatsResult {
    pub containers: Vec<ContainerStatsEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct ContainerStatsEntry {
    /// The container's name in the manifest.
    pub container: String,
    /// Percent of one CPU.
    pub cpu_percent: f64,
    /// `None` when the node cannot account memory per container.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub memory_bytes: Option<u64>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub memory_limit_bytes: u64,
}

/// How far a long operation got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct InstallProgress {
    pub id: AppId,
    pub phase: Phase,
    /// The image being pulled, while pulling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Images pulled so far and in all.
    pub images_done: u32,
    pub images_total: u32,
    /// Blobs (layers and configs) of the current image seen so far.
    /// podman's pull stream names blobs as they start and gives no byte
    /// counts, so this is the finest measure there is.
    pub blobs_seen: u32,
    /// A line for people (`Copying blob 3f1e…`, `starting hello-web_web`).
    pub message: String,
    /// Bytes copied so far and in all, while a backup or restore copies
    /// data (`bytes_total` is 0 when not known in advance).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes_done: u64,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes_total: u64,
}

/// The steps of an install, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub enum Phase {
    Validating,
    Pulling,
    Starting,
    Healthy,
    /// The install failed and what it did is being undone.
    RollingBack,
    Stopping,
    Removing,
    Done,
    /// An update copies the app's data aside before switching versions.
    Snapshotting,
    /// An update puts the new version's units in place.
    Switching,
    /// A backup copies and encrypts the app's data.
    Archiving,
    /// A restore decrypts and checks the archive.
    Verifying,
    /// A restore puts data and secrets back.
    Restoring,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let p = LoginParams {
            password: "hunter2".into(),
        };
        let s = Session {
            token: "abcdef".into(),
            expires_at: 9,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("abcdef"));
    }

    #[test]
    fn logs_params_default_to_the_last_hundred_lines() {
        let p: LogsParams = serde_json::from_str(r#"{"id":"hello-web"}"#).unwrap();
        assert_eq!(p.lines, 100);
        assert!(!p.follow);
        assert!(serde_json::from_str::<LogsParams>(r#"{"id":"x","lines":"many"}"#).is_err());
        assert!(serde_json::from_str::<AppParams>(r#"{"id":"x","extra":1}"#).is_err());
    }
}
