//! The desktop journey a new user takes, in the built app's real window
//! under Xvfb (tauri-driver + `WebKitWebDriver`), against a real node: an
//! nspawn node running the daemon from its `.deb`, the local registry
//! serving the fixture images, the fixture apps as its (signed, community)
//! catalog — `archipelago_lifecycle::Lab`. The app, tauri-driver,
//! `WebKitWebDriver` and Xvfb run inside the run's network namespace, and so
//! does this test's `WebDriver` client (its thread entered the namespace).
//!
//! Pair by typing the node's address, check the fingerprint the app shows
//! against the one `archipelagod pairing` prints on the node (a pasted
//! wrong one keeps "add" disabled), confirm, log in with the password →
//! marketplace → install hello-web, recording every phase and percentage
//! the progress bar shows → the dashboard says healthy → its UI link,
//! fetched from inside the namespace, serves the hello-web page → stop →
//! start → the logs view shows lines → an update that never gets healthy is
//! rolled back → "Back up now" (a passphrase typed twice) → the app's
//! backups: download one, a 0600 file on this computer where the dialog
//! says → uninstall (confirm, data not kept) → the app is gone from the
//! dashboard and the marketplace, and nothing of it is left on the node →
//! the node's backups (all apps, from the empty dashboard): restore
//! hello-web's on this node with its passphrase → healthy on the dashboard
//! and serving its page again → uninstalled once more, nothing left.
//!
//! A wrong fingerprint is refused, for real: the node's certificate is
//! replaced afterwards (daemon stopped, its TLS folder deleted, daemon
//! started: it makes a new key and certificate, as a reinstalled or an
//! impersonated node would present). The app must show the red
//! `fingerprint-mismatch-warning` on the node's card and screen, and keep
//! the pin the user confirmed — never silently re-pin.
//!
//! Screenshots of each main screen go to the artifacts folder; with
//! `ARCHIPELAGO_UPDATE_SCREENSHOTS=1` the set is also copied to
//! `tests/e2e/screenshots/` (committed, for the README), so that an
//! ordinary run, CI's included, never rewrites files of the checkout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archipelago_api::rpc::format_fingerprint;
use archipelago_e2e::{DesktopApp, Launch, WebDriver, repo_root};
use archipelago_harness::node::Node as _;
use archipelago_harness::testing::{NODE_HOME, nothing_left, pairing_fingerprint, serial};
use archipelago_lifecycle::{API_PORT, Lab, PASSWORD, leftovers, root, user};
use serde_json::{Value, json};

/// How long the UI may take to show something.
const WAIT: Duration = Duration::from_secs(30);
/// How long an install may take, image pull included.
const INSTALL: Duration = Duration::from_secs(120);
/// The passphrase hello-web's backup is made, then restored, with.
const PASSPHRASE: &str = "journey backup passphrase";

/// The screenshots the README uses, in the journey's order.
const SHOTS: [&str; 15] = [
    "01-nodes-empty",
    "02-pairing-fingerprint",
    "03-login",
    "04-marketplace",
    "05-install-progress",
    "06-dashboard-healthy",
    "07-nodes-grid",
    "08-logs",
    "09-uninstall-dialog",
    "10-fingerprint-mismatch",
    "11-update-available",
    "12-update-rolled-back",
    "13-backups",
    "14-node-backups",
    "15-restored",
];

/// `$ARCHIPELAGO_ARTIFACTS/<name>`, else under the target folder.
fn artifacts(name: &str) -> PathBuf {
    std::env::var_os("ARCHIPELAGO_ARTIFACTS")
        .map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e"),
            PathBuf::from,
        )
        .join(name)
}

