//! The API's operations against the recording fake node: an install pulls,
//! writes the state, reconciles and waits for health; a failed install is
//! undone; an uninstall removes what the app had (or keeps its data when
//! asked); dependencies are enforced both ways; a second install of the same
//! app joins the first. Real nodes prove the same in the lifecycle matrix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use archipelago_api::methods::{Health, Phase};
use archipelago_api::rpc::StreamEvent;
use archipelago_api::{ErrorCode, RunState};
use archipelago_catalog::{CatalogEntry, CatalogFile, FORMAT};
use archipelagod::catalogs::{CatalogsConfig, CommunityCatalog};
use archipelagod::fake::{Call, FakeNode};
use archipelagod::journal::Journal;
use archipelagod::layout::Layout;
use archipelagod::manifest::Strictness;
use archipelagod::reconcile::Context;
use archipelagod::secrets::SecretStore;
use archipelagod::service::NodeService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

const DIGEST: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904e0b8f1e2b1b1e3a1c2d3e4f5";

fn hello() -> String {
    format!(
        "id: hello
name: Hello
version: 1.0.0
category: utilities
containers:
  - name: web
    image: 10.99.0.1:5000/hello-web:1@{DIGEST}
    ports: [{{container: 8080, host: 8080}}]
ui:
  port: 8080
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
containers:
  - name: node
    image: 10.99.0.1:5000/chain:1@{DIGEST}
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
    ports: [{{container: 8080, host: 18081}}]
"
    )
}

/// A second chain node: `chain` and it both provide `chain-node`.
fn other_chain() -> String {
    chain()
        .replace("id: chain\n", "id: other-chain\n")
        .replace("host: 18443", "host: 18444")
        .replace("exports:", "provides: [chain-node]\nexports:")
}

/// A wallet that takes whichever chain node is installed.
fn any_wallet() -> String {
    wallet()
        .replace("id: wallet\n", "id: any-wallet\n")
        .replace(
            "dependencies: [{app: chain}]",
            "dependencies: [{capability: chain-node}]",
        )
        .replace("from: chain,", "from: chain-node,")
        .replace("host: 18081", "host: 18082")
}

/// A journal that says the same lines for every unit.
struct FixedJournal(Vec<String>);

impl Journal for FixedJournal {
    fn last_lines<'a>(
        &'a self,
        _unit: &'a str,
        _container: &'a str,
        _since: Option<std::time::SystemTime>,
        _n: usize,
    ) -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>> {
        let lines = self.0.clone();
        Box::pin(async move { lines })
    }
}

/// Writes a catalog of `apps` under `root`, signed with `secret`.
fn sign_catalog(root: &std::path::Path, apps: &[(&str, String)], secret: &str) {
    use archipelago_catalog::sign::{SigningKey, sign_catalog, write_catalog};
    let mut file = CatalogFile {
        format: FORMAT,
        apps: Vec::new(),
    };
    for (id, text) in apps {
        let path = format!("apps/{id}/manifest.yml");
        std::fs::create_dir_all(root.join(format!("apps/{id}"))).unwrap();
        std::fs::write(root.join(&path), text).unwrap();
        file.apps.push(CatalogEntry {
            id: (*id).to_owned(),
            name: (*id).to_owned(),
            short_description: format!("{id} for tests"),
            description: format!("The {id} test app."),
            category: "developer".into(),
            icon: None,
            icon_sha256: None,
            version: text
                .lines()
                .find_map(|l| l.strip_prefix("version: "))
                .unwrap_or("1")
                .to_owned(),
            manifest: path,
            manifest_sha256: String::new(),
            upstream: vec![],
        });
    }
    write_catalog(root, &file).unwrap();
    sign_catalog(root, &SigningKey::parse(secret).unwrap(), "tests").unwrap();
}

/// The apps of the test catalog.
fn catalog_apps() -> Vec<(&'static str, String)> {
    vec![
        ("hello", hello()),
        ("chain", chain()),
        ("wallet", wallet()),
        ("other-chain", other_chain()),
        ("any-wallet", any_wallet()),
    ]
}

struct Node {
    home: tempfile::TempDir,
    /// The catalog's throwaway signing key.
    secret: String,
    fake: Arc<FakeNode>,
    layout: Layout,
    service: Arc<NodeService<Arc<FakeNode>, Arc<FakeNode>>>,
}

