//! Golden table of invalid manifests: each folder under
//! `fixtures/invalid/<case>/` holds a `manifest.yml` that is the good
//! `fixtures/invalid/_base.yml` with ONE thing changed, and an `expected.txt`:
//!
//! ```text
//! containers[0].ports[1].host      <- the exact field path, the only error
//! below 1024                       <- a substring of the reason
//! strictness: local                <- optional; catalog by default
//! ```
//!
//! Every case must fail with exactly that one field, which proves that it
//! isolates one rule and that the rule names the right place. A few checks
//! that involve several apps (`validate_set`) follow, with inline YAML.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use archipelagod::manifest::{self, Manifest, ManifestError, Strictness};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Fewer cases than this means the walker lost some (or the folder is gone).
const MIN_CASES: usize = 30;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid")
}

struct Expected {
    field: String,
    reason: String,
    strictness: Strictness,
}

fn read_expected(path: &Path) -> Result<Expected, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let field = lines
        .next()
        .ok_or("expected.txt is empty")?
        .trim()
        .to_owned();
    let reason = lines
        .next()
        .ok_or("expected.txt has no second line (a substring of the reason)")?
        .trim()
        .to_owned();
    if reason.is_empty() {
        return Err("the reason substring on line 2 is empty".into());
    }
    let strictness = match lines.next().map(str::trim) {
        None | Some("" | "strictness: catalog") => Strictness::Catalog,
        Some("strictness: local") => Strictness::Local,
        Some(other) => {
            return Err(format!(
                "line 3 must be `strictness: local` or `strictness: catalog`, not `{other}`"
            ));
        }
    };
    if let Some(extra) = lines.find(|l| !l.trim().is_empty()) {
        return Err(format!("unexpected extra line `{extra}`"));
    }
    Ok(Expected {
        field,
        reason,
        strictness,
    })
}

/// Runs one case; `Err` says what went wrong.
fn check_case(dir: &Path) -> Result<(), String> {
    let expected = read_expected(&dir.join("expected.txt"))?;
    let file = dir.join("manifest.yml");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let Err(err) = manifest::from_yaml(&file, &text, expected.strictness) else {
        return Err("the manifest was accepted".into());
    };
    let mut problems = Vec::new();
    if err.file != file {
        problems.push(format!(
            "the error names file {}, not {}",
            err.file.display(),
            file.display()
        ));
    }
    if err.fields() != [expected.field.as_str()] {
        problems.push(format!(
            "expected exactly [{:?}], got {:?}",
            expected.field,
            err.fields()
        ));
    } else if !err.errors[0].reason.contains(&expected.reason) {
        problems.push(format!(
            "the reason {:?} does not contain {:?}",
            err.errors[0].reason, expected.reason
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let all: Vec<String> = err
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect();
        Err(format!(
            "{}\n      all errors: {all:?}",
            problems.join("; ")
        ))
    }
}

#[test]
fn every_invalid_manifest_fails_on_exactly_its_field() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures/invalid exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('_') || n.starts_with('.'))
        })
        .collect();
    dirs.sort();

    let mut failures = String::new();
    let mut failed = 0;
    for dir in &dirs {
        if let Err(why) = check_case(dir) {
            failed += 1;
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let _ = write!(failures, "\n  - {name}: {why}");
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} invalid-manifest cases failed:{failures}",
        dirs.len()
    );
    assert!(
        dirs.len() >= MIN_CASES,
        "only {} cases under {}: expected at least {MIN_CASES}",
        dirs.len(),
        fixtures().display()
    );
}

fn base_text() -> String {
    std::fs::read_to_string(fixtures().join("_base.yml"))
        .expect("fixtures/invalid/_base.yml exists")
}

#[test]
fn the_base_manifest_is_valid_under_both_strictness_levels() {
    let file = fixtures().join("_base.yml");
    let text = base_text();
    for strictness in [Strictness::Catalog, Strictness::Local] {
        if let Err(e) = manifest::from_yaml(&file, &text, strictness) {
            panic!("_base.yml must be valid under {strictness:?}: {e}");
        }
    }
}

// ---- validate_set: problems that need the other apps to see ----------------

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A small valid app with one container `main` publishing `host_port`, which
/// exports the port `rpc` and the secret `rpc-password`; `extra` is appended
/// to the container (indented by four spaces) and `top` to the document.
fn app(id: &str, host_port: u16, extra: &str, top: &str) -> String {
    format!(
        "id: {id}
name: {id}
version: '1.0'
category: bitcoin
generated_secrets:
  - name: rpc-password
    kind: hex32
containers:
  - name: main
    image: registry.example.org/demo/{id}:1.0@{DIGEST}
    ports:
      - container: 8332
        host: {host_port}
{extra}exports:
  ports:
    rpc: {{ container: main, port: 8332 }}
  secrets: [rpc-password]
{top}"
    )
}

fn parse_valid(file: &Path, text: &str) -> Manifest {
    manifest::from_yaml(file, text, Strictness::Catalog)
        .unwrap_or_else(|e| panic!("the app must be valid on its own: {e}\n{text}"))
}

