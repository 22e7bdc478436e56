//! What real-node tests need that the project builds itself: container
//! images written as OCI layouts (no outside registry), the fixture apps'
//! images and manifests.
//!
//! - [`oci`]: single-layer OCI image layouts, deterministic to the digest.
//! - [`fixtures`]: the fixture images (`hello-web`, `fixture-chain`,
//!   `fixture-wallet`, `fixture-broken`) and the manifests in
//!   `tests/fixtures/`, rendered with the digests of a build.

pub mod fixtures;
pub mod oci;
