//! Tiny apps baked into the test container images (see
//! `archipelago-harness`'s `fixtures` module), small enough to read in one
//! sitting and with nothing but std and bcrypt, so that the images hold a
//! binary, libc and nothing else:
//!
//! - `fixture-chain`: a chain daemon in miniature, like bitcoind's RPC: a
//!   block counter persisted in its data volume, an RPC endpoint behind HTTP
//!   Basic auth checked against a bcrypt hash file, a health endpoint.
//! - `fixture-wallet`: calls the chain's RPC with the password it was given
//!   and shows the height; healthy only while the chain answers.
//! - `fixture-broken`: exits at once (`exit`) or runs but is never healthy
//!   (`unhealthy`).
//!
//! Each binary has a `health` subcommand used as the container's health
//! check, since the images have no `wget` or `curl`.
//!
//! Limits: HTTP/1.1 with one request per connection (`Connection: close`),
//! no chunked bodies, no TLS. Enough for health checks, a browser and the
//! wallet; not a general HTTP implementation.

pub mod args;
pub mod auth;
pub mod http;
