//! The lifecycle matrix's states on one node of a [`Lab`]: every working
//! fixture app through install → healthy → reachable → stop → start →
//! restart → daemon restart → node reboot → reinstall → uninstall
//! ([`iteration`], run `ARCHY_ITERATIONS` times), then the cases that need
//! doing once ([`once`]): an app installed before its dependency, apps
//! that fail to start, the daemon killed mid-install, a hand-edited unit
//! file and a deleted secret. Used by `tests/matrix.rs` and the release
//! gate.

use crate::{Api, Lab, Matrix, NodeKind, containers, is_code, leftovers, root, user, volume_dir};
use anyhow::{Context as _, Result, bail, ensure};
use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    AppParams, Health, PackageRestart, PackageStart, PackageStop, Phase,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_harness::fixtures::HELLO_PAGE;
use archipelago_harness::node::RunAs;
use archipelago_harness::testing::NODE_HOME;
use std::time::{Duration, Instant};

pub const HELLO: &str = "hello-web";
pub const CHAIN: &str = "fixture-chain";
pub const WALLET: &str = "fixture-wallet";
/// Install order (dependencies first).
pub const APPS: [&str; 3] = [HELLO, CHAIN, WALLET];
/// How long a daemon restart or a reboot may take to give healthy apps.
pub fn comeback(lab: &Lab) -> Duration {
    match lab.kind {
        NodeKind::Nspawn => Duration::from_secs(180),
        // A VM under TCG boots in up to a minute, then starts every app.
        NodeKind::Vm => Duration::from_secs(420),
    }
}

/// The whole matrix: the refused install, `iterations` times
/// [`iteration`], then [`once`].
pub async fn run(lab: &Lab, iterations: u32, m: &mut Matrix) -> Result<()> {
    run_iterations(lab, iterations, m).await?;
    once(lab, &lab.api().await?, m).await
}

/// The refused install, then `iterations` times [`iteration`] (each
/// iteration's number in the progress lines).
pub async fn run_iterations(lab: &Lab, iterations: u32, m: &mut Matrix) -> Result<()> {
    let api = lab.api().await?;
    m.cell(WALLET, "install before its dependency → refused", async {
        match api.install(WALLET).await {
            Err(e) if is_code(&e, ErrorCode::MissingDependency) => {
                ensure!(e.to_string().contains(CHAIN), "{e}");
                ensure!(leftovers(&*lab.node(), WALLET)?.is_empty());
                Ok(())
            }
            other => bail!("expected a missing-dependency error, got {other:?}"),
        }
    })
    .await?;
    let label = m.label.clone();
    for i in 1..=iterations {
        eprintln!("=== {label} iteration {i} of {iterations}");
        if !label.is_empty() {
            m.label = format!("{label} {i}/{iterations}");
        }
        let r = iteration(lab, &api, m).await;
        m.label.clone_from(&label);
        r?;
    }
    Ok(())
}

/// Publishes hello-web as a version that counts its starts in a volume
/// and exits at its third (install, start, restart: the first restart
/// cell goes red). The release gate's proof that it fails when it should.
pub fn break_hello_web_at_third_start(lab: &Lab) -> Result<()> {
    let base = archipelago_harness::fixtures::load_manifest(HELLO, &lab.images, crate::REGISTRY)?;
    let command = r#"command: ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]"#;
    ensure!(
        base.yaml.contains(command),
        "hello-web's manifest changed shape"
    );
    let counting = concat!(
        r#"command: ["sh", "-c", "n=0; if [ -f /data/starts ]; then read n < /data/starts; fi; "#,
        r#"n=$((n+1)); echo $n > /data/starts; if [ $n -eq 3 ]; then "#,
        r#"echo 'hello-web: failing on purpose at its 3rd start' >&2; exit 1; fi; "#,
        r#"exec httpd -f -v -p 8080 -h /www"]"#,
        "
    volumes:
      - volume: data
        target: /data"
    );
    let yaml = format!(
        "{}volumes:
  - name: data
",
        base.yaml.replace(command, counting)
    );
    lab.publish(&[(HELLO, &yaml)])
}

