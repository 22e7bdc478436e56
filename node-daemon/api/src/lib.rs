//! Types shared by everything that speaks to an Archipelago node: the daemon
//! (`archipelagod`), the `archy` CLI, the desktop app and the tests.
//!
//! Only plain data lives here, so the crate stays cheap to depend on from the
//! desktop app and from generated TypeScript. Anything with behaviour (I/O,
//! validation, rendering) belongs to the daemon library or the client crate.
//!
//! - [`rpc`]: the JSON-RPC 2.0 envelope and the transport rules.
//! - [`methods`]: every method with its parameters and result.
//! - [`ErrorCode`]: stable numeric error codes.

mod error;
pub mod methods;
pub mod rpc;
mod state;

pub use error::{ApiError, ErrorCode};
pub use state::{ActiveState, AppId, RunState, UnitState};
