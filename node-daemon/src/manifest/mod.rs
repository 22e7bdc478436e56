//! App manifests: parsing (strict, with the path of the offending field) and
//! validation, including the security lint of pillar 5. Pure: no I/O beyond
//! [`load`] reading the file it is given.

mod error;
mod model;
mod validate;

pub use error::{FieldError, ManifestError};
pub use model::*;
pub use validate::{
    CAPABILITY_ALLOWLIST, Strictness, bind_set, is_valid_app_id, validate, validate_set,
};

use std::path::Path;

/// Parses a manifest from YAML text without validating it.
pub fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_path(&e.path().to_string());
        let reason = strip_path_prefix(&field, &e.into_inner().to_string());
        // A missing key is reported at its parent; name the key itself.
        let field = match missing_field(&reason) {
            Some(key) if field.is_empty() => key.to_owned(),
            Some(key) => format!("{field}.{key}"),
            None => field,
        };
        ManifestError::single(file, field, reason)
    })
}

/// Parses and validates a manifest.
pub fn from_yaml(
    file: &Path,
    text: &str,
    strictness: Strictness,
) -> Result<Manifest, ManifestError> {
    let manifest = parse(file, text)?;
    validate(file, &manifest, strictness)?;
    Ok(manifest)
}

/// Reads, parses and validates the manifest at `file`.
pub fn load(file: &Path, strictness: Strictness) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ManifestError::single(
            file,
            String::new(),
            format!("cannot read the manifest: {e}"),
        )
    })?;
    from_yaml(file, &text, strictness)
}

/// `serde_path_to_error` prints the root as `.`; we print it as the empty path.
fn field_path(p: &str) -> String {
    if p == "." {
        String::new()
    } else {
        p.to_owned()
    }
}

/// `serde_yaml` starts some messages with its own copy of the path
/// (`containers[0]: unknown field ...`); the path is reported separately, so
/// drop it. The trailing "at line L column C" stays: it helps find the spot.
fn strip_path_prefix(field: &str, reason: &str) -> String {
    match reason.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && field.starts_with(head) => rest.to_owned(),
        _ => reason.to_owned(),
    }
}

/// The key named by serde's "missing field `key`" message.
fn missing_field(reason: &str) -> Option<&str> {
    reason.strip_prefix("missing field `")?.split('`').next()
}
