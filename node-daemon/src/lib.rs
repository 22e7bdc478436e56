//! The Archipelago node daemon as a library: everything `archipelagod` does,
//! split by domain so that each part can be tested on its own.
//!
//! - [`manifest`]: app manifests, parsing and validation (pure).
//! - [`quadlet`]: manifests rendered into Quadlet unit files (pure).
//! - [`secrets`]: the apps' generated secrets, made and repaired.
//! - [`state`]: the installed apps and their run states, on disk.
//! - [`reconcile`]: the level-triggered pass from desired to current state.
//! - [`api`]: the TLS JSON-RPC server: login, sessions, limits.
//! - [`service`]: what the API's methods do (install, uninstall, …).
//! - [`catalogs`]: the signed catalogs apps are installed from;
//!   [`catalog_fetch`] brings web catalogs into the node's cache.
//! - [`journal`], [`nodeinfo`]: a unit's last log lines; the node's vital signs.
//! - [`daemon`]: the long-running loop of passes (`archipelagod run`).
//! - [`systemd`], [`podman`]: the outside systems, behind narrow traits;
//!   [`fake`] stands in for both in unit tests.
//! - [`systemd_dbus`]: the real systemd manager, the user's over D-Bus.
//! - [`podman_rest`]: the real podman client, the user's REST API socket.
//! - [`backup`]: updates' data snapshots and encrypted backups, over
//!   [`archive`] (tar) and [`datatool`] (inside the containers' user
//!   namespace).
//! - [`fsutil`]: crash-safe writes and change tracking shared by every module
//!   that writes files.
//! - [`layout`]: where units, secrets, data and state live on a node.

pub mod api;
pub mod archive;
pub mod backup;
pub mod catalog_fetch;
pub mod catalogs;
pub mod daemon;
pub mod datatool;
pub mod fake;
pub mod fsutil;
pub mod journal;
pub mod layout;
pub mod manifest;
pub mod nodeinfo;
pub mod podman;
pub mod podman_pause;
pub mod podman_rest;
pub mod quadlet;
pub mod reconcile;
pub mod secrets;
pub mod service;
pub mod state;
pub mod systemd;
pub mod systemd_dbus;
