//! Web catalogs, fetched from a small HTTP server on loopback: a signed
//! catalog lands in the cache and verifies; a tampered catalog is refused
//! before any file it names is fetched; a tampered manifest is refused; a
//! refused fetch keeps the previous copy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use archipelago_catalog::sign::{SigningKey, sign_catalog, write_catalog};
use archipelago_catalog::{CatalogEntry, CatalogFile, FORMAT, SignedCatalog, TrustedKey};
use archipelagod::catalog_fetch::{FetchError, fetch};
use archipelagod::catalogs::{CatalogsConfig, CommunityCatalog, open_all};
use archipelagod::layout::Layout;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the files under `root`, with `overrides` (path → body) taking
/// precedence; records every path asked for.
struct Server {
    base: String,
    asked: Arc<Mutex<Vec<String>>>,
    overrides: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

async fn serve(root: PathBuf) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/pub", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let overrides = Arc::new(Mutex::new(BTreeMap::<String, Vec<u8>>::new()));
    let (log, served) = (Arc::clone(&asked), Arc::clone(&overrides));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let len = stream.read(&mut buf).await.unwrap();
            let head = String::from_utf8_lossy(&buf[..len]).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let rel = path.trim_start_matches("/pub/").to_owned();
            log.lock().unwrap().push(rel.clone());
            let body = served
                .lock()
                .unwrap()
                .get(&rel)
                .cloned()
                .or_else(|| std::fs::read(root.join(&rel)).ok());
            let reply = match body {
                Some(bytes) => {
                    let mut reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .into_bytes();
                    reply.extend(bytes);
                    reply
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&reply).await;
        }
    });
    Server {
        base,
        asked,
        overrides,
    }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-an-icon";

fn publish(root: &Path) -> String {
    let mut file = CatalogFile {
        format: FORMAT,
        apps: Vec::new(),
    };
    for id in ["alpha", "beta"] {
        let manifest = format!("apps/{id}/manifest.yml");
        std::fs::create_dir_all(root.join(format!("apps/{id}"))).unwrap();
        std::fs::write(root.join(&manifest), format!("id: {id}\n")).unwrap();
        file.apps.push(CatalogEntry {
            id: id.into(),
            name: id.into(),
            short_description: format!("{id} app"),
            description: format!("The {id} app."),
            category: "files".into(),
            icon: Some(format!("icons/{id}.png")),
            icon_sha256: Some(String::new()),
            version: "1".into(),
            manifest,
            manifest_sha256: String::new(),
            upstream: vec![],
        });
    }
    std::fs::create_dir_all(root.join("icons")).unwrap();
    std::fs::write(root.join("icons/alpha.png"), PNG).unwrap();
    std::fs::write(root.join("icons/beta.png"), PNG).unwrap();
    write_catalog(root, &file).unwrap();
    let pair = SigningKey::generate("web catalog").unwrap();
    sign_catalog(root, &SigningKey::parse(&pair.secret).unwrap(), "web").unwrap();
    pair.public
}

#[tokio::test]
async fn a_web_catalog_is_fetched_verified_and_kept_when_a_later_copy_is_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let published = dir.path().join("published");
    let public = publish(&published);
    let key = TrustedKey::parse(&public).unwrap();
    let server = serve(published.clone()).await;
    let layout = Layout::under_home(&dir.path().join("home"));
    let cache = layout.catalog_cache_dir.join("web");

    // First fetch: everything lands and verifies; added like a folder.
    assert_eq!(fetch(&server.base, &key, &cache).await.unwrap(), 2);
    let cached = SignedCatalog::open(&cache, &key).unwrap();
    let alpha = cached.entry("alpha").unwrap();
    assert_eq!(cached.manifest(alpha).unwrap(), b"id: alpha\n");
    let mut config = CatalogsConfig::default();
    config
        .add(
            CommunityCatalog {
                name: "web".into(),
                location: server.base.clone(),
                public_key: public.clone(),
            },
            &layout,
        )
        .unwrap();
    config.save(&layout.catalogs_config()).unwrap();
    let sources = open_all(&layout);
    let web = sources.iter().find(|s| s.name == "web").unwrap();
    assert!(web.catalog.is_ok(), "{:?}", web.catalog);

    // The catalog changed on the server after signing: refused before any
    // manifest is asked for, and the cached copy is untouched.
    let text = std::fs::read_to_string(published.join("catalog/catalog.json")).unwrap();
    server.overrides.lock().unwrap().insert(
        "catalog/catalog.json".into(),
        text.replace("The alpha app.", "The alpha app, now evil.")
            .into_bytes(),
    );
    server.asked.lock().unwrap().clear();
    let e = fetch(&server.base, &key, &cache).await.unwrap_err();
    assert!(matches!(e, FetchError::Untrusted(_)), "{e}");
    assert!(e.to_string().contains("does not verify"), "{e}");
    assert_eq!(
        *server.asked.lock().unwrap(),
        ["catalog/catalog.json", "catalog/catalog.json.minisig"]
    );
    SignedCatalog::open(&cache, &key).unwrap();

    // A manifest changed on the server: refused, cache untouched.
    server.overrides.lock().unwrap().clear();
    server.overrides.lock().unwrap().insert(
        "apps/beta/manifest.yml".into(),
        b"id: beta\nevil: 1\n".to_vec(),
    );
    let e = fetch(&server.base, &key, &cache).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("changed after the catalog was signed"),
        "{e}"
    );
    let cached = SignedCatalog::open(&cache, &key).unwrap();
    cached.manifest(cached.entry("beta").unwrap()).unwrap();
    // No staging folder is left behind.
    let left: Vec<_> = std::fs::read_dir(&layout.catalog_cache_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["web"]);

    // A server without the catalog.
    let e = fetch(
        &format!("{}/missing", server.base),
        &key,
        &dir.path().join("x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e}");
}
