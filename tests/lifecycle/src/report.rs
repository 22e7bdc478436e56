//! The release gate's report: what a gate run found, as JSON
//! (`results.json`, written by the run, read back here) and as the
//! `report.md` and `report.html` a release is judged by — per suite the
//! app × state table (✔/✘, passes out of runs, median time), the timings
//! per state (median and max over every app and iteration), each red
//! cell's reason, then the sections the gate script adds (desktop E2E,
//! benchmarks, artifacts). Pure: text in, text out.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One gate run, as `archipelago-gate run` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub version: String,
    pub commit: String,
    /// When the run began, UTC (`2026-11-28 01:02:03 UTC`).
    pub started: String,
    pub iterations: u32,
    /// The nodes' part of the run (every suite, both nodes at once).
    pub wall_secs: f64,
    pub nodes: Vec<NodeInfo>,
    pub suites: Vec<Suite>,
    /// Why a suite stopped before its end, one line each.
    pub stopped: Vec<String>,
}

/// A node of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    /// `nspawn` or `vm`.
    pub kind: String,
    /// `uname -r` in the node.
    pub kernel: String,
}

/// One app × state table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    pub node: String,
    pub states: Vec<String>,
    pub apps: Vec<String>,
    pub cells: Vec<CellRuns>,
}

/// Every run of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRuns {
    pub app: String,
    pub state: String,
    pub runs: Vec<Run>,
}

/// One run of a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub ok: bool,
    pub secs: f64,
    /// Why it failed; empty when it passed.
    pub detail: String,
}

impl Results {
    /// Green: at least one cell, every run of every cell passed, and no
    /// suite stopped early.
    pub fn green(&self) -> bool {
        let mut any = false;
        for c in self.suites.iter().flat_map(|s| &s.cells) {
            any = true;
            if c.runs.iter().any(|r| !r.ok) {
                return false;
            }
        }
        any && self.stopped.is_empty()
    }
}

/// A section the gate script adds below the tables, in Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub markdown: String,
}

/// The longest failure reason shown in a report.
const DETAIL_CHARS: usize = 700;

/// `report.md`: verdict, nodes, the tables, timings, failures, then
/// `sections`. `gate_secs` is the whole gate's wall time (builds, nodes,
/// desktop E2E, benchmarks), which only `release/gate` knows. `failed`
/// names gate stages outside the tables that failed (the desktop E2E, a
/// build); any makes the verdict red.
pub fn markdown(
    r: &Results,
    gate_secs: Option<f64>,
    failed: &[String],
    sections: &[Section],
) -> String {
    let green = r.green() && failed.is_empty();
    let mut out = String::new();
    let _ = writeln!(out, "# Archipelago {} — release gate\n", r.version);
    let _ = writeln!(
        out,
        "**Verdict: {}** · commit `{}` · started {} · {} iteration{} · nodes' wall time {}{}\n",
        if green {
            "✔ PASSED"
        } else {
            "✘ FAILED — no artifacts"
        },
        r.commit,
        r.started,
        r.iterations,
        if r.iterations == 1 { "" } else { "s" },
        duration(r.wall_secs),
        gate_secs
            .map(|g| format!(" · whole gate {}", duration(g)))
            .unwrap_or_default()
    );
    for f in failed {
        let _ = writeln!(out, "- ✘ {f}");
    }
    for s in &r.stopped {
        let _ = writeln!(out, "- ✘ stopped: {}", one_line(s));
    }
    if !failed.is_empty() || !r.stopped.is_empty() {
        out.push('\n');
    }
    out.push_str("## Nodes\n\n| node | kind | kernel |\n|---|---|---|\n");
    for n in &r.nodes {
        let _ = writeln!(out, "| {} | {} | {} |", n.name, n.kind, n.kernel);
    }
    for suite in &r.suites {
        let _ = writeln!(out, "\n## {} ({})\n", suite.name, suite.node);
        table(&mut out, suite);
    }
    out.push_str("\n## Timings per state\n\nOver every app and iteration of the suite.\n\n| suite | state | runs | median | max |\n|---|---|---|---|---|\n");
    for suite in &r.suites {
        for state in &suite.states {
            let mut secs: Vec<f64> = suite
                .cells
                .iter()
                .filter(|c| &c.state == state)
                .flat_map(|c| c.runs.iter().map(|r| r.secs))
                .collect();
            if secs.is_empty() {
                continue;
            }
            secs.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                suite.name,
                cell_text(state),
                secs.len(),
                duration(median(&secs)),
                duration(secs[secs.len() - 1])
            );
        }
    }
    let failures: Vec<String> = r
        .suites
        .iter()
        .flat_map(|s| {
            s.cells.iter().flat_map(move |c| {
                c.runs
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.ok)
                    .map(move |(i, run)| {
                        format!(
                            "- ✘ **{} / {} / {}**, run {}: {}",
                            s.name,
                            cell_text(&c.app),
                            cell_text(&c.state),
                            i + 1,
                            one_line(&run.detail)
                        )
                    })
            })
        })
        .collect();
    out.push_str("\n## Failures\n\n");
    if failures.is_empty() {
        out.push_str("None.\n");
    } else {
        for f in failures {
            let _ = writeln!(out, "{f}");
        }
    }
    for s in sections {
        let _ = writeln!(out, "\n## {}\n\n{}", s.title, s.markdown.trim_end());
    }
    out
}

