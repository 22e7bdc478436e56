//! The release gate's test run and report (driven by `release/gate`).
//!
//! `archipelago-gate run --out DIR` boots, in one network namespace with
//! one registry, an nspawn node and a qemu VM node, each with the daemon's
//! `.deb`, and runs on both at once the lifecycle matrix `ARCHY_ITERATIONS`
//! times (default 20); on nspawn nodes also, per iteration, the updates,
//! rollbacks, backups and restores on a fresh node pair, then the matrix's
//! once-only cases and the chaos cases. The first red cell stops every
//! suite. Writes `DIR/results.json` (and the daemons' logs when red) and
//! exits non-zero unless every cell passed.
//!
//! `archipelago-gate report --dir DIR [--failed TEXT]… [--gate-secs N]`
//! renders `DIR/report.md` and `DIR/report.html` from `results.json`, the
//! whole gate's wall time `N` (seconds) when given, and the
//! Markdown sections in `DIR/sections/` (file name order; the first line,
//! `# Title`, is the section's title).
//!
//! `ARCHY_GATE_BREAK=hello-web-3rd-start` publishes a hello-web that fails
//! at its third start: the gate must then go red.

#![allow(clippy::print_stderr, clippy::print_stdout)]

use anyhow::{Context as _, Result, bail};
use archipelago_harness::node::RunAs;
use archipelago_harness::testing::nothing_left;
use archipelago_lifecycle::report::{self, NodeInfo, Results, Section, Suite};
use archipelago_lifecycle::{
    Lab, Matrix, NodeKind, Site, SuiteFuture, cells, chaos, iterations_or, updates,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const USAGE: &str = "usage: archipelago-gate run --out DIR [--only SUITE]...
       archipelago-gate report --dir DIR [--failed TEXT]... [--gate-secs N]
suites: lifecycle, updates, chaos (nspawn), vm (all by default; a release runs all)";
const SUITES: [&str; 4] = ["lifecycle", "updates", "chaos", "vm"];
/// Iterations when `ARCHY_ITERATIONS` is not set.
const DEFAULT_ITERATIONS: u32 = 20;
const BREAK_ENV: &str = "ARCHY_GATE_BREAK";
const BREAK_HELLO: &str = "hello-web-3rd-start";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("run") => flag(&args, "--out").and_then(|out| {
            let only = values(&args, "--only");
            if let Some(bad) = only.iter().find(|o| !SUITES.contains(&o.as_str())) {
                bail!("no suite {bad:?}\n{USAGE}");
            }
            let wanted = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
            run(&out, &wanted)
        }),
        Some("report") => flag(&args, "--dir").and_then(|dir| {
            let failed = values(&args, "--failed");
            let gate_secs =
                match values(&args, "--gate-secs").first() {
                    Some(n) => Some(n.parse::<f64>().with_context(|| {
                        format!("--gate-secs wants seconds, not {n:?}\n{USAGE}")
                    })?),
                    None => None,
                };
            render(&dir, &failed, gate_secs).map(|()| true)
        }),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("archipelago-gate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str) -> Result<PathBuf> {
    values(args, name)
        .into_iter()
        .next()
        .map(PathBuf::from)
        .with_context(|| format!("{name} is missing\n{USAGE}"))
}

fn values(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

/// What one node's thread of the run produced.
struct Outcome {
    suites: Vec<Suite>,
    nodes: Vec<NodeInfo>,
    stopped: Vec<String>,
    /// (file name, contents) of the logs of a node whose suite failed.
    logs: Vec<(String, String)>,
}

impl Outcome {
    fn new() -> Self {
        Self {
            suites: Vec::new(),
            nodes: Vec::new(),
            stopped: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Records `lab`'s node, and its daemon's log when `failed`.
    fn node(&mut self, lab: &Lab, failed: bool) {
        let node = lab.node();
        let kernel = node
            .exec(RunAs::Root, &["uname", "-r"])
            .map(|o| o.stdout.trim().to_owned())
            .unwrap_or_default();
        self.nodes.push(NodeInfo {
            name: node.name().to_owned(),
            kind: lab.kind.label().to_owned(),
            kernel,
        });
        drop(node);
        if failed {
            let name = lab.node().name().to_owned();
            self.logs
                .push((format!("{name}-archipelagod.log"), lab.daemon_log()));
            self.logs
                .push((format!("{name}-journal.log"), lab.journal(3000)));
        }
    }

    /// Runs `suite` on a lab made by `make`, recording its table, node and
    /// why it stopped.
    fn suite(
        &mut self,
        name: &str,
        m: &mut Matrix,
        make: impl FnOnce() -> Result<Lab>,
        suite: impl for<'a> FnOnce(&'a Lab, &'a mut Matrix) -> SuiteFuture<'a>,
    ) -> bool {
        let lab = match make() {
            Ok(lab) => lab,
            Err(e) => {
                self.stopped
                    .push(format!("{name}: the node did not come up: {e:#}"));
                return false;
            }
        };
        let ok = match lab.block_on(suite(&lab, m)) {
            Ok(Ok(())) => true,
            Ok(Err(e)) | Err(e) => {
                eprintln!("gate: {name} stopped: {e:#}");
                self.stopped.push(format!("{name}: {e:#}"));
                false
            }
        };
        self.node(&lab, !ok);
        ok
    }
}

fn nspawn_thread(
    site: &Arc<Site>,
    n: u32,
    stop: &Arc<AtomicBool>,
    broken: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Outcome {
    let mut out = Outcome::new();
    let mut lifecycle = Matrix::labelled("nspawn", Arc::clone(stop));
    let ok = !wanted("lifecycle")
        || out.suite(
            "lifecycle (nspawn)",
            &mut lifecycle,
            || {
                let lab = Lab::on(Arc::clone(site), NodeKind::Nspawn, 1)?;
                if broken {
                    cells::break_hello_web_at_third_start(&lab)?;
                }
                Ok(lab)
            },
            |lab, m| Box::pin(cells::run(lab, n, m)),
        );
    out.suites.push(
        lifecycle.suite(
            "lifecycle · nspawn",
            &out.nodes
                .last()
                .map_or_else(String::new, |n| n.name.clone()),
        ),
    );
    if !ok {
        return out;
    }
    let mut upd = Matrix::labelled("nspawn updates", Arc::clone(stop));
    let mut all = true;
    for i in (1..=n).filter(|_| wanted("updates")) {
        upd.label = format!("nspawn updates {i}/{n}");
        let index = 10 + usize::try_from(i).unwrap_or(usize::MAX - 20);
        all = out.suite(
            &format!("updates and backups, iteration {i}"),
            &mut upd,
            || Lab::on(Arc::clone(site), NodeKind::Nspawn, index),
            |lab, m| Box::pin(updates::run(lab, index + 40, m)),
        );
        if !all {
            break;
        }
    }
    out.suites.push(upd.suite(
        "updates and backups",
        "fresh nspawn node pairs, one per iteration",
    ));
    if !all || !wanted("chaos") {
        return out;
    }
    let mut ch = Matrix::labelled("nspawn chaos", Arc::clone(stop));
    out.suite(
        "chaos",
        &mut ch,
        || Lab::on(Arc::clone(site), NodeKind::Nspawn, 3),
        |lab, m| Box::pin(chaos::run(lab, m)),
    );
    let node = out
        .nodes
        .last()
        .map_or_else(String::new, |n| n.name.clone());
    out.suites.push(ch.suite("chaos · nspawn", &node));
    out
}

fn vm_thread(site: &Arc<Site>, n: u32, stop: &Arc<AtomicBool>, broken: bool) -> Outcome {
    let mut out = Outcome::new();
    let mut m = Matrix::labelled("vm", Arc::clone(stop));
    out.suite(
        "lifecycle (vm)",
        &mut m,
        || {
            let lab = Lab::on(Arc::clone(site), NodeKind::Vm, 2)?;
            if broken {
                cells::break_hello_web_at_third_start(&lab)?;
            }
            Ok(lab)
        },
        |lab, m| Box::pin(cells::run_iterations(lab, n, m)),
    );
    let node = out
        .nodes
        .last()
        .map_or_else(String::new, |n| n.name.clone());
    out.suites.push(m.suite("lifecycle · vm", &node));
    out
}

fn run(out_dir: &Path, wanted: &(dyn Fn(&str) -> bool + Sync)) -> Result<bool> {
    let n = iterations_or(DEFAULT_ITERATIONS)?;
    let broken = match std::env::var(BREAK_ENV) {
        Ok(v) if v == BREAK_HELLO => true,
        Ok(v) => bail!("{BREAK_ENV}={v:?}: the one known breakage is {BREAK_HELLO}"),
        Err(_) => false,
    };
    std::fs::create_dir_all(out_dir)?;
    let started = utc_now();
    let wall = Instant::now();
    eprintln!(
        "gate: {n} iteration(s) on an nspawn node and a VM node{}",
        if broken {
            ", hello-web broken on purpose"
        } else {
            ""
        }
    );
    let site = Site::start()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (a, b) = std::thread::scope(|s| {
        let vm = s.spawn(|| {
            if wanted("vm") {
                vm_thread(&site, n, &stop, broken)
            } else {
                Outcome::new()
            }
        });
        let ns = nspawn_thread(&site, n, &stop, broken, wanted);
        (ns, vm.join())
    });
    let b = b.unwrap_or_else(|_| {
        let mut o = Outcome::new();
        o.stopped.push("vm: its thread panicked".into());
        o
    });
    drop(site);
    let mut results = Results {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: std::env::var("ARCHY_GATE_COMMIT").unwrap_or_else(|_| "unknown".into()),
        started,
        iterations: n,
        wall_secs: 0.0,
        nodes: Vec::new(),
        suites: Vec::new(),
        stopped: Vec::new(),
    };
    let logs = out_dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    for o in [a, b] {
        results.nodes.extend(o.nodes);
        results
            .suites
            .extend(o.suites.into_iter().filter(|s| !s.cells.is_empty()));
        results.stopped.extend(o.stopped);
        for (file, log) in o.logs {
            std::fs::create_dir_all(&logs)?;
            std::fs::write(logs.join(file), log)?;
        }
    }
    if let Err(e) = nothing_left() {
        results
            .stopped
            .push(format!("the run left things behind: {e}"));
    }
    results.wall_secs = wall.elapsed().as_secs_f64();
    std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    println!("{}", report::markdown(&results, None, &[], &[]));
    Ok(results.green())
}

/// Writes `report.md` and `report.html` in `dir`.
fn render(dir: &Path, failed: &[String], gate_secs: Option<f64>) -> Result<()> {
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let results: Results =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut sections = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("sections"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(f)?;
        let (title, body) = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("# ") => (first[2..].trim(), rest),
            _ => bail!("{}: its first line must be `# Title`", f.display()),
        };
        sections.push(Section {
            title: title.to_owned(),
            markdown: body.trim_start().to_owned(),
        });
    }
    let md = report::markdown(&results, gate_secs, failed, &sections);
    std::fs::write(dir.join("report.md"), &md)?;
    let title = format!("Archipelago {} — release gate", results.version);
    std::fs::write(dir.join("report.html"), report::html(&md, &title))?;
    Ok(())
}

/// Now, as `2026-11-28 01:02:03 UTC`.
fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
