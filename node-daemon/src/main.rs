//! `archipelagod`: the node daemon's command line. Today it checks and
//! renders app manifests and manages the state file; the daemon loop and its
//! API arrive on top of the same library.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, bail};
use archipelago_api::RunState;
use archipelagod::layout::Layout;
use archipelagod::manifest::{self, Manifest, Strictness};
use archipelagod::quadlet::render_app;
use archipelagod::state::{StateError, StateStore};
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "archipelagod", version, about = "The Archipelago node daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check app manifests, alone and as one set of installed apps.
    Validate {
        /// Accept images pinned by tag only (apps under development).
        #[arg(long)]
        local: bool,
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Render app manifests into the Quadlet files the node would run.
    Render {
        #[arg(long)]
        local: bool,
        /// Home folder of the service user (paths inside the units).
        #[arg(long, default_value = "/var/lib/archipelago")]
        home: PathBuf,
        /// Render these app ids as stopped.
        #[arg(long = "stopped", value_name = "APP")]
        stopped: Vec<String>,
        /// Folder to write the files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Inspect or repair the node's state file.
    State {
        /// Home folder of the service user.
        #[arg(long, default_value = "/var/lib/archipelago")]
        home: PathBuf,
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Subcommand, Debug)]
enum StateAction {
    /// Print the installed apps and their run states.
    Show,
    /// Replace a corrupt state file by its last good backup (the corrupt
    /// file is kept aside).
    Recover,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The messages are written for people: no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate { local, manifests } => {
            let apps = load_all(&manifests, strictness(local))?;
            println!(
                "{} manifest(s) valid: {}",
                apps.len(),
                apps.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        Command::Render {
            local,
            home,
            stopped,
            out,
            manifests,
        } => {
            let apps = load_all(&manifests, strictness(local))?;
            let layout = Layout::under_home(&home);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for app in apps.values() {
                let run = if stopped.contains(&app.id) {
                    RunState::Stopped
                } else {
                    RunState::Running
                };
                for unit in render_app(app, run, |id| apps.get(id), &layout) {
                    let path = out.join(&unit.file_name);
                    std::fs::write(&path, &unit.contents)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{}", path.display());
                }
            }
        }
        Command::State { home, action } => {
            let store = StateStore::new(Layout::under_home(&home).state_file());
            match (action, store.load()) {
                (StateAction::Show, Ok(state)) => {
                    for (id, app) in &state.apps {
                        println!(
                            "{id}\t{}\t{:?}\t{}",
                            app.version,
                            app.run,
                            app.manifest.display()
                        );
                    }
                }
                (StateAction::Recover, Ok(_)) => {
                    println!("the state file is fine: nothing to recover");
                }
                (
                    StateAction::Recover,
                    Err(
                        StateError::Corrupt {
                            backup: Some(backup),
                            ..
                        }
                        | StateError::UnsupportedVersion {
                            backup: Some(backup),
                            ..
                        }
                        | StateError::Missing {
                            backup: Some(backup),
                            ..
                        },
                    ),
                ) => {
                    store.recover(&backup)?;
                    println!(
                        "restored the last good state ({} app(s)) from {}",
                        backup.apps.len(),
                        store.backup_path().display()
                    );
                }
                (_, Err(e)) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn strictness(local: bool) -> Strictness {
    if local {
        Strictness::Local
    } else {
        Strictness::Catalog
    }
}

/// Loads every manifest, then checks them as one set; reports all problems.
fn load_all(
    files: &[PathBuf],
    strictness: Strictness,
) -> anyhow::Result<BTreeMap<String, Manifest>> {
    let mut apps = BTreeMap::new();
    let mut paths: BTreeMap<String, &Path> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in files {
        match manifest::load(f, strictness) {
            Ok(m) => {
                if let Some(other) = paths.insert(m.id.clone(), f) {
                    problems.push(format!(
                        "{} and {} both define app `{}`",
                        other.display(),
                        f.display(),
                        m.id
                    ));
                }
                apps.insert(m.id.clone(), m);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Err(errors) = manifest::validate_set(
        apps.values()
            .filter_map(|m| paths.get(&m.id).map(|p| (*p, m))),
    ) {
        problems.extend(errors.iter().map(ToString::to_string));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(apps)
}
