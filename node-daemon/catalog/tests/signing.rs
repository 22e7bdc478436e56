//! A catalog signed with a throwaway key verifies; any change to the
//! catalog, a manifest or an icon after signing is refused with an error
//! that says what changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use archipelago_catalog::sign::{SigningKey, sign_catalog, write_catalog};
use archipelago_catalog::{
    CatalogEntry, CatalogError, CatalogFile, FORMAT, SignedCatalog, TrustedKey,
};

/// The smallest valid PNG (1×1, transparent).
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, b'I', b'D', b'A', b'T',
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xae, 0x42, 0x60, 0x82,
];

fn entry(id: &str, icon: bool) -> CatalogEntry {
    CatalogEntry {
        id: id.into(),
        name: id.into(),
        short_description: format!("{id} app"),
        description: format!("The {id} app."),
        category: "files".into(),
        icon: icon.then(|| format!("icons/{id}.png")),
        icon_sha256: icon.then(String::new),
        version: "1.0".into(),
        manifest: format!("apps/{id}/manifest.yml"),
        manifest_sha256: String::new(),
        upstream: vec![],
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    trusted: TrustedKey,
}

impl Fixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn signed() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for id in ["hello", "other"] {
        std::fs::create_dir_all(root.join(format!("apps/{id}"))).unwrap();
        std::fs::write(
            root.join(format!("apps/{id}/manifest.yml")),
            format!("id: {id}\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join("icons")).unwrap();
    std::fs::write(root.join("icons/hello.png"), PNG).unwrap();
    write_catalog(
        root,
        &CatalogFile {
            format: FORMAT,
            apps: vec![entry("hello", true), entry("other", false)],
        },
    )
    .unwrap();
    let pair = SigningKey::generate("test key").unwrap();
    let key = SigningKey::parse(&pair.secret).unwrap();
    sign_catalog(root, &key, "test catalog").unwrap();
    let trusted = TrustedKey::parse(&pair.public).unwrap();
    Fixture { dir, key, trusted }
}

#[test]
fn a_signed_catalog_verifies_and_hands_out_its_files() {
    let f = signed();
    let c = SignedCatalog::open(f.root(), &f.trusted).unwrap();
    assert_eq!(c.trusted_comment(), "test catalog");
    let hello = c.entry("hello").unwrap();
    assert_eq!(c.manifest(hello).unwrap(), b"id: hello\n");
    assert_eq!(c.icon(hello).unwrap().unwrap(), PNG);
    assert_eq!(c.icon(c.entry("other").unwrap()).unwrap(), None);
    // The key line alone is accepted too.
    let line = TrustedKey::parse(f.trusted.to_base64()).unwrap();
    assert_eq!(line.id(), f.trusted.id());
    assert_eq!(f.key.public_base64(), f.trusted.to_base64());
}

#[test]
fn a_tampered_catalog_is_refused() {
    let f = signed();
    let path = f.root().join("catalog/catalog.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("The hello app.", "The hello app, now better."),
    )
    .unwrap();
    let e = SignedCatalog::open(f.root(), &f.trusted).unwrap_err();
    assert!(matches!(e, CatalogError::BadSignature { .. }), "{e:?}");
    assert!(e.to_string().contains("changed after it was signed"), "{e}");
}

#[test]
fn a_tampered_manifest_is_refused() {
    let f = signed();
    std::fs::write(
        f.root().join("apps/hello/manifest.yml"),
        "id: hello\nprivileged: true\n",
    )
    .unwrap();
    let c = SignedCatalog::open(f.root(), &f.trusted).unwrap();
    let e = c.manifest(c.entry("hello").unwrap()).unwrap_err();
    assert!(matches!(e, CatalogError::Digest { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("apps/hello/manifest.yml has SHA-256"),
        "{e}"
    );
    // The untouched app is still served.
    c.manifest(c.entry("other").unwrap()).unwrap();
}

#[test]
fn a_tampered_or_foreign_icon_is_refused() {
    let f = signed();
    let icon = f.root().join("icons/hello.png");
    let mut bytes = PNG.to_vec();
    bytes.push(0);
    std::fs::write(&icon, &bytes).unwrap();
    let c = SignedCatalog::open(f.root(), &f.trusted).unwrap();
    let e = c.icon(c.entry("hello").unwrap()).unwrap_err();
    assert!(matches!(e, CatalogError::Digest { .. }), "{e:?}");

    // Signed, but not a PNG: refused all the same.
    std::fs::write(&icon, b"<svg onload='x'/>").unwrap();
    sign_catalog(f.root(), &f.key, "resigned").unwrap();
    let c = SignedCatalog::open(f.root(), &f.trusted).unwrap();
    let e = c.icon(c.entry("hello").unwrap()).unwrap_err();
    assert!(matches!(e, CatalogError::NotPng { .. }), "{e:?}");

    // Signed, but too large.
    std::fs::write(&icon, vec![0u8; 64 * 1024 + 1]).unwrap();
    sign_catalog(f.root(), &f.key, "resigned").unwrap();
    let c = SignedCatalog::open(f.root(), &f.trusted).unwrap();
    let e = c.icon(c.entry("hello").unwrap()).unwrap_err();
    assert!(matches!(e, CatalogError::TooLarge { .. }), "{e:?}");
}

#[test]
fn a_catalog_signed_by_another_key_is_refused_naming_both_keys() {
    let f = signed();
    let other = SigningKey::generate("someone else").unwrap();
    let other = SigningKey::parse(&other.secret).unwrap();
    sign_catalog(f.root(), &other, "re-signed").unwrap();
    let e = SignedCatalog::open(f.root(), &f.trusted).unwrap_err();
    assert!(matches!(e, CatalogError::WrongKey { .. }), "{e:?}");
    assert!(e.to_string().contains(&f.trusted.id()), "{e}");
}

#[test]
fn a_missing_or_garbled_signature_is_refused() {
    let f = signed();
    let sig = f.root().join("catalog/catalog.json.minisig");
    std::fs::write(&sig, "untrusted comment: x\nnot base64\n").unwrap();
    let e = SignedCatalog::open(f.root(), &f.trusted).unwrap_err();
    assert!(matches!(e, CatalogError::SignatureFormat { .. }), "{e:?}");
    std::fs::remove_file(&sig).unwrap();
    let e = SignedCatalog::open(f.root(), &f.trusted).unwrap_err();
    assert!(matches!(e, CatalogError::Read { .. }), "{e:?}");
    assert!(TrustedKey::parse("not a key").is_err());
}

#[test]
fn a_signed_catalog_pointing_outside_its_folder_is_refused() {
    let f = signed();
    let path = f.root().join("catalog/catalog.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("apps/other/manifest.yml", "../../etc/passwd"),
    )
    .unwrap();
    // Digests are refreshed from the files, so sign by hand over the text.
    let sig = f.key.sign(&std::fs::read(&path).unwrap(), "evil").unwrap();
    std::fs::write(f.root().join("catalog/catalog.json.minisig"), sig).unwrap();
    let e = SignedCatalog::open(f.root(), &f.trusted).unwrap_err();
    assert!(matches!(e, CatalogError::Format { .. }), "{e:?}");
    assert!(e.to_string().contains("apps[1] (other).manifest"), "{e}");
}
