//! `archipelago-node`: throwaway test nodes for people. `up` starts a run —
//! its own network namespace, the registry, N nspawn nodes — prints how to
//! reach them and keeps them until Enter (or end of input); `cleanup`
//! removes what killed runs left behind.

#![allow(clippy::print_stdout)]

use anyhow::Context as _;
use archipelago_harness::network::{self, TestNetwork};
use archipelago_harness::node::Node;
use archipelago_harness::nspawn::NspawnNode;
use archipelago_harness::registry::Registry;
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
    },
    /// Remove namespaces, mounts and processes of runs whose process died.
    Cleanup,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Up { nodes, rootfs } => up(nodes, rootfs),
        Cmd::Cleanup => {
            let n = network::cleanup_stale_runs()?;
            println!("cleaned {n} stale run(s)");
            Ok(())
        }
    }
}

fn up(count: usize, rootfs: Option<PathBuf>) -> anyhow::Result<()> {
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
    for n in &nodes {
        println!("node {} at {}", n.name(), n.address());
    }
    println!(
        "reach them with: ip netns exec {} curl http://<node address>:<port>/",
        net.name()
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