impl Node {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let layout = Layout {
            // The repository is laid out as the official catalog.
            official_catalog: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_owned(),
            ..Layout::under_home(home.path())
        };
        let catalog = home.path().join("community");
        let pair = archipelago_catalog::sign::SigningKey::generate("throwaway").unwrap();
        sign_catalog(&catalog, &catalog_apps(), &pair.secret);
        let key = pair.public;
        let mut config = CatalogsConfig::default();
        config
            .add(
                CommunityCatalog {
                    name: "test".into(),
                    location: catalog.to_string_lossy().into_owned(),
                    public_key: key,
                },
                &layout,
            )
            .unwrap();
        config.save(&layout.catalogs_config()).unwrap();
        let fake = Arc::new(FakeNode::new(&layout.units_dir));
        let secrets = SecretStore::new(layout.clone()).with_bcrypt_cost(4);
        let ctx = Context::new(
            layout.clone(),
            Arc::clone(&fake),
            Arc::clone(&fake),
            secrets,
        );
        let service = Arc::new(
            NodeService::new(
                Arc::new(ctx),
                Strictness::Catalog,
                Arc::new(FixedJournal(vec!["boom: cannot open /data".into()])),
            )
            .with_settle(std::time::Duration::ZERO),
        );
        Self {
            home,
            secret: pair.secret,
            fake,
            layout,
            service,
        }
    }

    /// Publishes the test catalog again, with `changed` in place of the
    /// apps of the same id.
    fn publish(&self, changed: &[(&'static str, String)]) {
        let mut apps = catalog_apps();
        for (id, text) in changed {
            apps.retain(|(a, _)| a != id);
            apps.push((id, text.clone()));
        }
        sign_catalog(&self.home.path().join("community"), &apps, &self.secret);
    }
}

fn phases(rx: &mut tokio::sync::mpsc::Receiver<StreamEvent>) -> Vec<Phase> {
    let mut out = Vec::new();
    while let Ok(StreamEvent::Progress(p)) = rx.try_recv() {
        if out.last() != Some(&p.phase) {
            out.push(p.phase);
        }
    }
    out
}

#[tokio::test]
async fn install_pulls_starts_and_reports_healthy_with_progress() {
    let n = Node::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let status = n.service.install("hello", Some(&tx)).await.unwrap();
    assert_eq!(status.health, Health::Healthy);
    assert_eq!(status.run, RunState::Running);
    assert_eq!(status.ui.unwrap().port, 8080);
    assert!(
        n.fake
            .has_image(&format!("10.99.0.1:5000/hello-web:1@{DIGEST}"))
    );
    assert_eq!(
        phases(&mut rx),
        [
            Phase::Validating,
            Phase::Pulling,
            Phase::Starting,
            Phase::Healthy,
            Phase::Done
        ]
    );
    let state = n.service.state().unwrap();
    assert_eq!(
        state.apps["hello"].manifest,
        n.layout.installed_manifest("hello")
    );
    assert!(n.layout.installed_manifest("hello").is_file());

    // Installing again is refused; the list shows it.
    let again = n.service.install("hello", None).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::AlreadyInstalled);
    assert_eq!(n.service.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_changes() {
    let n = Node::new();
    let e = n.service.install("nope", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::NotInCatalog);
    let e = n.service.install("../../etc", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let e = n.service.install("wallet", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::MissingDependency);
    assert!(e.message.contains("install it first"), "{}", e.message);
    let e = n.service.start("hello").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AppNotInstalled);
    assert!(n.fake.mutations().is_empty(), "{:?}", n.fake.mutations());
    assert!(!n.layout.state_file().exists());
}

#[tokio::test]
async fn a_failed_pull_installs_nothing() {
    let n = Node::new();
    n.fake.fail_pull(
        &format!("10.99.0.1:5000/hello-web:1@{DIGEST}"),
        "connection refused",
    );
    let e = n.service.install("hello", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InstallFailed);
    assert!(e.message.contains("connection refused"), "{}", e.message);
    assert!(n.service.state().unwrap_or_default().apps.is_empty());
    assert!(!n.layout.installed_manifest("hello").exists());
    assert_eq!(
        n.fake.mutations(),
        [Call::Pull(format!("10.99.0.1:5000/hello-web:1@{DIGEST}"))]
    );
}

#[tokio::test]
async fn a_pull_that_finds_the_disk_full_says_to_free_space() {
    let n = Node::new();
    n.fake.fail_pull(
        &format!("10.99.0.1:5000/hello-web:1@{DIGEST}"),
        "write /var/tmp/container_images_storage1/1: no space left on device",
    );
    let e = n.service.install("hello", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InstallFailed);
    assert!(
        e.message.contains("free space on the node"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("registry"), "{}", e.message);
    assert!(n.service.state().unwrap_or_default().apps.is_empty());
}

#[tokio::test]
async fn an_install_over_a_damaged_state_file_is_refused_before_it_begins() {
    let n = Node::new();
    n.service.install("hello", None).await.unwrap();
    let before = n.fake.mutations().len();
    std::fs::write(n.layout.state_file(), "{\"version\": 1, \"apps\": {").unwrap();
    let e = n.service.install("chain", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::StateCorrupt);
    assert!(
        e.message.contains("archipelagod state recover"),
        "{}",
        e.message
    );
    // The backup holds the last state saved: hello-web, not an empty node.
    assert!(e.message.contains("(1 app)"), "{}", e.message);
    assert_eq!(
        n.fake.mutations().len(),
        before,
        "nothing pulled or started"
    );
    assert!(!n.layout.installed_manifest("chain").exists());
    assert!(
        !n.layout
            .installed_manifest("chain")
            .parent()
            .unwrap()
            .exists()
    );
}

#[tokio::test]
async fn a_failed_start_is_rolled_back_with_the_logs_in_the_error() {
    let n = Node::new();
    n.fake.fail_on_start("chain_node.service");
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let e = n.service.install("chain", Some(&tx)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InstallFailed);
    assert!(e.message.contains("chain_node.service"), "{}", e.message);
    assert!(
        e.message.contains("boom: cannot open /data"),
        "{}",
        e.message
    );
    assert!(e.message.contains("undone"), "{}", e.message);
    assert!(phases(&mut rx).contains(&Phase::RollingBack));
    let state = n.service.state().unwrap();
    assert!(state.apps.is_empty() && state.removing.is_empty());
    let units: Vec<_> = std::fs::read_dir(&n.layout.units_dir)
        .unwrap()
        .flatten()
        .collect();
    assert!(units.is_empty(), "{units:?}");
    assert!(!n.layout.app_secrets_dir("chain").exists());
    assert!(!n.layout.app_data_dir("chain").exists());
    assert!(
        n.fake
            .mutations()
            .contains(&Call::RemoveVolume("chain_data".into()))
    );
}

#[tokio::test]
async fn dependencies_hold_both_ways() {
    let n = Node::new();
    n.service.install("chain", None).await.unwrap();
    let wallet = n.service.install("wallet", None).await.unwrap();
    assert_eq!(wallet.health, Health::Healthy);
    let e = n.service.uninstall("chain", false, None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::HasDependants);
    let e = n.service.stop("chain").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::HasDependants);
    let stopped = n.service.stop("wallet").await.unwrap();
    assert_eq!(stopped.health, Health::Stopped);
    n.service.uninstall("wallet", false, None).await.unwrap();
    n.service.uninstall("chain", false, None).await.unwrap();
    assert!(n.service.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn uninstall_removes_everything_or_keeps_the_data_when_asked() {
    let n = Node::new();
    n.service.install("chain", None).await.unwrap();
    let secret = n.layout.secret_file("chain", "rpc-password");
    let first = std::fs::read_to_string(&secret).unwrap();
    assert!(n.layout.app_data_dir("chain").join("conf").is_dir());

    let kept = n.service.uninstall("chain", true, None).await.unwrap();
    assert!(kept.kept_data);
    assert!(secret.exists() && n.layout.app_data_dir("chain").exists());
    assert!(
        !n.fake
            .mutations()
            .contains(&Call::RemoveVolume("chain_data".into()))
    );

    // Reinstalled, it finds its secret again.
    n.service.install("chain", None).await.unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), first);

    let gone = n.service.uninstall("chain", false, None).await.unwrap();
    assert!(
        gone.removed.iter().any(|r| r == "volume chain_data"),
        "{:?}",
        gone.removed
    );
    assert!(gone.removed.iter().any(|r| r == "generated secrets"));
    assert!(!secret.exists() && !n.layout.app_data_dir("chain").exists());
    let e = n.service.uninstall("chain", false, None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::AppNotInstalled);

    // Installed anew: a fresh secret.
    n.service.install("chain", None).await.unwrap();
    assert_ne!(std::fs::read_to_string(&secret).unwrap(), first);
}

#[tokio::test]
async fn an_interrupted_uninstall_is_finished_by_the_next_pass() {
    let n = Node::new();
    n.service.install("chain", None).await.unwrap();
    // A daemon killed right after recording the removal.
    let mut state = n.service.state().unwrap();
    state.apps.remove("chain");
    state.removing.insert(
        "chain".into(),
        archipelagod::state::Removal { keep_data: false },
    );
    archipelagod::state::StateStore::new(n.layout.state_file())
        .save(&state)
        .unwrap();
    assert!(n.service.refresh());
    n.service.pass().await.unwrap();
    let state = n.service.state().unwrap();
    assert!(state.removing.is_empty() && state.apps.is_empty());
    assert!(!n.layout.app_secrets_dir("chain").exists());
    assert!(n.fake.container("chain_node").is_none());
}

#[tokio::test]
async fn two_installs_of_one_app_make_one_install() {
    let n = Node::new();
    let (a, b) = tokio::join!(
        n.service.install("hello", None),
        n.service.install("hello", None)
    );
    assert_eq!(a.unwrap().health, Health::Healthy);
    assert_eq!(b.unwrap().health, Health::Healthy);
    let pulls = n
        .fake
        .mutations()
        .iter()
        .filter(|c| matches!(c, Call::Pull(_)))
        .count();
    assert_eq!(pulls, 1);
}

#[tokio::test]
async fn stop_start_and_restart_go_through_the_state() {
    let n = Node::new();
    n.service.install("hello", None).await.unwrap();
    let s = n.service.stop("hello").await.unwrap();
    assert_eq!((s.run, s.health), (RunState::Stopped, Health::Stopped));
    assert_eq!(
        n.service.state().unwrap().apps["hello"].run,
        RunState::Stopped
    );
    let e = n.service.restart("hello").await.unwrap_err();
    assert!(e.message.contains("start it"), "{}", e.message);
    let s = n.service.start("hello").await.unwrap();
    assert_eq!(s.health, Health::Healthy);
    n.fake.clear_calls();
    n.service.restart("hello").await.unwrap();
    assert_eq!(
        n.fake.mutations(),
        [Call::Restart("hello_web.service".into())]
    );
}

#[tokio::test]
async fn a_capability_is_satisfied_by_the_app_that_provides_it() {
    let n = Node::new();
    let e = n.service.install("any-wallet", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::MissingDependency);
    assert!(
        e.message.contains("an app that provides chain-node"),
        "{}",
        e.message
    );
    n.service.install("other-chain", None).await.unwrap();
    let s = n.service.install("any-wallet", None).await.unwrap();
    assert_eq!(s.health, Health::Healthy);
    // Installed bound to the provider: its manifest names the app.
    let installed = std::fs::read_to_string(n.layout.installed_manifest("any-wallet")).unwrap();
    assert!(installed.contains("app: other-chain"), "{installed}");
    assert!(!installed.contains("capability:"), "{installed}");
    let env = std::fs::read_to_string(n.layout.env_file("any-wallet", "app")).unwrap();
    let pw = std::fs::read_to_string(n.layout.secret_file("other-chain", "rpc-password")).unwrap();
    assert_eq!(env, format!("RPC_PASSWORD={pw}\n"));
    let e = n
        .service
        .uninstall("other-chain", false, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::HasDependants);
}

#[tokio::test]
async fn the_catalog_lists_every_verified_catalog_with_its_source() {
    let n = Node::new();
    let list = n.service.catalog();
    let names: Vec<(&str, bool, u32, bool)> = list
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.official, s.apps, s.error.is_none()))
        .collect();
    assert_eq!(
        names,
        [("archipelago", true, 10, true), ("test", false, 5, true)],
        "{:?}",
        list.sources
    );
    let hello = list.apps.iter().find(|a| a.id == "hello").unwrap();
    assert_eq!(hello.source, "test");
    assert!(!hello.has_icon);
    let lnd = list.apps.iter().find(|a| a.id == "lnd").unwrap();
    assert_eq!(lnd.source, "archipelago");
    assert!(lnd.has_icon);
    assert_eq!(list.apps.len(), 15);
    let icon = n.service.icon("lnd").unwrap();
    assert_eq!(icon.media_type, "image/png");
    assert!(
        icon.data_base64.starts_with("iVBORw0KGgo"),
        "PNG magic, base64"
    );
    let e = n.service.icon("hello").unwrap_err();
    assert_eq!(e.code, ErrorCode::NotInCatalog);

    // Installed apps carry their catalog's name.
    n.service.install("hello", None).await.unwrap();
    assert_eq!(n.service.status("hello").await.unwrap().source, "test");
}

