//! The daemon's figures on a real node, each beside its floor measured in
//! the same run on the same node (a benchmark: it prints, it does not
//! judge — the targets are in the issue and the release report):
//!
//! 1. install-to-healthy of hello-web through the API vs. the same unit
//!    file hand-written into the Quadlet folder and started with
//!    `systemctl --user daemon-reload && systemctl --user start` (both pull
//!    the image from the run's registry, both wait for the health check);
//! 2. one no-op reconcile pass with 20 apps installed: wall, CPU and
//!    processes started (`archipelagod reconcile --once --measure`);
//! 3. daemon start to its TLS port accepting (journal timestamps:
//!    systemd's "Started" to the daemon's "API listening");
//! 4. the daemon's resident memory with 20 apps;
//! 5. `package.list` latency over TLS with 64 clients calling at once.
//!
//! Run: `ARCHIPELAGO_DEB_PROFILE=release cargo bench -p archipelago-lifecycle
//! --bench node` (as root: it boots a node; the release profile makes the
//! node's daemon the one users get). `BENCH_ROUNDS` sets the install rounds
//! (default 5).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use archipelago_api::methods::{Empty, PackageList};
use archipelago_harness::fixtures;
use archipelago_harness::node::{Node, RunAs};
use archipelago_harness::testing::NODE_HOME;
use archipelago_lifecycle::{Lab, REGISTRY, root, user};
use std::time::{Duration, Instant};

const APPS: usize = 20;
const CLIENTS: usize = 64;
const CALLS_PER_CLIENT: usize = 25;

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let lab = Lab::start().unwrap();
    let mut out = Vec::new();

    // 1. Install to healthy, daemon vs. floor, alternating.
    let image = lab
        .images
        .iter()
        .find(|i| i.name == "hello-web")
        .unwrap()
        .reference(REGISTRY);
    let mut daemon = Vec::new();
    let mut floor = Vec::new();
    let mut unit_text = String::new();
    let mut network_text = String::new();
    for round in 0..rounds {
        forget_image(&lab, &image);
        let took = lab
            .block_on(async {
                let api = lab.api().await.unwrap();
                let t = Instant::now();
                api.install("hello-web").await.unwrap();
                let took = t.elapsed();
                if round == 0 {
                    let dir = format!("{NODE_HOME}/.config/containers/systemd");
                    let cat =
                        |f: &str| user(&*lab.node(), &["cat", &format!("{dir}/{f}")]).unwrap();
                    unit_text = cat("hello-web_web.container");
                    network_text = cat("hello-web.network");
                }
                api.uninstall("hello-web", false).await.unwrap();
                took
            })
            .unwrap();
        daemon.push(took);

        forget_image(&lab, &image);
        floor.push(floor_install(&lab, &unit_text, &network_text));
    }
    let (d, f) = (median(&mut daemon), median(&mut floor));
    out.push(format!(
        "install-to-healthy, hello-web, {rounds} rounds (image pulled each time): daemon median {d:.3?}, \
         floor (same unit by hand, systemctl --user) median {f:.3?}; ratio {:.2}× (target ≤ 1.5×)",
        d.as_secs_f64() / f.as_secs_f64()
    ));

    with_twenty_apps(&lab, rounds, &mut out);

    println!("\n=== node benchmark ===");
    for l in &out {
        println!("{l}");
    }
}

/// Figures 2–5, with 20 apps installed.
fn with_twenty_apps(lab: &Lab, rounds: usize, out: &mut Vec<String>) {
    let hello = fixtures::load_manifest("hello-web", &lab.images, REGISTRY).unwrap();
    let mut extra = Vec::new();
    for i in 1..=APPS {
        let id = format!("bench-{i:02}");
        let port = 8100 + i;
        // Without a health check: its timers would start processes on the
        // node all the time and blur the count of what a pass starts.
        let without_health = hello
            .yaml
            .split("    health:\n")
            .next()
            .unwrap_or_default()
            .to_owned()
            + "ui:\n  port: 8080\n";
        let yaml = without_health
            .replace("id: hello-web", &format!("id: {id}"))
            .replace("host: 8080", &format!("host: {port}"))
            .replace("  port: 8080", &format!("  port: {port}"));
        extra.push((id, yaml));
    }
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(id, yaml)| (id.as_str(), yaml.as_str()))
        .collect();
    lab.publish(&extra).unwrap();
    let t = Instant::now();
    lab.block_on(async {
        let api = lab.api().await.unwrap();
        let ids: Vec<String> = (1..=APPS).map(|i| format!("bench-{i:02}")).collect();
        for r in futures_join_all(ids.iter().map(|id| api.install(id))).await {
            r.unwrap();
        }
    })
    .unwrap();
    out.push(format!(
        "{APPS} apps installed at once (20 clients) in {:.1?}",
        t.elapsed()
    ));

    let measured = user(
        &*lab.node(),
        &[
            "archipelagod",
            "reconcile",
            "--once",
            "--home",
            NODE_HOME,
            "--measure",
            "50",
        ],
    )
    .unwrap();
    let line = measured
        .lines()
        .find(|l| l.starts_with("measured"))
        .unwrap_or("no measurement printed")
        .to_owned();
    out.push(format!("no-op pass (target ≤ 5 ms, 0 processes): {line}"));

    out.push(format!(
        "daemon resident memory with {APPS} apps: {} (target ≤ 30 MB)",
        daemon_rss(lab)
    ));

    let mut starts = Vec::new();
    for _ in 0..rounds {
        starts.push(start_to_listening(lab));
    }
    out.push(format!(
        "daemon start to TLS port accepting, {rounds} restarts: median {:.1?}, max {:.1?} (target ≤ 100 ms)",
        median(&mut starts.clone()),
        starts.iter().max().unwrap()
    ));

    let (p50, p99, total, took) = rpc_latency(lab);
    out.push(format!(
        "package.list over TLS, {CLIENTS} clients × {CALLS_PER_CLIENT} calls at once ({total} calls in {took:.2?}, {:.0} calls/s): p50 {p50:.2?}, p99 {p99:.2?}",
        total as f64 / took.as_secs_f64()
    ));
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Removes the image from the node so that the next install pulls it.
fn forget_image(lab: &Lab, image: &str) {
    let _ = user(&*lab.node(), &["podman", "rmi", "--force", image]);
}

