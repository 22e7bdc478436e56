//! The catalog file's format and the checks on it that need no key: field
//! shapes, unique ids, and paths that stay inside the catalog folder.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The catalog format this code reads and writes.
pub const FORMAT: u32 = 1;
/// Where the catalog file lives under a catalog's root.
pub const CATALOG_FILE: &str = "catalog/catalog.json";
/// Where its minisign signature lives under a catalog's root.
pub const SIGNATURE_FILE: &str = "catalog/catalog.json.minisig";
/// Largest catalog file a node reads.
pub const MAX_CATALOG_BYTES: u64 = 4 * 1024 * 1024;
/// Largest manifest a node reads.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Largest icon a catalog may carry.
pub const MAX_ICON_BYTES: u64 = 64 * 1024;

/// `<root>/catalog/catalog.json`.
pub fn catalog_path(root: &Path) -> PathBuf {
    root.join(CATALOG_FILE)
}

/// `<root>/catalog/catalog.json.minisig`.
pub fn signature_path(root: &Path) -> PathBuf {
    root.join(SIGNATURE_FILE)
}

/// `catalog/catalog.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Always [`FORMAT`].
    pub format: u32,
    pub apps: Vec<CatalogEntry>,
}

/// One app of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The app id; the manifest's `id` must be the same.
    pub id: String,
    pub name: String,
    /// One line for the marketplace card.
    pub short_description: String,
    /// The app's page.
    pub description: String,
    pub category: String,
    /// Icon path under the catalog's root (`icons/<id>.png`).
    #[serde(default)]
    pub icon: Option<String>,
    /// SHA-256 of the icon, lowercase hex; required with `icon`.
    #[serde(default)]
    pub icon_sha256: Option<String>,
    pub version: String,
    /// Manifest path under the catalog's root (`apps/<id>/manifest.yml`).
    pub manifest: String,
    /// SHA-256 of the manifest, lowercase hex.
    pub manifest_sha256: String,
    /// Project pages.
    #[serde(default)]
    pub upstream: Vec<String>,
}

impl CatalogFile {
    /// Every problem of the file, each naming the app and field: empty when
    /// the file is sound.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.format != FORMAT {
            out.push(format!(
                "format {} is not one this node reads (it reads {FORMAT}): update archipelagod",
                self.format
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            let at = format!("apps[{i}] ({})", app.id);
            if !is_app_id(&app.id) {
                out.push(format!(
                    "{at}.id: not an app id (lowercase letters, digits and single dashes, starting with a letter, at most 40 characters)"
                ));
            }
            if !seen.insert(app.id.as_str()) {
                out.push(format!("{at}.id: listed twice"));
            }
            for (field, value) in [
                ("name", &app.name),
                ("short_description", &app.short_description),
                ("version", &app.version),
                ("category", &app.category),
            ] {
                if value.trim().is_empty() || value.chars().any(char::is_control) {
                    out.push(format!(
                        "{at}.{field}: must be non-empty text without control characters"
                    ));
                }
            }
            if let Err(e) = check_relative(&app.manifest) {
                out.push(format!("{at}.manifest: {e}"));
            }
            if !is_sha256_hex(&app.manifest_sha256) {
                out.push(format!(
                    "{at}.manifest_sha256: not a SHA-256 in lowercase hex (64 digits)"
                ));
            }
            match (&app.icon, &app.icon_sha256) {
                (None, None) => {}
                (Some(icon), Some(digest)) => {
                    if let Err(e) = check_relative(icon) {
                        out.push(format!("{at}.icon: {e}"));
                    } else if Path::new(icon).extension().and_then(|e| e.to_str()) != Some("png") {
                        out.push(format!("{at}.icon: icons are PNG files (`.png`)"));
                    }
                    if !is_sha256_hex(digest) {
                        out.push(format!(
                            "{at}.icon_sha256: not a SHA-256 in lowercase hex (64 digits)"
                        ));
                    }
                }
                (Some(_), None) => out.push(format!("{at}.icon_sha256: missing for the icon")),
                (None, Some(_)) => out.push(format!("{at}.icon_sha256: given without an icon")),
            }
            for (j, url) in app.upstream.iter().enumerate() {
                if !url.starts_with("https://") || url.chars().any(char::is_whitespace) {
                    out.push(format!("{at}.upstream[{j}]: not an https:// address"));
                }
            }
        }
        out
    }
}

/// A path under the catalog's root: relative, plain names only (no `..`,
/// no `.`, no absolute part), `/`-separated.
fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("paths use `/` and no control characters");
    }
    let p = Path::new(path);
    if p.components().all(|c| matches!(c, Component::Normal(_))) && !path.ends_with('/') {
        Ok(())
    } else {
        Err("must be a relative path inside the catalog (no `..`, `.` or leading `/`)")
    }
}

/// `hello-web`, `bitcoin-knots`: the daemon's app id rule.
fn is_app_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> CatalogEntry {
        CatalogEntry {
            id: id.into(),
            name: "Hello".into(),
            short_description: "says hello".into(),
            description: "A page that says hello.".into(),
            category: "files".into(),
            icon: Some(format!("icons/{id}.png")),
            icon_sha256: Some("a".repeat(64)),
            version: "1.0".into(),
            manifest: format!("apps/{id}/manifest.yml"),
            manifest_sha256: "b".repeat(64),
            upstream: vec!["https://example.org".into()],
        }
    }

    #[test]
    fn a_sound_file_has_no_problems() {
        let f = CatalogFile {
            format: FORMAT,
            apps: vec![entry("hello"), entry("other")],
        };
        assert_eq!(f.problems(), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_app_and_field() {
        let mut escape = entry("escape");
        escape.manifest = "../../etc/passwd".into();
        let mut abs = entry("abs");
        abs.icon = Some("/etc/shadow.png".into());
        let mut bad = entry("Bad_Id");
        bad.manifest_sha256 = "XYZ".into();
        let mut svg = entry("svg");
        svg.icon = Some("icons/svg.svg".into());
        let mut http = entry("http");
        http.upstream = vec!["http://example.org".into()];
        let f = CatalogFile {
            format: 2,
            apps: vec![entry("twice"), entry("twice"), escape, abs, bad, svg, http],
        };
        let problems = f.problems();
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("format 2"), "{problems:?}");
        assert!(has("apps[1] (twice).id: listed twice"), "{problems:?}");
        assert!(has("apps[2] (escape).manifest: must be a relative path"));
        assert!(has("apps[3] (abs).icon: must be a relative path"));
        assert!(has("apps[4] (Bad_Id).id: not an app id"));
        assert!(has("apps[4] (Bad_Id).manifest_sha256"));
        assert!(has("apps[5] (svg).icon: icons are PNG"));
        assert!(has("apps[6] (http).upstream[0]"));
        assert_eq!(problems.len(), 8, "{problems:?}");
    }
}
