//! The fixture apps of the real-node tests: their container images, built
//! here from files this machine has (never downloaded), and their manifests
//! in `tests/fixtures/<app>/manifest.yml`, rendered with the digests of a
//! build.
//!
//! | image | contents |
//! |---|---|
//! | `hello-web` | `/bin/busybox` from Debian's `busybox-static`, applet links `sh`, `httpd`, `wget`, `/www/index.html` |
//! | `fixture-chain`, `fixture-wallet`, `fixture-broken` | the binary of that name from `tests/fixture-apps`, the shared libraries `ldd` lists and the dynamic loader |
//!
//! Each image is an OCI layout folder `OUT/<image>/` tagged [`TAG`]; push it
//! with `skopeo copy --preserve-digests oci:OUT/<image>:<tag>
//! docker://REGISTRY/archipelago/<image>:<tag>` (see [`crate::oci`] for why
//! `--preserve-digests`).
//!
//! The manifests name their images with a placeholder digest
//! ([`PLACEHOLDER_DIGEST`]); [`render_manifest`] and [`load_manifest`] put in
//! the real one. Building is deterministic: the same fixture binaries and
//! busybox give the same digests.

use crate::oci::{self, Entry, ImageConfig, OciError};
use archipelagod::manifest::{self, Manifest, Strictness};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The registry the fixture manifests name (the bridge address of a test
/// run's network namespace).
pub const REGISTRY: &str = "10.99.0.1:5000";
/// The repository namespace of every fixture image in the registry.
pub const NAMESPACE: &str = "archipelago";
/// The tag of every fixture image.
pub const TAG: &str = "1.0.0";
/// What the manifests in `tests/fixtures/` carry instead of a digest.
pub const PLACEHOLDER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// The fixture images, in build order.
pub const IMAGES: [&str; 4] = [
    "hello-web",
    "fixture-chain",
    "fixture-wallet",
    "fixture-broken",
];
/// The fixture apps (folders of `tests/fixtures/`), dependencies first.
pub const APPS: [&str; 5] = [
    "hello-web",
    "fixture-chain",
    "fixture-wallet",
    "fixture-broken-exit",
    "fixture-broken-unhealthy",
];
/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";
/// Set to a folder holding `fixture-chain`, `fixture-wallet` and
/// `fixture-broken` to use those binaries instead of building them.
pub const BINS_ENV: &str = "ARCHIPELAGO_FIXTURE_BINS";
/// The page `hello-web` serves.
pub const HELLO_PAGE: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Hello</title></head>\n<body><h1>Hello from Archipelago</h1></body></html>\n";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why fixtures could not be built or rendered.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{0}")]
    Input(String),
    #[error("{file}: {reason}")]
    Manifest { file: PathBuf, reason: String },
}

/// One built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `hello-web`, `fixture-chain`, …
    pub name: String,
    pub tag: String,
    /// Manifest digest, `sha256:…`.
    pub digest: String,
    /// The OCI layout folder holding it.
    pub oci_dir: PathBuf,
}

impl BuiltImage {
    /// The skopeo/podman name of the layout: `oci:DIR:TAG`.
    pub fn oci_reference(&self) -> String {
        format!("oci:{}:{}", self.oci_dir.display(), self.tag)
    }

    /// The pinned reference manifests use:
    /// `REGISTRY/archipelago/NAME:TAG@sha256:…`.
    pub fn reference(&self, registry: &str) -> String {
        format!(
            "{registry}/{NAMESPACE}/{}:{}@{}",
            self.name, self.tag, self.digest
        )
    }

    /// Where to push it, without the digest: `REGISTRY/archipelago/NAME:TAG`.
    pub fn repository_tag(&self, registry: &str) -> String {
        format!("{registry}/{NAMESPACE}/{}:{}", self.name, self.tag)
    }
}

/// The files the images are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureInputs {
    /// A statically linked busybox.
    pub busybox: PathBuf,
    pub chain: PathBuf,
    pub wallet: PathBuf,
    pub broken: PathBuf,
}

impl FixtureInputs {
    /// busybox from [`BUSYBOX`] and the fixture binaries from the folder in
    /// [`BINS_ENV`] if set, else built by cargo (see [`build_fixture_apps`]).
    pub fn locate() -> Result<Self, FixtureError> {
        let bins = match std::env::var_os(BINS_ENV) {
            Some(dir) => FixtureBinaries::in_dir(Path::new(&dir))?,
            None => build_fixture_apps()?,
        };
        Ok(Self {
            busybox: PathBuf::from(BUSYBOX),
            chain: bins.chain,
            wallet: bins.wallet,
            broken: bins.broken,
        })
    }
}

