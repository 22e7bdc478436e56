//! The fixture images and manifests, built for real: the build is quick and
//! deterministic, skopeo reads every image, the programs in the images run
//! (unpacked into a chroot, talking over loopback), and the manifests with
//! the real digests pass the daemon's catalog validation and podman's own
//! Quadlet generator.
//!
//! Needs, as CI has them: root (chroot), Debian's `busybox-static` and
//! `skopeo`, and podman 5's Quadlet generator from
//! `tests/tools/fetch-quadlet.sh` (or `ARCHIPELAGO_QUADLET`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use archipelago_api::RunState;
use archipelago_harness::fixtures::{self, BuiltImage, FixtureInputs, IMAGES, REGISTRY, TAG};
use archipelago_harness::oci;
use archipelagod::layout::Layout;
use archipelagod::manifest::Manifest;
use archipelagod::quadlet::render_app;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Inputs located (fixture binaries built) once per test run.
fn inputs() -> &'static FixtureInputs {
    static INPUTS: OnceLock<FixtureInputs> = OnceLock::new();
    INPUTS.get_or_init(|| FixtureInputs::locate().unwrap_or_else(|e| panic!("{e}")))
}

/// The images, built once per test run into the target folder.
fn images() -> &'static [BuiltImage] {
    static IMAGES: OnceLock<Vec<BuiltImage>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-images");
        fixtures::build_images(&out, inputs()).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn image(name: &str) -> &'static BuiltImage {
    images().iter().find(|i| i.name == name).unwrap()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn build_is_quick_and_deterministic_and_skopeo_reads_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let first = fixtures::build_images(&dir.path().join("a"), inputs()).unwrap();
    let took = start.elapsed();
    let second = fixtures::build_images(&dir.path().join("b"), inputs()).unwrap();
    eprintln!("built {} fixture images in {took:?}", first.len());
    assert!(
        took < Duration::from_secs(30),
        "building the images took {took:?}"
    );
    let names: Vec<&str> = first.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, IMAGES);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!((&a.name, &a.tag, &a.digest), (&b.name, &b.tag, &b.digest));
    }

    let skopeo_ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        skopeo_ok,
        "skopeo is not installed: these tests check images with it (`apt-get install -y skopeo` on Debian 12)"
    );
    for i in &first {
        let out = run(Command::new("skopeo").args(["inspect", &i.oci_reference()]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Digest"], i.digest.as_str(), "{}", i.name);
        assert_eq!(v["Os"], "linux");
        let cfg = run(Command::new("skopeo").args(["inspect", "--config", &i.oci_reference()]));
        let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
        let cmd0 = cfg["config"]["Cmd"][0].as_str().unwrap();
        let want = if i.name == "hello-web" {
            "httpd"
        } else {
            i.name.as_str()
        };
        assert_eq!(cmd0, want, "{}", i.name);
    }
}

#[test]
fn one_image_alone_is_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let hello = fixtures::build_image(dir.path(), "hello-web").unwrap();
    assert_eq!(hello.digest, image("hello-web").digest);
    assert_eq!(hello.oci_dir, dir.path().join("hello-web"));
    let broken = fixtures::build_image(dir.path(), "fixture-broken").unwrap();
    assert_eq!(broken.digest, image("fixture-broken").digest);
    let err = fixtures::build_image(dir.path(), "nginx").unwrap_err();
    assert!(err.to_string().contains("not a fixture image"), "{err}");
}

/// Kills the process it holds when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The image's layer unpacked by GNU tar (so it also checks our tar).
fn unpack(image: &BuiltImage, into: &Path) -> PathBuf {
    let root = into.join(&image.name);
    std::fs::create_dir_all(&root).unwrap();
    let layers = oci::layer_blobs(&image.oci_dir, &image.tag).unwrap();
    assert_eq!(layers.len(), 1);
    run(Command::new("tar")
        .arg("-xf")
        .arg(&layers[0])
        .arg("-C")
        .arg(&root));
    root
}

fn chroot(root: &Path) -> Command {
    let mut c = Command::new("chroot");
    c.arg(root);
    c
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        .unwrap_or(false)
}

