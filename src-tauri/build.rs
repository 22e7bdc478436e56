//! Tauri's build step: checks `tauri.conf.json` and the capabilities,
//! generates a permission per command (so the window may call exactly the
//! commands `capabilities/main.json` lists), and points the embedded
//! frontend at `../frontend/dist`.
//!
//! When the frontend has not been built yet (a fresh clone running `cargo
//! clippy` or `cargo test`), a one-page placeholder saying how to build it
//! is embedded instead, so that the Rust side builds and tests on its own.

// Build scripts talk to cargo through stdout.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

/// Every `#[tauri::command]` of `src/commands.rs`; each gets an
/// `allow-<command>` permission for the capabilities to grant.
const COMMANDS: &[&str] = &[
    "nodes_list",
    "node_probe",
    "node_add",
    "node_remove",
    "node_login",
    "node_logout",
    "nodes_overview",
    "node_overview",
    "catalog_list",
    "catalog_icon",
    "package_list",
    "package_status",
    "package_install",
    "package_start",
    "package_stop",
    "package_restart",
    "package_uninstall",
    "package_logs",
    "package_logs_follow",
    "package_logs_stop",
    "package_stats",
    "package_open_ui",
    "update_app",
    "set_app_settings",
    "backup_app",
    "list_backups",
    "delete_backup",
    "download_backup",
    "restore_backup",
    "upload_and_restore",
];

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Archipelago</title></head>
<body style="font-family: sans-serif; margin: 3rem">
<h1>The frontend is not built</h1>
<p>This binary was built before <code>frontend/dist</code> existed. Run
<code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>, then build the app again.</p>
</body></html>
"#;

fn main() {
    let index = Path::new("../frontend/dist/index.html");
    // Also reruns (and re-embeds) when the frontend is rebuilt.
    println!("cargo:rerun-if-changed={}", index.display());
    if !index.is_file() {
        match placeholder_dist() {
            Ok(dir) => println!(
                "cargo:rustc-env=TAURI_CONFIG={}",
                serde_json::json!({ "build": { "frontendDist": dir } })
            ),
            Err(e) => fail(&format!("cannot write the placeholder frontend: {e}")),
        }
    }
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        fail(&format!("{e:#}"));
    }
}

/// Writes the placeholder page into `OUT_DIR` and returns its folder.
fn placeholder_dist() -> std::io::Result<PathBuf> {
    let out = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("OUT_DIR is not set"))?;
    let dir = out.join("placeholder-dist");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("index.html"), PLACEHOLDER)?;
    Ok(dir)
}

fn fail(message: &str) -> ! {
    eprintln!("archipelago-desktop build: {message}");
    std::process::exit(1);
}
