//! The real [`PodmanApi`]: podman's REST API (libpod, `/v5.0.0/libpod`) on
//! the service user's `podman.socket`, spoken as HTTP/1.1 over the unix
//! socket (hyper).
//!
//! It exists so that the daemon never runs the `podman` CLI: a process per
//! call costs ~70 ms and prints text meant for people, while the API answers
//! in JSON, streams pull progress and logs, and reports errors with a status.
//!
//! Limits:
//! - One connection per call (podman's socket is local and cheap); no call
//!   has a timeout of its own: callers wrap them (`tokio::time::timeout`).
//! - Pull progress is per blob (podman's libpod stream has no byte counts):
//!   [`PullEvent::Blob`] counts the distinct blobs seen; the total is not
//!   known in advance.
//! - A pull that fails still answers HTTP 200: the error is the stream's
//!   last line (`{"error":…}`), read as such.
//! - Logs: each multiplexed frame is split into lines; a line that podman
//!   split over two frames comes back as two lines. A container with a
//!   terminal (`tty`) gets its logs unframed; they come back as stdout.
//! - Stats are one sample (`stream=false`): the CPU percentage is podman's
//!   average since the container started. Where the user's cgroup has no
//!   memory controller (nspawn nodes) podman reports 0 bytes used and the
//!   node's memory as the limit: the usage comes back as `None`.
//! - Ports on protocols other than TCP and UDP (SCTP) are left out of
//!   [`ContainerInfo::ports`]: manifests cannot ask for them.

use crate::manifest::Protocol;
use crate::podman::{ContainerInfo, ExecOutcome, PodmanApi, PodmanError, PortBinding};
pub use crate::podman::{ContainerStats, LogLine, LogStream, PullEvent};
use crate::podman_pause::Stale;
use crate::quadlet::{LABEL_APP, LABEL_CONFIG, LABEL_MANAGED};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The API version every path starts with.
const PREFIX: &str = "/v5.0.0/libpod";

/// podman's API on one unix socket.
#[derive(Debug, Clone)]
pub struct PodmanRest {
    socket: PathBuf,
    /// podman's pause pid file, when this is the user's own podman.
    pause_pid_file: Option<PathBuf>,
    /// Set by a call that found the socket unreachable (shared by clones).
    outage: Arc<AtomicBool>,
}

impl PodmanRest {
    /// The API on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            pause_pid_file: None,
            outage: Arc::default(),
        }
    }

    /// This user's API: `$XDG_RUNTIME_DIR/podman/podman.sock`, else
    /// `/run/user/<euid>/podman/podman.sock`.
    pub fn for_this_user() -> Self {
        let runtime_dir = user_runtime_dir(
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            rustix::process::geteuid().as_raw(),
        );
        Self {
            pause_pid_file: Some(runtime_dir.join("libpod/tmp/pause.pid")),
            ..Self::new(runtime_dir.join("podman/podman.sock"))
        }
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `DELETE path`: true when something was removed, false when there
    /// was nothing to remove.
    async fn delete(&self, path: &str, what: &str) -> Result<bool, PodmanError> {
        let response = self.send(Method::DELETE, path).await?;
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => {
                // Drain the body so that the connection ends cleanly.
                let _ = body_of(response, what).await;
                Ok(true)
            }
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_of(response, what).await),
        }
    }

    /// Sends one request with an empty body on a new connection.
    async fn send(&self, method: Method, path: &str) -> Result<Response<Incoming>, PodmanError> {
        self.send_body(method, path, String::new()).await
    }

    /// Sends one request with a JSON body (none when empty) on a new
    /// connection.
    async fn send_body(
        &self,
        method: Method,
        path: &str,
        json: String,
    ) -> Result<Response<Incoming>, PodmanError> {
        let socket_error = |message: String| {
            self.outage.store(true, Ordering::SeqCst);
            PodmanError::Socket {
                path: self.socket.clone(),
                message,
            }
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| socket_error(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| socket_error(e.to_string()))?;
        // Ends on its own once the response has been read and `sender` is
        // dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("podman API connection: {e}");
            }
        });
        let request = Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path}"))
            // HTTP/1.1 needs one; podman (Go) refuses requests without it.
            .header(hyper::header::HOST, "d")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(json)))
            .map_err(|e| PodmanError::Api(format!("bad request {path}: {e}")))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| socket_error(format!("{path}: {e}")))
    }
}