/// The three binaries of `tests/fixture-apps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureBinaries {
    pub chain: PathBuf,
    pub wallet: PathBuf,
    pub broken: PathBuf,
}

impl FixtureBinaries {
    /// Prebuilt binaries named `fixture-chain`, `fixture-wallet` and
    /// `fixture-broken` in `dir`.
    pub fn in_dir(dir: &Path) -> Result<Self, FixtureError> {
        let get = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(FixtureError::Input(format!(
                    "{} is missing (the folder named by {BINS_ENV} must hold all three fixture binaries)",
                    p.display()
                )))
            }
        };
        Ok(Self {
            chain: get("fixture-chain")?,
            wallet: get("fixture-wallet")?,
            broken: get("fixture-broken")?,
        })
    }
}

/// Builds `tests/fixture-apps` with cargo (the `CARGO` that runs this
/// test, else `cargo` on `PATH`; dev profile; the target folder of
/// `CARGO_TARGET_DIR` or the workspace) and returns where its binaries are.
/// Up to date, this takes a fraction of a second.
pub fn build_fixture_apps() -> Result<FixtureBinaries, FixtureError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixture-apps/Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--bins",
        "--message-format=json-render-diagnostics",
    ])
    .arg("--manifest-path")
    .arg(&manifest);
    let shown = format!(
        "{} build --bins --manifest-path {}",
        Path::new(&cargo).display(),
        manifest.display()
    );
    let out = cmd.output().map_err(|source| FixtureError::Io {
        what: format!("cannot run {shown}"),
        source,
    })?;
    if !out.status.success() {
        return Err(FixtureError::Command {
            command: shown,
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let mut found = [None, None, None];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let slot = match msg["target"]["name"].as_str() {
            Some("fixture-chain") => 0,
            Some("fixture-wallet") => 1,
            Some("fixture-broken") => 2,
            _ => continue,
        };
        found[slot] = Some(PathBuf::from(exe));
    }
    match found {
        [Some(chain), Some(wallet), Some(broken)] => Ok(FixtureBinaries {
            chain,
            wallet,
            broken,
        }),
        _ => Err(FixtureError::Command {
            command: shown,
            detail: "cargo named no executable for one of the fixture binaries".into(),
        }),
    }
}

/// The shared libraries and the dynamic loader `binary` needs, as `ldd`
/// names them (absolute host paths; the same paths in an image). Empty for
/// a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, FixtureError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|source| FixtureError::Io {
            what: "cannot run ldd".into(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.contains("not a dynamic executable")
        || stderr.contains("not a dynamic executable")
        || stdout.contains("statically linked")
    {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(FixtureError::Command {
            command: format!("ldd {}", binary.display()),
            detail: stderr.into_owned(),
        });
    }
    parse_ldd(&stdout)
        .map_err(|reason| FixtureError::Input(format!("ldd {}: {reason}", binary.display())))
}

/// The library paths in `ldd` output:
/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} is not found", name.trim()));
                }
                rest.split(" (").next().unwrap_or_default().trim()
            }
            None => line.split(" (").next().unwrap_or_default().trim(),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        } else if !path.starts_with("linux-vdso") && !path.starts_with("linux-gate") {
            return Err(format!("cannot read the line `{line}`"));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

/// Image entries for a dynamically linked program: the binary at
/// `image_path` and its libraries at the paths `ldd` names.
pub fn program_entries(binary: &Path, image_path: &str) -> Result<Vec<Entry>, FixtureError> {
    let mut entries = vec![Entry::file(binary, image_path, 0o755)];
    for lib in shared_libraries(binary)? {
        let path = lib
            .to_str()
            .ok_or_else(|| FixtureError::Input(format!("{} is not a UTF-8 path", lib.display())))?;
        entries.push(Entry::file(&lib, path, 0o755));
    }
    Ok(entries)
}

/// What goes into `hello-web`.
fn hello_web(busybox: &Path) -> Result<(Vec<Entry>, ImageConfig), FixtureError> {
    if !busybox.is_file() {
        return Err(FixtureError::Input(format!(
            "{} is missing: install Debian's busybox-static (`apt-get install -y busybox-static`)",
            busybox.display()
        )));
    }
    if !shared_libraries(busybox)?.is_empty() {
        return Err(FixtureError::Input(format!(
            "{} is dynamically linked: hello-web needs the static one from Debian's busybox-static",
            busybox.display()
        )));
    }
    let mut entries = vec![Entry::file(busybox, "/bin/busybox", 0o755)];
    for applet in ["sh", "httpd", "wget"] {
        entries.push(Entry::symlink(format!("/bin/{applet}"), "busybox"));
    }
    entries.push(Entry::bytes("/www/index.html", HELLO_PAGE, 0o644));
    let config = ImageConfig {
        cmd: ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
            .map(String::from)
            .to_vec(),
        env: vec![PATH_ENV.to_owned()],
        exposed_ports: vec!["8080/tcp".to_owned()],
        working_dir: Some("/".to_owned()),
        ..ImageConfig::default()
    };
    Ok((entries, config))
}

/// What goes into the image of one fixture app binary.
fn program_image(
    binary: &Path,
    name: &str,
    cmd: &[&str],
    port: Option<u16>,
    extra: Vec<Entry>,
) -> Result<(Vec<Entry>, ImageConfig), FixtureError> {
    let mut entries = program_entries(binary, &format!("/usr/bin/{name}"))?;
    entries.extend(extra);
    let config = ImageConfig {
        cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
        env: vec![PATH_ENV.to_owned()],
        exposed_ports: port.map(|p| format!("{p}/tcp")).into_iter().collect(),
        working_dir: Some("/".to_owned()),
        ..ImageConfig::default()
    };
    Ok((entries, config))
}

/// The files and config of image `name` (one of [`IMAGES`]).
fn image_spec(
    name: &str,
    inputs: &FixtureInputs,
) -> Result<(Vec<Entry>, ImageConfig), FixtureError> {
    match name {
        "hello-web" => hello_web(&inputs.busybox),
        "fixture-chain" => program_image(
            &inputs.chain,
            name,
            &["fixture-chain"],
            Some(18443),
            vec![Entry::dir("/data", 0o755)],
        ),
        "fixture-wallet" => program_image(
            &inputs.wallet,
            name,
            &["fixture-wallet"],
            Some(8081),
            Vec::new(),
        ),
        "fixture-broken" => program_image(
            &inputs.broken,
            name,
            &["fixture-broken", "exit"],
            None,
            Vec::new(),
        ),
        _ => Err(unknown_image(name)),
    }
}

fn unknown_image(name: &str) -> FixtureError {
    FixtureError::Input(format!(
        "`{name}` is not a fixture image (known: {})",
        IMAGES.join(", ")
    ))
}

fn write_image(
    out: &Path,
    name: &str,
    (entries, config): (Vec<Entry>, ImageConfig),
) -> Result<BuiltImage, FixtureError> {
    let oci_dir = out.join(name);
    let digest = oci::write_layout(&oci_dir, TAG, &entries, &config)?;
    Ok(BuiltImage {
        name: name.to_owned(),
        tag: TAG.to_owned(),
        digest,
        oci_dir,
    })
}

/// Builds every fixture image into `out/<image>/` (an OCI layout each,
/// tagged [`TAG`]), replacing what an earlier build left there, and returns
/// them in [`IMAGES`] order.
pub fn build_images(out: &Path, inputs: &FixtureInputs) -> Result<Vec<BuiltImage>, FixtureError> {
    IMAGES
        .iter()
        .map(|name| write_image(out, name, image_spec(name, inputs)?))
        .collect()
}

/// Builds one fixture image into `out/<name>/`. `hello-web` needs only
/// busybox; the others build the fixture binaries first (see
/// [`FixtureInputs::locate`]).
pub fn build_image(out: &Path, name: &str) -> Result<BuiltImage, FixtureError> {
    let spec = match name {
        "hello-web" => hello_web(Path::new(BUSYBOX))?,
        _ if IMAGES.contains(&name) => image_spec(name, &FixtureInputs::locate()?)?,
        _ => return Err(unknown_image(name)),
    };
    write_image(out, name, spec)
}

/// Builds image `name` again as version `tag`: the same files, with
/// `FIXTURE_VERSION=<tag>` in its environment, so that its digest differs —
/// a new version to update to. Written to `out/<name>-<tag>/`.
pub fn build_version(out: &Path, name: &str, tag: &str) -> Result<BuiltImage, FixtureError> {
    let (entries, mut config) = match name {
        "hello-web" => hello_web(Path::new(BUSYBOX))?,
        _ if IMAGES.contains(&name) => image_spec(name, &FixtureInputs::locate()?)?,
        _ => return Err(unknown_image(name)),
    };
    config.env.push(format!("FIXTURE_VERSION={tag}"));
    let oci_dir = out.join(format!("{name}-{tag}"));
    let digest = oci::write_layout(&oci_dir, tag, &entries, &config)?;
    Ok(BuiltImage {
        name: name.to_owned(),
        tag: tag.to_owned(),
        digest,
        oci_dir,
    })
}

/// [`FixtureInputs::locate`] then [`build_images`].
pub fn build_all(out: &Path) -> Result<Vec<BuiltImage>, FixtureError> {
    build_images(out, &FixtureInputs::locate()?)
}

/// `tests/fixtures/`, where the fixture manifests are.
pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The manifest file of fixture app `app`.
pub fn manifest_path(app: &str) -> PathBuf {
    manifests_dir().join(app).join("manifest.yml")
}

/// Puts the digests of `images` into manifest text: every `image:` value
/// must read `10.99.0.1:5000/archipelago/<image>:<tag>@<PLACEHOLDER_DIGEST>`
/// for an image in `images` with that tag; it becomes
/// `<registry>/archipelago/<image>:<tag>@<digest>`. Nothing else changes.
pub fn render_manifest(
    text: &str,
    images: &[BuiltImage],
    registry: &str,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut replaced = 0;
    for (no, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let key_at = body.len() - body.trim_start_matches([' ', '-']).len();
        let Some(value) = body[key_at..].strip_prefix("image:") else {
            out.push_str(line);
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']);
        let at = |reason: String| format!("line {}: {reason}", no + 1);
        let rest = value
            .strip_prefix(&format!("{REGISTRY}/{NAMESPACE}/"))
            .ok_or_else(|| {
                at(format!(
                    "`{value}` is not a fixture image (`{REGISTRY}/{NAMESPACE}/<image>:<tag>@{PLACEHOLDER_DIGEST}`)"
                ))
            })?;
        let (name_tag, digest) = rest
            .split_once('@')
            .ok_or_else(|| at(format!("`{value}` has no digest")))?;
        if digest != PLACEHOLDER_DIGEST {
            return Err(at(format!(
                "`{value}` carries a digest: fixture manifests carry the placeholder {PLACEHOLDER_DIGEST}"
            )));
        }
        let (name, tag) = name_tag
            .split_once(':')
            .ok_or_else(|| at(format!("`{value}` has no tag")))?;
        let image = images
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| at(format!("no image `{name}` was built")))?;
        if image.tag != tag {
            return Err(at(format!(
                "the manifest wants `{name}:{tag}`, the build made `{name}:{}`",
                image.tag
            )));
        }
        let _ = write!(
            out,
            "{}image: {}{ending}",
            &body[..key_at],
            image.reference(registry)
        );
        replaced += 1;
    }
    if replaced == 0 {
        return Err("no `image:` line".to_owned());
    }
    Ok(out)
}

/// A fixture manifest rendered with real digests and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureManifest {
    /// The app id (its folder in `tests/fixtures/`).
    pub app: String,
    /// The file it came from.
    pub path: PathBuf,
    /// The rendered YAML, ready to hand to a node.
    pub yaml: String,
    pub manifest: Manifest,
}

