//! The node's TLS JSON-RPC API: what a client (archy, the desktop app) talks
//! to. This module owns the transport — TLS, HTTP, the JSON-RPC envelope,
//! login, sessions and limits — and hands each authenticated call to a
//! [`Handler`], which owns what the methods do (see [`crate::service`]).

use archipelago_api::ApiError;
use archipelago_api::rpc::StreamEvent;
use std::future::Future;

/// Where a streaming method sends its events (install progress, log lines).
/// Closed by the server when the client goes away; a handler treats a failed
/// send as "nobody listens any more", never as an error of the operation.
pub type Events = tokio::sync::mpsc::Sender<StreamEvent>;

/// What the methods do, apart from `auth.*`, which the server answers itself.
pub trait Handler: Send + Sync + 'static {
    /// Runs `method` with `params` (JSON `null` when the request had none).
    /// `events` is `Some` when the client asked for a stream
    /// (`Accept: text/event-stream`) and the method streams
    /// ([`archipelago_api::methods::Method::STREAMS`]).
    fn call(
        &self,
        method: &str,
        params: serde_json::Value,
        events: Option<Events>,
    ) -> impl Future<Output = Result<serde_json::Value, ApiError>> + Send;
}

pub mod admin;
pub mod auth;
mod envelope;
pub(crate) mod host;
pub mod server;
mod sessions;
mod sse;
mod throttle;
pub mod tls;

pub use auth::Auth;
pub use server::{Limits, serve};
pub use tls::TlsIdentity;