#[test]
fn programs_in_the_images_run_from_their_own_files() {
    assert!(
        is_root(),
        "this test unpacks the images and runs them with chroot, which needs root: run the tests as root"
    );
    let dir = tempfile::tempdir().unwrap();

    // hello-web: httpd serves the page, wget (the health check) reads it.
    let web = unpack(image("hello-web"), dir.path());
    let web_port = free_port();
    let _httpd = Running(
        chroot(&web)
            .args(["/bin/httpd", "-f", "-p"])
            .arg(format!("127.0.0.1:{web_port}"))
            .args(["-h", "/www"])
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{web_port}/");
    let mut page = String::new();
    wait_for("hello-web's page", || {
        let out = chroot(&web)
            .args(["/bin/wget", "-q", "-O-", &url])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        page = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(page.contains("Hello from Archipelago"), "{page}");
    run(chroot(&web).args(["/bin/sh", "-c", "test -L /bin/sh"]));

    // fixture-chain with its data folder and hash file where the manifest
    // puts them, then fixture-wallet calling it.
    let chain = unpack(image("fixture-chain"), dir.path());
    std::fs::create_dir_all(chain.join("run/secrets")).unwrap();
    std::fs::write(
        chain.join("run/secrets/rpc-password-hash"),
        bcrypt::hash("pw", 4).unwrap(),
    )
    .unwrap();
    let chain_port = free_port().to_string();
    let _chain = Running(
        chroot(&chain)
            .args(["/usr/bin/fixture-chain", "--bind", "127.0.0.1"])
            .args(["--rpc-port", &chain_port])
            .spawn()
            .unwrap(),
    );
    wait_for("fixture-chain's health", || {
        chroot(&chain)
            .args([
                "/usr/bin/fixture-chain",
                "health",
                "--rpc-port",
                &chain_port,
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    });
    assert!(chain.join("data/chain.dat").is_file());

    let wallet = unpack(image("fixture-wallet"), dir.path());
    let wallet_port = free_port().to_string();
    let _wallet = Running(
        chroot(&wallet)
            .args(["/usr/bin/fixture-wallet", "--bind", "127.0.0.1"])
            .args(["--port", &wallet_port])
            .env("CHAIN_RPC_ADDR", format!("127.0.0.1:{chain_port}"))
            .env("CHAIN_RPC_PASSWORD", "pw")
            .spawn()
            .unwrap(),
    );
    wait_for("fixture-wallet's health", || {
        chroot(&wallet)
            .args(["/usr/bin/fixture-wallet", "health", "--port", &wallet_port])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    });

    // fixture-broken: both ways of failing.
    let broken = unpack(image("fixture-broken"), dir.path());
    let out = chroot(&broken)
        .args(["/usr/bin/fixture-broken", "exit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fixture-broken: exiting on purpose"));
    let health = chroot(&broken)
        .args(["/usr/bin/fixture-broken", "health"])
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(1));
}

/// Where `tests/tools/fetch-quadlet.sh` puts podman 5's Quadlet generator.
fn quadlet_binary() -> PathBuf {
    let path = std::env::var_os("ARCHIPELAGO_QUADLET").map_or_else(
        || PathBuf::from("/var/cache/archipelago/podman-trixie/usr/libexec/podman/quadlet"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "podman's Quadlet generator is not at {}: run tests/tools/fetch-quadlet.sh or set ARCHIPELAGO_QUADLET",
        path.display()
    );
    path
}

#[test]
fn manifests_with_real_digests_validate_and_quadlet_accepts_their_units() {
    let all = fixtures::load_manifests(images(), REGISTRY).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), fixtures::APPS.len());
    for f in &all {
        for c in &f.manifest.containers {
            let built = images()
                .iter()
                .find(|i| c.image == i.reference(REGISTRY))
                .unwrap_or_else(|| panic!("{}: {} is no built image", f.app, c.image));
            assert_eq!(built.tag, TAG);
        }
    }

    let apps: BTreeMap<&str, &Manifest> =
        all.iter().map(|f| (f.app.as_str(), &f.manifest)).collect();
    let layout = Layout::under_home(Path::new("/var/lib/archipelago"));
    let units_dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for app in apps.values() {
        for u in render_app(app, RunState::Running, |id| apps.get(id).copied(), &layout) {
            std::fs::write(units_dir.path().join(&u.file_name), &u.contents).unwrap();
            units.push(u);
        }
    }
    let out = Command::new(quadlet_binary())
        .args(["-dryrun", "-user"])
        .env("QUADLET_UNIT_DIRS", units_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let diagnostics: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Loading source unit file") && !l.trim().is_empty())
        .collect();
    assert!(
        out.status.success() && diagnostics.is_empty(),
        "quadlet rejected the fixture units: {}\n{}",
        out.status,
        diagnostics.join("\n")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for u in &units {
        assert!(
            stdout.contains(&format!("---{}---", u.service)),
            "quadlet generated no {}",
            u.service
        );
    }
    for i in images() {
        assert!(
            stdout.contains(&i.reference(REGISTRY)),
            "no unit runs {}",
            i.reference(REGISTRY)
        );
    }
}
