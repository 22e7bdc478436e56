//! Shows a long operation's stream events (install, update, uninstall,
//! backup, restore) while it runs: a progress bar on a terminal (phase,
//! images pulled of all — or bytes copied of all while a backup or restore
//! copies data — and the node's message), one line per phase when stderr
//! is not a terminal, and the events themselves as JSON lines on stderr
//! with `--json` (stdout stays for the result). [`TransferView`] is the bar
//! of a backup copied to or from the node.

use std::io::IsTerminal;
use std::time::Duration;

use archipelago_api::methods::{InstallProgress, Phase};
use archipelago_api::rpc::StreamEvent;
use indicatif::{ProgressBar, ProgressStyle};

/// Phase, bar of images pulled, count, and the latest message.
const BAR_TEMPLATE: &str = "{spinner} {prefix:<12} [{bar:24}] {pos}/{len} images  {wide_msg}";
/// Phase, bar of bytes copied, and the latest message.
const BYTES_TEMPLATE: &str = "{spinner} {prefix:<12} [{bar:24}] {bytes}/{total_bytes}  {wide_msg}";
/// Phase and bytes copied when the total is not known.
const BYTES_UNKNOWN_TEMPLATE: &str = "{spinner} {prefix:<12} {bytes}  {wide_msg}";
/// A backup being copied: bytes, speed and time left.
const TRANSFER_TEMPLATE: &str =
    "{spinner} {prefix:<12} [{bar:24}] {bytes}/{total_bytes}  {bytes_per_sec}  {eta}";

/// The display of one operation's events.
#[derive(Debug)]
pub struct ProgressView {
    mode: Mode,
    last_phase: Option<Phase>,
    /// The template the bar has now.
    template: &'static str,
}

#[derive(Debug)]
enum Mode {
    Json,
    Bar(ProgressBar),
    Lines,
}

impl ProgressView {
    pub fn new(json: bool) -> Self {
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            set_template(&bar, BAR_TEMPLATE);
            bar.set_prefix("starting");
            bar.enable_steady_tick(Duration::from_millis(120));
            Mode::Bar(bar)
        } else {
            Mode::Lines
        };
        Self {
            mode,
            last_phase: None,
            template: BAR_TEMPLATE,
        }
    }

    pub fn event(&mut self, event: &StreamEvent) {
        match (&self.mode, event) {
            (Mode::Json, _) => {
                if let Ok(text) = serde_json::to_string(event) {
                    eprintln!("{text}");
                }
            }
            (Mode::Bar(bar), StreamEvent::Progress(p)) => {
                let template = template_for(p);
                if template != self.template {
                    set_template(bar, template);
                    self.template = template;
                }
                bar.set_prefix(phase_name(p.phase));
                if template == BAR_TEMPLATE {
                    bar.set_length(u64::from(p.images_total));
                    bar.set_position(u64::from(p.images_done));
                } else {
                    bar.set_length(p.bytes_total);
                    bar.set_position(p.bytes_done);
                }
                bar.set_message(message(p));
            }
            (Mode::Lines, StreamEvent::Progress(p)) => {
                if self.last_phase != Some(p.phase) {
                    eprintln!("{}: {}", phase_name(p.phase), p.message);
                }
            }
            (Mode::Bar(bar), StreamEvent::Log(l)) => {
                bar.println(format!("{} | {}", l.container, l.text));
            }
            (Mode::Lines, StreamEvent::Log(l)) => eprintln!("{} | {}", l.container, l.text),
        }
        if let StreamEvent::Progress(p) = event {
            self.last_phase = Some(p.phase);
        }
    }

    /// Removes the bar (the result is printed after).
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

fn set_template(bar: &ProgressBar, template: &str) {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
}

/// Bytes while data is copied (a backup, a restore), images otherwise.
const fn template_for(p: &InstallProgress) -> &'static str {
    let copying = matches!(
        p.phase,
        Phase::Archiving | Phase::Verifying | Phase::Restoring
    );
    if p.bytes_total > 0 {
        BYTES_TEMPLATE
    } else if p.bytes_done > 0 || copying {
        BYTES_UNKNOWN_TEMPLATE
    } else {
        BAR_TEMPLATE
    }
}

/// The bar of a backup copied between this computer and the node: only on
/// a terminal, and not with `--json` (a transfer has no events to print).
#[derive(Debug)]
pub struct TransferView {
    bar: Option<ProgressBar>,
}

impl TransferView {
    /// `verb`: `downloading`, `uploading`.
    pub fn new(json: bool, verb: &'static str) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            set_template(&bar, TRANSFER_TEMPLATE);
            bar.set_prefix(verb);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar }
    }

    pub fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Removes the bar (the result is printed after).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn message(p: &InstallProgress) -> String {
    match (&p.image, p.phase) {
        (Some(image), Phase::Pulling) => {
            format!(
                "{} ({} blobs) {}",
                short_image(image),
                p.blobs_seen,
                p.message
            )
        }
        _ => p.message.clone(),
    }
}

/// `registry/name@sha256:abcdef…` → `name@sha256:abcdef123456`.
fn short_image(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.split_once("@sha256:") {
        Some((repo, digest)) => format!("{repo}@{}", &digest[..digest.len().min(12)]),
        None => name.to_owned(),
    }
}

pub const fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Validating => "validating",
        Phase::Pulling => "pulling",
        Phase::Starting => "starting",
        Phase::Healthy => "healthy",
        Phase::RollingBack => "rolling back",
        Phase::Stopping => "stopping",
        Phase::Removing => "removing",
        Phase::Done => "done",
        Phase::Snapshotting => "snapshotting data",
        Phase::Switching => "switching versions",
        Phase::Archiving => "archiving",
        Phase::Verifying => "verifying",
        Phase::Restoring => "restoring",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_templates_are_valid() {
        for t in [
            BAR_TEMPLATE,
            BYTES_TEMPLATE,
            BYTES_UNKNOWN_TEMPLATE,
            TRANSFER_TEMPLATE,
        ] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn copying_data_shows_bytes() {
        let mut p = InstallProgress {
            id: "a".into(),
            phase: Phase::Archiving,
            image: None,
            images_done: 0,
            images_total: 0,
            blobs_seen: 0,
            message: "archiving volume data".into(),
            bytes_done: 0,
            bytes_total: 0,
        };
        assert_eq!(template_for(&p), BYTES_UNKNOWN_TEMPLATE);
        p.phase = Phase::Pulling;
        assert_eq!(template_for(&p), BAR_TEMPLATE);
        p.bytes_done = 10;
        assert_eq!(template_for(&p), BYTES_UNKNOWN_TEMPLATE);
        p.bytes_total = 100;
        assert_eq!(template_for(&p), BYTES_TEMPLATE);
    }

    #[test]
    fn images_are_shown_short() {
        assert_eq!(
            short_image("10.0.0.1:5000/apps/hello@sha256:0123456789abcdef0123"),
            "hello@0123456789ab"
        );
        assert_eq!(short_image("hello:1.0"), "hello:1.0");
    }

    #[test]
    fn the_pull_message_names_image_and_blobs() {
        let p = InstallProgress {
            id: "a".into(),
            phase: Phase::Pulling,
            image: Some("r/x@sha256:ffffffffffffffff".into()),
            images_done: 0,
            images_total: 1,
            blobs_seen: 3,
            message: "Copying blob 3f1e".into(),
            bytes_done: 0,
            bytes_total: 0,
        };
        assert_eq!(message(&p), "x@ffffffffffff (3 blobs) Copying blob 3f1e");
    }
}
