//! The reconciler against the recording fake node: idempotence (a second
//! pass changes nothing and asks systemd to change nothing), every kind of
//! drift repaired, uninstall, stop, invalid manifests left alone. The same
//! behaviour on real nodes is the job of the node tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use archipelago_api::{ActiveState, ErrorCode, RunState};
use archipelagod::fake::{Call, FakeNode};
use archipelagod::fsutil::TEMP_PREFIX;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Protocol, Strictness};
use archipelagod::podman::PortBinding;
use archipelagod::reconcile::{Context, Desired, PassReport, reconcile_pass};
use archipelagod::secrets::SecretStore;
use archipelagod::state::{InstalledApp, NodeState};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

const DIGEST: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0b8f1e2b1b1e3a1c2d3e4f5";

fn hello(id: &str, port: u16) -> String {
    format!(
        "id: {id}
name: Hello
version: 1.0.0
category: utilities
containers:
  - name: web
    image: 10.99.0.1:5000/hello-web:1@{DIGEST}
    command: [httpd, -f, -p, '8080']
    ports:
      - container: 8080
        host: {port}
ui:
  port: {port}
"
    )
}

fn chain() -> String {
    format!(
        "id: chain
name: Chain
version: 1.0.0
category: bitcoin
volumes: [{{name: data}}]
generated_secrets:
  - {{name: rpc-password, kind: hex32}}
  - {{name: rpc-hash, kind: bcrypt, from: rpc-password}}
containers:
  - name: node
    image: 10.99.0.1:5000/chain:1@{DIGEST}
    secrets:
      - {{name: rpc-hash, file: /run/secrets/rpc-hash}}
    ports: [{{container: 18443, host: 18443}}]
    volumes: [{{volume: data, target: /data}}, {{path: conf, target: /conf}}]
exports:
  ports: {{rpc: {{container: node, port: 18443}}}}
  secrets: [rpc-password]
"
    )
}

fn wallet() -> String {
    format!(
        "id: wallet
name: Wallet
version: 1.0.0
category: lightning
dependencies: [{{app: chain}}]
containers:
  - name: app
    image: 10.99.0.1:5000/wallet:1@{DIGEST}
    secrets:
      - {{name: rpc-password, from: chain, env: RPC_PASSWORD}}
    links:
      - {{app: chain, port: rpc, address_env: CHAIN_RPC}}
"
    )
}

struct Node {
    _home: tempfile::TempDir,
    fake: Arc<FakeNode>,
    ctx: Context<Arc<FakeNode>, Arc<FakeNode>>,
}