/// Records, in the page, every `data-phase` of the install phase and every
/// `data-value` of the progress bar as they change (a `MutationObserver`:
/// no step between two polls is missed).
const RECORD_PROGRESS: &str = r#"
window.__journey = { phases: [], values: [] };
const record = () => {
  const j = window.__journey;
  const phase = document.querySelector('[data-testid="install-phase"]');
  const bar = document.querySelector('[data-testid="install-progress"]');
  if (phase) {
    const p = phase.getAttribute('data-phase');
    if (j.phases[j.phases.length - 1] !== p) j.phases.push(p);
  }
  if (bar) {
    const v = Number(bar.getAttribute('data-value'));
    if (j.values[j.values.length - 1] !== v) j.values.push(v);
  }
};
new MutationObserver(record).observe(document.body, {
  subtree: true, childList: true, attributes: true,
  attributeFilter: ['data-phase', 'data-value'],
});
return true;
"#;

#[test]
fn a_user_pairs_installs_manages_and_uninstalls_hello_web_in_the_desktop_app() {
    let _one = serial();
    let started = Instant::now();
    // Built before entering the namespace (cargo may want the network).
    archipelago_e2e::build_desktop().unwrap();
    {
        let lab = Lab::start().unwrap();
        eprintln!("journey: lab up in {:.1?}", started.elapsed());
        let artifacts = artifacts("journey");
        let _ = std::fs::remove_dir_all(&artifacts);
        let config = lab.net.dir().join("desktop");
        let result = lab
            .block_on(journey(&lab, &config, &artifacts))
            .and_then(|r| r);
        if let Err(e) = &result {
            eprintln!(
                "journey failed; the daemon's log:\n{}\nartifacts: {}",
                lab.daemon_log(),
                artifacts.display()
            );
            panic!("{e:#}");
        }
        if std::env::var_os("ARCHIPELAGO_UPDATE_SCREENSHOTS").is_some() {
            publish_screenshots(&artifacts);
        } else {
            eprintln!("journey: screenshots in {}", artifacts.display());
        }
    }
    nothing_left().unwrap();
    eprintln!(
        "figure: the desktop journey (lab, pairing, install, stop, start, logs, failed update rolled back, backup and download, uninstall, restore from the node's backups, uninstall again, mismatch) took {:.1?}",
        started.elapsed()
    );
}

async fn journey(lab: &Lab, config: &Path, artifacts: &Path) -> anyhow::Result<()> {
    let t = Instant::now();
    let launch = Launch {
        netns: Some(lab.net.name().to_owned()),
        display: None,
    };
    let app = DesktopApp::start_with(config, artifacts, &launch).await?;
    eprintln!("journey: app up in {:.1?}", t.elapsed());
    let node_id = pair(&app, lab, config).await?;
    install(&app).await?;
    dashboard(&app, lab, &node_id).await?;
    update_rolled_back(&app, lab, &node_id).await?;
    let backup = backup_and_download(&app, config).await?;
    uninstall(&app, lab, Some(SHOTS[8])).await?;
    restore_after_uninstall(&app, lab, &node_id, &backup).await?;
    // Gone again, the same way: the journey leaves nothing of it behind.
    uninstall(&app, lab, None).await?;
    mismatch(&app, lab, config, &node_id).await?;
    app.stop().await
}

