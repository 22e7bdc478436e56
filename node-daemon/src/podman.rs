//! podman's REST API on the service user's socket, behind the narrow trait
//! the reconciler needs. The real implementation speaks HTTP over
//! `/run/user/<uid>/podman/podman.sock`; [`crate::fake::FakeNode`] stands in
//! for unit tests.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::manifest::Protocol;
use crate::podman_pause::Stale;

/// The user unit that listens on podman's API socket and starts
/// [`PODMAN_SERVICE`] on demand.
pub const PODMAN_SOCKET: &str = "podman.socket";
/// The user unit that serves podman's API.
pub const PODMAN_SERVICE: &str = "podman.service";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodmanError {
    /// The API could not be reached or answered with an error.
    #[error("podman's API failed: {0}")]
    Api(String),
    /// The registry or podman refused an image pull (podman says so in the
    /// stream's last line, after HTTP 200).
    #[error("pull of {reference} failed: {message}")]
    PullFailed { reference: String, message: String },
    /// The container or image named does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Nobody answers on the socket.
    #[error(
        "cannot reach podman's API at {path}: {message} (start it with `systemctl --user start podman.socket`)"
    )]
    Socket { path: PathBuf, message: String },
}

/// One published port as podman reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortBinding {
    /// `None` when bound on every address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// One of our containers (labelled `io.archipelago.managed=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// `<app>_<container>`.
    pub name: String,
    /// Value of the `io.archipelago.app` label.
    pub app: String,
    /// podman's `State` (`running`, `exited`, …).
    pub state: String,
    pub ports: Vec<PortBinding>,
    /// Value of the `io.archipelago.config` label: the digest of the unit
    /// file the container was started from.
    pub config_digest: Option<String>,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// The line without its newline (invalid UTF-8 replaced).
    pub text: String,
}

/// Which output of the container a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// What a pull reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// A blob (layer or config) started copying: its digest and how many
    /// distinct blobs the pull has seen so far.
    Blob { digest: String, seen: usize },
    /// Another line of podman's progress text (`Trying to pull …`,
    /// `Writing manifest …`), trimmed.
    Message(String),
    /// The pull is done: the image id.
    Done { id: String },
}

/// One sample of a container's resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerStats {
    /// CPU use in percent of one CPU, averaged since the container started.
    pub cpu_percent: f64,
    /// `None` when podman reports 0: the container's cgroup has no memory
    /// controller (nspawn nodes do not delegate it), so podman cannot know.
    pub mem_usage_bytes: Option<u64>,
    /// The container's memory limit, or the node's memory when it has none.
    pub mem_limit_bytes: u64,
}

/// The calls the reconciler and the API's operations make on podman.
pub trait PodmanApi: Send + Sync {
    /// All containers carrying our label, running or not: one API call.
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, PodmanError>> + Send;
    /// Pulls `reference`, reporting progress; the image id.
    fn pull(
        &self,
        reference: &str,
        progress: impl FnMut(PullEvent) + Send,
    ) -> impl Future<Output = Result<String, PodmanError>> + Send;
    /// Whether an image (name, id or digest) is in the store.
    fn image_exists(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send;
    /// The last `tail` lines of a container's stdout and stderr.
    fn logs(
        &self,
        container: &str,
        tail: usize,
    ) -> impl Future<Output = Result<Vec<LogLine>, PodmanError>> + Send;
    /// The last `tail` lines, then new ones as they come, into `lines`;
    /// returns when the container's output ends or nobody listens.
    fn follow_logs(
        &self,
        container: &str,
        tail: usize,
        lines: tokio::sync::mpsc::Sender<LogLine>,
    ) -> impl Future<Output = Result<(), PodmanError>> + Send;
    /// One sample of a container's CPU and memory use.
    fn stats(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<ContainerStats, PodmanError>> + Send;
    /// Removes a container (stopped or not) and its anonymous volumes; false
    /// when there was none.
    fn remove_container(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send;
    /// Removes a named volume; false when there was none.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<bool, PodmanError>> + Send;
    /// Removes a network; false when there was none.
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<bool, PodmanError>> + Send;
    /// Where a named volume's files are on the node; `None` when there is
    /// no such volume.
    fn volume_mountpoint(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<PathBuf>, PodmanError>> + Send;
    /// Creates a named volume of `app` with the labels its Quadlet unit
    /// gives it (the unit accepts an existing volume), and says where its
    /// files are.
    fn create_volume(
        &self,
        name: &str,
        app: &str,
    ) -> impl Future<Output = Result<PathBuf, PodmanError>> + Send;
    /// Removes an image no container uses; false when there was none or a
    /// container still uses it.
    fn remove_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send;
    /// Runs `cmd` in a running container and waits for it to end: its exit
    /// code and what it printed.
    fn exec(
        &self,
        container: &str,
        cmd: &[String],
    ) -> impl Future<Output = Result<ExecOutcome, PodmanError>> + Send;
    /// Whether a call found the API's socket unreachable since this was
    /// last asked (asking forgets it): the daemon's cue to repair podman.
    fn take_outage(&self) -> bool;
    /// Removes podman's pause pid file when it names no live pause process
    /// (it locks podman out, see [`crate::podman_pause`]); why it was stale.
    fn clear_stale_pause(&self) -> Result<Option<Stale>, PodmanError>;
}

/// How a command run in a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_code: i32,
    /// Its stdout and stderr, line by line.
    pub output: Vec<LogLine>,
}

/// One client shared by several owners.
impl<T: PodmanApi> PodmanApi for std::sync::Arc<T> {
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, PodmanError>> + Send {
        (**self).list_containers()
    }
    fn pull(
        &self,
        reference: &str,
        progress: impl FnMut(PullEvent) + Send,
    ) -> impl Future<Output = Result<String, PodmanError>> + Send {
        (**self).pull(reference, progress)
    }
    fn image_exists(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send {
        (**self).image_exists(reference)
    }
    fn logs(
        &self,
        container: &str,
        tail: usize,
    ) -> impl Future<Output = Result<Vec<LogLine>, PodmanError>> + Send {
        (**self).logs(container, tail)
    }
    fn follow_logs(
        &self,
        container: &str,
        tail: usize,
        lines: tokio::sync::mpsc::Sender<LogLine>,
    ) -> impl Future<Output = Result<(), PodmanError>> + Send {
        (**self).follow_logs(container, tail, lines)
    }
    fn stats(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<ContainerStats, PodmanError>> + Send {
        (**self).stats(container)
    }
    fn remove_container(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send {
        (**self).remove_container(name)
    }
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<bool, PodmanError>> + Send {
        (**self).remove_volume(name)
    }
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<bool, PodmanError>> + Send {
        (**self).remove_network(name)
    }
    fn volume_mountpoint(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<PathBuf>, PodmanError>> + Send {
        (**self).volume_mountpoint(name)
    }
    fn create_volume(
        &self,
        name: &str,
        app: &str,
    ) -> impl Future<Output = Result<PathBuf, PodmanError>> + Send {
        (**self).create_volume(name, app)
    }
    fn remove_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<bool, PodmanError>> + Send {
        (**self).remove_image(reference)
    }
    fn exec(
        &self,
        container: &str,
        cmd: &[String],
    ) -> impl Future<Output = Result<ExecOutcome, PodmanError>> + Send {
        (**self).exec(container, cmd)
    }
    fn take_outage(&self) -> bool {
        (**self).take_outage()
    }
    fn clear_stale_pause(&self) -> Result<Option<Stale>, PodmanError> {
        (**self).clear_stale_pause()
    }
}
