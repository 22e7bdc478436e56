//! Shows a long operation's stream events (install, uninstall) while it
//! runs: a progress bar on a terminal (phase, images pulled of all, blobs
//! seen, the node's message), one line per phase when stderr is not a
//! terminal, and the events themselves as JSON lines on stderr with
//! `--json` (stdout stays for the result).

use std::io::IsTerminal;
use std::time::Duration;

use archipelago_api::methods::{InstallProgress, Phase};
use archipelago_api::rpc::StreamEvent;
use indicatif::{ProgressBar, ProgressStyle};

/// Phase, bar of images pulled, count, and the latest message.
const BAR_TEMPLATE: &str = "{spinner} {prefix:<12} [{bar:24}] {pos}/{len} images  {wide_msg}";

/// The display of one operation's events.
#[derive(Debug)]
pub struct ProgressView {
    mode: Mode,
    last_phase: Option<Phase>,
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
            if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix("starting");
            bar.enable_steady_tick(Duration::from_millis(120));
            Mode::Bar(bar)
        } else {
            Mode::Lines
        };
        Self {
            mode,
            last_phase: None,
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
                bar.set_prefix(phase_name(p.phase));
                bar.set_length(u64::from(p.images_total));
                bar.set_position(u64::from(p.images_done));
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
    fn the_bar_template_is_valid() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
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