/// Adds the node through the dialog and logs in; the node's id.
async fn pair(app: &DesktopApp, lab: &Lab, config: &Path) -> anyhow::Result<String> {
    let d = &app.driver;
    let address = lab.node().port(API_PORT).to_string();
    let pinned = format_fingerprint(&lab.fingerprint);
    // Pair: the address as the harness gives it, the fingerprint checked
    // against what the node itself prints.
    d.testid("nodes-empty", WAIT).await?;
    app.screenshot(SHOTS[0]).await?;
    d.click(&d.testid("add-first-node-button", WAIT).await?)
        .await?;
    d.type_text(&d.testid("node-address-input", WAIT).await?, &address)
        .await?;
    d.type_text(&d.testid("node-name-input", WAIT).await?, "home-node")
        .await?;
    d.click(&d.testid("probe-button", WAIT).await?).await?;
    let shown = d.testid("fingerprint-text", WAIT).await?;
    let shown = d.attribute(&shown, "data-fingerprint").await?;
    let printed = format_fingerprint(&pairing_fingerprint(&*lab.node())?);
    assert_eq!(
        shown.as_deref(),
        Some(printed.as_str()),
        "the fingerprint shown is not the node's"
    );
    assert_eq!(printed, pinned);
    // A pasted fingerprint that differs keeps "add" disabled.
    let compare = d.testid("fingerprint-compare-input", WAIT).await?;
    let mut wrong = lab.fingerprint;
    wrong[31] ^= 0x01;
    d.type_text(&compare, &format_fingerprint(&wrong)).await?;
    wait_attr(d, "fingerprint-compare-result", "data-match", "false").await?;
    let confirm = d.testid("confirm-fingerprint-button", WAIT).await?;
    assert_eq!(d.property(&confirm, "disabled").await?, Value::Bool(true));
    d.clear(&compare).await?;
    d.type_text(&compare, &printed).await?;
    wait_attr(d, "fingerprint-compare-result", "data-match", "true").await?;
    app.screenshot(SHOTS[1]).await?;
    d.click(&confirm).await?;

    // Log in with the node's password.
    let password = d.testid("password-input", WAIT).await?;
    d.type_text(&password, PASSWORD).await?;
    app.screenshot(SHOTS[2]).await?;
    d.click(&d.testid("login-button", WAIT).await?).await?;
    let node_id = node_id(d).await?;
    let nodes_json = std::fs::read_to_string(config.join("nodes.json"))?;
    assert!(nodes_json.contains(&pinned), "{nodes_json}");
    Ok(node_id)
}

/// Installs hello-web from the marketplace, checking what the bar shows.
async fn install(app: &DesktopApp) -> anyhow::Result<()> {
    let d = &app.driver;
    // Marketplace → install hello-web, watching the progress bar.
    d.click(&d.testid("marketplace-tab", WAIT).await?).await?;
    d.testid("app-card-hello-web", WAIT).await?;
    d.testid("source-badge-hello-web", WAIT).await?;
    app.screenshot(SHOTS[3]).await?;
    d.execute(RECORD_PROGRESS, json!([])).await?;
    let t = Instant::now();
    d.click(&d.testid("install-button-hello-web", WAIT).await?)
        .await?;
    let mut shot_mid_way = false;
    let (phases, values) = loop {
        let seen = d.execute("return window.__journey", json!([])).await?;
        let phases: Vec<String> = serde_json::from_value(seen["phases"].clone())?;
        let values: Vec<u64> = serde_json::from_value(seen["values"].clone())?;
        let last = phases.last().map(String::as_str);
        if !shot_mid_way && matches!(last, Some("pulling" | "starting")) {
            app.screenshot(SHOTS[4]).await?;
            shot_mid_way = true;
        }
        if matches!(last, Some("done" | "failed")) {
            break (phases, values);
        }
        anyhow::ensure!(
            t.elapsed() < INSTALL,
            "install not done after {INSTALL:?}: {phases:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "journey: install took {:.1?}; phases {phases:?}; bar {values:?}",
        t.elapsed()
    );
    assert_eq!(
        phases.last().map(String::as_str),
        Some("done"),
        "{phases:?}"
    );
    assert!(
        phases.iter().any(|p| p == "pulling" || p == "starting"),
        "the bar never showed pulling or starting: {phases:?}"
    );
    assert!(shot_mid_way, "no screenshot of the install under way");
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "the bar went back: {values:?}"
    );
    assert!(
        values.iter().any(|v| (1..100).contains(v)),
        "the bar jumped: {values:?}"
    );
    assert_eq!(values.last(), Some(&100), "{values:?}");
    Ok(())
}

