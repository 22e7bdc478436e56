//! Benchmarks of the reconciler's hot paths, with the recording fake in
//! place of systemd and podman (the real-node figures come from the node
//! harness): a no-op pass over 100 installed apps — what every node pays
//! every 30 seconds — and rendering 100 manifests.
//!
//! `cargo bench -p archipelagod --bench reconcile`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use archipelago_api::RunState;
use archipelagod::fake::FakeNode;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Manifest, Strictness};
use archipelagod::podman::PodmanApi;
use archipelagod::quadlet::render_app;
use archipelagod::reconcile::{Context, Desired, reconcile_pass};
use archipelagod::secrets::SecretStore;
use archipelagod::systemd::SystemdManager;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

const DIGEST: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0b8f1e2b1b1e3a1c2d3e4f5";

/// A realistic app: two containers, a volume, a data folder, a health
/// check, limits, and hex + bcrypt secrets given as env and file.
fn app(i: usize) -> Manifest {
    let yaml = format!(
        "id: app{i}
name: App {i}
version: 1.0.{i}
category: utilities
volumes: [{{name: data}}]
generated_secrets:
  - {{name: password, kind: hex32}}
  - {{name: password-hash, kind: bcrypt, from: password}}
  - {{name: token, kind: hex16}}
containers:
  - name: db
    image: registry.example.org/app{i}/db:1@{DIGEST}
    secrets: [{{name: password, env: DB_PASSWORD}}]
    volumes: [{{volume: data, target: /var/lib/db}}]
    health: {{command: [db, ping], interval: 10s, timeout: 5s}}
    limits: {{memory: 256M, cpus: 0.5}}
  - name: web
    image: registry.example.org/app{i}/web:1@{DIGEST}
    depends_on: [db]
    env: {{DB_HOST: db.app{i}}}
    secrets:
      - {{name: token, env: API_TOKEN}}
      - {{name: password-hash, file: /run/secrets/hash}}
    ports: [{{container: 8080, host: {port}}}]
    volumes: [{{path: config, target: /config, read_only: true}}]
ui: {{port: {port}}}
",
        port = 20000 + i
    );
    manifest::from_yaml(Path::new("bench.yml"), &yaml, Strictness::Catalog).unwrap()
}

fn desired(n: usize, layout: &Layout) -> Desired {
    Desired::new((0..n).map(|i| (app(i), RunState::Running)), layout)
}

fn bench_noop_pass(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let layout = Layout::under_home(home.path());
    let fake = Arc::new(FakeNode::new(&layout.units_dir));
    let d = desired(100, &layout);
    let secrets = SecretStore::new(layout.clone());
    // Deep checks are measured on their own below.
    let ctx = Context::new(
        layout.clone(),
        Arc::clone(&fake),
        Arc::clone(&fake),
        secrets,
    )
    .with_deep_check_every(u64::MAX);
    let first = rt.block_on(reconcile_pass(&d, &ctx)).unwrap();
    assert!(first.changed());
    let second = rt.block_on(reconcile_pass(&d, &ctx)).unwrap();
    assert!(!second.changed(), "the benchmark must measure a no-op pass");
    // Files written in the last two seconds are checked in full on every
    // pass (see fsutil::StampCache): measure the steady state, as on a node
    // where the files were written at install time.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    // The floor: the two queries every pass must make, and nothing else.
    let services: Vec<String> = d
        .apps()
        .values()
        .flat_map(|a| a.containers.iter().map(|c| c.service.clone()))
        .collect();
    c.bench_function("floor: list 200 units + list containers (fake)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let units = fake
                    .list_units_by_names(black_box(&services))
                    .await
                    .unwrap();
                let containers = fake.list_containers().await.unwrap();
                (units, containers)
            })
        });
    });
    c.bench_function("reconcile: no-op pass, 100 apps (200 containers)", |b| {
        b.iter(|| {
            let r = rt.block_on(reconcile_pass(black_box(&d), &ctx)).unwrap();
            debug_assert!(!r.changed());
            r
        });
    });

    // The hourly deep check: every file read and checked, every folder
    // swept (bcrypt pairs stay verified: they are remembered by content).
    let deep = Context::new(
        ctx.layout.clone(),
        Arc::clone(&fake),
        Arc::clone(&fake),
        SecretStore::new(ctx.layout.clone()),
    )
    .with_deep_check_every(1);
    // A new Context owes systemd one reload (as a restarted daemon does):
    // pay it before measuring.
    let first = rt.block_on(reconcile_pass(&d, &deep)).unwrap();
    assert!(first.reloaded && first.written.is_empty());
    let warm = rt.block_on(reconcile_pass(&d, &deep)).unwrap();
    assert!(!warm.changed());
    c.bench_function(
        "reconcile: deep-check pass, 100 apps (200 containers)",
        |b| {
            b.iter(|| rt.block_on(reconcile_pass(black_box(&d), &deep)).unwrap());
        },
    );
}

fn bench_render(c: &mut Criterion) {
    let home = Path::new("/var/lib/archipelago");
    let layout = Layout::under_home(home);
    let d = desired(100, &layout);
    c.bench_function("render: 100 manifests to Quadlet files", |b| {
        b.iter(|| {
            let mut n = 0;
            for a in d.apps().values() {
                n += render_app(
                    black_box(&a.manifest),
                    a.run,
                    |id| d.apps().get(id).map(|x| &x.manifest),
                    &layout,
                )
                .len();
            }
            n
        });
    });
    let texts: Vec<String> = (0..100)
        .map(|i| serde_yaml::to_string(&app(i)).unwrap())
        .collect();
    c.bench_function("manifest: parse + validate 100 manifests", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(manifest::from_yaml(Path::new("m.yml"), t, Strictness::Catalog).unwrap());
            }
        });
    });
}

criterion_group!(benches, bench_noop_pass, bench_render);
criterion_main!(benches);
