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
