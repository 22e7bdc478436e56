//! Updates, rollbacks, backups and restores on a real node, each beside its
//! floor measured in the same run on the same node (a benchmark: it prints,
//! it does not judge):
//!
//! 1. `package.update` of fixture-chain to a new image, to healthy, vs. the
//!    floor: `systemctl --user restart` of its unit to active (an update
//!    cannot do with less than one restart);
//! 2. the rollback of a version that fails its health check: from the
//!    update's start to the old version healthy again, and from the new
//!    version's failure to healthy (the rollback proper);
//! 3. `package.backup` of a 1 GB volume (stop, pack, encrypt, start) in
//!    MB/s vs. the floor `podman unshare tar -cf FILE` of the same folder;
//! 4. `package.restore` of that backup after an uninstall (decrypt, check,
//!    unpack, start) in MB/s vs. `podman unshare tar -xf` of the floor's
//!    tar;
//! 5. the backup pulled to this computer over the TLS API (`backup.download`
//!    pieces) in MB/s.
//!
//! Run: `ARCHIPELAGO_DEB_PROFILE=release cargo bench -p archipelago-lifecycle
//! --bench updates` (as root: it boots a node). `BENCH_DATA_MB` sets the
//! volume's size (default 1024).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)]

use archipelago_api::methods::{
    AppParams, BackupParams, PackageBackup, PackageRestore, PackageStart, PackageStop,
    PackageUpdate, RestoreParams,
};
use archipelago_api::rpc::StreamEvent;
use archipelago_harness::node::{Node, RunAs};
use archipelago_lifecycle::{Lab, root, user, volume_dir};
use std::time::{Duration, Instant};