/// One pass of the matrix over the three working apps.
pub async fn iteration(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    for app in APPS {
        m.cell(app, "install → healthy", async {
            let (phases, status) = api.install(app).await?;
            ensure!(status.health == Health::Healthy, "{status:?}");
            let want = [Phase::Pulling, Phase::Starting, Phase::Healthy, Phase::Done];
            let seen: Vec<Phase> = phases
                .iter()
                .copied()
                .filter(|p| want.contains(p))
                .collect();
            ensure!(seen == want, "progress phases {phases:?}");
            Ok(())
        })
        .await?;
        m.cell(app, "UI/RPC reachable", async { reachable(lab, app) })
            .await?;
    }
    for app in [HELLO, WALLET, CHAIN] {
        m.cell(app, "stop", async {
            let s = api
                .client
                .call::<PackageStop>(AppParams { id: app.into() })
                .await?;
            ensure!(s.health == Health::Stopped, "{s:?}");
            ensure!(unreachable(lab, app), "{app} still answers after stop");
            let left = containers(&*lab.node(), app)?;
            ensure!(left.is_empty(), "containers after stop: {left:?}");
            Ok(())
        })
        .await?;
    }
    for app in APPS {
        m.cell(app, "start", async {
            let s = api
                .client
                .call::<PackageStart>(AppParams { id: app.into() })
                .await?;
            ensure!(s.health == Health::Healthy, "{s:?}");
            reachable(lab, app)
        })
        .await?;
    }
    for app in APPS {
        m.cell(app, "restart", async {
            let before = containers(&*lab.node(), app)?;
            let s = api
                .client
                .call::<PackageRestart>(AppParams { id: app.into() })
                .await?;
            ensure!(s.health == Health::Healthy, "{s:?}");
            let after = containers(&*lab.node(), app)?;
            ensure!(
                before != after,
                "restart left the same containers: {after:?}"
            );
            reachable(lab, app)
        })
        .await?;
    }
    daemon_restart(lab, api, m).await?;
    reboot(lab, api, m).await?;
    reinstall_and_uninstall(lab, api, m).await
}

/// Restarting the daemon touches no container.
async fn daemon_restart(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    let before: Vec<Vec<String>> = APPS
        .iter()
        .map(|a| container_ids(lab, a))
        .collect::<Result<_>>()?;
    let start = Instant::now();
    let outcome: Result<()> = async {
        root(&*lab.node(), &["systemctl", "restart", "archipelagod"])?;
        api.wait_api(Duration::from_secs(30)).await?;
        // Give a pass the time to do anything it would do.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }
    .await;
    let took = start.elapsed();
    for (app, before) in APPS.iter().zip(&before) {
        let check = || -> Result<()> {
            outcome.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let after = container_ids(lab, app)?;
            ensure!(
                &after == before,
                "containers changed: {before:?} → {after:?}"
            );
            reachable(lab, app)
        };
        let r = check();
        m.record(
            app,
            "daemon restart survives (same containers)",
            r.is_ok(),
            took,
            r.as_ref()
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default(),
        );
        r?;
    }
    Ok(())
}

/// `<name> <id> <created at>` of each container of `app`: the same
/// containers, whatever podman says of their state at the moment (on a
/// slow VM a running container has been seen listed as `created`).
fn container_ids(lab: &Lab, app: &str) -> Result<Vec<String>> {
    Ok(containers(&*lab.node(), app)?
        .into_iter()
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l.clone(), |(rest, _)| rest.to_owned())
        })
        .collect())
}

/// A reboot of the node brings every app back, healthy.
async fn reboot(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    let start = Instant::now();
    let booted = lab.node().reboot()?;
    eprintln!("figure: node reboot {booted:?}");
    api.wait_api(comeback(lab)).await?;
    for app in APPS {
        let r: Result<()> = async {
            api.wait_healthy(app, comeback(lab)).await?;
            reachable(lab, app)
        }
        .await;
        m.record(
            app,
            "node reboot survives",
            r.is_ok(),
            start.elapsed(),
            r.as_ref()
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default(),
        );
        r?;
    }
    Ok(())
}

/// The chain's generated RPC password, as stored on the node.
pub fn chain_secret(lab: &Lab) -> Result<String> {
    root(
        &*lab.node(),
        &[
            "cat",
            &format!("{NODE_HOME}/.local/share/archipelago/secrets/{CHAIN}/files/rpc-password"),
        ],
    )
}

/// Leaves a file in the chain's data volume; true when it is there.
fn chain_marker(lab: &Lab, write: bool) -> Result<bool> {
    let node = lab.node();
    let mountpoint = volume_dir(&*node, &format!("{CHAIN}_data"))?;
    let marker = format!("{mountpoint}/archipelago-test-marker");
    if write {
        user(&*node, &["touch", &marker])?;
    }
    Ok(node.exec(RunAs::Root, &["test", "-e", &marker])?.success())
}

async fn reinstall(lab: &Lab, api: &Api<'_>, app: &str) -> Result<()> {
    let secret = if app == CHAIN {
        ensure!(
            chain_marker(lab, true)?,
            "could not leave a marker in the volume"
        );
        Some(chain_secret(lab)?)
    } else {
        None
    };
    api.uninstall(app, false).await?;
    ensure!(leftovers(&*lab.node(), app)?.is_empty());
    let (_, status) = api.install(app).await?;
    ensure!(status.health == Health::Healthy, "{status:?}");
    if let Some(old) = secret {
        ensure!(
            chain_secret(lab)? != old,
            "the reinstall kept the old secret"
        );
        ensure!(
            !chain_marker(lab, false)?,
            "the reinstall kept the old data"
        );
    }
    reachable(lab, app)
}