/// Validates the apps as a set and returns the errors, which must all be
/// about `file`.
fn set_errors(apps: &[(&Path, &str)], file: &Path) -> ManifestError {
    let parsed: Vec<(&Path, Manifest)> =
        apps.iter().map(|(f, t)| (*f, parse_valid(f, t))).collect();
    let mut errs = manifest::validate_set(parsed.iter().map(|(f, m)| (*f, m)))
        .expect_err("the set must be refused");
    assert_eq!(errs.len(), 1, "exactly one file has problems: {errs:#?}");
    let e = errs.remove(0);
    assert_eq!(e.file, file, "the error names the right file: {e}");
    e
}

fn assert_one(e: &ManifestError, field: &str, reason: &str) {
    assert_eq!(e.fields(), [field], "{e}");
    assert!(
        e.errors[0].reason.contains(reason),
        "reason should contain {reason:?}: {e}"
    );
}

#[test]
fn the_validate_set_helper_apps_are_valid_together() {
    let bitcoin = app("bitcoin", 18332, "", "");
    let wallet = app(
        "wallet",
        18443,
        "    secrets:
      - name: rpc-password
        from: bitcoin
        env: BITCOIN_RPC_PASSWORD
    links:
      - app: bitcoin
        port: rpc
        address_env: BITCOIN_RPC
",
        "dependencies:\n  - app: bitcoin\n",
    );
    let (fb, fw) = (
        Path::new("apps/bitcoin/manifest.yml"),
        Path::new("apps/wallet/manifest.yml"),
    );
    let (b, w) = (parse_valid(fb, &bitcoin), parse_valid(fw, &wallet));
    manifest::validate_set([(fb, &b), (fw, &w)]).expect("a consistent set is accepted");
}

#[test]
fn set_required_dependency_missing() {
    let f = Path::new("apps/wallet/manifest.yml");
    let wallet = app("wallet", 18443, "", "dependencies:\n  - app: bitcoin\n");
    let e = set_errors(&[(f, &wallet)], f);
    assert_one(&e, "dependencies[0].app", "requires app `bitcoin`");
}

#[test]
fn set_optional_dependency_missing_is_fine() {
    let f = Path::new("apps/wallet/manifest.yml");
    let wallet = app(
        "wallet",
        18443,
        "",
        "dependencies:\n  - app: bitcoin\n    optional: true\n",
    );
    let m = parse_valid(f, &wallet);
    manifest::validate_set([(f, &m)]).expect("an optional dependency may be absent");
}

#[test]
fn set_dependency_secret_not_exported() {
    let fb = Path::new("apps/bitcoin/manifest.yml");
    let fw = Path::new("apps/wallet/manifest.yml");
    let bitcoin = app("bitcoin", 18332, "", "");
    let wallet = app(
        "wallet",
        18443,
        "    secrets:
      - name: cookie
        from: bitcoin
        file: /run/secrets/cookie
",
        "dependencies:\n  - app: bitcoin\n",
    );
    let e = set_errors(&[(fb, &bitcoin), (fw, &wallet)], fw);
    assert_one(
        &e,
        "containers[0].secrets[0].name",
        "app `bitcoin` does not export a secret named `cookie`",
    );
}

#[test]
fn set_link_to_port_not_exported() {
    let fb = Path::new("apps/bitcoin/manifest.yml");
    let fw = Path::new("apps/wallet/manifest.yml");
    let bitcoin = app("bitcoin", 18332, "", "");
    let wallet = app(
        "wallet",
        18443,
        "    links:
      - app: bitcoin
        port: zmq
        address_env: BITCOIN_ZMQ
",
        "dependencies:\n  - app: bitcoin\n",
    );
    let e = set_errors(&[(fb, &bitcoin), (fw, &wallet)], fw);
    assert_one(
        &e,
        "containers[0].links[0].port",
        "app `bitcoin` does not export a port named `zmq`",
    );
}

#[test]
fn set_host_port_used_by_two_apps() {
    let fb = Path::new("apps/bitcoin/manifest.yml");
    let fw = Path::new("apps/wallet/manifest.yml");
    let bitcoin = app("bitcoin", 18332, "", "");
    let wallet = app("wallet", 18332, "", "");
    let e = set_errors(&[(fb, &bitcoin), (fw, &wallet)], fw);
    assert_one(
        &e,
        "containers[0].ports[0].host",
        "already used by app `bitcoin`",
    );
}

#[test]
fn set_dependency_cycle_between_apps() {
    let (fa, fb) = (
        Path::new("apps/alpha/manifest.yml"),
        Path::new("apps/beta/manifest.yml"),
    );
    let alpha = app("alpha", 18001, "", "dependencies:\n  - app: beta\n");
    let beta = app("beta", 18002, "", "dependencies:\n  - app: alpha\n");
    let parsed = [(fa, parse_valid(fa, &alpha)), (fb, parse_valid(fb, &beta))];
    let errs = manifest::validate_set(parsed.iter().map(|(f, m)| (*f, m)))
        .expect_err("a cycle is refused");
    assert_eq!(errs.len(), 2, "both apps are named: {errs:#?}");
    for e in &errs {
        assert_one(e, "dependencies[0].app", "must not form a cycle");
    }
}