impl Node {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(home.path());
        // One fake plays both systemd and podman, so that containers
        // started through one are listed by the other.
        let fake = Arc::new(FakeNode::new(&layout.units_dir));
        let secrets = SecretStore::new(layout.clone()).with_bcrypt_cost(4);
        let ctx = Context::new(layout, Arc::clone(&fake), Arc::clone(&fake), secrets);
        Self {
            _home: home,
            fake,
            ctx,
        }
    }

    fn sd(&self) -> &FakeNode {
        &self.fake
    }

    async fn pass(&self, d: &Desired) -> PassReport {
        reconcile_pass(d, &self.ctx).await.unwrap()
    }

    fn unit(&self, name: &str) -> PathBuf {
        self.ctx.layout.units_dir.join(name)
    }

    fn mtimes(&self) -> Vec<(PathBuf, SystemTime)> {
        let mut out = Vec::new();
        for dir in [&self.ctx.layout.units_dir, &self.ctx.layout.secrets_root] {
            walk(dir, &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, SystemTime)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        out.push((p.clone(), e.metadata().unwrap().modified().unwrap()));
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

fn layout() -> Layout {
    Layout::under_home(Path::new("/unused"))
}

impl Node {
    fn desired(&self, apps: &[(&str, RunState)]) -> Desired {
        Desired::new(
            apps.iter().map(|(yaml, run)| {
                (
                    manifest::from_yaml(Path::new("m.yml"), yaml, Strictness::Catalog).unwrap(),
                    *run,
                )
            }),
            &self.ctx.layout,
        )
    }
}

#[tokio::test]
async fn first_pass_installs_and_second_pass_changes_nothing() {
    let node = Node::new();
    let d = node.desired(&[
        (&hello("hello", 8080), RunState::Running),
        (&chain(), RunState::Running),
        (&wallet(), RunState::Running),
    ]);
    let r = node.pass(&d).await;
    assert!(r.reloaded);
    assert_eq!(
        r.written.len(),
        3 + 1 + 3,
        "networks, volume, containers: {:?}",
        r.written
    );
    let m = node.sd().mutations();
    assert_eq!(m.iter().filter(|c| **c == Call::Reload).count(), 1, "{m:?}");
    for unit in [
        "hello_web.service",
        "chain_node.service",
        "wallet_app.service",
    ] {
        assert_eq!(node.sd().active_state(unit), ActiveState::Active, "{unit}");
        assert!(
            m.contains(&Call::Start(unit.into())),
            "{unit} not started: {m:?}"
        );
    }
    for o in r.apps.values() {
        assert!(o.result.is_ok(), "{o:?}");
    }
    // Data folder for the bind mount exists, secrets exist.
    assert!(node.ctx.layout.app_data_dir("chain").join("conf").is_dir());
    let wallet_env = fs::read_to_string(node.ctx.layout.env_file("wallet", "app")).unwrap();
    let pw = node
        .ctx
        .secrets
        .read("chain", "rpc-password")
        .unwrap()
        .unwrap();
    assert_eq!(wallet_env, format!("RPC_PASSWORD={pw}\n"));

    // Second pass: nothing written, no mutating call, exactly one query each.
    let before = node.mtimes();
    node.sd().clear_calls();
    let r2 = node.pass(&d).await;
    assert!(!r2.changed(), "{r2:#?}");
    assert_eq!(
        node.sd().calls(),
        vec![Call::ListUnits(3), Call::ListContainers]
    );
    assert_eq!(node.mtimes(), before);

    // Third pass: every unit as before, so podman is not asked again.
    node.sd().clear_calls();
    assert!(!node.pass(&d).await.changed());
    assert_eq!(node.sd().calls(), vec![Call::ListUnits(3)]);

    // A unit that changes state (a container died) makes it ask.
    node.sd().kill("chain_node.service");
    node.sd().clear_calls();
    node.pass(&d).await;
    assert_eq!(
        node.sd().calls()[..2],
        [Call::ListUnits(3), Call::ListContainers]
    );
}

/// Installs `apps` and runs passes until the node is settled: by the third
/// pass every file was verified under an inotify watch, so the drift that a
/// test then makes must be caught through inotify, not a full re-read.
async fn installed(apps: &[(&str, RunState)]) -> (Node, Desired) {
    let node = Node::new();
    let d = node.desired(apps);
    let r = node.pass(&d).await;
    assert!(r.apps.values().all(|o| o.result.is_ok()), "{r:#?}");
    for _ in 0..2 {
        assert!(!node.pass(&d).await.changed());
    }
    node.sd().clear_calls();
    (node, d)
}

/// After a repair, the next pass must be a no-op again.
async fn assert_settled(node: &Node, d: &Desired) {
    node.sd().clear_calls();
    let r = node.pass(d).await;
    assert!(!r.changed(), "not settled: {r:#?}");
    assert!(
        node.sd().mutations().is_empty(),
        "{:?}",
        node.sd().mutations()
    );
}

#[tokio::test]
async fn unit_file_edited_by_hand_is_rewritten_and_restarted() {
    let (node, d) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    let path = node.unit("hello_web.container");
    let original = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        original.replace("PublishPort=8080:8080/tcp", "PublishPort=9090:8080/tcp"),
    )
    .unwrap();
    let r = node.pass(&d).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert_eq!(r.written, vec![path]);
    assert_eq!(
        node.sd().mutations(),
        vec![Call::Reload, Call::Restart("hello_web.service".into())]
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn deleted_unit_file_is_restored() {
    let (node, d) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    let path = node.unit("hello_web.container");
    let original = fs::read_to_string(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let r = node.pass(&d).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert!(r.reloaded);
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn missing_secret_is_regenerated_and_its_users_restarted() {
    let (node, d) = installed(&[
        (&chain(), RunState::Running),
        (&wallet(), RunState::Running),
    ])
    .await;
    let layout = &node.ctx.layout;
    let old = node
        .ctx
        .secrets
        .read("chain", "rpc-password")
        .unwrap()
        .unwrap();
    fs::remove_file(layout.secret_file("chain", "rpc-password")).unwrap();
    let r = node.pass(&d).await;
    let new = node
        .ctx
        .secrets
        .read("chain", "rpc-password")
        .unwrap()
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(
        r.secrets["chain"].generated,
        vec!["rpc-password".to_owned()]
    );
    // The hash follows its source, the wallet's env file follows the export.
    let hash = node.ctx.secrets.read("chain", "rpc-hash").unwrap().unwrap();
    assert!(bcrypt::verify(&new, &hash).unwrap());
    assert_eq!(
        fs::read_to_string(layout.env_file("wallet", "app")).unwrap(),
        format!("RPC_PASSWORD={new}\n")
    );
    let m = node.sd().mutations();
    assert!(
        m.contains(&Call::Restart("chain_node.service".into())),
        "{m:?}"
    );
    assert!(
        m.contains(&Call::Restart("wallet_app.service".into())),
        "{m:?}"
    );
    assert!(!m.contains(&Call::Reload), "no unit file changed: {m:?}");
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn secret_with_wrong_mode_is_fixed_without_restart() {
    use std::os::unix::fs::PermissionsExt;
    let (node, d) = installed(&[(&chain(), RunState::Running)]).await;
    let p = node.ctx.layout.secret_file("chain", "rpc-password");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let r = node.pass(&d).await;
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(r.secrets.contains_key("chain"));
    assert!(
        node.sd().mutations().is_empty(),
        "{:?}",
        node.sd().mutations()
    );
}

#[tokio::test]
async fn port_binding_drift_is_repaired() {
    let (node, d) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    node.sd().clear_calls();
    node.sd().set_container_ports(
        "hello_web",
        vec![PortBinding {
            host_ip: None,
            host_port: 9999,
            container_port: 8080,
            protocol: Protocol::Tcp,
        }],
    );
    // No unit changed state, so an ordinary pass keeps the listing it has
    // (a container only changes through its unit); the deep check, at
    // every daemon start and then hourly, asks podman again.
    let r = node.pass(&d).await;
    assert!(!r.changed(), "{r:#?}");
    assert_eq!(node.sd().calls(), vec![Call::ListUnits(1)]);
    node.ctx.check_deeply_next();
    let r = node.pass(&d).await;
    assert_eq!(
        node.sd().mutations(),
        vec![Call::Restart("hello_web.service".into())]
    );
    assert!(
        r.apps["hello"].changes.reasons[0].contains("published ports differ"),
        "{r:#?}"
    );
    assert_eq!(
        node.sd().container("hello_web").unwrap().ports[0].host_port,
        8080
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn unit_that_died_is_reset_and_started() {
    let (node, d) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    node.sd().kill("hello_web.service");
    node.pass(&d).await;
    assert_eq!(
        node.sd().mutations(),
        vec![
            Call::ResetFailed("hello_web.service".into()),
            Call::Start("hello_web.service".into())
        ]
    );
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn uninstalled_app_is_stopped_and_its_files_removed() {
    let (node, _) = installed(&[
        (&hello("hello", 8080), RunState::Running),
        (&hello("other", 8081), RunState::Running),
    ])
    .await;
    // A file of a person's own, in the same folder, named like ours.
    let mine = node.unit("hello_mine.container");
    fs::write(&mine, "[Container]\nImage=x\n").unwrap();
    let d = node.desired(&[(&hello("other", 8081), RunState::Running)]);
    let r = node.pass(&d).await;
    let m = node.sd().mutations();
    assert_eq!(
        m[0],
        Call::Stop("hello_web.service".into()),
        "containers stop first: {m:?}"
    );
    assert!(m.contains(&Call::Reload));
    assert!(!node.unit("hello_web.container").exists());
    assert!(!node.unit("hello.network").exists());
    assert!(node.unit("other_web.container").exists());
    assert!(mine.exists(), "files without our marker are never touched");
    assert_eq!(r.removed.len(), 2);
    assert_eq!(
        node.sd().active_state("other_web.service"),
        ActiveState::Active
    );
    assert!(node.sd().container("hello_web").is_none());
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn stopped_app_stays_stopped_and_loses_its_install_section() {
    let (node, _) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    let d = node.desired(&[(&hello("hello", 8080), RunState::Stopped)]);
    node.pass(&d).await;
    assert_eq!(
        node.sd().mutations(),
        vec![Call::Reload, Call::Stop("hello_web.service".into())]
    );
    let text = fs::read_to_string(node.unit("hello_web.container")).unwrap();
    assert!(!text.contains("[Install]"), "{text}");
    assert_settled(&node, &d).await;
    // And back.
    let d = node.desired(&[(&hello("hello", 8080), RunState::Running)]);
    node.pass(&d).await;
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn dependency_needed_by_a_running_app_is_kept_running() {
    let (node, _) = installed(&[
        (&chain(), RunState::Running),
        (&wallet(), RunState::Running),
    ])
    .await;
    let d = node.desired(&[
        (&chain(), RunState::Stopped),
        (&wallet(), RunState::Running),
    ]);
    let r = node.pass(&d).await;
    assert!(!r.changed(), "{r:#?}");
    assert_eq!(
        node.sd().active_state("chain_node.service"),
        ActiveState::Active
    );
}

#[tokio::test]
async fn invalid_manifest_leaves_the_app_untouched_and_says_why() {
    let node = Node::new();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("hello.yml");
    fs::write(&good, hello("hello", 8080)).unwrap();
    let mut state = NodeState::new();
    state.apps.insert(
        "hello".into(),
        InstalledApp {
            manifest: good.clone(),
            version: "1.0.0".into(),
            run: RunState::Running,
            source: String::new(),
            settings: archipelago_api::methods::AppSettings::default(),
            catalog_sha256: String::new(),
            previous_images: Vec::new(),
            update: None,
        },
    );
    let d = Desired::load(&state, Strictness::Catalog, &node.ctx.layout);
    node.pass(&d).await;
    let before = node.mtimes();
    node.sd().clear_calls();

    // The manifest becomes invalid (e.g. a bad update): privileged container.
    fs::write(
        &good,
        hello("hello", 8080).replace("    command:", "    privileged: true\n    command:"),
    )
    .unwrap();
    let d = Desired::load(&state, Strictness::Catalog, &node.ctx.layout);
    assert!(d.apps().is_empty());
    let r = node.pass(&d).await;
    assert!(
        r.invalid["hello"].contains("containers[0].privileged"),
        "{:?}",
        r.invalid
    );
    assert!(!r.changed(), "{r:#?}");
    assert_eq!(node.mtimes(), before, "nothing rewritten or removed");
    assert!(node.sd().mutations().is_empty());
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active
    );
}

#[tokio::test]
async fn missing_required_dependency_makes_the_dependant_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wallet.yml");
    fs::write(&f, wallet()).unwrap();
    let mut state = NodeState::new();
    state.apps.insert(
        "wallet".into(),
        InstalledApp {
            manifest: f,
            version: "1.0.0".into(),
            run: RunState::Running,
            source: String::new(),
            settings: archipelago_api::methods::AppSettings::default(),
            catalog_sha256: String::new(),
            previous_images: Vec::new(),
            update: None,
        },
    );
    let d = Desired::load(&state, Strictness::Catalog, &layout());
    assert!(
        d.invalid()["wallet"].contains("dependencies[0].app"),
        "{:?}",
        d.invalid()
    );
}

#[tokio::test]
async fn a_failing_app_does_not_stop_the_others() {
    let node = Node::new();
    node.sd().fail_on_start("bad_web.service");
    let d = node.desired(&[
        (&hello("bad", 8080), RunState::Running),
        (&hello("good", 8081), RunState::Running),
    ]);
    let r = node.pass(&d).await;
    let bad = &r.apps["bad"];
    let err = bad.result.as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Systemd);
    assert!(err.to_string().contains("bad_web.service"), "{err}");
    assert_eq!(
        bad.action,
        archipelagod::reconcile::Action::Requeue(std::time::Duration::from_secs(10))
    );
    assert_eq!(
        node.sd().active_state("good_web.service"),
        ActiveState::Active
    );
    assert_eq!(r.next_pass_in(), std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn stale_temp_files_in_the_unit_folder_are_removed() {
    let (node, d) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    let tmp = node.unit(&format!("{TEMP_PREFIX}hello_web.container.4242"));
    fs::write(&tmp, "[Container]\nImage=half").unwrap();
    node.pass(&d).await;
    assert!(!tmp.exists());
    assert!(node.sd().mutations().is_empty());
}

#[tokio::test]
async fn restart_lost_to_a_crash_is_still_made() {
    // The daemon wrote a new unit file and reloaded, then died before it
    // could restart the container: the next daemon finds the file already
    // right on disk, and must still see that the container runs the old one.
    let (node, _) = installed(&[(&hello("hello", 8080), RunState::Running)]).await;
    let old_digest = node
        .sd()
        .container("hello_web")
        .unwrap()
        .config_digest
        .unwrap();
    let changed =
        hello("hello", 8080).replace("[httpd, -f, -p, '8080']", "[httpd, -f, -v, -p, '8080']");
    let d = node.desired(&[(&changed, RunState::Running)]);
    let unit = d.apps()["hello"]
        .units
        .iter()
        .find(|u| u.file_name == "hello_web.container")
        .unwrap();
    fs::write(node.unit("hello_web.container"), &unit.contents).unwrap();

    let restarted = restarted_daemon(node);
    restarted.sd().clear_calls();
    let r = restarted.pass(&d).await;
    assert!(r.written.is_empty(), "the file was already right: {r:#?}");
    // The dead daemon never reloaded: a new one always does, once.
    assert_eq!(
        restarted.sd().mutations(),
        vec![Call::Reload, Call::Restart("hello_web.service".into())]
    );
    assert!(
        r.apps["hello"].changes.reasons[0].contains("older version of its unit file"),
        "{r:#?}"
    );
    let new_digest = restarted
        .sd()
        .container("hello_web")
        .unwrap()
        .config_digest
        .unwrap();
    assert_ne!(old_digest, new_digest);
    assert_eq!(Some(new_digest.as_str()), unit.config_digest.as_deref());
    assert_settled(&restarted, &d).await;
}

fn restarted_daemon(node: Node) -> Node {
    let layout = node.ctx.layout.clone();
    let secrets = SecretStore::new(layout.clone()).with_bcrypt_cost(4);
    Node {
        ctx: Context::new(
            layout,
            Arc::clone(&node.fake),
            Arc::clone(&node.fake),
            secrets,
        ),
        ..node
    }
}

#[tokio::test]
async fn a_failed_reload_is_made_by_the_next_pass() {
    let node = Node::new();
    node.sd().fail_reloads(2);
    let d = node.desired(&[(&hello("hello", 8080), RunState::Running)]);
    assert!(reconcile_pass(&d, &node.ctx).await.is_err());
    // Same process: the files are right now, the reload is still owed.
    assert!(reconcile_pass(&d, &node.ctx).await.is_err());
    let r = node.pass(&d).await;
    assert!(r.written.is_empty() && r.reloaded, "{r:#?}");
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn a_restart_for_new_secrets_survives_a_failure_and_a_daemon_restart() {
    let (node, d) = installed(&[
        (&chain(), RunState::Running),
        (&wallet(), RunState::Running),
    ])
    .await;
    fs::remove_file(node.ctx.layout.secret_file("chain", "rpc-password")).unwrap();
    // The pass makes the new secret, then fails before any restart…
    node.sd().fail_lists(1);
    assert!(reconcile_pass(&d, &node.ctx).await.is_err());
    assert!(node.sd().mutations().is_empty());
    // …and the daemon dies; a new one finds the secrets already in order.
    let node = restarted_daemon(node);
    node.sd().clear_calls();
    let r = node.pass(&d).await;
    assert!(r.secrets.is_empty(), "nothing left to generate: {r:#?}");
    let m = node.sd().mutations();
    assert!(
        m.contains(&Call::Restart("chain_node.service".into())),
        "{m:?}"
    );
    assert!(
        m.contains(&Call::Restart("wallet_app.service".into())),
        "the wallet reads the chain's secret: {m:?}"
    );
    assert_settled(&node, &d).await;
    let pending = node.ctx.layout.restart_pending_dir();
    assert_eq!(
        fs::read_dir(&pending).unwrap().count(),
        0,
        "restarts done, markers gone"
    );
}

#[tokio::test]
async fn a_dependant_mounting_a_secret_as_a_file_restarts_when_it_changes() {
    let wallet_file = wallet().replace(
        "{name: rpc-password, from: chain, env: RPC_PASSWORD}",
        "{name: rpc-password, from: chain, file: /run/secrets/rpc}",
    );
    let (node, d) = installed(&[
        (&chain(), RunState::Running),
        (&wallet_file, RunState::Running),
    ])
    .await;
    fs::remove_file(node.ctx.layout.secret_file("chain", "rpc-password")).unwrap();
    node.pass(&d).await;
    let m = node.sd().mutations();
    assert!(
        m.contains(&Call::Restart("wallet_app.service".into())),
        "{m:?}"
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn an_orphan_that_will_not_stop_does_not_block_the_node() {
    let (node, _) = installed(&[
        (&hello("hello", 8080), RunState::Running),
        (&hello("other", 8081), RunState::Running),
    ])
    .await;
    node.sd().fail_on_stop("hello_web.service");
    node.sd().kill("other_web.service");
    let d = node.desired(&[(&hello("other", 8081), RunState::Running)]);
    let r = node.pass(&d).await;
    assert_eq!(r.orphan_errors.len(), 1, "{r:#?}");
    assert!(
        node.unit("hello_web.container").exists(),
        "kept while its unit runs"
    );
    assert_eq!(
        node.sd().active_state("other_web.service"),
        ActiveState::Active,
        "the rest of the node is reconciled"
    );
}

#[tokio::test]
async fn an_app_uninstalled_while_its_manifest_was_invalid_is_removed() {
    let node = Node::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.yml");
    fs::write(&file, hello("hello", 8080)).unwrap();
    let mut state = NodeState::new();
    state.apps.insert(
        "hello".into(),
        InstalledApp {
            manifest: file.clone(),
            version: "1.0.0".into(),
            run: RunState::Running,
            source: String::new(),
            settings: archipelago_api::methods::AppSettings::default(),
            catalog_sha256: String::new(),
            previous_images: Vec::new(),
            update: None,
        },
    );
    for _ in 0..3 {
        node.pass(&Desired::load(
            &state,
            Strictness::Catalog,
            &node.ctx.layout,
        ))
        .await;
    }
    fs::write(&file, "not: [a manifest").unwrap();
    for _ in 0..2 {
        node.pass(&Desired::load(
            &state,
            Strictness::Catalog,
            &node.ctx.layout,
        ))
        .await;
    }
    state.apps.clear();
    let r = node
        .pass(&Desired::load(
            &state,
            Strictness::Catalog,
            &node.ctx.layout,
        ))
        .await;
    assert!(!node.unit("hello_web.container").exists(), "{r:#?}");
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Inactive
    );
}

#[tokio::test]
async fn a_data_folder_replaced_by_a_symlink_is_refused() {
    let (node, d) = installed(&[(&chain(), RunState::Running)]).await;
    let conf = node.ctx.layout.app_data_dir("chain").join("conf");
    fs::remove_dir(&conf).unwrap();
    std::os::unix::fs::symlink(&node.ctx.layout.secrets_root, &conf).unwrap();
    node.sd().kill("chain_node.service");
    let r = node.pass(&d).await;
    let err = r.apps["chain"].result.as_ref().unwrap_err();
    assert!(err.to_string().contains("not a plain folder"), "{err}");
    assert!(
        !node
            .sd()
            .mutations()
            .iter()
            .any(|c| matches!(c, Call::Start(_))),
        "never started on a symlink"
    );
}

#[tokio::test]
async fn a_paused_app_is_left_alone_while_the_others_are_reconciled() {
    let (node, d) = installed(&[
        (&hello("hello", 8080), RunState::Running),
        (&hello("other", 8081), RunState::Running),
    ])
    .await;
    let paused = node.ctx.pause(["hello".to_owned()]).await;
    node.sd().kill("hello_web.service");
    node.sd().kill("other_web.service");
    std::fs::write(node.unit("hello_web.container"), "edited by hand\n").unwrap();
    node.pass(&d).await;
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Failed,
        "a paused app's units are not started"
    );
    assert_eq!(
        std::fs::read_to_string(node.unit("hello_web.container")).unwrap(),
        "edited by hand\n",
        "nor its files written"
    );
    assert_eq!(
        node.sd().active_state("other_web.service"),
        ActiveState::Active
    );
    drop(paused);
    node.pass(&d).await;
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active
    );
    assert_ne!(
        std::fs::read_to_string(node.unit("hello_web.container")).unwrap(),
        "edited by hand\n"
    );
    assert_settled(&node, &d).await;
}

#[tokio::test]
async fn the_holder_of_a_pause_reconciles_its_apps_while_other_passes_still_skip_them() {
    let (node, d) = installed(&[
        (&hello("hello", 8080), RunState::Running),
        (&hello("other", 8081), RunState::Running),
    ])
    .await;
    let held = node.ctx.pause(["hello".to_owned()]).await;
    node.sd().kill("hello_web.service");
    let desired = std::sync::Arc::new(d.clone());
    let (_, report) = held.reconcile_latest(|| desired.clone()).await;
    assert!(report.unwrap().apps["hello"].result.is_ok());
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Active,
        "the holder's own pass starts its app"
    );
    node.sd().kill("hello_web.service");
    node.pass(&d).await;
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Failed,
        "a pass of anyone else still leaves it alone"
    );
    // Held twice (an update and a backup, say): the holder's pass leaves
    // it to the other pause too.
    let other = node.ctx.pause(["hello".to_owned()]).await;
    let (_, report) = held.reconcile_latest(|| desired.clone()).await;
    assert!(!report.unwrap().apps.contains_key("hello"));
    assert_eq!(
        node.sd().active_state("hello_web.service"),
        ActiveState::Failed
    );
    drop(other);
    drop(held);
    node.pass(&d).await;
    assert_settled(&node, &d).await;
}