async fn reinstall_and_uninstall(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    // The wallet goes before the chain it depends on.
    for app in [HELLO, WALLET, CHAIN] {
        if app == CHAIN {
            m.cell(
                WALLET,
                "uninstall leaves nothing",
                uninstall(lab, api, WALLET),
            )
            .await?;
        }
        m.cell(
            app,
            "reinstall (fresh secrets and data)",
            reinstall(lab, api, app),
        )
        .await?;
    }
    for app in [HELLO, CHAIN] {
        m.cell(app, "uninstall leaves nothing", uninstall(lab, api, app))
            .await?;
    }
    Ok(())
}

async fn uninstall(lab: &Lab, api: &Api<'_>, app: &str) -> Result<()> {
    let r = api.uninstall(app, false).await?;
    ensure!(!r.removed.is_empty(), "{r:?}");
    let left = leftovers(&*lab.node(), app)?;
    ensure!(left.is_empty(), "left behind: {left:?}");
    ensure!(unreachable(lab, app));
    Ok(())
}

/// The cases run once per matrix.
pub async fn once(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    for (app, says) in [
        ("fixture-broken-exit", "exiting on purpose"),
        ("fixture-broken-unhealthy", "unhealthy"),
    ] {
        m.cell(app, "install fails clearly, leaves nothing", async {
            let e = match api.install(app).await {
                Err(e) => e,
                Ok(s) => bail!("the install of a broken app succeeded: {s:?}"),
            };
            ensure!(is_code(&e, ErrorCode::InstallFailed), "{e}");
            let text = e.to_string();
            eprintln!("the error a user sees: {text}");
            ensure!(
                text.contains(&format!("{app}_app")),
                "no container named: {text}"
            );
            ensure!(text.contains(says), "no log line: {text}");
            let left = leftovers(&*lab.node(), app)?;
            ensure!(left.is_empty(), "left behind: {left:?}");
            Ok(())
        })
        .await?;
    }
    m.cell(
        HELLO,
        "daemon kill -9 mid-install converges",
        kill_mid_install(lab, api, &[Phase::Pulling, Phase::Starting]),
    )
    .await?;
    drift(lab, api, m).await
}

/// Kills the daemon (`kill -9`) when an install of hello-web reaches each
/// of `phases`; each time the node ends up either with the app installed
/// and healthy or with nothing of it.
pub async fn kill_mid_install(lab: &Lab, api: &Api<'_>, phases: &[Phase]) -> Result<()> {
    for &at in phases {
        forget_hello_image(lab)?;
        let mut killed = false;
        let outcome = api
            .client
            .call_streaming::<archipelago_api::methods::PackageInstall>(
                AppParams { id: HELLO.into() },
                |e| {
                    if let StreamEvent::Progress(p) = e {
                        if p.phase == at && !killed {
                            killed = true;
                            let _ = lab.node().exec(
                                RunAs::Root,
                                &["systemctl", "kill", "--signal=KILL", "archipelagod"],
                            );
                        }
                    }
                },
            )
            .await;
        ensure!(killed, "the install never reached {at:?}: {outcome:?}");
        eprintln!("install with the daemon killed at {at:?}: {outcome:?}");
        api.wait_api(Duration::from_secs(60)).await?;
        let converged = converged(lab, api, HELLO).await?;
        eprintln!("after the kill at {at:?}: {converged}");
        if converged == "installed" {
            let running = containers(&*lab.node(), HELLO)?;
            ensure!(running.len() == 1, "containers: {running:?}");
            reachable(lab, HELLO)?;
            api.uninstall(HELLO, false).await?;
        }
        ensure!(leftovers(&*lab.node(), HELLO)?.is_empty());
    }
    Ok(())
}

/// Removes hello-web's image from the node, so that its next install
/// pulls.
pub fn forget_hello_image(lab: &Lab) -> Result<()> {
    let image = lab
        .images
        .iter()
        .find(|i| i.name == HELLO)
        .context("no hello-web image")?
        .reference(crate::REGISTRY);
    let _ = user(&*lab.node(), &["podman", "rmi", "--force", &image]);
    Ok(())
}