/// The dashboard, the app's page, the grid, stop, start, logs.
async fn dashboard(app: &DesktopApp, lab: &Lab, node_id: &str) -> anyhow::Result<()> {
    let d = &app.driver;

    // Dashboard: healthy, and its UI answers with its page.
    d.click(&d.testid("manage-button-hello-web", WAIT).await?)
        .await?;
    wait_attr(d, "app-row-hello-web", "data-health", "healthy").await?;
    d.testid("app-stats-hello-web", WAIT).await?;
    app.screenshot(SHOTS[5]).await?;
    let link = d.testid("ui-url-hello-web", WAIT).await?;
    let href = d.attribute(&link, "href").await?.unwrap_or_default();
    let (addr, path) = split_url(&href);
    assert_eq!(addr.ip(), lab.node().port(API_PORT).ip(), "{href}");
    let (status, body) = lab.net.http_get(addr, &path)?;
    assert_eq!(status, 200, "{href}: {body}");
    assert!(
        body.contains(archipelago_harness::fixtures::HELLO_PAGE),
        "{href}: {body}"
    );

    // The grid: the node online with its app.
    d.click(&d.testid("nav-nodes", WAIT).await?).await?;
    wait_attr(d, &format!("node-card-{node_id}"), "data-status", "online").await?;
    d.testid(&format!("node-apps-{node_id}"), WAIT).await?;
    app.screenshot(SHOTS[6]).await?;
    d.click(&d.testid(&format!("open-node-{node_id}"), WAIT).await?)
        .await?;
    d.click(&d.testid("dashboard-tab", WAIT).await?).await?;

    // Stop, start.
    d.click(&d.testid("stop-button-hello-web", WAIT).await?)
        .await?;
    wait_attr(d, "app-row-hello-web", "data-health", "stopped").await?;
    d.click(&d.testid("start-button-hello-web", WAIT).await?)
        .await?;
    wait_attr(d, "app-row-hello-web", "data-health", "healthy").await?;
    // A few visits, so that the logs have something to show.
    for _ in 0..3 {
        assert_eq!(lab.net.http_get(addr, &path)?.0, 200);
    }

    // Logs.
    d.click(&d.testid("logs-button-hello-web", WAIT).await?)
        .await?;
    d.testid("logs-view", WAIT).await?;
    d.testid("logs-live", WAIT).await?;
    let lines = wait_log_lines(d, 3).await?;
    eprintln!("journey: the logs view shows:\n{}", lines.join("\n"));
    app.screenshot(SHOTS[7]).await?;
    d.click(&d.testid("logs-close-button", WAIT).await?).await?;
    Ok(())
}

