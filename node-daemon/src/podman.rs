//! podman's REST API on the service user's socket, behind the narrow trait
//! the reconciler needs. The real implementation speaks HTTP over
//! `/run/user/<uid>/podman/podman.sock`; [`crate::fake::FakeNode`] stands in
//! for unit tests.

use std::future::Future;
use std::net::IpAddr;

use crate::manifest::Protocol;

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
    Socket {
        path: std::path::PathBuf,
        message: String,
    },
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

/// The calls the reconciler makes on podman.
pub trait PodmanApi: Send + Sync {
    /// All containers carrying our label, running or not: one API call.
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, PodmanError>> + Send;
}

/// One client shared by several owners.
impl<T: PodmanApi> PodmanApi for std::sync::Arc<T> {
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>, PodmanError>> + Send {
        (**self).list_containers()
    }
}