impl PodmanApi for PodmanRest {
    async fn list_containers(&self) -> Result<Vec<ContainerInfo>, PodmanError> {
        let filters = format!(r#"{{"label":["{LABEL_MANAGED}=true"]}}"#);
        let path = format!("/containers/json?all=true&filters={}", encode(&filters));
        let response = self.send(Method::GET, &path).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, "the container list").await);
        }
        let listed: Vec<ListedContainer> = json_of(response, "the container list").await?;
        Ok(listed.into_iter().map(ListedContainer::into_info).collect())
    }

    /// Pulls `reference`, reporting progress to `progress`; the image id.
    async fn pull(
        &self,
        reference: &str,
        mut progress: impl FnMut(PullEvent) + Send,
    ) -> Result<String, PodmanError> {
        let path = format!("/images/pull?reference={}", encode(reference));
        let response = self.send(Method::POST, &path).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &format!("pull of {reference}")).await);
        }
        let mut tracker = PullTracker::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| io_error(&format!("pull of {reference}"), &e))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Some(event) = tracker.line(reference, &line)? {
                    progress(event);
                }
            }
        }
        if let Some(event) = tracker.line(reference, &pending)? {
            progress(event);
        }
        match tracker.id {
            Some(id) => Ok(id),
            None => Err(PodmanError::Api(format!(
                "pull of {reference} ended without an image id"
            ))),
        }
    }

    /// Whether an image `reference` (name, id or digest) is in the store.
    async fn image_exists(&self, reference: &str) -> Result<bool, PodmanError> {
        let path = format!("/images/{}/exists", encode(reference));
        let response = self.send(Method::GET, &path).await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_of(response, &format!("image {reference}")).await),
        }
    }

    /// The last `tail` lines of `container`'s stdout and stderr.
    async fn logs(&self, container: &str, tail: usize) -> Result<Vec<LogLine>, PodmanError> {
        let what = format!("container {container}");
        let path = format!(
            "/containers/{}/logs?stdout=true&stderr=true&tail={tail}",
            encode(container)
        );
        let response = self.send(Method::GET, &path).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &what).await);
        }
        let mut demux = Demux::default();
        let mut lines = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| io_error(&format!("logs of {what}"), &e))?;
            if let Some(data) = frame.data_ref() {
                lines.extend(demux.push(data).map_err(|e| log_error(&what, &e))?);
            }
        }
        lines.extend(demux.finish().map_err(|e| log_error(&what, &e))?);
        Ok(lines)
    }

    /// One sample of `container`'s CPU and memory use.
    async fn stats(&self, container: &str) -> Result<ContainerStats, PodmanError> {
        let what = format!("container {container}");
        let path = format!(
            "/containers/stats?containers={}&stream=false",
            encode(container)
        );
        let response = self.send(Method::GET, &path).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &what).await);
        }
        let report: StatsReport = json_of(response, &format!("stats of {what}")).await?;
        if let Some(error) = report.error.filter(|e| !e.is_null()) {
            return Err(PodmanError::Api(format!("stats of {what}: {error}")));
        }
        report
            .stats
            .and_then(|s| s.into_iter().next())
            .map(|s| ContainerStats {
                cpu_percent: s.cpu,
                mem_usage_bytes: (s.mem_usage > 0).then_some(s.mem_usage),
                mem_limit_bytes: s.mem_limit,
            })
            .ok_or_else(|| PodmanError::Api(format!("podman reported no stats for {what}")))
    }

    async fn follow_logs(
        &self,
        container: &str,
        tail: usize,
        lines: tokio::sync::mpsc::Sender<LogLine>,
    ) -> Result<(), PodmanError> {
        let what = format!("container {container}");
        let path = format!(
            "/containers/{}/logs?stdout=true&stderr=true&follow=true&tail={tail}",
            encode(container)
        );
        let response = self.send(Method::GET, &path).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &what).await);
        }
        let mut demux = Demux::default();
        let mut body = response.into_body();
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                () = lines.closed() => return Ok(()),
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| io_error(&format!("logs of {what}"), &e))?;
            if let Some(data) = frame.data_ref() {
                for line in demux.push(data).map_err(|e| log_error(&what, &e))? {
                    if lines.send(line).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        for line in demux.finish().map_err(|e| log_error(&what, &e))? {
            if lines.send(line).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn remove_container(&self, name: &str) -> Result<bool, PodmanError> {
        let path = format!("/containers/{}?force=true&v=true", encode(name));
        self.delete(&path, &format!("container {name}")).await
    }

    async fn remove_volume(&self, name: &str) -> Result<bool, PodmanError> {
        let path = format!("/volumes/{}?force=true", encode(name));
        self.delete(&path, &format!("volume {name}")).await
    }

    async fn remove_network(&self, name: &str) -> Result<bool, PodmanError> {
        let path = format!("/networks/{}?force=true", encode(name));
        self.delete(&path, &format!("network {name}")).await
    }

    async fn volume_mountpoint(&self, name: &str) -> Result<Option<PathBuf>, PodmanError> {
        let what = format!("volume {name}");
        let path = format!("/volumes/{}/json", encode(name));
        let response = self.send(Method::GET, &path).await?;
        match response.status() {
            StatusCode::OK => {
                let v: InspectedVolume = json_of(response, &what).await?;
                Ok(Some(v.mountpoint))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(error_of(response, &what).await),
        }
    }

    async fn create_volume(&self, name: &str, app: &str) -> Result<PathBuf, PodmanError> {
        let what = format!("volume {name}");
        let body = serde_json::json!({
            "Name": name,
            "Label": { LABEL_MANAGED: "true", LABEL_APP: app },
        });
        let response = self
            .send_body(Method::POST, "/volumes/create", body.to_string())
            .await?;
        match response.status() {
            StatusCode::OK | StatusCode::CREATED => {
                let v: InspectedVolume = json_of(response, &what).await?;
                Ok(v.mountpoint)
            }
            // Already there (a Quadlet unit made it): use it.
            StatusCode::CONFLICT | StatusCode::INTERNAL_SERVER_ERROR => {
                let _ = body_of(response, &what).await;
                self.volume_mountpoint(name)
                    .await?
                    .ok_or_else(|| PodmanError::Api(format!("{what} could not be created")))
            }
            _ => Err(error_of(response, &what).await),
        }
    }

    async fn exec(&self, container: &str, cmd: &[String]) -> Result<ExecOutcome, PodmanError> {
        let what = format!("exec in container {container}");
        let body = serde_json::json!({
            "Cmd": cmd,
            "AttachStdout": true,
            "AttachStderr": true,
        });
        let path = format!("/containers/{}/exec", encode(container));
        let response = self
            .send_body(Method::POST, &path, body.to_string())
            .await?;
        if !matches!(response.status(), StatusCode::OK | StatusCode::CREATED) {
            return Err(error_of(response, &what).await);
        }
        let created: CreatedExec = json_of(response, &what).await?;
        let start = format!("/exec/{}/start", encode(&created.id));
        let response = self
            .send_body(
                Method::POST,
                &start,
                serde_json::json!({"Detach": false, "Tty": false}).to_string(),
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &what).await);
        }
        // The output is framed as a container's logs are; it ends when the
        // command does.
        let mut demux = Demux::default();
        let mut output = Vec::new();
        let mut stream = response.into_body();
        while let Some(frame) = stream.frame().await {
            let frame = frame.map_err(|e| io_error(&what, &e))?;
            if let Some(data) = frame.data_ref() {
                output.extend(demux.push(data).map_err(|e| log_error(&what, &e))?);
            }
        }
        output.extend(demux.finish().map_err(|e| log_error(&what, &e))?);
        let inspect = format!("/exec/{}/json", encode(&created.id));
        let response = self.send(Method::GET, &inspect).await?;
        if response.status() != StatusCode::OK {
            return Err(error_of(response, &what).await);
        }
        let done: InspectedExec = json_of(response, &what).await?;
        Ok(ExecOutcome {
            exit_code: done.exit_code,
            output,
        })
    }

    async fn remove_image(&self, reference: &str) -> Result<bool, PodmanError> {
        let what = format!("image {reference}");
        let path = format!("/images/{}", encode(reference));
        let response = self.send(Method::DELETE, &path).await?;
        match response.status() {
            StatusCode::OK | StatusCode::NO_CONTENT => {
                let _ = body_of(response, &what).await;
                Ok(true)
            }
            // Not there, or a container still uses it.
            StatusCode::NOT_FOUND | StatusCode::CONFLICT => {
                let _ = body_of(response, &what).await;
                Ok(false)
            }
            _ => Err(error_of(response, &what).await),
        }
    }

    fn take_outage(&self) -> bool {
        self.outage.swap(false, Ordering::SeqCst)
    }

    fn clear_stale_pause(&self) -> Result<Option<Stale>, PodmanError> {
        let Some(path) = &self.pause_pid_file else {
            return Ok(None);
        };
        crate::podman_pause::remove_if_stale(path, crate::podman_pause::process_info)
            .map_err(|e| PodmanError::Api(format!("podman's pause pid file: {e}")))
    }
}

/// podman's answer to creating an exec session.
#[derive(Deserialize)]
struct CreatedExec {
    #[serde(rename = "Id")]
    id: String,
}

/// What podman says about a finished exec session.
#[derive(Deserialize)]
struct InspectedExec {
    #[serde(rename = "ExitCode")]
    exit_code: i32,
}

/// What podman says about a volume (the part we read).
#[derive(Deserialize)]
struct InspectedVolume {
    #[serde(rename = "Mountpoint")]
    mountpoint: PathBuf,
}

/// This user's runtime folder (podman's socket and pause pid file are
/// below it) from `XDG_RUNTIME_DIR` and the effective uid.
fn user_runtime_dir(runtime_dir: Option<PathBuf>, euid: u32) -> PathBuf {
    runtime_dir
        .filter(|d| d.is_absolute())
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{euid}")))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a
/// query value or one path segment).
fn encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn io_error(what: &str, e: &hyper::Error) -> PodmanError {
    PodmanError::Api(format!("{what}: reading podman's answer failed: {e}"))
}

fn log_error(what: &str, e: &FrameError) -> PodmanError {
    PodmanError::Api(format!("logs of {what}: {e}"))
}

/// The whole body.
async fn body_of(response: Response<Incoming>, what: &str) -> Result<Bytes, PodmanError> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| io_error(what, &e))?
        .to_bytes())
}