#[tokio::test]
async fn a_tampered_catalog_is_refused_and_installs_nothing() {
    let n = Node::new();
    let catalog = n.home.path().join("community/catalog/catalog.json");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::write(&catalog, text.replace("hello for tests", "hello, improved")).unwrap();

    let list = n.service.catalog();
    let source = list.sources.iter().find(|s| s.name == "test").unwrap();
    let error = source.error.as_deref().unwrap();
    assert!(error.contains("does not verify"), "{error}");
    assert_eq!(source.apps, 0);
    assert!(list.apps.iter().all(|a| a.source == "archipelago"));

    let e = n.service.install("hello", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::CatalogUntrusted);
    assert!(
        e.message.contains("catalog `test` was refused") && e.message.contains("does not verify"),
        "{}",
        e.message
    );
    assert!(n.fake.mutations().is_empty(), "{:?}", n.fake.mutations());
    assert!(!n.layout.state_file().exists());
}

#[tokio::test]
async fn a_tampered_manifest_is_refused_and_installs_nothing() {
    let n = Node::new();
    let manifest = n.home.path().join("community/apps/hello/manifest.yml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("8080", "8081")).unwrap();

    let e = n.service.install("hello", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::CatalogUntrusted);
    assert!(
        e.message.contains("catalog `test`")
            && e.message.contains("apps/hello/manifest.yml has SHA-256")
            && e.message.contains("changed after the catalog was signed"),
        "{}",
        e.message
    );
    assert!(n.fake.mutations().is_empty(), "{:?}", n.fake.mutations());
    assert!(!n.layout.state_file().exists());
    // The marketplace leaves the app out and still shows the others.
    let list = n.service.catalog();
    assert!(list.apps.iter().all(|a| a.id != "hello"));
    assert!(list.apps.iter().any(|a| a.id == "chain"));
}

const DIGEST2: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// The chain at version `version`, running image tag `tag` (digest 2).
fn chain_at(version: &str, tag: &str) -> String {
    chain()
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace(
            &format!("chain:1@{DIGEST}"),
            &format!("chain:{tag}@{DIGEST2}"),
        )
}

fn chain_image(tag: &str, digest: &str) -> String {
    format!("10.99.0.1:5000/chain:{tag}@{digest}")
}

/// Installs the chain with a file in its data folder and one in its volume;
/// returns their paths.
async fn chain_with_data(n: &Node) -> (std::path::PathBuf, std::path::PathBuf) {
    use archipelagod::podman::PodmanApi as _;
    n.service.install("chain", None).await.unwrap();
    let conf = n.layout.app_data_dir("chain").join("conf/chain.conf");
    std::fs::write(&conf, "height=1\n").unwrap();
    let volume = n.fake.create_volume("chain_data", "chain").await.unwrap();
    let block = volume.join("blocks.dat");
    std::fs::write(&block, "blocks 1\n").unwrap();
    (conf, block)
}

#[tokio::test]
async fn an_update_snapshots_switches_and_keeps_the_previous_images() {
    let n = Node::new();
    let (conf, _) = chain_with_data(&n).await;
    let secret = std::fs::read(n.layout.secret_file("chain", "rpc-password")).unwrap();
    assert_eq!(
        n.service.status("chain").await.unwrap().update_available,
        None
    );

    n.publish(&[("chain", chain_at("1.1.0", "2"))]);
    let status = n.service.status("chain").await.unwrap();
    assert_eq!(status.update_available.as_deref(), Some("1.1.0"));
    assert!(
        n.service
            .catalog()
            .apps
            .iter()
            .any(|a| a.id == "chain" && a.update_available)
    );

    n.fake.clear_calls();
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let r = n.service.update("chain", Some(&tx)).await.unwrap();
    assert_eq!(
        (r.from_version.as_str(), r.to_version.as_str()),
        ("1.0.0", "1.1.0")
    );
    assert!(r.data_snapshot);
    assert_eq!(r.status.health, Health::Healthy);
    assert_eq!(r.status.update_available, None);
    let seen = phases(&mut rx);
    for p in [
        Phase::Pulling,
        Phase::Snapshotting,
        Phase::Switching,
        Phase::Starting,
        Phase::Healthy,
        Phase::Done,
    ] {
        assert!(seen.contains(&p), "{p:?} missing from {seen:?}");
    }
    // The old version was stopped before its data was copied.
    assert!(
        n.fake
            .calls()
            .contains(&Call::Stop("chain_node.service".into()))
    );
    assert!(n.fake.has_image(&chain_image("2", DIGEST2)));
    let state = n.service.state().unwrap();
    let app = &state.apps["chain"];
    assert_eq!(app.version, "1.1.0");
    assert_eq!(app.manifest, n.layout.installed_manifest("chain"));
    assert!(app.update.is_none());
    assert_eq!(app.previous_images, [chain_image("1", DIGEST)]);
    assert!(!n.layout.next_manifest("chain").exists());
    assert!(!n.layout.snapshot("chain").exists());
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "height=1\n");
    assert_eq!(
        std::fs::read(n.layout.secret_file("chain", "rpc-password")).unwrap(),
        secret
    );

    // Nothing new: an update is a no-op.
    let again = n.service.update("chain", None).await.unwrap();
    assert_eq!(again.from_version, again.to_version);

    // The next update removes the image two versions old, keeps the last.
    let v3 = chain_at("1.2.0", "3").replace(DIGEST2, DIGEST);
    n.publish(&[("chain", v3)]);
    n.fake.clear_calls();
    n.service.update("chain", None).await.unwrap();
    assert!(
        n.fake
            .calls()
            .contains(&Call::RemoveImage(chain_image("1", DIGEST)))
    );
    assert_eq!(
        n.service.state().unwrap().apps["chain"].previous_images,
        [chain_image("2", DIGEST2)]
    );
}