/// The catalog offers hello-web 1.1.0, which never gets healthy: the
/// dashboard shows the update, and after the update the node's rollback
/// message with 1.0.0 healthy again.
async fn update_rolled_back(app: &DesktopApp, lab: &Lab, node_id: &str) -> anyhow::Result<()> {
    let d = &app.driver;
    lab.publish_version("hello-web", "hello-web", "1.1.0", |yaml| {
        let health = r#"["wget", "-q", "-O-", "http://127.0.0.1:8080/"]"#;
        anyhow::ensure!(yaml.contains(health), "hello-web's health check changed");
        Ok(yaml
            .replace(health, r#"["wget", "-q", "-O-", "http://127.0.0.1:9/"]"#)
            .replace("    health:\n", "    start_timeout: 30s\n    health:\n"))
    })?;
    // Back to the dashboard, which reads the node again.
    d.click(&d.testid("nav-nodes", WAIT).await?).await?;
    d.click(&d.testid(&format!("open-node-{node_id}"), WAIT).await?)
        .await?;
    d.click(&d.testid("dashboard-tab", WAIT).await?).await?;
    let badge = d.testid("update-badge-hello-web", WAIT).await?;
    let offered = d.text(&badge).await?;
    assert!(offered.contains("1.1.0"), "{offered}");
    app.screenshot(SHOTS[10]).await?;
    d.click(&d.testid("update-button-hello-web", WAIT).await?)
        .await?;
    let message = d
        .testid("update-rollback-message-hello-web", INSTALL)
        .await?;
    let text = d.text(&message).await?;
    assert!(
        text.contains("Rolled back") && text.contains("hello-web_web"),
        "{text}"
    );
    wait_attr(d, "app-row-hello-web", "data-health", "healthy").await?;
    app.screenshot(SHOTS[11]).await?;
    Ok(())
}

/// Backs hello-web up from its row, then downloads the backup from the
/// app's backups: a non-empty 0600 file on this computer, where the dialog
/// says it is. The backup's name.
async fn backup_and_download(app: &DesktopApp, config: &Path) -> anyhow::Result<String> {
    let d = &app.driver;

    // Back up now: the passphrase twice.
    d.click(&d.testid("backup-button-hello-web", WAIT).await?)
        .await?;
    d.type_text(
        &d.testid("backup-passphrase-input", WAIT).await?,
        PASSPHRASE,
    )
    .await?;
    d.type_text(
        &d.testid("backup-passphrase-repeat-input", WAIT).await?,
        PASSPHRASE,
    )
    .await?;
    let confirm = d.testid("confirm-backup-button", WAIT).await?;
    assert_eq!(
        d.property(&confirm, "disabled").await?,
        Value::Bool(false),
        "the passphrase was not taken"
    );
    let t = Instant::now();
    d.click(&confirm).await?;
    let done = d.testid("backup-done", INSTALL).await?;
    let said = d.text(&done).await?;
    eprintln!("journey: backup took {:.1?}: {said}", t.elapsed());
    d.click(&d.testid("backup-close-button", WAIT).await?)
        .await?;

    // The app's backups: download the one just made.
    d.click(&d.testid("backups-button-hello-web", WAIT).await?)
        .await?;
    let download = d
        .wait_for("[data-testid^=\"download-backup-button-hello-web-\"]", WAIT)
        .await?;
    let name = d
        .attribute(&download, "data-testid")
        .await?
        .unwrap_or_default()
        .trim_start_matches("download-backup-button-")
        .to_owned();
    anyhow::ensure!(
        said.contains(&name),
        "the list shows {name}, the backup made was: {said}"
    );
    d.click(&download).await?;
    let saved = d.testid("download-saved", INSTALL).await?;
    let path = d
        .attribute(&saved, "data-path")
        .await?
        .context("download-saved has no data-path")?;
    let path = PathBuf::from(path);
    let meta =
        std::fs::metadata(&path).with_context(|| format!("the download {}", path.display()))?;
    assert!(meta.is_file(), "{} is not a file", path.display());
    assert!(meta.len() > 0, "{} is empty", path.display());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{} may be read by others",
        path.display()
    );
    assert!(
        path.ends_with(&name),
        "{} is not the backup {name}",
        path.display()
    );
    eprintln!(
        "journey: downloaded {name} ({} bytes) to {}",
        meta.len(),
        path.display()
    );
    app.screenshot(SHOTS[12]).await?;
    d.click(&d.testid("backups-close-button", WAIT).await?)
        .await?;
    let kept = config.join("downloads");
    anyhow::ensure!(
        path.starts_with(&kept),
        "the backup was saved to {}, not the run's folder {}",
        path.display(),
        kept.display()
    );
    Ok(name)
}

/// Uninstalls hello-web from the dashboard; nothing of it may be left.
/// `screenshot`: the name to save the uninstall dialog under, if any.
async fn uninstall(app: &DesktopApp, lab: &Lab, screenshot: Option<&str>) -> anyhow::Result<()> {
    let d = &app.driver;

    // Uninstall, data not kept.
    d.click(&d.testid("uninstall-button-hello-web", WAIT).await?)
        .await?;
    let keep = d.testid("keep-data-checkbox", WAIT).await?;
    assert_eq!(d.property(&keep, "checked").await?, Value::Bool(false));
    if let Some(name) = screenshot {
        app.screenshot(name).await?;
    }
    d.click(&d.testid("confirm-uninstall-button", WAIT).await?)
        .await?;
    d.testid("uninstall-done", INSTALL).await?;
    d.click(&d.testid("uninstall-close-button", WAIT).await?)
        .await?;
    d.testid("dashboard-empty", WAIT).await?;
    assert!(
        d.find("[data-testid=\"app-row-hello-web\"]")
            .await?
            .is_none()
    );
    let left = leftovers(&*lab.node(), "hello-web")?;
    assert!(left.is_empty(), "hello-web left behind: {left:#?}");
    d.click(&d.testid("marketplace-tab", WAIT).await?).await?;
    wait_attr(d, "app-card-hello-web", "data-installed", "false").await?;
    d.testid("install-button-hello-web", WAIT).await?;
    Ok(())
}