/// Reads `tests/fixtures/<app>/manifest.yml`, puts in the digests of
/// `images` (see [`render_manifest`]) and validates it as a catalog app.
pub fn load_manifest(
    app: &str,
    images: &[BuiltImage],
    registry: &str,
) -> Result<FixtureManifest, FixtureError> {
    let path = manifest_path(app);
    let text = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
        what: format!("cannot read {}", path.display()),
        source,
    })?;
    let yaml =
        render_manifest(&text, images, registry).map_err(|reason| FixtureError::Manifest {
            file: path.clone(),
            reason,
        })?;
    let manifest = manifest::from_yaml(&path, &yaml, Strictness::Catalog).map_err(|e| {
        FixtureError::Manifest {
            file: path.clone(),
            reason: e.to_string(),
        }
    })?;
    if manifest.id != app {
        return Err(FixtureError::Manifest {
            file: path,
            reason: format!("its id is `{}`, not its folder's name `{app}`", manifest.id),
        });
    }
    Ok(FixtureManifest {
        app: app.to_owned(),
        path,
        yaml,
        manifest,
    })
}

/// Every fixture app ([`APPS`]), rendered, validated on its own and as one
/// set (dependencies, exports, host ports).
pub fn load_manifests(
    images: &[BuiltImage],
    registry: &str,
) -> Result<Vec<FixtureManifest>, FixtureError> {
    let all = APPS
        .iter()
        .map(|app| load_manifest(app, images, registry))
        .collect::<Result<Vec<_>, _>>()?;
    manifest::validate_set(all.iter().map(|f| (f.path.as_path(), &f.manifest))).map_err(
        |errors| FixtureError::Manifest {
            file: manifests_dir(),
            reason: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        },
    )?;
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Vec<BuiltImage> {
        IMAGES
            .iter()
            .enumerate()
            .map(|(i, name)| BuiltImage {
                name: (*name).to_owned(),
                tag: TAG.to_owned(),
                digest: format!("sha256:{}", format!("{i}").repeat(64)),
                oci_dir: PathBuf::from(format!("/out/{name}")),
            })
            .collect()
    }

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        assert!(
            parse_ldd("\tlibfoo.so.1 => not found\n")
                .unwrap_err()
                .contains("libfoo.so.1 is not found")
        );
    }

    #[test]
    fn renders_the_digest_of_the_built_image() {
        let text = format!(
            "id: x\ncontainers:\n  - name: a\n    image: {REGISTRY}/{NAMESPACE}/fixture-chain:{TAG}@{PLACEHOLDER_DIGEST}\n  - image: \"{REGISTRY}/{NAMESPACE}/hello-web:{TAG}@{PLACEHOLDER_DIGEST}\"\n    name: b\n"
        );
        let out = render_manifest(&text, &images(), REGISTRY).unwrap();
        assert_eq!(
            out,
            format!(
                "id: x\ncontainers:\n  - name: a\n    image: {REGISTRY}/{NAMESPACE}/fixture-chain:{TAG}@sha256:{}\n  - image: {REGISTRY}/{NAMESPACE}/hello-web:{TAG}@sha256:{}\n    name: b\n",
                "1".repeat(64),
                "0".repeat(64)
            )
        );
        let other = render_manifest(&text, &images(), "10.0.2.2:5000").unwrap();
        assert!(other.contains("image: 10.0.2.2:5000/archipelago/fixture-chain:1.0.0@sha256:111"));
    }

    #[test]
    fn refuses_what_it_cannot_render() {
        let line = |image: &str| format!("containers:\n  - image: {image}\n");
        let err = |image: &str| render_manifest(&line(image), &images(), REGISTRY).unwrap_err();
        assert!(
            err(&format!("docker.io/library/nginx:1@{PLACEHOLDER_DIGEST}"))
                .contains("not a fixture image")
        );
        assert!(
            err(&format!(
                "{REGISTRY}/{NAMESPACE}/nope:{TAG}@{PLACEHOLDER_DIGEST}"
            ))
            .contains("no image `nope`")
        );
        assert!(
            err(&format!(
                "{REGISTRY}/{NAMESPACE}/hello-web:2.0@{PLACEHOLDER_DIGEST}"
            ))
            .contains("the build made `hello-web:1.0.0`")
        );
        assert!(
            err(&format!(
                "{REGISTRY}/{NAMESPACE}/hello-web:{TAG}@sha256:{}",
                "a".repeat(64)
            ))
            .contains("carries a digest")
        );
        assert!(err(&format!("{REGISTRY}/{NAMESPACE}/hello-web:{TAG}")).contains("no digest"));
        assert!(
            render_manifest("id: x\n", &images(), REGISTRY)
                .unwrap_err()
                .contains("no `image:`")
        );
    }

    #[test]
    fn fixture_manifests_carry_the_placeholder_and_render_valid() {
        for app in APPS {
            let text = std::fs::read_to_string(manifest_path(app)).unwrap();
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("image:"))
            {
                assert!(line.ends_with(PLACEHOLDER_DIGEST), "{app}: {line}");
            }
        }
        let all = load_manifests(&images(), REGISTRY).unwrap();
        assert_eq!(all.len(), APPS.len());
        let wallet = all.iter().find(|f| f.app == "fixture-wallet").unwrap();
        assert_eq!(
            wallet.manifest.containers[0].image,
            format!(
                "{REGISTRY}/{NAMESPACE}/fixture-wallet:{TAG}@sha256:{}",
                "2".repeat(64)
            )
        );
    }
}