#[tokio::test]
async fn a_new_version_that_fails_is_rolled_back_with_its_data() {
    let n = Node::new();
    let (conf, block) = chain_with_data(&n).await;
    n.service.install("wallet", None).await.unwrap();
    n.publish(&[("chain", chain_at("2.0.0", "2"))]);
    let broken = chain_image("2", DIGEST2);
    // The new version rewrites its data, then fails.
    n.fake
        .write_on_start(&broken, &conf, b"height=999 (migrated)\n");
    n.fake.write_on_start(&broken, &block, b"new format\n");
    n.fake.fail_image(&broken);
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let e = n.service.update("chain", Some(&tx)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UpdateRolledBack, "{}", e.message);
    assert!(
        e.message.contains("2.0.0") && e.message.contains("chain_node.service"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("boom: cannot open /data"),
        "the last log lines: {}",
        e.message
    );
    assert!(e.message.contains("Rolled back"), "{}", e.message);
    assert!(phases(&mut rx).contains(&Phase::RollingBack));

    let status = n.service.status("chain").await.unwrap();
    assert_eq!(status.health, Health::Healthy);
    assert_eq!(status.version, "1.0.0");
    assert_eq!(status.update_available.as_deref(), Some("2.0.0"));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "height=1\n");
    assert_eq!(std::fs::read_to_string(&block).unwrap(), "blocks 1\n");
    assert_eq!(
        n.service.status("wallet").await.unwrap().health,
        Health::Healthy
    );
    let state = n.service.state().unwrap();
    assert!(state.apps["chain"].update.is_none());
    assert_eq!(
        state.apps["chain"].manifest,
        n.layout.installed_manifest("chain")
    );
    assert!(!n.layout.next_manifest("chain").exists());
    assert!(!n.layout.snapshot("chain").exists());
}