const CHAIN: &str = "fixture-chain";
const PASSPHRASE: &str = "benchmark passphrase";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let mb: u64 = std::env::var("BENCH_DATA_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let lab = Lab::start().unwrap();
    let mut out: Vec<String> = Vec::new();
    let api = || lab.block_on(lab.api()).unwrap().unwrap();

    lab.block_on(async { api().install(CHAIN).await.unwrap() })
        .unwrap();

    // 1. Update vs. a restart.
    let floor = {
        let t = Instant::now();
        user(
            &*lab.node(),
            &[
                "systemctl",
                "--user",
                "restart",
                "fixture-chain_chain.service",
            ],
        )
        .unwrap();
        t.elapsed()
    };
    lab.publish_version(CHAIN, CHAIN, "1.1.0", Ok).unwrap();
    let update = lab
        .block_on(async {
            let a = api();
            let t = Instant::now();
            a.client
                .call_streaming::<PackageUpdate>(AppParams { id: CHAIN.into() }, |_| {})
                .await
                .unwrap();
            t.elapsed()
        })
        .unwrap();
    out.push(format!(
        "| update to healthy (new image, data snapshot) | {:.2} s | restart of its unit to active: {:.2} s | {:.1}× |",
        secs(update),
        secs(floor),
        secs(update) / secs(floor)
    ));

    // 2. A failed update rolled back.
    lab.publish_version(CHAIN, CHAIN, "1.2.0", |yaml| {
        Ok(yaml
            .replace(
                r#"["fixture-chain", "health", "--rpc-port", "18443"]"#,
                r#"["fixture-chain", "health", "--rpc-port", "1"]"#,
            )
            .replace("      start_period: 10s\n", "")
            .replace("    health:\n", "    start_timeout: 40s\n    health:\n"))
    })
    .unwrap();
    let (whole, rollback) = lab
        .block_on(async {
            let a = api();
            let t = Instant::now();
            let mut failed_at = None;
            let r = a
                .client
                .call_streaming::<PackageUpdate>(AppParams { id: CHAIN.into() }, |e| {
                    if let StreamEvent::Progress(p) = e {
                        if p.phase == archipelago_api::methods::Phase::RollingBack
                            && failed_at.is_none()
                        {
                            failed_at = Some(Instant::now());
                        }
                    }
                })
                .await;
            assert!(r.is_err(), "the broken version was not rolled back");
            let whole = t.elapsed();
            (whole, failed_at.map(|f| f.elapsed()).unwrap_or_default())
        })
        .unwrap();
    out.push(format!(
        "| failed update: start to old version healthy again | {:.2} s | – | – |",
        secs(whole)
    ));
    out.push(format!(
        "| rollback proper: failure seen to old version healthy | {:.2} s | – | – |",
        secs(rollback)
    ));

    // 3. Backup of a large volume vs. tar.
    let volume = volume_dir(&*lab.node(), &format!("{CHAIN}_data")).unwrap();
    user(
        &*lab.node(),
        &[
            "dd",
            "if=/dev/urandom",
            &format!("of={volume}/bulk"),
            "bs=1M",
            &format!("count={mb}"),
            "status=none",
        ],
    )
    .unwrap();
    let floor_tar = "/var/lib/archipelago/floor.tar";
    // The floor copies the data at rest too (the chain writes every second).
    lab.block_on(async {
        api()
            .client
            .call::<PackageStop>(AppParams { id: CHAIN.into() })
            .await
            .unwrap()
    })
    .unwrap();
    let tar_floor = {
        let t = Instant::now();
        user(
            &*lab.node(),
            &[
                "podman", "unshare", "tar", "-cf", floor_tar, "-C", &volume, ".",
            ],
        )
        .unwrap();
        t.elapsed()
    };
    lab.block_on(async {
        api()
            .client
            .call::<PackageStart>(AppParams { id: CHAIN.into() })
            .await
            .unwrap()
    })
    .unwrap();
    let data_mb = mb as f64 * 1.048_576;
    let made = lab
        .block_on(async {
            let a = api();
            let t = Instant::now();
            let b = a
                .client
                .call_streaming::<PackageBackup>(
                    BackupParams {
                        id: CHAIN.into(),
                        passphrase: Some(PASSPHRASE.into()),
                        recipient: None,
                        target: None,
                    },
                    |_| {},
                )
                .await
                .unwrap();
            (b, t.elapsed())
        })
        .unwrap();
    let (backup, backup_took) = made;
    out.push(format!(
        "| backup of {mb} MiB (stop, pack, encrypt, start) | {:.0} MB/s ({:.1} s) | `podman unshare tar -cf`: {:.0} MB/s ({:.1} s) | {:.2}× the time |",
        data_mb / secs(backup_took),
        secs(backup_took),
        data_mb / secs(tar_floor),
        secs(tar_floor),
        secs(backup_took) / secs(tar_floor)
    ));

    // 5. Pulled to this computer over the API.
    let local = lab.net.dir().join(&backup.name);
    let download = lab
        .block_on(async {
            let a = api();
            let t = Instant::now();
            a.client
                .download_backup(&backup.name, &local, |_, _| {})
                .await
                .unwrap();
            t.elapsed()
        })
        .unwrap();
    let _ = std::fs::remove_file(&local);
    out.push(format!(
        "| backup downloaded over the TLS API ({:.0} MB) | {:.0} MB/s ({:.1} s) | – | – |",
        backup.bytes as f64 / 1e6,
        backup.bytes as f64 / 1e6 / secs(download),
        secs(download)
    ));

    // 4. Restore after an uninstall vs. tar -x.
    lab.block_on(async { api().uninstall(CHAIN, false).await.unwrap() })
        .unwrap();
    let scratch = "/var/lib/archipelago/floor-restore";
    user(&*lab.node(), &["mkdir", "-p", scratch]).unwrap();
    let untar_floor = {
        let t = Instant::now();
        user(
            &*lab.node(),
            &["podman", "unshare", "tar", "-xf", floor_tar, "-C", scratch],
        )
        .unwrap();
        t.elapsed()
    };
    let _ = user(
        &*lab.node(),
        &["podman", "unshare", "rm", "-rf", scratch, floor_tar],
    );
    let restore = lab
        .block_on(async {
            let a = api();
            let t = Instant::now();
            a.client
                .call_streaming::<PackageRestore>(
                    RestoreParams {
                        backup: backup.name.clone(),
                        passphrase: Some(PASSPHRASE.into()),
                        identity: None,
                    },
                    |_| {},
                )
                .await
                .unwrap();
            t.elapsed()
        })
        .unwrap();
    out.push(format!(
        "| restore of {mb} MiB (decrypt, check, unpack, start) | {:.0} MB/s ({:.1} s) | `podman unshare tar -xf`: {:.0} MB/s ({:.1} s) | {:.2}× the time |",
        data_mb / secs(restore),
        secs(restore),
        data_mb / secs(untar_floor),
        secs(untar_floor),
        secs(restore) / secs(untar_floor)
    ));
    let size = lab
        .node()
        .exec(RunAs::Root, &["du", "-sh", &volume])
        .map(|o| o.stdout)
        .unwrap_or_default();
    let _ = root(&*lab.node(), &["true"]);
    println!("\n| figure | Archipelago | floor (same node, same run) | ratio |\n|---|---|---|---|");
    for line in &out {
        println!("{line}");
    }
    println!("\nvolume after the restore: {}", size.trim());
}
