//! The release gate's chaos cases, each on a real node and each checking
//! that the node converges and that nothing is lost: the daemon killed at
//! every install step, the power cut mid-install and mid-uninstall, podman
//! locked out by a dead pause process, a truncated state file, a secret
//! made world-readable, the registry unreachable during an install, the
//! disk full during a pull, a crash-looping container, and two clients
//! installing the same app at once. (The deleted secret and the
//! hand-edited unit are in [`crate::cells::once`]; full disks and power
//! cuts during updates, backups and restores in [`crate::updates`].)

use crate::cells::{
    self, CHAIN, HELLO, chain_secret, comeback, converged, forget_hello_image, reachable,
};
use crate::{Api, Lab, Matrix, containers, is_code, leftovers, root, user};
use anyhow::{Context as _, Result, bail, ensure};
use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    AppParams, Health, PackageInstall, PackageUninstall, Phase, UninstallParams,
};
use archipelago_harness::node::RunAs;
use archipelago_harness::testing::NODE_HOME;
use std::time::{Duration, Instant};

/// The node's state file.
const STATE_FILE: &str = "/var/lib/archipelago/.local/state/archipelago/state.json";
/// nftables commands that make the registry refuse this node's
/// connections, and the one that lifts that.
const REGISTRY_REJECT: [&str; 3] = [
    "add table inet archipelago-chaos",
    "add chain inet archipelago-chaos out { type filter hook output priority 0 ; }",
    "add rule inet archipelago-chaos out ip daddr 10.99.0.1 tcp dport 5000 reject with tcp reset",
];
const REGISTRY_BACK: &str = "delete table inet archipelago-chaos";

/// Every case, in order, on `lab`'s node (which must have no app
/// installed); a failed case stops the run.
pub async fn run(lab: &Lab, m: &mut Matrix) -> Result<()> {
    let api = lab.api().await?;
    m.cell(
        "daemon",
        "kill -9 at each install step converges",
        cells::kill_mid_install(
            lab,
            &api,
            &[
                Phase::Validating,
                Phase::Pulling,
                Phase::Starting,
                Phase::Healthy,
                Phase::Done,
            ],
        ),
    )
    .await?;
    m.cell(
        "power",
        "power cut mid-install converges",
        power_cut_mid_install(lab, &api),
    )
    .await?;
    m.cell(
        "power",
        "power cut mid-uninstall converges",
        power_cut_mid_uninstall(lab, &api),
    )
    .await?;
    m.cell(
        "podman",
        "locked out by a dead pause process: repaired",
        podman_locked_out(lab, &api),
    )
    .await?;
    m.cell(
        "state file",
        "truncated: clear error, apps run on, backup restores it",
        truncated_state(lab, &api),
    )
    .await?;
    m.cell(
        "secrets",
        "world-readable secret repaired",
        world_readable_secret(lab, &api),
    )
    .await?;
    m.cell(
        "registry",
        "down during install: clear error, nothing half-installed, retry works",
        registry_down(lab, &api),
    )
    .await?;
    m.cell(
        "disk",
        "full during pull: clear error, space recovered, retry works",
        disk_full_during_pull(lab, &api),
    )
    .await?;
    m.cell(
        "containers",
        "crash loop reported, other apps unaffected",
        crash_loop(lab, &api),
    )
    .await?;
    m.cell(
        "clients",
        "two installs of one app at once: one install",
        two_clients(lab, &api),
    )
    .await?;
    Ok(())
}

