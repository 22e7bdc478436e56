//! The app opens in a real window, its page loads with Tauri's API, and
//! the first screen a new user sees works: the empty node list and the
//! "add a node" form. Screenshots go to the artifacts folder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use archipelago_e2e::DesktopApp;

const WAIT: Duration = Duration::from_secs(30);

/// `$ARCHIPELAGO_ARTIFACTS/<name>`, else under the target folder.
fn artifacts(name: &str) -> PathBuf {
    std::env::var_os("ARCHIPELAGO_ARTIFACTS")
        .map_or_else(
            || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e"),
            PathBuf::from,
        )
        .join(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_opens_on_an_empty_node_list_and_offers_to_add_one() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let artifacts = artifacts("smoke");
    let app = DesktopApp::start(&tmp.path().join("config"), &artifacts).await?;
    let d = &app.driver;

    let empty = d.testid("nodes-empty", WAIT).await?;
    let text = d.text(&empty).await?;
    assert!(text.contains("No nodes yet"), "{text}");
    app.screenshot("nodes-empty").await?;

    d.click(&d.testid("add-first-node-button", WAIT).await?)
        .await?;
    let address = d.testid("node-address-input", WAIT).await?;
    d.type_text(&address, "node.local").await?;
    let typed = d.property(&address, "value").await?;
    assert_eq!(typed, "node.local", "the address field lost keystrokes");
    d.testid("probe-button", WAIT).await?;
    app.screenshot("add-node").await?;

    // Nothing was stored: the app only wrote what it had to.
    assert!(!tmp.path().join("config/tokens.json").exists());
    app.stop().await
}