/// From the empty dashboard, the node's backups (of all its apps) bring
/// hello-web back: restored on this node with the backup's passphrase,
/// healthy on the dashboard, its page served again.
async fn restore_after_uninstall(
    app: &DesktopApp,
    lab: &Lab,
    node_id: &str,
    backup: &str,
) -> anyhow::Result<()> {
    let d = &app.driver;
    d.click(&d.testid("dashboard-tab", WAIT).await?).await?;
    d.testid("dashboard-empty", WAIT).await?;

    // The node's backups, hello-web's among them though it is not installed.
    d.click(&d.testid("node-backups-button", WAIT).await?)
        .await?;
    let row = d.testid(&format!("backup-row-{backup}"), WAIT).await?;
    assert_eq!(
        d.attribute(&row, "data-app-id").await?.as_deref(),
        Some("hello-web")
    );
    app.screenshot(SHOTS[13]).await?;

    // Restore on this node (the first choice offered), with the passphrase.
    d.click(
        &d.testid(&format!("restore-backup-button-{backup}"), WAIT)
            .await?,
    )
    .await?;
    let target = d.testid("restore-target-select", WAIT).await?;
    assert_eq!(
        d.property(&target, "value").await?,
        Value::String(node_id.to_owned()),
        "the restore does not offer the backup's own node first"
    );
    d.type_text(
        &d.testid("restore-passphrase-input", WAIT).await?,
        PASSPHRASE,
    )
    .await?;
    let confirm = d.testid("confirm-restore-button", WAIT).await?;
    assert_eq!(d.property(&confirm, "disabled").await?, Value::Bool(false));
    let t = Instant::now();
    d.click(&confirm).await?;
    let done = d.testid("restore-done", INSTALL).await?;
    let said = d.text(&done).await?;
    eprintln!("journey: restore took {:.1?}: {said}", t.elapsed());
    d.click(&d.testid("restore-close-button", WAIT).await?)
        .await?;
    d.click(&d.testid("backups-close-button", WAIT).await?)
        .await?;

    // Back on the dashboard, healthy, and the node serves its page again.
    wait_attr(d, "app-row-hello-web", "data-health", "healthy").await?;
    app.screenshot(SHOTS[14]).await?;
    let link = d.testid("ui-url-hello-web", WAIT).await?;
    let href = d.attribute(&link, "href").await?.unwrap_or_default();
    let (addr, path) = split_url(&href);
    assert_eq!(addr.ip(), lab.node().port(API_PORT).ip(), "{href}");
    let (status, body) = lab.net.http_get(addr, &path)?;
    assert_eq!(status, 200, "{href}: {body}");
    assert!(
        body.contains(archipelago_harness::fixtures::HELLO_PAGE),
        "{href}: {body}"
    );
    Ok(())
}

