//! Quadlet rendering: a pure function from manifests to the `.container`,
//! `.volume` and `.network` files that systemd's Quadlet generator turns
//! into the service user's units (pillar 1). Typed structs per unit kind
//! ([`container`], [`volume`], [`network`], [`unit`]) are serialised by
//! [`ini`]; [`render`] maps manifests onto them. No I/O here.

pub mod container;
pub mod ini;
pub mod network;
mod render;
pub mod unit;
pub mod volume;

pub use render::{
    DEFAULT_START_TIMEOUT_SECS, LABEL_APP, LABEL_CONFIG, LABEL_MANAGED, MANAGED_MARKER,
    RenderedUnit, UnitKind, app_of_unit_file, container_name, container_service, is_managed,
    render_app,
};
