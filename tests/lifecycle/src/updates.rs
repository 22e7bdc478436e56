//! Updates, rollbacks, backups and restores on a real node running the
//! daemon from its `.deb`: `fixture-chain` (a volume, generated secrets, a
//! dependant) is updated to a new image, then to a version that fails its
//! health check and is rolled back, backed up, uninstalled and restored on
//! the same node and on a second node, and taken through the chaos cases:
//! a wrong passphrase, a damaged archive, a full disk during a backup, and
//! power cuts during an update and a restore. Used by `tests/updates.rs`
//! and the release gate. Each lab runs it once: it leaves new versions in
//! the lab's catalog.

use crate::{Api, Lab, Matrix, REGISTRY, is_code, leftovers, root, user, volume_dir};
use anyhow::{Context as _, Result, bail, ensure};
use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    AppParams, BackupInfo, BackupParams, CatalogList, Health, PackageBackup, PackageRestore,
    PackageStatus, PackageUpdate, Phase, RestoreParams, UpdateResult,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_client::{Client, ClientError};
use archipelago_harness::fixtures::BuiltImage;
use archipelago_harness::node::{Node, RunAs};
use archipelago_harness::testing::NODE_HOME;
use std::time::{Duration, Instant};

const CHAIN: &str = "fixture-chain";
const WALLET: &str = "fixture-wallet";
const PASSPHRASE: &str = "correct horse battery staple";
/// How long a stream cut by a power cut is waited for: a node that loses
/// power sends no reset.
const CUT_STREAM: Duration = Duration::from_secs(30);
/// How long a node may take to come back with healthy apps.
const COMEBACK: Duration = Duration::from_secs(150);

/// Publishes the chain as `version`; `failing` makes its health check look
/// at a port nothing listens on, with a short start timeout.
fn publish_chain(lab: &Lab, version: &str, failing: bool) -> Result<BuiltImage> {
    lab.publish_version(CHAIN, CHAIN, version, |yaml| {
        if !failing {
            return Ok(yaml);
        }
        let health = r#"["fixture-chain", "health", "--rpc-port", "18443"]"#;
        ensure!(yaml.contains(health), "the chain manifest changed shape");
        Ok(yaml
            .replace(health, r#"["fixture-chain", "health", "--rpc-port", "1"]"#)
            .replace("      start_period: 10s\n", "")
            .replace("    health:\n", "    start_timeout: 40s\n    health:\n"))
    })
}

async fn update(client: &Client, id: &str) -> Result<(Vec<Phase>, UpdateResult), ClientError> {
    let mut phases = Vec::new();
    let result = client
        .call_streaming::<PackageUpdate>(AppParams { id: id.into() }, |e| {
            if let StreamEvent::Progress(p) = e {
                if phases.last() != Some(&p.phase) {
                    phases.push(p.phase);
                }
            }
        })
        .await?;
    Ok((phases, result))
}

async fn backup(
    client: &Client,
    id: &str,
    target: Option<&str>,
) -> Result<BackupInfo, ClientError> {
    client
        .call_streaming::<PackageBackup>(
            BackupParams {
                id: id.into(),
                passphrase: Some(PASSPHRASE.into()),
                recipient: None,
                target: target.map(str::to_owned),
            },
            |_| {},
        )
        .await
}

async fn restore(
    client: &Client,
    name: &str,
    passphrase: &str,
) -> Result<PackageStatus, ClientError> {
    client
        .call_streaming::<PackageRestore>(
            RestoreParams {
                backup: name.into(),
                passphrase: Some(passphrase.into()),
                identity: None,
            },
            |_| {},
        )
        .await
}

/// The chain's generated RPC password on `node`.
fn chain_secret(node: &dyn Node) -> Result<String> {
    user(
        node,
        &[
            "cat",
            &format!("{NODE_HOME}/.local/share/archipelago/secrets/{CHAIN}/files/rpc-password"),
        ],
    )
}

/// The files in the chain's data volume on `node`, sorted.
fn chain_files(node: &dyn Node) -> Result<Vec<String>> {
    let dir = volume_dir(node, &format!("{CHAIN}_data"))?;
    let out = user(node, &["ls", "-1", &dir])?;
    let mut files: Vec<String> = out
        .lines()
        .filter(|l| {
            !std::path::Path::new(l)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tmp"))
        })
        .map(str::to_owned)
        .collect();
    files.sort();
    Ok(files)
}

/// Whether an image is in the node's store.
fn has_image(node: &dyn Node, image: &str) -> Result<bool> {
    Ok(node
        .exec(RunAs::ServiceUser, &["podman", "image", "exists", image])?
        .success())
}

/// What an update or restore leaves on the node while working: none of it
/// may stay.
fn update_leftovers(node: &dyn Node) -> Result<Vec<String>> {
    let share = format!("{NODE_HOME}/.local/share/archipelago");
    let out = node.exec(
        RunAs::ServiceUser,
        &[
            "sh",
            "-c",
            &format!(
                "ls -1 {share}/snapshots {share}/staging 2>/dev/null; ls -1 {share}/installed/{CHAIN} 2>/dev/null | grep -v '^manifest.yml$'; true"
            ),
        ],
    )?;
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .map(str::to_owned)
        .collect())
}