/// Replaces the node's certificate: the app must refuse it and keep its pin.
async fn mismatch(app: &DesktopApp, lab: &Lab, config: &Path, node_id: &str) -> anyhow::Result<()> {
    let d = &app.driver;
    let pinned = format_fingerprint(&lab.fingerprint);
    // The node's certificate changes: the app refuses it, loudly.
    let old = lab.fingerprint;
    new_node_certificate(lab)?;
    let new = pairing_fingerprint(&*lab.node())?;
    assert_ne!(new, old, "the node kept its certificate");
    d.click(&d.testid("nav-nodes", WAIT).await?).await?;
    d.click(&d.testid("refresh-nodes-button", WAIT).await?)
        .await?;
    wait_attr(
        d,
        &format!("node-card-{node_id}"),
        "data-status",
        "mismatch",
    )
    .await?;
    let warning = d.testid("fingerprint-mismatch-warning", WAIT).await?;
    let text = d.text(&warning).await?;
    eprintln!("journey: the mismatch warning says: {text}");
    app.screenshot(SHOTS[9]).await?;
    d.click(&d.testid(&format!("open-node-{node_id}"), WAIT).await?)
        .await?;
    d.testid("mismatch-remove-button", WAIT).await?;
    assert!(
        d.find("[data-testid=\"app-card-hello-web\"]")
            .await?
            .is_none()
    );
    let nodes_json = std::fs::read_to_string(config.join("nodes.json"))?;
    assert!(
        nodes_json.contains(&pinned),
        "the pin changed: {nodes_json}"
    );
    assert!(
        !nodes_json.contains(&format_fingerprint(&new)),
        "re-pinned: {nodes_json}"
    );
    Ok(())
}

/// The id of the (only) node, from the sidebar.
async fn node_id(d: &WebDriver) -> anyhow::Result<String> {
    let nav = d.wait_for("[data-testid^=\"nav-node-\"]", WAIT).await?;
    let id = d.attribute(&nav, "data-testid").await?.unwrap_or_default();
    Ok(id.trim_start_matches("nav-node-").to_owned())
}

/// Waits until the element with testid `id` has `attr` = `want`.
async fn wait_attr(d: &WebDriver, id: &str, attr: &str, want: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + INSTALL;
    let mut last = None;
    loop {
        if let Some(e) = d.find(&format!("[data-testid=\"{id}\"]")).await? {
            // The element may be replaced between finding and reading it.
            if let Ok(v) = d.attribute(&e, attr).await {
                if v.as_deref() == Some(want) {
                    return Ok(());
                }
                last = v;
            }
        }
        if Instant::now() > deadline {
            let page = d
                .execute("return document.body.innerText", json!([]))
                .await
                .unwrap_or_default();
            anyhow::bail!("{id} {attr} is {last:?}, not {want:?}; the page says: {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the logs view shows at least `n` lines; returns them.
async fn wait_log_lines(d: &WebDriver, n: usize) -> anyhow::Result<Vec<String>> {
    let script = "return Array.from(document.querySelectorAll('[data-testid=\"logs-view\"] .log-line'), (l) => l.textContent)";
    let deadline = Instant::now() + WAIT;
    loop {
        let lines: Vec<String> = serde_json::from_value(d.execute(script, json!([])).await?)?;
        if lines.iter().filter(|l| !l.trim().is_empty()).count() >= n {
            return Ok(lines);
        }
        anyhow::ensure!(Instant::now() < deadline, "the logs view shows {lines:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `http://10.99.0.2:8080/x` → the address and `/x`.
fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not http: {url}"));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    (host.parse().unwrap(), format!("/{path}"))
}

/// Gives the node a new TLS identity: the daemon stopped, its key and
/// certificate deleted, the daemon started (it makes new ones).
fn new_node_certificate(lab: &Lab) -> anyhow::Result<()> {
    let node = lab.node();
    root(&*node, &["systemctl", "stop", "archipelagod.service"])?;
    user(
        &*node,
        &["rm", "-rf", &format!("{NODE_HOME}/.config/archipelago/tls")],
    )?;
    root(&*node, &["systemctl", "start", "archipelagod.service"])?;
    let address = node.port(API_PORT).to_string();
    drop(node);
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = lab.block_on(archipelago_client::fetch_fingerprint(&address))?;
        if seen.is_ok_and(|f| f != lab.fingerprint) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the daemon did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Copies the screenshots to `tests/e2e/screenshots/`.
fn publish_screenshots(artifacts: &Path) {
    let out = repo_root().join("tests/e2e/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    for name in SHOTS {
        let file = format!("{name}.png");
        std::fs::copy(artifacts.join(&file), out.join(&file)).unwrap();
    }
    eprintln!("journey: screenshots in {}", out.display());
}