async fn json_of<T: serde::de::DeserializeOwned>(
    response: Response<Incoming>,
    what: &str,
) -> Result<T, PodmanError> {
    let body = body_of(response, what).await?;
    serde_json::from_slice(&body).map_err(|e| {
        PodmanError::Api(format!(
            "{what}: unexpected answer from podman ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })
}

/// The error an answer other than success stands for; podman's JSON
/// `{"cause","message","response"}` gives the message.
async fn error_of(response: Response<Incoming>, what: &str) -> PodmanError {
    #[derive(Deserialize)]
    struct ApiError {
        message: String,
    }
    let status = response.status();
    let message = match body_of(response, what).await {
        Ok(body) => serde_json::from_slice::<ApiError>(&body).map_or_else(
            |_| String::from_utf8_lossy(&body).trim().to_owned(),
            |e| e.message,
        ),
        Err(e) => e.to_string(),
    };
    if status == StatusCode::NOT_FOUND {
        PodmanError::NotFound(what.to_owned())
    } else {
        PodmanError::Api(format!("{what}: HTTP {status}: {message}"))
    }
}

/// One entry of `GET /containers/json` (the fields we use).
#[derive(Debug, Deserialize)]
struct ListedContainer {
    /// Go's empty slices come as `null`.
    #[serde(rename = "Names", default)]
    names: Option<Vec<String>>,
    #[serde(rename = "Id", default)]
    id: String,
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "Ports", default)]
    ports: Option<Vec<PortMapping>>,
}

/// podman's `types.PortMapping`: `range` consecutive ports from the ones
/// named, on one or more comma-separated protocols.
#[derive(Debug, Deserialize)]
struct PortMapping {
    #[serde(default)]
    host_ip: String,
    container_port: u16,
    host_port: u16,
    #[serde(default)]
    range: u16,
    #[serde(default)]
    protocol: String,
}

impl ListedContainer {
    fn into_info(self) -> ContainerInfo {
        let labels = self.labels.unwrap_or_default();
        let mut ports: Vec<PortBinding> = self
            .ports
            .unwrap_or_default()
            .iter()
            .flat_map(PortMapping::bindings)
            .collect();
        ports.sort();
        ContainerInfo {
            name: self
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or(self.id),
            app: labels.get(LABEL_APP).cloned().unwrap_or_default(),
            state: self.state,
            ports,
            config_digest: labels.get(LABEL_CONFIG).cloned(),
        }
    }
}

impl PortMapping {
    fn bindings(&self) -> Vec<PortBinding> {
        let host_ip = bound_ip(&self.host_ip);
        let protocols: Vec<Protocol> = self
            .protocol
            .split(',')
            .filter_map(|p| match p.trim() {
                "" | "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for offset in 0..self.range.max(1) {
            let (Some(host_port), Some(container_port)) = (
                self.host_port.checked_add(offset),
                self.container_port.checked_add(offset),
            ) else {
                break;
            };
            out.extend(protocols.iter().map(|&protocol| PortBinding {
                host_ip,
                host_port,
                container_port,
                protocol,
            }));
        }
        out
    }
}

/// The address a port is bound to; `None` for every address (podman
/// reports `""`, and `0.0.0.0` or `::` when given explicitly): the manifest
/// side says `None` for all three, so they must compare equal.
fn bound_ip(host_ip: &str) -> Option<IpAddr> {
    host_ip
        .parse::<IpAddr>()
        .ok()
        .filter(|ip| !ip.is_unspecified())
}

/// Turns pull stream lines into events and remembers the outcome.
#[derive(Debug, Default)]
struct PullTracker {
    blobs: BTreeSet<String>,
    id: Option<String>,
}

/// One line of the libpod pull stream.
#[derive(Debug, Deserialize)]
struct PullLine {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

impl PullTracker {
    fn line(&mut self, reference: &str, line: &[u8]) -> Result<Option<PullEvent>, PodmanError> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let parsed: PullLine = serde_json::from_str(text).map_err(|e| {
            PodmanError::Api(format!(
                "pull of {reference}: unexpected line from podman ({e}): {text}"
            ))
        })?;
        if let Some(error) = parsed.error.filter(|e| !e.is_empty()) {
            return Err(PodmanError::PullFailed {
                reference: reference.to_owned(),
                message: error.trim().to_owned(),
            });
        }
        if let Some(id) = parsed.id.filter(|id| !id.is_empty()) {
            self.id = Some(id.clone());
            return Ok(Some(PullEvent::Done { id }));
        }
        let Some(stream) = parsed.stream else {
            return Ok(None);
        };
        let message = stream.trim();
        if let Some(digest) = message
            .strip_prefix("Copying blob ")
            .or_else(|| message.strip_prefix("Copying config "))
            .and_then(|rest| rest.split_whitespace().next())
        {
            self.blobs.insert(digest.to_owned());
            return Ok(Some(PullEvent::Blob {
                digest: digest.to_owned(),
                seen: self.blobs.len(),
            }));
        }
        Ok((!message.is_empty()).then(|| PullEvent::Message(message.to_owned())))
    }
}

/// What `GET /containers/stats` answers (libpod).
#[derive(Debug, Deserialize)]
struct StatsReport {
    #[serde(rename = "Error", default)]
    error: Option<serde_json::Value>,
    #[serde(rename = "Stats", default)]
    stats: Option<Vec<StatsEntry>>,
}

#[derive(Debug, Deserialize)]
struct StatsEntry {
    #[serde(rename = "CPU", default)]
    cpu: f64,
    #[serde(rename = "MemUsage", default)]
    mem_usage: u64,
    #[serde(rename = "MemLimit", default)]
    mem_limit: u64,
}

/// A log stream that is not the Docker multiplexed format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad log frame header {0:02x?} (expected stream 1 or 2, then 3 zero bytes)")]
    BadHeader([u8; 8]),
    #[error("the log stream ended inside a frame ({0} byte(s) left over)")]
    Truncated(usize),
}

/// Decodes Docker's multiplexed log frames (8-byte header: stream 1 or 2,
/// 3 zero bytes, 4-byte big-endian length; then the payload) as they
/// arrive, in chunks cut anywhere. A stream whose first bytes are no frame
/// header (a container with a terminal) is taken as plain stdout text.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
    /// Decided by the first 8 bytes: `Some(true)` for frames.
    framed: Option<bool>,
}

impl Demux {
    /// Feeds the next chunk; the complete lines it finished.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<LogLine>, FrameError> {
        self.buf.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(header) = self.buf.first_chunk::<8>().copied() {
            let framed = *self.framed.get_or_insert_with(|| is_header(header));
            if !framed {
                while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=end).collect();
                    push_lines(&mut lines, LogStream::Stdout, &line);
                }
                break;
            }
            let stream = match header {
                [1, 0, 0, 0, ..] => LogStream::Stdout,
                [2, 0, 0, 0, ..] => LogStream::Stderr,
                _ => return Err(FrameError::BadHeader(header)),
            };
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            let Ok(len) = usize::try_from(len) else {
                return Err(FrameError::BadHeader(header));
            };
            if self.buf.len() < 8 + len {
                break;
            }
            let frame: Vec<u8> = self.buf.drain(..8 + len).skip(8).collect();
            push_lines(&mut lines, stream, &frame);
        }
        Ok(lines)
    }

    /// The end of the stream: the last unterminated line of an unframed
    /// stream, or an error for a frame cut short.
    pub fn finish(&mut self) -> Result<Vec<LogLine>, FrameError> {
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() {
            return Ok(Vec::new());
        }
        if self.framed == Some(true) || (self.framed.is_none() && could_be_header(&rest)) {
            return Err(FrameError::Truncated(rest.len()));
        }
        let mut lines = Vec::new();
        push_lines(&mut lines, LogStream::Stdout, &rest);
        Ok(lines)
    }
}