/// Calls `M`, cuts the node's power when its progress reaches `phase`,
/// boots the node again and waits for its API.
pub(crate) async fn cut_power_at<M: archipelago_api::methods::Method<Output: std::fmt::Debug>>(
    lab: &Lab,
    api: &Api<'_>,
    params: M::Params,
    phase: Phase,
) -> Result<()> {
    let mut cut = false;
    // A node that loses power sends no reset: the stream is given up.
    let outcome = tokio::time::timeout(
        CUT_STREAM,
        api.client.call_streaming::<M>(params, |e| {
            if let StreamEvent::Progress(p) = e {
                if p.phase == phase && !cut {
                    cut = true;
                    let _ = lab.node().power_cut();
                }
            }
        }),
    )
    .await;
    ensure!(cut, "{} never reached {phase:?}: {outcome:?}", M::NAME);
    lab.node().boot()?;
    api.wait_api(COMEBACK).await?;
    Ok(())
}

async fn wait_healthy(client: &Client, id: &str) -> Result<PackageStatus> {
    let start = Instant::now();
    loop {
        match client
            .call::<archipelago_api::methods::PackageStatusMethod>(AppParams { id: id.into() })
            .await
        {
            Ok(s) if s.health == Health::Healthy => return Ok(s),
            other if start.elapsed() > COMEBACK => bail!("{id} not healthy: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[allow(clippy::too_many_lines)]
/// The whole scenario on `lab`'s node, with node number `peer` booted
/// in the lab's network as the other node of the cross-node restore.
pub async fn run(lab: &Lab, peer: usize, m: &mut Matrix) -> Result<()> {
    let api = lab.api().await?;
    let c = &api.client;
    let chain_v1 = lab
        .images
        .iter()
        .find(|i| i.name == CHAIN)
        .context("no chain image")?
        .reference(REGISTRY);
    for app in [CHAIN, WALLET] {
        m.cell(app, "install → healthy", async {
            let (_, s) = api.install(app).await?;
            ensure!(s.health == Health::Healthy, "{s:?}");
            ensure!(s.update_available.is_none(), "{s:?}");
            Ok(())
        })
        .await?;
    }
    let secret = chain_secret(&*lab.node())?;

    let v110 = publish_chain(lab, "1.1.0", false)?;
    m.cell(CHAIN, "new catalog version → update available", async {
        let s = api.status(CHAIN).await?;
        ensure!(s.update_available.as_deref() == Some("1.1.0"), "{s:?}");
        let catalog = c
            .call::<CatalogList>(archipelago_api::methods::Empty {})
            .await?;
        let entry = catalog
            .apps
            .iter()
            .find(|a| a.id == CHAIN)
            .context("not in the catalog")?;
        ensure!(
            entry.update_available && entry.version == "1.1.0",
            "{entry:?}"
        );
        Ok(())
    })
    .await?;
    m.cell(CHAIN, "update → healthy", async {
        let (phases, r) = update(c, CHAIN).await?;
        ensure!(
            r.from_version == "1.0.0" && r.to_version == "1.1.0",
            "{r:?}"
        );
        ensure!(r.data_snapshot, "a new image must snapshot the data");
        ensure!(
            r.status.health == Health::Healthy && r.status.version == "1.1.0",
            "{r:?}"
        );
        ensure!(r.status.update_available.is_none(), "{r:?}");
        for want in [
            Phase::Pulling,
            Phase::Snapshotting,
            Phase::Switching,
            Phase::Healthy,
            Phase::Done,
        ] {
            ensure!(phases.contains(&want), "no {want:?} in {phases:?}");
        }
        let node = lab.node();
        ensure!(
            chain_secret(&*node)? == secret,
            "the update changed the generated secret"
        );
        ensure!(
            chain_files(&*node)?.contains(&"ran-1.1.0".to_owned()),
            "1.1.0 did not run on the data: {:?}",
            chain_files(&*node)
        );
        ensure!(
            has_image(&*node, &chain_v1)?,
            "the previous version's image must stay until the next update"
        );
        ensure!(
            update_leftovers(&*node)?.is_empty(),
            "left: {:?}",
            update_leftovers(&*node)
        );
        Ok(())
    })
    .await?;
    m.cell(WALLET, "its dependency updated → healthy", async {
        let s = wait_healthy(c, WALLET).await?;
        ensure!(s.version == "1.0.0", "{s:?}");
        Ok(())
    })
    .await?;

    let before_rollback = chain_files(&*lab.node())?;
    publish_chain(lab, "1.2.0", true)?;
    m.cell(
        CHAIN,
        "failed update → rolled back, old version healthy, data intact",
        async {
            match update(c, CHAIN).await {
                Err(e) if is_code(&e, ErrorCode::UpdateRolledBack) => {
                    let text = e.to_string();
                    ensure!(
                        text.contains("1.2.0") && text.contains("Rolled back"),
                        "{text}"
                    );
                    ensure!(
                        text.contains("fixture-chain_chain"),
                        "the message must name the container: {text}"
                    );
                    eprintln!("rollback message: {text}");
                }
                other => bail!("expected a rollback, got {other:?}"),
            }
            let s = api.status(CHAIN).await?;
            ensure!(s.health == Health::Healthy && s.version == "1.1.0", "{s:?}");
            ensure!(s.update_available.as_deref() == Some("1.2.0"), "{s:?}");
            let node = lab.node();
            let files = chain_files(&*node)?;
            ensure!(
                !files.contains(&"ran-1.2.0".to_owned()),
                "1.2.0's trace is still in the data: {files:?}"
            );
            ensure!(
                before_rollback.iter().all(|f| files.contains(f)),
                "{before_rollback:?} → {files:?}"
            );
            ensure!(chain_secret(&*node)? == secret, "the secret changed");
            ensure!(
                update_leftovers(&*node)?.is_empty(),
                "left: {:?}",
                update_leftovers(&*node)
            );
            Ok(())
        },
    )
    .await?;
    m.cell(WALLET, "its dependency rolled back → healthy", async {
        wait_healthy(c, WALLET).await.map(|_| ())
    })
    .await?;

    publish_chain(lab, "1.3.0", false)?;
    m.cell(
        CHAIN,
        "power cut mid-update → old or new version, healthy",
        async {
            cut_power_at::<PackageUpdate>(
                lab,
                &api,
                AppParams { id: CHAIN.into() },
                Phase::Starting,
            )
            .await?;
            let s = wait_healthy(c, CHAIN).await?;
            ensure!(s.version == "1.1.0" || s.version == "1.3.0", "{s:?}");
            eprintln!("after the power cut {CHAIN} runs {}", s.version);
            ensure!(chain_secret(&*lab.node())? == secret, "the secret changed");
            wait_healthy(c, WALLET).await?;
            Ok(())
        },
    )
    .await?;
    m.cell(
        CHAIN,
        "update → healthy, the image two versions old removed",
        async {
            let s = api.status(CHAIN).await?;
            if s.version != "1.3.0" {
                let (_, r) = update(c, CHAIN).await?;
                ensure!(
                    r.status.version == "1.3.0" && r.status.health == Health::Healthy,
                    "{r:?}"
                );
            }
            let node = lab.node();
            ensure!(
                !has_image(&*node, &chain_v1)?,
                "1.0.0's image is still there"
            );
            ensure!(
                has_image(&*node, &v110.reference(REGISTRY))?,
                "1.1.0's image must stay"
            );
            Ok(())
        },
    )
    .await?;

    // A 1 MB file in the volume: enough to fill a small disk.
    {
        let node = lab.node();
        let dir = volume_dir(&*node, &format!("{CHAIN}_data"))?;
        user(
            &*node,
            &[
                "dd",
                "if=/dev/urandom",
                &format!("of={dir}/filler"),
                "bs=1M",
                "count=1",
                "status=none",
            ],
        )?;
        root(&*node, &["mkdir", "-p", "/mnt/tiny"])?;
        root(
            &*node,
            &[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "size=256k,mode=0755",
                "tmpfs",
                "/mnt/tiny",
            ],
        )?;
        root(&*node, &["chown", "archipelago:archipelago", "/mnt/tiny"])?;
    }
    m.cell(
        CHAIN,
        "disk full during backup → clear error, app running",
        async {
            match backup(c, CHAIN, Some("/mnt/tiny")).await {
                Err(e) if is_code(&e, ErrorCode::BackupFailed) => {
                    ensure!(e.to_string().contains("disk is full"), "{e}");
                }
                other => bail!("expected a failed backup, got {other:?}"),
            }
            let left = root(&*lab.node(), &["ls", "-A", "/mnt/tiny"])?;
            ensure!(left.trim().is_empty(), "a partial backup was left: {left}");
            wait_healthy(c, CHAIN).await?;
            wait_healthy(c, WALLET).await?;
            Ok(())
        },
    )
    .await?;

    let files = chain_files(&*lab.node())?;
    let mut made: Option<BackupInfo> = None;
    m.cell(CHAIN, "backup → healthy again", async {
        let b = backup(c, CHAIN, None).await?;
        ensure!(
            b.app == CHAIN && b.version == "1.3.0" && b.bytes > 1_000_000,
            "{b:?}"
        );
        let raw = root(
            &*lab.node(),
            &[
                "sh",
                "-c",
                &format!("grep -c '{secret}' {} || true", b.path),
            ],
        )?;
        ensure!(raw.trim() == "0", "the secret is readable in the backup");
        wait_healthy(c, CHAIN).await?;
        made = Some(b);
        Ok(())
    })
    .await?;
    let made = made.context("no backup")?;
    let local = lab.net.dir().join(&made.name);
    m.cell(CHAIN, "backup downloaded to the desktop", async {
        let got = c.download_backup(&made.name, &local, |_, _| {}).await?;
        ensure!(
            got.sha256 == made.sha256 && got.bytes == made.bytes,
            "{got:?} vs {made:?}"
        );
        Ok(())
    })
    .await?;
    for app in [WALLET, CHAIN] {
        m.cell(app, "uninstall", async {
            api.uninstall(app, false).await?;
            ensure!(leftovers(&*lab.node(), app)?.is_empty());
            Ok(())
        })
        .await?;
    }
    m.cell(
        CHAIN,
        "restore with a wrong passphrase → refused, nothing changed",
        async {
            match restore(c, &made.name, "not the passphrase").await {
                Err(e) if is_code(&e, ErrorCode::BadPassphrase) => {}
                other => bail!("expected a bad passphrase, got {other:?}"),
            }
            ensure!(leftovers(&*lab.node(), CHAIN)?.is_empty());
            Ok(())
        },
    )
    .await?;
    m.cell(
        CHAIN,
        "restore of a damaged backup → refused, nothing changed",
        async {
            let mut bytes = std::fs::read(&local)?;
            let at = bytes.len() / 2;
            bytes[at] ^= 0x20;
            let damaged = lab
                .net
                .dir()
                .join("fixture-chain-1.3.0-20200101T000000Z.archy-backup");
            std::fs::write(&damaged, &bytes)?;
            let name = damaged
                .file_name()
                .context("no file name")?
                .to_string_lossy()
                .into_owned();
            c.upload_backup(&damaged, &name, |_, _| {}).await?;
            match restore(c, &name, PASSPHRASE).await {
                Err(e) if is_code(&e, ErrorCode::BackupCorrupt) => {}
                other => bail!("expected a damaged backup, got {other:?}"),
            }
            ensure!(leftovers(&*lab.node(), CHAIN)?.is_empty());
            Ok(())
        },
    )
    .await?;
    m.cell(
        CHAIN,
        "power cut mid-restore → restored or not installed",
        async {
            cut_power_at::<PackageRestore>(
                lab,
                &api,
                RestoreParams {
                    backup: made.name.clone(),
                    passphrase: Some(PASSPHRASE.into()),
                    identity: None,
                },
                Phase::Restoring,
            )
            .await?;
            let outcome = crate::cells::converged(lab, &api, CHAIN).await?;
            eprintln!("after the power cut {CHAIN} is {outcome}");
            if outcome == "installed" {
                api.uninstall(CHAIN, false).await?;
            }
            ensure!(leftovers(&*lab.node(), CHAIN)?.is_empty());
            Ok(())
        },
    )
    .await?;
    m.cell(CHAIN, "restore → healthy, same data and secrets", async {
        let s = restore(c, &made.name, PASSPHRASE).await?;
        ensure!(s.health == Health::Healthy && s.version == "1.3.0", "{s:?}");
        let node = lab.node();
        ensure!(
            chain_secret(&*node)? == secret,
            "the restored secret differs"
        );
        let now = chain_files(&*node)?;
        ensure!(files.iter().all(|f| now.contains(f)), "{files:?} → {now:?}");
        Ok(())
    })
    .await?;

    let peer = lab.boot_peer(peer)?;
    let other = peer.client().await?;
    m.cell(
        CHAIN,
        "restore on another node → healthy, same data and secrets",
        async {
            other.upload_backup(&local, &made.name, |_, _| {}).await?;
            let s = restore(&other, &made.name, PASSPHRASE).await?;
            ensure!(s.health == Health::Healthy && s.version == "1.3.0", "{s:?}");
            let node = peer.node();
            ensure!(
                chain_secret(&*node)? == secret,
                "the secret differs on the other node"
            );
            let now = chain_files(&*node)?;
            ensure!(files.iter().all(|f| now.contains(f)), "{files:?} → {now:?}");
            Ok(())
        },
    )
    .await?;
    Ok(())
}
