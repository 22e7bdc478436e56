//! Builds the fixture images from a shell.
//!
//! ```text
//! archipelago-fixtures build OUT_DIR [--registry HOST:PORT]
//! ```
//!
//! Writes each image as an OCI layout `OUT_DIR/<image>/` (tag `1.0.0`) and
//! the fixture manifests, with those digests and that registry (default
//! `10.99.0.1:5000`), as `OUT_DIR/manifests/<app>.yml`; prints one line per
//! image: `name tag digest`.

use archipelago_harness::fixtures::{self, REGISTRY};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: archipelago-fixtures build OUT_DIR [--registry HOST:PORT]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, registry) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["build", out] => (PathBuf::from(out), REGISTRY.to_owned()),
        ["build", out, "--registry", registry] => (PathBuf::from(out), registry.to_owned()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match build(&out, &registry) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("archipelago-fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build(out: &std::path::Path, registry: &str) -> Result<(), Box<dyn std::error::Error>> {
    let inputs = fixtures::FixtureInputs::locate()?;
    let start = Instant::now();
    let images = fixtures::build_images(out, &inputs)?;
    let took = start.elapsed();
    let manifests = fixtures::load_manifests(&images, registry)?;
    let dir = out.join("manifests");
    std::fs::create_dir_all(&dir)?;
    for m in &manifests {
        std::fs::write(dir.join(format!("{}.yml", m.app)), &m.yaml)?;
    }
    let mut stdout = std::io::stdout().lock();
    for i in &images {
        writeln!(stdout, "{} {} {}", i.name, i.tag, i.digest)?;
    }
    eprintln!(
        "archipelago-fixtures: {} images in {} ({:.2} s), manifests in {}",
        images.len(),
        out.display(),
        took.as_secs_f64(),
        dir.display()
    );
    Ok(())
}