/// Waits until `app` is either installed and healthy or gone without a
/// trace; which of the two (`installed` or `gone`).
pub async fn converged(lab: &Lab, api: &Api<'_>, app: &str) -> Result<&'static str> {
    let start = Instant::now();
    loop {
        match api.status(app).await {
            Ok(s) if s.health == Health::Healthy => return Ok("installed"),
            // Right after a boot, podman may refuse a first command while
            // the user's namespace is being set up: asked again.
            Err(e)
                if is_code(&e, ErrorCode::AppNotInstalled)
                    && leftovers(&*lab.node(), app).is_ok_and(|l| l.is_empty()) =>
            {
                return Ok("gone");
            }
            _ => {}
        }
        if start.elapsed() > comeback(lab) {
            let status = match api.status(app).await {
                Ok(s) => format!(
                    "{:?}, {:?}, {}",
                    s.run,
                    s.health,
                    s.problem.unwrap_or_default()
                ),
                Err(e) => e.to_string(),
            };
            let left = match leftovers(&*lab.node(), app) {
                Ok(l) => format!("{l:?}"),
                Err(e) => format!("{e:#}"),
            };
            bail!(
                "{app} neither healthy nor gone after {:.0?}: {status}; left: {left}",
                start.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A unit file edited by hand and a deleted secret, both repaired by the
/// daemon's next pass — at once, since it watches the files it wrote
/// (otherwise its 30 s timer) — and the affected apps restarted.
async fn drift(lab: &Lab, api: &Api<'_>, m: &mut Matrix) -> Result<()> {
    for app in [CHAIN, WALLET] {
        api.install(app).await?;
    }
    let unit = format!("{NODE_HOME}/.config/containers/systemd/{CHAIN}_chain.container");
    let original = user(&*lab.node(), &["cat", &unit])?;
    let secret_before = chain_secret(lab)?;
    let chain_before = containers(&*lab.node(), CHAIN)?;
    let wallet_before = containers(&*lab.node(), WALLET)?;
    user(
        &*lab.node(),
        &["sh", "-c", &format!("echo '# edited by hand' >> {unit}")],
    )?;
    root(
        &*lab.node(),
        &[
            "rm",
            &format!("{NODE_HOME}/.local/share/archipelago/secrets/{CHAIN}/files/rpc-password"),
        ],
    )?;
    let start = Instant::now();
    let limit = Duration::from_secs(75);
    let mut unit_back = None;
    let mut secret_back = None;
    while start.elapsed() < limit && (unit_back.is_none() || secret_back.is_none()) {
        if unit_back.is_none() && user(&*lab.node(), &["cat", &unit])? == original {
            unit_back = Some(start.elapsed());
        }
        if secret_back.is_none() {
            if let Ok(s) = chain_secret(lab) {
                ensure!(
                    s != secret_before,
                    "the deleted secret came back with its old value"
                );
                let chain_now = containers(&*lab.node(), CHAIN)?;
                let wallet_now = containers(&*lab.node(), WALLET)?;
                if chain_now != chain_before && wallet_now != wallet_before {
                    secret_back = Some(start.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let unit_ok = unit_back.is_some();
    m.record(
        CHAIN,
        "hand-edited unit put back",
        unit_ok,
        unit_back.unwrap_or(limit),
        if unit_ok {
            String::new()
        } else {
            "the edit stayed".into()
        },
    );
    let healthy = async {
        api.wait_healthy(CHAIN, comeback(lab)).await?;
        api.wait_healthy(WALLET, comeback(lab)).await?;
        reachable(lab, WALLET)
    }
    .await;
    let secret_ok = secret_back.is_some() && healthy.is_ok();
    m.record(
        CHAIN,
        "deleted secret regenerated, app and dependant restarted",
        secret_ok,
        secret_back.unwrap_or(limit),
        format!("{secret_back:?} {healthy:?}"),
    );
    ensure!(unit_ok && secret_ok, "drift not repaired");
    api.uninstall(WALLET, false).await?;
    api.uninstall(CHAIN, false).await?;
    Ok(())
}

/// The app answers on its port from inside the run's namespace.
pub fn reachable(lab: &Lab, app: &str) -> Result<()> {
    let node = lab.node();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = match app {
            HELLO => lab
                .net
                .http_get(node.port(8080), "/")
                .map(|(s, b)| s == 200 && b.contains(HELLO_PAGE)),
            // The chain's RPC answers (401 without the password).
            CHAIN => lab.net.http_get(node.port(18443), "/").map(|(s, _)| s > 0),
            WALLET => lab
                .net
                .http_get(node.port(18081), "/health")
                .map(|(s, _)| s == 200),
            _ => bail!("no check for {app}"),
        };
        match got {
            Ok(true) => return Ok(()),
            _ if Instant::now() > deadline => bail!("{app} does not answer: {got:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Nothing answers on the app's port.
pub fn unreachable(lab: &Lab, app: &str) -> bool {
    let node = lab.node();
    let port = match app {
        HELLO => 8080,
        CHAIN => 18443,
        _ => 18081,
    };
    lab.net.http_get(node.port(port), "/").is_err()
}