/// One suite's app × state table.
fn table(out: &mut String, suite: &Suite) {
    out.push_str("| state |");
    for app in &suite.apps {
        let _ = write!(out, " {} |", cell_text(app));
    }
    out.push_str("\n|---|");
    for _ in &suite.apps {
        out.push_str("---|");
    }
    out.push('\n');
    for state in &suite.states {
        let _ = write!(out, "| {} |", cell_text(state));
        for app in &suite.apps {
            match suite
                .cells
                .iter()
                .find(|c| &c.app == app && &c.state == state)
            {
                Some(c) if !c.runs.is_empty() => {
                    let ok = c.runs.iter().filter(|r| r.ok).count();
                    let mut secs: Vec<f64> = c.runs.iter().map(|r| r.secs).collect();
                    secs.sort_by(f64::total_cmp);
                    let mark = if ok == c.runs.len() { "✔" } else { "✘" };
                    let _ = write!(
                        out,
                        " {mark} {ok}/{} · {} |",
                        c.runs.len(),
                        duration(median(&secs))
                    );
                }
                _ => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
}

/// The middle of sorted `v`.
fn median(v: &[f64]) -> f64 {
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// `0.42 s`, `12.3 s`, `4 min 05 s`.
fn duration(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else {
        let whole = secs.round();
        let m = (whole / 60.0).floor();
        format!("{m:.0} min {:02.0} s", whole - m * 60.0)
    }
}

/// Text safe inside a Markdown table cell.
fn cell_text(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A failure reason on one line, cut to [`DETAIL_CHARS`], without the
/// terminal escapes a serial console's log carries.
fn one_line(s: &str) -> String {
    let flat = without_escapes(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut cut: String = flat.chars().take(DETAIL_CHARS).collect();
    if cut.len() < flat.len() {
        cut.push_str(" …");
    }
    cut_text_for_markdown(&cut)
}

/// `s` without ANSI escape sequences (`ESC [ … letter`, `ESC ] … BEL`)
/// and other control characters but whitespace.
pub(crate) fn without_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for n in chars.by_ref() {
                        if n.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for n in chars.by_ref() {
                        if n == '\u{7}' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            c if c.is_control() && !c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Keeps a reason from opening Markdown markup of its own.
fn cut_text_for_markdown(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;")
}

/// `report.html`: the Markdown report as one self-contained page (its own
/// style, no script, nothing fetched), ✔ in green and ✘ in red.
pub fn html(markdown: &str, title: &str) -> String {
    use pulldown_cmark::{Options, Parser, html::push_html};
    let mut body = String::new();
    push_html(&mut body, Parser::new_ext(markdown, Options::ENABLE_TABLES));
    let body = body
        .replace('✔', "<span class=\"ok\">✔</span>")
        .replace('✘', "<span class=\"bad\">✘</span>");
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

const STYLE: &str = "body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } tr:nth-child(even) td { background: #fafbfc; }
td:first-child { font-weight: 600; }
.ok { color: #1a7f37; font-weight: 700; } .bad { color: #cf222e; font-weight: 700; }
code { background: #f3f5f7; padding: 0 .25rem; border-radius: 3px; }
li { margin: .2rem 0; }
";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(ok: bool, secs: f64) -> Run {
        Run {
            ok,
            secs,
            detail: if ok {
                String::new()
            } else {
                "hello-web_web.service failed | exit 1\nsee the log".into()
            },
        }
    }

    fn results(red: bool) -> Results {
        Results {
            version: "0.1.0".into(),
            commit: "abc1234".into(),
            started: "2026-11-28 01:00:00 UTC".into(),
            iterations: 2,
            wall_secs: 754.4,
            nodes: vec![NodeInfo {
                name: "node-1".into(),
                kind: "nspawn".into(),
                kernel: "6.12.0".into(),
            }],
            suites: vec![Suite {
                name: "lifecycle".into(),
                node: "node-1".into(),
                states: vec!["install → healthy".into(), "restart".into()],
                apps: vec!["hello-web".into(), "fixture-chain".into()],
                cells: vec![
                    CellRuns {
                        app: "hello-web".into(),
                        state: "install → healthy".into(),
                        runs: vec![run(true, 1.5), run(true, 2.5)],
                    },
                    CellRuns {
                        app: "hello-web".into(),
                        state: "restart".into(),
                        runs: vec![run(true, 0.8), run(!red, 31.0)],
                    },
                    CellRuns {
                        app: "fixture-chain".into(),
                        state: "install → healthy".into(),
                        runs: vec![run(true, 3.0)],
                    },
                ],
            }],
            stopped: Vec::new(),
        }
    }

    fn golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(actual, expected, "{name} differs from its golden file");
    }

    #[test]
    fn a_green_run_reads_as_passed_with_every_table() {
        let r = results(false);
        assert!(r.green());
        let md = markdown(
            &r,
            Some(1890.0),
            &[],
            &[Section {
                title: "Desktop E2E".into(),
                markdown: "✔ passed in 98 s\n".into(),
            }],
        );
        golden("report-green.md", &md);
        golden(
            "report-green.html",
            &html(&md, "Archipelago 0.1.0 — release gate"),
        );
    }

    #[test]
    fn a_red_cell_makes_the_verdict_red_and_shows_its_reason() {
        let r = results(true);
        assert!(!r.green());
        let md = markdown(&r, None, &[], &[]);
        golden("report-red.md", &md);
        assert!(md.contains("✘ FAILED — no artifacts"));
        assert!(md.contains("| restart | ✘ 1/2 · 31.0 s |"), "{md}");
        // The reason stays on one line and cannot break the table.
        assert!(md.contains("run 2: hello-web_web.service failed \\| exit 1 see the log"));
    }

    #[test]
    fn a_failed_stage_or_a_stopped_suite_is_red_too() {
        let mut r = results(false);
        let md = markdown(&r, None, &["desktop E2E journey failed".into()], &[]);
        assert!(md.contains("✘ FAILED") && md.contains("- ✘ desktop E2E journey failed"));
        r.stopped.push("vm: stopped before hello-web / stop".into());
        assert!(!r.green());
        let empty = Results {
            suites: Vec::new(),
            ..results(false)
        };
        assert!(!empty.green(), "a run with no cell is not green");
    }

    #[test]
    fn results_survive_json() {
        let r = results(true);
        let back: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_serial_console_in_a_reason_loses_its_escapes() {
        let raw =
            "console: \u{1b}[!p\u{1b}]104\u{7}\u{1b}[?7h[ 841.5] reboot\r\n\u{1b}[6n node login:";
        assert_eq!(one_line(raw), "console: [ 841.5] reboot node login:");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.4213), "0.42 s");
        assert_eq!(duration(12.34), "12.3 s");
        assert_eq!(duration(245.0), "4 min 05 s");
    }
}
