//! `archipelago-demo`: the desktop app connected to a local demo node, in
//! one command (`tests/node/demo.sh` builds what it needs first).
//!
//! Boots what `archipelago_lifecycle::Lab` boots — the run's network
//! namespace, the local registry serving the fixture apps' images, an
//! nspawn node with the daemon's `.deb` installed, its password set and
//! the fixture apps as its catalog — then opens the desktop app inside the
//! namespace (on `$DISPLAY`, or on Xvfb when there is none), pairs it with
//! the node through the app's own commands (`node_add` with the fingerprint
//! `archipelagod pairing` printed, `node_login` with the password: the app
//! writes its node list and session token itself), shows the node's
//! dashboard, saves a screenshot and prints its path. Everything stays up
//! until Enter (or end of input).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::BufRead as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use archipelago_api::rpc::format_fingerprint;
use archipelago_e2e::{DesktopApp, Launch, build_desktop};
use archipelago_harness::node::Node as _;
use archipelago_lifecycle::{API_PORT, Lab, PASSWORD};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Pairs and logs in through the app's commands; the node's id.
const PAIR: &str = r"
const [address, fingerprint, password, done] = arguments;
const invoke = window.__TAURI__.core.invoke;
invoke('node_add', { address, fingerprint, name: 'demo-node' })
  .then((n) => invoke('node_login', { nodeId: n.id, password }))
  .then((n) => done({ id: n.id }), (e) => done({ error: e }));
";

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let out = std::env::var_os("ARCHIPELAGO_ARTIFACTS")
        .map_or_else(|| PathBuf::from("/var/tmp/archipelago-demo"), PathBuf::from);
    build_desktop()?;
    eprintln!("demo: starting the node (registry, nspawn node, the daemon's .deb)…");
    let lab = Lab::start()?;
    let artifacts = out.join(lab.net.name());
    let config = lab.net.dir().join("desktop");
    let display = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty());
    let launch = Launch {
        netns: Some(lab.net.name().to_owned()),
        display: display.clone(),
    };
    let address = lab.node().port(API_PORT).to_string();
    let fingerprint = format_fingerprint(&lab.fingerprint);
    lab.block_on(async {
        let app = DesktopApp::start_with(&config, &artifacts, &launch).await?;
        let d = &app.driver;
        let paired = d
            .execute_async(PAIR, json!([address, fingerprint, PASSWORD]))
            .await?;
        let Some(id) = paired["id"].as_str() else {
            bail!("the app could not pair with the node: {}", paired["error"]);
        };
        // The page reads the node list at start: read it again.
        d.execute("location.reload(); return true", json!([])).await?;
        d.click(&d.testid(&format!("open-node-{id}"), WAIT).await?)
            .await?;
        d.testid("dashboard-tab", WAIT).await?;
        d.wait_for(
            "[data-testid=\"dashboard-empty\"], [data-testid^=\"app-row-\"]",
            WAIT,
        )
        .await?;
        let shot = app.screenshot("desktop-dashboard").await?;
        println!(
            "the desktop app is paired with the demo node and shows its dashboard ({:.0?} from start)",
            started.elapsed()
        );
        println!("screenshot: {}", shot.display());
        println!(
            "node {address} (certificate {fingerprint}), password {PASSWORD}; run {}, app logs in {}",
            lab.net.name(),
            artifacts.display()
        );
        match &display {
            Some(d) => println!("the window is on display {d}"),
            None => println!(
                "no $DISPLAY: the window is on Xvfb {} (inside the namespace)",
                app.display
            ),
        }
        println!("press Enter to close the app and remove the node");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        app.stop().await
    })
    .context("the namespace")??;
    drop(lab);
    Ok(())
}
