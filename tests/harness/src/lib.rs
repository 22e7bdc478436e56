//! What real-node tests need that the project builds itself: container
//! images written as OCI layouts (no outside registry), the fixture apps'
//! images and manifests, and throwaway nodes in a network of their own.
//!
//! - [`oci`]: single-layer OCI image layouts, deterministic to the digest.
//! - [`fixtures`]: the fixture images (`hello-web`, `fixture-chain`,
//!   `fixture-wallet`, `fixture-broken`) and the manifests in
//!   `tests/fixtures/`, rendered with the digests of a build.
//! - [`network`]: one network namespace per run, with its bridge, and the
//!   clean-up of runs that died.
//! - [`registry`]: a real OCI registry inside the run's namespace.
//! - [`node`]: the interface every node flavour offers; [`nspawn`] and
//!   [`vm`] are the flavours.
//! - [`catalog`]: the fixture apps as a signed community catalog.
//! - [`cmd`]: running host tools, with errors that say what ran.
//! - [`testing`]: what every real-node test shares.

pub mod catalog;
pub mod cmd;
pub mod fixtures;
pub mod network;
pub mod node;
pub mod nspawn;
pub mod oci;
pub mod registry;
pub mod testing;
pub mod vm;