#[tokio::test]
async fn an_update_a_daemon_died_in_is_rolled_back_at_the_next_pass() {
    let n = Node::new();
    let (conf, _) = chain_with_data(&n).await;
    n.publish(&[("chain", chain_at("2.0.0", "2"))]);
    let broken = chain_image("2", DIGEST2);
    n.fake.fail_image(&broken);
    n.fake.write_on_start(&broken, &conf, b"changed\n");
    // Die at the switch: the state points at the new manifest, the
    // snapshot is on disk, the update is recorded as pending.
    let e = n.service.update("chain", None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::UpdateRolledBack);
    // Replay the crash by hand: what the daemon would find after dying
    // right after the switch.
    std::fs::write(&conf, "height=1\n").unwrap();
    let snapshot_src = n.layout.snapshot("chain");
    std::fs::create_dir_all(snapshot_src.parent().unwrap()).unwrap();
    {
        use archipelagod::podman::PodmanApi as _;
        let entries = archipelagod::backup::app_entries(
            &n.layout.app_secrets_dir("chain"),
            &n.layout.app_data_dir("chain"),
            &[(
                "data".into(),
                n.fake
                    .volume_mountpoint("chain_data")
                    .await
                    .unwrap()
                    .unwrap(),
            )],
        );
        archipelagod::backup::write_snapshot(
            &archipelagod::datatool::InProcess,
            &entries,
            &snapshot_src,
        )
        .unwrap();
    }
    let mut state = n.service.state().unwrap();
    let app = state.apps.get_mut("chain").unwrap();
    std::fs::copy(&app.manifest, n.layout.next_manifest("chain")).unwrap();
    let next_text = std::fs::read_to_string(n.layout.next_manifest("chain")).unwrap();
    std::fs::write(
        n.layout.next_manifest("chain"),
        next_text
            .replace("version: 1.0.0", "version: 2.0.0")
            .replace(&format!("chain:1@{DIGEST}"), &format!("chain:2@{DIGEST2}")),
    )
    .unwrap();
    app.update = Some(archipelagod::state::PendingUpdate {
        from_version: "1.0.0".into(),
        from_manifest: app.manifest.clone(),
        snapshot: Some(snapshot_src.clone()),
    });
    app.manifest = n.layout.next_manifest("chain");
    app.version = "2.0.0".into();
    archipelagod::state::StateStore::new(n.layout.state_file())
        .save(&state)
        .unwrap();
    std::fs::write(&conf, "changed by 2.0.0\n").unwrap();
    n.service.refresh();

    n.service.pass().await.unwrap();
    let status = n.service.status("chain").await.unwrap();
    assert_eq!(
        (status.version.as_str(), status.health),
        ("1.0.0", Health::Healthy)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "height=1\n");
    assert!(n.service.state().unwrap().apps["chain"].update.is_none());
    assert!(!snapshot_src.exists() && !n.layout.next_manifest("chain").exists());
}

