//! Pillar 4 on a real node: an app is data. A brand-new app that exists only
//! as a folder in `apps/` plus a line in `catalog/catalog.json` — no Rust
//! change — is signed with the release script (a throwaway key), added to a
//! node as a community catalog, installs and serves its page. The official
//! catalog the `.deb` ships verifies on the node with the key compiled into
//! the daemon. A catalog or manifest changed after signing is refused by the
//! node, and nothing gets installed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::Path;

use archipelago_api::ErrorCode;
use archipelago_api::methods::{AppParams, CatalogList, Empty, Health, PackageStatusMethod};
use archipelago_catalog::sign::SigningKey;
use archipelago_client::ClientError;
use archipelago_harness::catalog::{node_location, publish_dir};
use archipelago_harness::node::{Node, RunAs};
use archipelago_harness::testing::repo_root;
use archipelago_lifecycle::{Lab, REGISTRY};

/// The new app, written as a person would write it: only YAML.
fn greeter_manifest(image: &str) -> String {
    r#"# A new app added as data only: this folder and a catalog line.
id: greeter
name: Greeter
version: 0.1.0
description: Greets whoever opens its page.
category: utilities
containers:
  - name: web
    image: IMAGE
    command: ["httpd", "-f", "-p", "9090", "-h", "/www"]
    ports:
      - container: 9090
        host: 9090
    health:
      command: ["wget", "-q", "-O-", "http://127.0.0.1:9090/"]
      interval: 2s
      timeout: 2s
      retries: 3
ui:
  port: 9090
  path: /
"#
    .replace("IMAGE", image)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// A copy of the repository's catalog (catalog/, apps/, icons/) with the
/// new app's folder and catalog line, signed by `release/sign-catalog.sh`.
fn repository_with_new_app(dir: &Path, image: &str) -> String {
    let repo = repo_root();
    std::fs::create_dir_all(dir.join("catalog")).unwrap();
    std::fs::copy(
        repo.join("catalog/catalog.json"),
        dir.join("catalog/catalog.json"),
    )
    .unwrap();
    copy_dir(&repo.join("apps"), &dir.join("apps"));
    copy_dir(&repo.join("icons"), &dir.join("icons"));

    // The whole change: a folder in apps/ (and its icon) ...
    std::fs::create_dir_all(dir.join("apps/greeter")).unwrap();
    std::fs::write(
        dir.join("apps/greeter/manifest.yml"),
        greeter_manifest(image),
    )
    .unwrap();
    std::fs::copy(
        repo.join("icons/filebrowser.png"),
        dir.join("icons/greeter.png"),
    )
    .unwrap();
    // ... and a line in the catalog (digests are filled in when signing).
    let path = dir.join("catalog/catalog.json");
    let mut catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    catalog["apps"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "greeter",
            "name": "Greeter",
            "short_description": "Says hello",
            "description": "Greets whoever opens its page.",
            "category": "utilities",
            "icon": "icons/greeter.png",
            "icon_sha256": "",
            "version": "0.1.0",
            "manifest": "apps/greeter/manifest.yml",
            "manifest_sha256": "",
            "upstream": ["https://example.org/greeter"]
        }));
    std::fs::write(&path, serde_json::to_vec_pretty(&catalog).unwrap()).unwrap();

    // Signed by the release script, with a key made for this run.
    let pair = SigningKey::generate("throwaway community key").unwrap();
    let keys = dir.parent().unwrap();
    std::fs::write(keys.join("community.key"), &pair.secret).unwrap();
    std::fs::write(keys.join("community.pub"), &pair.public).unwrap();
    let out = std::process::Command::new("bash")
        .arg(repo.join("release/sign-catalog.sh"))
        .args(["--root", &dir.to_string_lossy()])
        .args([
            "--public-key",
            &keys.join("community.pub").to_string_lossy(),
        ])
        .args([
            "--secret-key-file",
            &keys.join("community.key").to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "release/sign-catalog.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pair.public
}

#[test]
fn a_new_app_is_a_folder_and_a_catalog_line_and_tampering_is_refused() {
    let _one = archipelago_harness::testing::serial();
    let lab = Lab::start().unwrap();
    let hello = lab.images.iter().find(|i| i.name == "hello-web").unwrap();
    let root = lab.net.dir().join("community-keys/community");
    let public = repository_with_new_app(&root, &hello.reference(REGISTRY));
    publish_dir(&*lab.node(), &root, "community", &public).unwrap();

    lab.block_on(async {
        let api = lab.api().await.unwrap();
        let list = api.client.call::<CatalogList>(Empty {}).await.unwrap();
        let official = &list.sources[0];
        assert_eq!(
            (official.name.as_str(), official.official, official.apps),
            ("archipelago", true, 10),
            "the .deb's official catalog verifies on the node: {official:?}"
        );
        let community = list.sources.iter().find(|s| s.name == "community").unwrap();
        assert!(community.error.is_none(), "{community:?}");
        let Some(greeter) = list.apps.iter().find(|a| a.id == "greeter") else {
            let log = lab.daemon_log();
            let why: Vec<&str> = log.lines().filter(|l| l.contains("catalog")).collect();
            panic!(
                "greeter is not in the catalog: {list:?}\n{}",
                why.join("\n")
            );
        };
        assert_eq!(greeter.source, "community");
        assert!(greeter.has_icon);

        let (_, status) = api.install("greeter").await.unwrap();
        assert_eq!(status.health, Health::Healthy, "{status:?}");
        assert_eq!(status.source, "community");
    })
    .unwrap();
    let (code, body) = lab.net.http_get(lab.node().port(9090), "/").unwrap();
    assert_eq!(code, 200, "{body}");
    eprintln!("figure: greeter, a data-only app, installed and served its page");

    // A manifest changed on the node after signing: refused, nothing done.
    let dest = node_location("community");
    let node_manifest = format!("{dest}/apps/greeter/manifest.yml");
    let tampered = greeter_manifest(&hello.reference(REGISTRY)).replace("9090", "9091");
    lab.node()
        .copy_in(
            tampered.as_bytes(),
            &node_manifest,
            RunAs::ServiceUser,
            0o644,
        )
        .unwrap();
    lab.block_on(async {
        let api = lab.api().await.unwrap();
        api.uninstall("greeter", false).await.unwrap();
        let e = api.install("greeter").await.unwrap_err();
        let ClientError::Api(e) = e else {
            panic!("{e}")
        };
        assert_eq!(e.code, ErrorCode::CatalogUntrusted, "{}", e.message);
        assert!(
            e.message.contains("changed after the catalog was signed"),
            "{}",
            e.message
        );
        let gone = api
            .client
            .call::<PackageStatusMethod>(AppParams {
                id: "greeter".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(gone.code(), Some(ErrorCode::AppNotInstalled));
    })
    .unwrap();

    // The catalog itself changed after signing: the whole catalog refused.
    let node_catalog = format!("{dest}/catalog/catalog.json");
    let text = std::fs::read_to_string(root.join("catalog/catalog.json")).unwrap();
    lab.node()
        .copy_in(
            text.replace("Greets whoever", "Phones home for whoever")
                .as_bytes(),
            &node_catalog,
            RunAs::ServiceUser,
            0o644,
        )
        .unwrap();
    lab.block_on(async {
        let api = lab.api().await.unwrap();
        let list = api.client.call::<CatalogList>(Empty {}).await.unwrap();
        let community = list.sources.iter().find(|s| s.name == "community").unwrap();
        let error = community.error.as_deref().unwrap_or_default();
        assert!(error.contains("does not verify"), "{community:?}");
        assert!(list.apps.iter().all(|a| a.id != "greeter"));
        let e = api.install("greeter").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::CatalogUntrusted), "{e}");
    })
    .unwrap();
    let leftovers = archipelago_lifecycle::leftovers(&*lab.node(), "greeter").unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
