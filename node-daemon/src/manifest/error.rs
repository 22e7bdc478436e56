//! Manifest errors: every problem names the file, the field path
//! (`containers[0].ports[1].host`) and the reason, so a person can fix it
//! without reading the daemon's code.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path with indices, empty for the document as a whole.
    pub field: String,
    pub reason: String,
}

/// All problems found in one manifest file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: PathBuf,
    pub errors: Vec<FieldError>,
}

impl ManifestError {
    pub fn single(file: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            errors: vec![FieldError {
                field: field.into(),
                reason: reason.into(),
            }],
        }
    }

    /// The field paths in order, for tests and terse output.
    pub fn fields(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.field.as_str()).collect()
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{} is not a valid app manifest ({n} problem{}):",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            if e.field.is_empty() {
                write!(f, "\n  - {}", e.reason)?;
            } else {
                write!(f, "\n  - {}: {}", e.field, e.reason)?;
            }
        }
        Ok(())
    }
}
