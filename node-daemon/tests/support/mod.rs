//! What the tests that run podman's real Quadlet generator share: where
//! the generator is (missing is a failure, never a skip) and one dry run
//! over a folder of units.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the harness put podman 5's Quadlet generator
/// (`tests/tools/fetch-quadlet.sh`).
pub fn quadlet_binary() -> PathBuf {
    let path = std::env::var_os("ARCHIPELAGO_QUADLET").map_or_else(
        || PathBuf::from("/var/cache/archipelago/podman-trixie/usr/libexec/podman/quadlet"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "podman's Quadlet generator is not at {}: run tests/tools/fetch-quadlet.sh (the README's test command does) or set ARCHIPELAGO_QUADLET",
        path.display()
    );
    path
}

/// Runs `quadlet -dryrun -user` over one folder; returns the generated
/// services (name → text), failing on any diagnostic.
pub fn quadlet_dryrun(quadlet: &Path, dir: &Path) -> BTreeMap<String, String> {
    let out = Command::new(quadlet)
        .args(["-dryrun", "-user"])
        .env("QUADLET_UNIT_DIRS", dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let diagnostics: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Loading source unit file"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        out.status.success() && diagnostics.is_empty(),
        "quadlet rejected {}: status {}\n{}",
        dir.display(),
        out.status,
        diagnostics.join("\n")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut services = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            current = Some(name.to_owned());
            services.insert(name.to_owned(), String::new());
        } else if let Some(name) = &current {
            let text = services.get_mut(name).unwrap();
            text.push_str(line);
            text.push('\n');
        }
    }
    services
}