#[tokio::test]
async fn a_backup_restores_data_and_secrets_after_an_uninstall() {
    let n = Node::new();
    let (conf, block) = chain_with_data(&n).await;
    let secret = std::fs::read(n.layout.secret_file("chain", "rpc-password")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let params = archipelago_api::methods::BackupParams {
        id: "chain".into(),
        passphrase: Some("correct horse battery".into()),
        recipient: None,
        target: None,
    };
    let b = n.service.backup(&params, Some(&tx)).await.unwrap();
    assert!(phases(&mut rx).contains(&Phase::Archiving));
    assert!(
        b.name.starts_with("chain-1.0.0-") && b.bytes > 0 && b.sha256.len() == 64,
        "{b:?}"
    );
    assert_eq!(
        n.service.status("chain").await.unwrap().health,
        Health::Healthy
    );
    assert_eq!(
        n.service.status("chain").await.unwrap().last_backup,
        Some(b.created)
    );
    let listed = n.service.backups(Some("chain")).unwrap();
    assert_eq!(listed, std::slice::from_ref(&b));
    // Nothing of the backup's work is left around.
    assert_eq!(std::fs::read_dir(&n.layout.staging_dir).unwrap().count(), 0);

    n.service.uninstall("chain", false, None).await.unwrap();
    assert!(!conf.exists() && !n.layout.app_secrets_dir("chain").exists());

    let restore = |passphrase: &str| archipelago_api::methods::RestoreParams {
        backup: b.name.clone(),
        passphrase: Some(passphrase.into()),
        identity: None,
    };
    let wrong = n
        .service
        .restore(&restore("wrong horse battery"), None)
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::BadPassphrase, "{}", wrong.message);
    assert!(n.service.state().unwrap().apps.is_empty() && !conf.exists());
    assert_eq!(std::fs::read_dir(&n.layout.staging_dir).unwrap().count(), 0);

    let status = n
        .service
        .restore(&restore("correct horse battery"), None)
        .await
        .unwrap();
    assert_eq!(
        (status.version.as_str(), status.health),
        ("1.0.0", Health::Healthy)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "height=1\n");
    assert_eq!(std::fs::read_to_string(&block).unwrap(), "blocks 1\n");
    assert_eq!(
        std::fs::read(n.layout.secret_file("chain", "rpc-password")).unwrap(),
        secret
    );
    assert_eq!(std::fs::read_dir(&n.layout.staging_dir).unwrap().count(), 0);

    let twice = n
        .service
        .restore(&restore("correct horse battery"), None)
        .await
        .unwrap_err();
    assert_eq!(twice.code, ErrorCode::AlreadyInstalled);
}