/// Uninstalls `app` and checks that nothing of it is left.
async fn clean_up(lab: &Lab, api: &Api<'_>, app: &str) -> Result<()> {
    if api.status(app).await.is_ok() {
        api.uninstall(app, false).await?;
    }
    let left = leftovers(&*lab.node(), app)?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

async fn power_cut_mid_install(lab: &Lab, api: &Api<'_>) -> Result<()> {
    for at in [Phase::Pulling, Phase::Starting] {
        forget_hello_image(lab)?;
        crate::updates::cut_power_at::<PackageInstall>(
            lab,
            api,
            AppParams { id: HELLO.into() },
            at,
        )
        .await?;
        let outcome = converged(lab, api, HELLO).await?;
        eprintln!("power cut at {at:?} of an install: {outcome}");
        if outcome == "installed" {
            ensure!(containers(&*lab.node(), HELLO)?.len() == 1);
            reachable(lab, HELLO)?;
        }
        clean_up(lab, api, HELLO).await?;
    }
    Ok(())
}

/// The power cut while the uninstall stops the chain's container (300 ms
/// in), then while it removes what is left: either way the node finishes
/// the uninstall after the boot.
async fn power_cut_mid_uninstall(lab: &Lab, api: &Api<'_>) -> Result<()> {
    let (_, s) = api.install(CHAIN).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    let call = api.uninstall(CHAIN, false);
    tokio::pin!(call);
    tokio::select! {
        r = &mut call => bail!("the uninstall ended before the cut: {r:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    lab.node().power_cut()?;
    lab.node().boot()?;
    api.wait_api(comeback(lab)).await?;
    let outcome = converged(lab, api, CHAIN).await?;
    eprintln!("power cut 300 ms into an uninstall: {outcome}");
    ensure!(
        outcome == "gone",
        "an uninstall the node had begun came back installed"
    );
    let (_, s) = api.install(CHAIN).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    crate::updates::cut_power_at::<PackageUninstall>(
        lab,
        api,
        UninstallParams {
            id: CHAIN.into(),
            keep_data: false,
        },
        Phase::Removing,
    )
    .await?;
    let outcome = converged(lab, api, CHAIN).await?;
    eprintln!("power cut at Removing of an uninstall: {outcome}");
    ensure!(
        outcome == "gone",
        "an uninstall cut while removing came back installed"
    );
    Ok(())
}

/// What a power cut can leave for the next boot: podman's first start
/// after the boot cut short (a unit stopped while podman started in it),
/// its pause process dead and the pid file naming it left behind. Rootless
/// podman then refuses every command until that file goes.
const LOCK_OUT_PODMAN: &str = r#"set -e
t=$XDG_RUNTIME_DIR/libpod/tmp
systemctl --user stop podman.socket podman.service
pid=$(cat "$t/pause.pid")
kill -9 "$pid"
n=0
while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
rm -f "$t/alive"
printf %s "$pid" > "$t/pause.pid"
systemctl --user start podman.socket
"#;

/// podman locked out as [`LOCK_OUT_PODMAN`] leaves it: the install a user
/// tries fails at first, the daemon sees podman's socket fail, removes the
/// stale file and starts the socket again, and a retry installs the app.
async fn podman_locked_out(lab: &Lab, api: &Api<'_>) -> Result<()> {
    // The earlier cases ran podman, so its pause process is up.
    user(&*lab.node(), &["sh", "-c", LOCK_OUT_PODMAN])?;
    let locked = lab.node().exec(RunAs::ServiceUser, &["podman", "info"])?;
    ensure!(
        !locked.success() && locked.stderr.contains("join the existing user namespace"),
        "podman was not locked out, so this case shows nothing: {locked:?}"
    );
    // What the user sees, try by try, and when the daemon repaired podman.
    let start = Instant::now();
    let mut tries = Vec::new();
    let s = loop {
        let at = start.elapsed();
        let this = Instant::now();
        let result = api.install(HELLO).await;
        tries.push(format!(
            "at {at:.1?} for {:.1?}: {}",
            this.elapsed(),
            match &result {
                Ok(_) => "installed".to_owned(),
                Err(e) => format!("{e:#}").chars().take(120).collect(),
            }
        ));
        match result {
            Ok((_, s)) => break s,
            Err(_) if start.elapsed() < comeback(lab) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => bail!(
                "podman still locked out after {:.0?}: {e:#}; tries: {tries:#?}",
                start.elapsed()
            ),
        }
    };
    let repairs: Vec<String> = lab
        .daemon_log()
        .lines()
        .filter(|l| l.contains("podman's API was unreachable"))
        .map(crate::report::without_escapes)
        .collect();
    eprintln!(
        "installed {:.1?} after podman was locked out; tries: {tries:#?}; the daemon: {repairs:#?}",
        start.elapsed()
    );
    ensure!(s.health == Health::Healthy, "{s:?}");
    let info = lab.node().exec(RunAs::ServiceUser, &["podman", "info"])?;
    ensure!(info.success(), "podman still refuses: {info:?}");
    ensure!(
        repairs
            .iter()
            .any(|l| l.contains("removed podman's stale pause pid file")),
        "podman works again, but not by the daemon's repair"
    );
    reachable(lab, HELLO)?;
    clean_up(lab, api, HELLO).await
}

/// The state file cut short: edits are refused with the way out in the
/// message, the apps keep running (also across a daemon restart), and
/// `archipelagod state recover` brings the last good state back.
async fn truncated_state(lab: &Lab, api: &Api<'_>) -> Result<()> {
    let (_, s) = api.install(HELLO).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    let before = containers(&*lab.node(), HELLO)?;
    let good = root(&*lab.node(), &["cat", STATE_FILE])?;
    ensure!(good.len() > 20, "a short state file: {good:?}");
    root(&*lab.node(), &["truncate", "-s", "20", STATE_FILE])?;
    let refused = async {
        let start = Instant::now();
        loop {
            match api.install(CHAIN).await {
                Err(e) if is_code(&e, ErrorCode::StateCorrupt) => return Ok(e.to_string()),
                Ok(s) => bail!("an install over a corrupt state file went ahead: {s:?}"),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    bail!("expected a corrupt-state error, got {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    .await?;
    eprintln!("the error a user sees: {refused}");
    ensure!(
        refused.contains("archipelagod state recover"),
        "no way out named: {refused}"
    );
    let left = leftovers(&*lab.node(), CHAIN)?;
    ensure!(left.is_empty(), "the refused install left {left:?}");
    root(&*lab.node(), &["systemctl", "restart", "archipelagod"])?;
    api.wait_api(comeback(lab)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        containers(&*lab.node(), HELLO)? == before,
        "the app did not keep running across a daemon restart"
    );
    reachable(lab, HELLO)?;
    let recovered = lab
        .node()
        .exec(RunAs::ServiceUser, &["archipelagod", "state", "recover"])?;
    ensure!(recovered.success(), "{recovered:?}");
    eprintln!("recover: {}", recovered.stdout.trim());
    ensure!(root(&*lab.node(), &["cat", STATE_FILE])? == good);
    api.wait_healthy(HELLO, comeback(lab)).await?;
    ensure!(containers(&*lab.node(), HELLO)? == before);
    let (_, s) = api.install(CHAIN).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    clean_up(lab, api, CHAIN).await?;
    clean_up(lab, api, HELLO).await
}

/// A secret given mode 0644 is back to 0600 with its value and the app's
/// container unchanged.
async fn world_readable_secret(lab: &Lab, api: &Api<'_>) -> Result<()> {
    let (_, s) = api.install(CHAIN).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    let file = format!("{NODE_HOME}/.local/share/archipelago/secrets/{CHAIN}/files/rpc-password");
    let value = chain_secret(lab)?;
    let before = containers(&*lab.node(), CHAIN)?;
    root(&*lab.node(), &["chmod", "0644", &file])?;
    let start = Instant::now();
    loop {
        let mode = root(&*lab.node(), &["stat", "-c", "%a", &file])?;
        if mode.trim() == "600" {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(75),
            "still mode {mode} after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("world-readable secret repaired in {:?}", start.elapsed());
    ensure!(chain_secret(lab)? == value, "the secret's value changed");
    ensure!(
        containers(&*lab.node(), CHAIN)? == before,
        "the app was restarted for a mode"
    );
    clean_up(lab, api, CHAIN).await
}

/// The registry refuses the node's connections (as a registry that is
/// down does) during an install: the install fails saying so, leaves
/// nothing, and succeeds once the registry is back.
async fn registry_down(lab: &Lab, api: &Api<'_>) -> Result<()> {
    forget_hello_image(lab)?;
    for rule in REGISTRY_REJECT {
        root(&*lab.node(), &["nft", rule])?;
    }
    let failed = api.install(HELLO).await;
    root(&*lab.node(), &["nft", REGISTRY_BACK])?;
    let e = match failed {
        Err(e) => e,
        Ok(s) => bail!("installed without its registry: {s:?}"),
    };
    let text = e.to_string();
    eprintln!("the error a user sees: {text}");
    ensure!(is_code(&e, ErrorCode::InstallFailed), "{text}");
    ensure!(
        text.contains("could not pull") && text.contains("registry"),
        "{text}"
    );
    let left = leftovers(&*lab.node(), HELLO)?;
    ensure!(left.is_empty(), "half-installed: {left:?}");
    let (_, s) = api.install(HELLO).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    reachable(lab, HELLO)?;
    clean_up(lab, api, HELLO).await
}

/// podman copies a pull's layers through `/var/tmp`: a full one fails the
/// pull. The install says so, leaves nothing, the space comes back, and
/// the install works once there is room.
async fn disk_full_during_pull(lab: &Lab, api: &Api<'_>) -> Result<()> {
    forget_hello_image(lab)?;
    root(
        &*lab.node(),
        &[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=1777",
            "archipelago-full",
            "/var/tmp",
        ],
    )?;
    let failed = api.install(HELLO).await;
    let used = root(&*lab.node(), &["du", "-sk", "/var/tmp"]);
    root(&*lab.node(), &["umount", "/var/tmp"])?;
    let e = match failed {
        Err(e) => e,
        Ok(s) => bail!("installed with a full /var/tmp: {s:?}"),
    };
    let text = e.to_string();
    eprintln!("the error a user sees: {text}");
    ensure!(is_code(&e, ErrorCode::InstallFailed), "{text}");
    ensure!(
        text.contains("no space left on device") && text.contains("free space on the node"),
        "the error does not say the disk is full and what to do: {text}"
    );
    let used = used?;
    let kib: u64 = used
        .split_whitespace()
        .next()
        .and_then(|k| k.parse().ok())
        .context("du")?;
    ensure!(kib <= 4, "the failed pull left {used} in /var/tmp");
    let left = leftovers(&*lab.node(), HELLO)?;
    ensure!(left.is_empty(), "half-installed: {left:?}");
    let (_, s) = api.install(HELLO).await?;
    ensure!(s.health == Health::Healthy, "{s:?}");
    clean_up(lab, api, HELLO).await
}

/// hello-web's container killed each time it comes back: its status says
/// so (with the container named) instead of "healthy", the chain next to
/// it keeps its container and answers, and once the kills stop the node
/// brings hello-web back.
async fn crash_loop(lab: &Lab, api: &Api<'_>) -> Result<()> {
    for app in [HELLO, CHAIN] {
        let (_, s) = api.install(app).await?;
        ensure!(s.health == Health::Healthy, "{s:?}");
    }
    let chain_before = containers(&*lab.node(), CHAIN)?;
    let label = format!("label=io.archipelago.app={HELLO}");
    let mut reported = None;
    let mut kills = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) && (kills < 4 || reported.is_none()) {
        let running = user(&*lab.node(), &["podman", "ps", "-q", "--filter", &label])?;
        for id in running.lines().filter(|l| !l.is_empty()) {
            if user(&*lab.node(), &["podman", "kill", "--signal", "KILL", id]).is_ok() {
                kills += 1;
            }
        }
        let s = api.status(HELLO).await?;
        if s.health != Health::Healthy && reported.is_none() {
            if let Some(problem) = &s.problem {
                reported = Some(format!("{:?}: {problem}", s.health));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let reported = reported.context("the crash loop was never reported")?;
    eprintln!("crash loop ({kills} kills) reported as: {reported}");
    ensure!(kills >= 4, "only {kills} kills");
    ensure!(
        reported.contains("web"),
        "the container is not named: {reported}"
    );
    ensure!(
        containers(&*lab.node(), CHAIN)? == chain_before,
        "the chain was touched"
    );
    reachable(lab, CHAIN)?;
    api.wait_healthy(HELLO, comeback(lab)).await?;
    reachable(lab, HELLO)?;
    clean_up(lab, api, HELLO).await?;
    clean_up(lab, api, CHAIN).await
}

/// Two clients, each logged in, install hello-web at the same moment: one
/// install, the other told it is already installed (or both answered with
/// the one installed app), one container.
async fn two_clients(lab: &Lab, api: &Api<'_>) -> Result<()> {
    let other = lab.api().await?;
    let (a, b) = tokio::join!(api.install(HELLO), other.install(HELLO));
    let mut ok = 0;
    for r in [&a, &b] {
        match r {
            Ok((_, s)) => {
                ensure!(s.health == Health::Healthy, "{s:?}");
                ok += 1;
            }
            Err(e) if is_code(e, ErrorCode::AlreadyInstalled) => {
                eprintln!("the other client sees: {e}");
            }
            Err(e) => bail!("an install failed: {e}"),
        }
    }
    ensure!(ok >= 1, "neither install succeeded: {a:?} {b:?}");
    let running = containers(&*lab.node(), HELLO)?;
    ensure!(running.len() == 1, "containers: {running:?}");
    reachable(lab, HELLO)?;
    clean_up(lab, api, HELLO).await
}
