//! `archipelago-node`: throwaway test nodes for people. `up` starts a run —
//! its own network namespace, the registry serving the fixture apps' images,
//! N nspawn nodes with the daemon's `.deb` installed, a password set and the
//! fixture apps in their catalog, and `archy` paired with each and logged in
//! — prints how to use them and keeps them until Enter (or end of input);
//! `cleanup` removes what killed runs left behind.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use archipelago_harness::catalog::{FIXTURE_CATALOG, TestCatalog};
use archipelago_harness::fixtures;
use archipelago_harness::network::{self, TestNetwork};
use archipelago_harness::node::Node;
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{install_deb, pairing_fingerprint, set_node_password};
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Command;

#[derive(Parser, Debug)]
#[command(name = "archipelago-node", about = "Throwaway Archipelago test nodes")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start a run with N nodes and the registry; stop it with Enter.
    Up {
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Node rootfs (default: build or reuse it with tests/node/build-rootfs.sh).
        #[arg(long)]
        rootfs: Option<PathBuf>,
        /// The `archy` binary to pair with the nodes.
        #[arg(long)]
        archy: Option<PathBuf>,
    },
    /// Remove namespaces, mounts and processes of runs whose process died.
    Cleanup,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Up {
            nodes,
            rootfs,
            archy,
        } => up(nodes, rootfs, archy),
        Cmd::Cleanup => {
            let n = network::cleanup_stale_runs()?;
            println!("cleaned {n} stale run(s)");
            Ok(())
        }
    }
}

/// Runs a command and fails with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().context("running a command")?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A password for a demo node: 16 random bytes in hex.
fn random_password() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Installs the `.deb` on `n`, sets a password, fills its catalog with the
/// fixture apps, pairs `archy` with it and logs in; prints how to reach it.
fn set_up_node(
    net: &TestNetwork,
    n: &NspawnNode,
    images: &[fixtures::BuiltImage],
    archy: &std::path::Path,
    config: &std::path::Path,
) -> anyhow::Result<()> {
    let password = random_password()?;
    install_deb(n)?;
    set_node_password(n, &password)?;
    // The fixture apps as a signed community catalog (throwaway key).
    let mut catalog = TestCatalog::new(&net.dir().join(format!("catalog-{}", n.name())))?;
    for m in fixtures::load_manifests(images, &Registry::address())? {
        catalog.add(&m.manifest.id, &m.yaml);
    }
    catalog.publish(n, FIXTURE_CATALOG)?;
    let fingerprint = archipelago_api::rpc::format_fingerprint(&pairing_fingerprint(n)?);
    let address = n.port(archipelago_api::rpc::DEFAULT_PORT).to_string();
    let archy_at = |args: &[&str]| {
        let mut c = net.command(&archy.to_string_lossy());
        c.arg("--config-dir")
            .arg(config)
            .arg("--node")
            .arg(n.name());
        c.args(args);
        c
    };
    let mut pair = net.command(&archy.to_string_lossy());
    pair.arg("--config-dir").arg(config).args([
        "pair",
        &address,
        "--name",
        n.name(),
        "--fingerprint",
        &fingerprint,
    ]);
    run_ok(&mut pair)?;
    let mut login = archy_at(&["login", "--password-stdin"]);
    login
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = login.spawn().context("running archy login")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}")?;
    }
    anyhow::ensure!(child.wait()?.success(), "archy login failed");
    println!(
        "node {} at {} — API https://{address} (certificate {fingerprint}), password {password}",
        n.name(),
        n.address()
    );
    Ok(())
}

fn up(count: usize, rootfs: Option<PathBuf>, archy: Option<PathBuf>) -> anyhow::Result<()> {
    let rootfs = if let Some(r) = rootfs {
        r
    } else {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../node/build-rootfs.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .context("running build-rootfs.sh")?;
        anyhow::ensure!(
            out.status.success(),
            "build-rootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout)?.trim())
    };
    let net = TestNetwork::create()?;
    let registry = Registry::start(&net)?;
    let mut nodes = Vec::new();
    for i in 1..=count {
        nodes.push(NspawnNode::boot_new(&net, &rootfs, i)?);
    }
    println!("ready: run {} ({})", net.name(), net.dir().display());
    println!(
        "registry {} (log {})",
        Registry::address(),
        net.dir().join("registry/registry.log").display()
    );
    let images = fixtures::build_all(&net.dir().join("images"))?;
    for i in &images {
        registry.push_oci(&i.oci_dir, &i.tag, &format!("archipelago/{}", i.name))?;
    }
    let archy = archy.context("--archy is needed to pair the nodes")?;
    let config = net.dir().join("archy");
    for n in &nodes {
        set_up_node(&net, n, &images, &archy, &config)?;
    }
    println!(
        "archy is paired with every node and logged in; try:\n  ip netns exec {ns} {archy} --config-dir {cfg} catalog\n  ip netns exec {ns} {archy} --config-dir {cfg} install hello-web\n  ip netns exec {ns} curl http://{first}:8080/",
        ns = net.name(),
        archy = archy.display(),
        cfg = config.display(),
        first = nodes
            .first()
            .map(|n| n.address().to_string())
            .unwrap_or_default(),
    );
    println!("press Enter to stop and remove everything");
    std::io::stdout().flush()?;
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    drop(nodes);
    drop(registry);
    drop(net);
    Ok(())
}