#[tokio::test]
async fn backups_travel_in_pieces_and_arrive_checked() {
    use archipelago_api::methods::{BACKUP_CHUNK_BYTES, BackupChunkParams, BackupUploadParams};
    use base64::Engine as _;
    let n = Node::new();
    chain_with_data(&n).await;
    let volume = n.fake.volume_dir("chain_data");
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(volume.join("big"), &big).unwrap();
    let params = archipelago_api::methods::BackupParams {
        id: "chain".into(),
        passphrase: Some("correct horse battery".into()),
        recipient: None,
        target: None,
    };
    let b = n.service.backup(&params, None).await.unwrap();
    let mut copy = Vec::new();
    loop {
        let piece = n
            .service
            .download(&BackupChunkParams {
                name: b.name.clone(),
                offset: copy.len() as u64,
            })
            .unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(piece.data_base64)
            .unwrap();
        assert!(data.len() <= BACKUP_CHUNK_BYTES);
        copy.extend(data);
        if piece.eof {
            break;
        }
    }
    assert_eq!(copy.len() as u64, b.bytes);
    assert_eq!(archipelagod::backup::sha256_hex(&copy), b.sha256);

    // Sent back under another name, with a piece repeated (a resume).
    let name = "chain-1.0.0-20200101T000000Z.archy-backup";
    let send = |offset: usize, last: bool| {
        let end = (offset + BACKUP_CHUNK_BYTES).min(copy.len());
        n.service.upload(&BackupUploadParams {
            name: name.into(),
            offset: offset as u64,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&copy[offset..end]),
            sha256: last.then(|| b.sha256.clone()),
        })
    };
    assert_eq!(send(0, false).unwrap().received, BACKUP_CHUNK_BYTES as u64);
    assert_eq!(
        send(0, false).unwrap().received,
        BACKUP_CHUNK_BYTES as u64,
        "a repeated piece is not taken twice"
    );
    let mut at = BACKUP_CHUNK_BYTES;
    let done = loop {
        let last = at + BACKUP_CHUNK_BYTES >= copy.len();
        let r = send(at, last).unwrap();
        at = usize::try_from(r.received).unwrap();
        if let Some(done) = r.done {
            break done;
        }
    };
    assert_eq!(
        (done.bytes, done.sha256.as_str()),
        (b.bytes, b.sha256.as_str())
    );
    assert_eq!(n.service.backups(Some("chain")).unwrap().len(), 2);
    // A name that is a path is refused; a deleted backup is gone.
    let e = n
        .service
        .download(&BackupChunkParams {
            name: "../state.json".into(),
            offset: 0,
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    n.service.delete_backup(name).unwrap();
    assert_eq!(
        n.service.delete_backup(name).unwrap_err().code,
        ErrorCode::BackupNotFound
    );
}

#[tokio::test]
async fn settings_are_checked_and_kept() {
    use archipelago_api::methods::{AppSettings, BackupSchedule, SettingsParams};
    let n = Node::new();
    n.service.install("hello", None).await.unwrap();
    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let good = AppSettings {
        auto_update_hours: 24,
        backup_schedule: Some(BackupSchedule {
            every_hours: 12,
            recipient: recipient.into(),
            keep: 3,
        }),
        backup_max_age_hours: 48,
    };
    let s = n
        .service
        .set_settings(&SettingsParams {
            id: "hello".into(),
            settings: good.clone(),
        })
        .await
        .unwrap();
    assert_eq!(s.settings, good);
    assert!(s.backup_overdue, "no backup yet, limit 48 h");
    for bad in [
        AppSettings {
            backup_schedule: Some(BackupSchedule {
                every_hours: 0,
                recipient: recipient.into(),
                keep: 3,
            }),
            ..good.clone()
        },
        AppSettings {
            backup_schedule: Some(BackupSchedule {
                every_hours: 1,
                recipient: "age1nope".into(),
                keep: 3,
            }),
            ..good.clone()
        },
        AppSettings {
            backup_schedule: Some(BackupSchedule {
                every_hours: 1,
                recipient: recipient.into(),
                keep: 0,
            }),
            ..good.clone()
        },
    ] {
        let e = n
            .service
            .set_settings(&SettingsParams {
                id: "hello".into(),
                settings: bad,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParams, "{}", e.message);
    }
    assert_eq!(n.service.state().unwrap().apps["hello"].settings, good);
}

#[tokio::test]
async fn an_app_with_a_pre_backup_command_is_backed_up_while_it_runs() {
    use archipelagod::podman::ExecOutcome;
    let n = Node::new();
    let dumping = format!(
        "{}backup:\n  container: node\n  pre: [\"dump\", \"--to\", \"/conf/dump.sql\"]\n",
        chain()
    );
    n.publish(&[("chain", dumping)]);
    n.service.install("chain", None).await.unwrap();
    let params = archipelago_api::methods::BackupParams {
        id: "chain".into(),
        passphrase: Some("correct horse battery".into()),
        recipient: None,
        target: None,
    };
    n.fake.clear_calls();
    n.service.backup(&params, None).await.unwrap();
    let calls = n.fake.calls();
    assert!(calls.contains(&Call::Exec(
        "chain_node".into(),
        vec!["dump".into(), "--to".into(), "/conf/dump.sql".into()]
    )));
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Stop(_) | Call::Restart(_))),
        "the app was stopped: {calls:?}"
    );

    // A command that fails: no backup, the app untouched.
    n.fake.set_exec(
        "chain_node",
        ExecOutcome {
            exit_code: 3,
            output: vec![archipelagod::podman::LogLine {
                stream: archipelagod::podman::LogStream::Stderr,
                text: "dump: database locked".into(),
            }],
        },
    );
    let before = n.service.backups(None).unwrap().len();
    let e = n.service.backup(&params, None).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BackupFailed);
    assert!(
        e.message.contains("exited with 3") && e.message.contains("database locked"),
        "{}",
        e.message
    );
    assert_eq!(n.service.backups(None).unwrap().len(), before);
    assert_eq!(
        n.service.status("chain").await.unwrap().health,
        Health::Healthy
    );
}