/// The floor: the daemon's own unit files (container and network), without
/// their markers and labels (so that the daemon leaves them alone), written
/// by hand and started with systemctl. Returns reload + start (start
/// returns once healthy).
fn floor_install(lab: &Lab, unit_text: &str, network_text: &str) -> Duration {
    let by_hand = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("Label="))
            .map(|l| {
                if l.starts_with("ContainerName=") {
                    "ContainerName=floor-web".to_owned()
                } else if l.starts_with("NetworkName=") {
                    "NetworkName=floor-net".to_owned()
                } else {
                    l.replace("hello-web.network", "floor-net.network")
                        .replace("hello-web-network.service", "floor-net-network.service")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dir = format!("{NODE_HOME}/.config/containers/systemd");
    let node = lab.node();
    for (name, text) in [
        ("floor-web.container", by_hand(unit_text)),
        ("floor-net.network", by_hand(network_text)),
    ] {
        node.copy_in(
            text.as_bytes(),
            &format!("{dir}/{name}"),
            RunAs::ServiceUser,
            0o644,
        )
        .unwrap();
    }
    let script = "systemctl --user daemon-reload && systemctl --user start floor-web.service";
    let t = Instant::now();
    user(&*node, &["sh", "-c", script]).unwrap();
    let took = t.elapsed();
    user(
        &*node,
        &[
            "sh",
            "-c",
            &format!(
                "systemctl --user stop floor-web.service floor-net-network.service && \
                 rm {dir}/floor-web.container {dir}/floor-net.network && \
                 systemctl --user daemon-reload && podman network rm -f floor-net"
            ),
        ],
    )
    .unwrap();
    took
}

fn daemon_rss(lab: &Lab) -> String {
    let node = lab.node();
    let pid = root(
        &*node,
        &["systemctl", "show", "-P", "MainPID", "archipelagod"],
    )
    .unwrap();
    let status = root(&*node, &["cat", &format!("/proc/{}/status", pid.trim())]).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .map_or_else(
            || "unknown".to_owned(),
            |l| l.trim_start_matches("VmRSS:").trim().to_owned(),
        )
}

/// Restarts the daemon and reads, from the journal's monotonic clock,
/// the time from systemd starting it to the daemon's "API listening".
fn start_to_listening(lab: &Lab) -> Duration {
    let node = lab.node();
    root(&*node, &["systemctl", "restart", "archipelagod"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = root(
            &*node,
            &[
                "journalctl",
                "--no-pager",
                "-o",
                "short-monotonic",
                "-u",
                "archipelagod",
                "-n",
                "40",
            ],
        )
        .unwrap();
        let stamp = |l: &str| -> Option<f64> {
            l.trim_start()
                .strip_prefix('[')?
                .split(']')
                .next()?
                .trim()
                .parse()
                .ok()
        };
        let started = log
            .lines()
            .rev()
            .filter(|l| l.contains("Started archipelagod.service"))
            .find_map(stamp);
        let listening = log
            .lines()
            .rev()
            .filter(|l| l.contains("API listening"))
            .find_map(stamp);
        if let (Some(s), Some(l)) = (started, listening) {
            if l >= s {
                return Duration::from_secs_f64(l - s);
            }
        }
        assert!(Instant::now() < deadline, "no API listening line:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `package.list` from 64 clients at once, each on its own connection.
fn rpc_latency(lab: &Lab) -> (Duration, Duration, usize, Duration) {
    // Wait for the daemon restarted by the previous figure.
    lab.block_on(async {
        let api = lab.api().await.unwrap();
        api.wait_api(Duration::from_secs(30)).await.unwrap();
    })
    .unwrap();
    let (mut all, took) = lab
        .block_on(async {
            let mut clients = Vec::new();
            for _ in 0..CLIENTS {
                clients.push(lab.api().await.unwrap());
            }
            let t = Instant::now();
            let calls = clients.iter().map(|api| async move {
                let mut times = Vec::with_capacity(CALLS_PER_CLIENT);
                for _ in 0..CALLS_PER_CLIENT {
                    let t = Instant::now();
                    let list = api.client.call::<PackageList>(Empty {}).await.unwrap();
                    times.push(t.elapsed());
                    assert_eq!(list.apps.len(), APPS);
                }
                times
            });
            let times: Vec<Duration> = futures_join_all(calls)
                .await
                .into_iter()
                .flatten()
                .collect();
            (times, t.elapsed())
        })
        .unwrap();
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (p(0.50), p(0.99), all.len(), took)
}

/// Polls every future together on the current task.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let set: Vec<_> = futs.map(Box::pin).collect();
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = set.into_iter().map(Some).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
