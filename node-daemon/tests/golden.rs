//! Golden-file tests for Quadlet rendering: every folder under
//! `fixtures/golden/` holds one or more manifests (`*.yml`) and, in
//! `expected/`, the exact unit files they must render to. A second test
//! runs podman 5's real Quadlet generator over every expected folder and
//! fails on any warning or error, so a golden file can only be accepted if
//! systemd would accept it too.
//!
//! To refresh the expected files after an intended change:
//! `UPDATE_GOLDEN=1 cargo test -p archipelagod --test golden`, then review
//! the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use archipelago_api::RunState;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Manifest, Strictness};
use archipelagod::quadlet::{RenderedUnit, render_app};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(golden_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases went missing: {cases:?}");
    cases
}

/// Renders every manifest of one case, as the reconciler would.
fn render_case(case: &Path) -> Vec<RenderedUnit> {
    let mut apps: BTreeMap<String, Manifest> = BTreeMap::new();
    let mut files: Vec<PathBuf> = fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    for f in &files {
        let m = manifest::load(f, Strictness::Catalog).unwrap_or_else(|e| panic!("{e}"));
        apps.insert(m.id.clone(), m);
    }
    manifest::validate_set(files.iter().map(PathBuf::as_path).zip(apps.values()))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let stopped = fs::read_to_string(case.join("stopped.txt")).unwrap_or_default();
    let layout = Layout::under_home(Path::new("/var/lib/archipelago"));
    let mut out = Vec::new();
    for app in apps.values() {
        let run = if stopped.lines().any(|l| l.trim() == app.id) {
            RunState::Stopped
        } else {
            RunState::Running
        };
        out.extend(render_app(app, run, |id| apps.get(id), &layout));
    }
    out
}

#[test]
fn rendered_units_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let expected_dir = case.join("expected");
        let units = render_case(&case);
        if update {
            let _ = fs::remove_dir_all(&expected_dir);
            fs::create_dir_all(&expected_dir).unwrap();
            for u in &units {
                fs::write(expected_dir.join(&u.file_name), &u.contents).unwrap();
            }
            continue;
        }
        let mut expected: Vec<String> = fs::read_dir(&expected_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        expected.sort();
        let mut got: Vec<String> = units.iter().map(|u| u.file_name.clone()).collect();
        got.sort();
        if expected != got {
            failures.push(format!(
                "{}: files {got:?}, expected {expected:?}",
                case.display()
            ));
            continue;
        }
        for u in &units {
            let want = fs::read_to_string(expected_dir.join(&u.file_name)).unwrap();
            if want != u.contents {
                failures.push(format!(
                    "{}/{}: rendered text differs\n--- expected\n{want}\n--- rendered\n{}",
                    case.display(),
                    u.file_name,
                    u.contents
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn rendering_is_deterministic() {
    for case in cases() {
        assert_eq!(render_case(&case), render_case(&case), "{}", case.display());
    }
}

#[test]
fn real_quadlet_generator_accepts_every_golden_case() {
    let quadlet = support::quadlet_binary();
    let mut checked = 0;
    for case in cases() {
        let expected_dir = case.join("expected");
        let services = support::quadlet_dryrun(&quadlet, &expected_dir);
        for u in render_case(&case) {
            let text = services.get(&u.service).unwrap_or_else(|| {
                panic!(
                    "{}: quadlet generated no {} (got {:?})",
                    case.display(),
                    u.service,
                    services.keys()
                )
            });
            if u.file_name.ends_with(".container") {
                let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
                for flag in [
                    "--cap-drop all",
                    "--security-opt=no-new-privileges",
                    "--label io.archipelago.managed=true",
                ] {
                    assert!(
                        exec.contains(flag),
                        "{}: {flag} missing from {exec}",
                        u.service
                    );
                }
                assert!(!exec.contains("--privileged") && !exec.contains("--network host"));
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 12,
        "only {checked} units went through the generator"
    );
}

#[test]
fn generator_output_shows_the_pillars() {
    let quadlet = support::quadlet_binary();
    let root = golden_root();
    let svc = |case: &str, name: &str| {
        support::quadlet_dryrun(&quadlet, &root.join(case).join("expected"))
            .remove(name)
            .unwrap_or_else(|| panic!("{case}: no {name}"))
    };
    let exec = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("ExecStart="))
            .unwrap()
            .to_owned()
    };

    // Health-gated: podman tells systemd "started" only once healthy.
    let health = svc("health-gated", "electrum-demo_server.service");
    assert!(exec(&health).contains("--sdnotify=healthy"), "{health}");
    // Exec form without `CMD`: podman adds it to a JSON array of two or
    // more words, and splits a value starting with `CMD` on white space.
    assert!(
        exec(&health)
            .contains(r#"--health-cmd "[\"electrum-demo\",\"ping\",\"--timeout\",\"2\"]""#),
        "{health}"
    );
    assert!(health.contains("TimeoutStartSec=1800"), "{health}");
    assert!(exec(&health).contains("--publish 127.0.0.1:50001:50001/tcp"));
    assert!(exec(&health).contains("--memory=1536m --cpus=1.5"));

    // Dependency: the wallet waits for the chain and joins its network.
    let wallet = svc("dependency", "fixture-wallet_wallet.service");
    assert!(
        wallet.contains("Requires=fixture-chain_chain.service"),
        "{wallet}"
    );
    assert!(
        wallet.contains("After=fixture-chain_chain.service"),
        "{wallet}"
    );
    assert!(
        exec(&wallet).contains("--network archipelago-fixture-chain"),
        "{wallet}"
    );
    // Secrets reach the container through a file podman reads, never argv.
    assert!(exec(&wallet).contains("--env-file /var/lib/archipelago/.local/share/archipelago/secrets/fixture-wallet/env/wallet.env"));

    // Stopped apps have no [Install] section, so they stay stopped at boot.
    let stopped = svc("stopped-and-escaping", "quoting-demo_shell.service");
    assert!(!stopped.contains("WantedBy="), "{stopped}");
    // `$` and `%` are escaped for systemd, which turns `$$`/`%%` back into one.
    assert!(exec(&stopped).contains("$$HOME"), "{stopped}");
    assert!(exec(&stopped).contains("100%%"), "{stopped}");
    let running = svc("single-ui", "hello-web_web.service");
    assert!(running.contains("WantedBy=default.target"), "{running}");
}