#[tokio::test]
async fn the_schedule_updates_and_backs_up_what_is_due() {
    use archipelago_api::methods::{AppSettings, BackupSchedule, SettingsParams};
    let n = Node::new();
    chain_with_data(&n).await;
    let recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let settings = AppSettings {
        auto_update_hours: 24,
        backup_schedule: Some(BackupSchedule {
            every_hours: 24,
            recipient: recipient.into(),
            keep: 2,
        }),
        backup_max_age_hours: 0,
    };
    n.service
        .set_settings(&SettingsParams {
            id: "chain".into(),
            settings,
        })
        .await
        .unwrap();

    // Nothing offered yet: a backup is due (there is none), no update.
    n.service.scheduled().await;
    assert_eq!(n.service.backups(Some("chain")).unwrap().len(), 1);
    assert_eq!(n.service.status("chain").await.unwrap().version, "1.0.0");

    // An update is offered: the first look takes it; the backup is not due.
    n.publish(&[("chain", chain_at("1.1.0", "2"))]);
    n.service.scheduled().await;
    let status = n.service.status("chain").await.unwrap();
    assert_eq!(
        (status.version.as_str(), status.health),
        ("1.1.0", Health::Healthy)
    );
    assert_eq!(n.service.backups(Some("chain")).unwrap().len(), 1);

    // Another version at once: not looked for again before 24 h.
    n.publish(&[("chain", chain_at("1.2.0", "3"))]);
    n.service.scheduled().await;
    assert_eq!(n.service.status("chain").await.unwrap().version, "1.1.0");
}