fn is_header(bytes: [u8; 8]) -> bool {
    matches!(bytes, [1 | 2, 0, 0, 0, ..])
}

/// Whether a stream shorter than a header may still be the start of one.
fn could_be_header(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| if i == 0 { b == 1 || b == 2 } else { b == 0 })
}

/// Splits `payload` into lines (one frame is usually one line, with its
/// newline).
fn push_lines(out: &mut Vec<LogLine>, stream: LogStream, payload: &[u8]) {
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    for line in payload.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.push(LogLine {
            stream,
            text: String::from_utf8_lossy(line).into_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(stream: u8, payload: &str) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(payload.as_bytes());
        out
    }

    fn line(stream: LogStream, text: &str) -> LogLine {
        LogLine {
            stream,
            text: text.to_owned(),
        }
    }

    #[test]
    fn frames_become_lines_of_their_stream() {
        let mut bytes = frame(1, "hello\n");
        bytes.extend(frame(2, "oops\n"));
        bytes.extend(frame(1, "two\nlines\n"));
        bytes.extend(frame(1, ""));
        let mut demux = Demux::default();
        assert_eq!(
            demux.push(&bytes).unwrap(),
            [
                line(LogStream::Stdout, "hello"),
                line(LogStream::Stderr, "oops"),
                line(LogStream::Stdout, "two"),
                line(LogStream::Stdout, "lines"),
                line(LogStream::Stdout, ""),
            ]
        );
        assert_eq!(demux.finish().unwrap(), []);
    }

    #[test]
    fn a_frame_split_anywhere_across_reads_decodes_the_same() {
        let mut bytes = frame(1, "GET / HTTP/1.1\n");
        bytes.extend(frame(2, "err\n"));
        for cut in 0..=bytes.len() {
            for second_cut in cut..=bytes.len() {
                let mut demux = Demux::default();
                let mut lines = demux.push(&bytes[..cut]).unwrap();
                lines.extend(demux.push(&bytes[cut..second_cut]).unwrap());
                lines.extend(demux.push(&bytes[second_cut..]).unwrap());
                lines.extend(demux.finish().unwrap());
                assert_eq!(
                    lines,
                    [
                        line(LogStream::Stdout, "GET / HTTP/1.1"),
                        line(LogStream::Stderr, "err")
                    ],
                    "cuts at {cut} and {second_cut}"
                );
            }
        }
    }

    #[test]
    fn a_frame_cut_short_or_a_bad_header_is_an_error() {
        let bytes = frame(1, "hello\n");
        let mut demux = Demux::default();
        assert_eq!(demux.push(&bytes[..10]).unwrap(), []);
        assert_eq!(demux.finish(), Err(FrameError::Truncated(10)));

        let mut demux = Demux::default();
        let mut bytes = frame(1, "a\n");
        bytes.extend([7, 0, 0, 0, 0, 0, 0, 1, b'x']);
        assert!(matches!(
            demux.push(&bytes),
            Err(FrameError::BadHeader([7, ..]))
        ));
    }

    #[test]
    fn unframed_text_is_stdout() {
        let mut demux = Demux::default();
        assert_eq!(demux.push(b"plain ").unwrap(), []);
        assert_eq!(
            demux.push(b"text\r\nlast").unwrap(),
            [line(LogStream::Stdout, "plain text")]
        );
        assert_eq!(demux.finish().unwrap(), [line(LogStream::Stdout, "last")]);
    }

    #[test]
    fn unspecified_host_addresses_mean_every_address() {
        assert_eq!(bound_ip(""), None);
        assert_eq!(bound_ip("0.0.0.0"), None);
        assert_eq!(bound_ip("::"), None);
        assert_eq!(bound_ip("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_listed_container_maps_names_labels_and_ports() {
        let json = r#"[{"Id":"abc","Names":["app_web"],"State":"running","Status":"",
            "Labels":{"io.archipelago.managed":"true","io.archipelago.app":"app","io.archipelago.config":"d1"},
            "Ports":[{"host_ip":"","container_port":80,"host_port":8080,"range":1,"protocol":"tcp"},
                     {"host_ip":"127.0.0.1","container_port":53,"host_port":5353,"range":2,"protocol":"tcp,udp"},
                     {"host_ip":"::","container_port":9,"host_port":9,"range":0,"protocol":"sctp"}]},
            {"Id":"def","Names":null,"State":"exited","Labels":null,"Ports":null}]"#;
        let listed: Vec<ListedContainer> = serde_json::from_str(json).unwrap();
        let infos: Vec<ContainerInfo> =
            listed.into_iter().map(ListedContainer::into_info).collect();
        let lo = Some("127.0.0.1".parse().unwrap());
        let bind = |host_ip, host_port, container_port, protocol| PortBinding {
            host_ip,
            host_port,
            container_port,
            protocol,
        };
        assert_eq!(
            infos,
            [
                ContainerInfo {
                    name: "app_web".into(),
                    app: "app".into(),
                    state: "running".into(),
                    ports: vec![
                        bind(None, 8080, 80, Protocol::Tcp),
                        bind(lo, 5353, 53, Protocol::Tcp),
                        bind(lo, 5353, 53, Protocol::Udp),
                        bind(lo, 5354, 54, Protocol::Tcp),
                        bind(lo, 5354, 54, Protocol::Udp),
                    ],
                    config_digest: Some("d1".into()),
                },
                ContainerInfo {
                    name: "def".into(),
                    app: String::new(),
                    state: "exited".into(),
                    ports: vec![],
                    config_digest: None,
                }
            ]
        );
    }

    #[test]
    fn pull_lines_count_blobs_and_the_error_line_wins() {
        let mut t = PullTracker::default();
        let events: Vec<_> = [
            r#"{"stream":"Trying to pull r/x:1...\n"}"#,
            r#"{"stream":"Getting image source signatures\n"}"#,
            r#"{"stream":"Copying blob sha256:aa\n"}"#,
            r#"{"stream":"Copying blob sha256:bb\n"}"#,
            r#"{"stream":"Copying blob sha256:aa done\n"}"#,
            r#"{"stream":"Copying config sha256:cc done   | \n"}"#,
            r#"{"images":["cc"],"id":"cc"}"#,
        ]
        .iter()
        .map(|l| t.line("r/x:1", l.as_bytes()).unwrap())
        .collect();
        let blob = |d: &str, seen| {
            Some(PullEvent::Blob {
                digest: d.into(),
                seen,
            })
        };
        assert_eq!(
            events,
            [
                Some(PullEvent::Message("Trying to pull r/x:1...".into())),
                Some(PullEvent::Message("Getting image source signatures".into())),
                blob("sha256:aa", 1),
                blob("sha256:bb", 2),
                blob("sha256:aa", 2),
                blob("sha256:cc", 3),
                Some(PullEvent::Done { id: "cc".into() }),
            ]
        );
        assert_eq!(t.id.as_deref(), Some("cc"));
        let err = t
            .line(
                "r/x:1",
                br#"{"error":"manifest unknown\n","errorDetail":{"message":"x"}}"#,
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "pull of r/x:1 failed: manifest unknown");
    }

    #[test]
    fn encoding_and_the_user_runtime_dir() {
        assert_eq!(encode("a/b:1"), "a%2Fb%3A1");
        assert_eq!(
            encode(r#"{"l":["x=y"]}"#),
            "%7B%22l%22%3A%5B%22x%3Dy%22%5D%7D"
        );
        assert_eq!(
            user_runtime_dir(Some("/run/user/7".into()), 1),
            Path::new("/run/user/7")
        );
        assert_eq!(user_runtime_dir(None, 1000), Path::new("/run/user/1000"));
        assert_eq!(
            user_runtime_dir(Some("relative".into()), 1000),
            Path::new("/run/user/1000")
        );
    }
}
