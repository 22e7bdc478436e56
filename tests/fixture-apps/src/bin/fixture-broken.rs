//! `fixture-broken`: an app that fails on purpose, for the lifecycle tests
//! of failure.
//!
//! ```text
//! fixture-broken exit        prints a line and exits 3 at once
//! fixture-broken unhealthy   runs until killed
//! fixture-broken health      always fails (the health check of `unhealthy`)
//! ```

use std::process::ExitCode;
use std::time::Duration;

const PROGRAM: &str = "fixture-broken";
/// The exit status of `exit`: not 1, so a test can tell it from a crash.
const EXIT_STATUS: u8 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["exit"] => {
            eprintln!("{PROGRAM}: exiting on purpose");
            ExitCode::from(EXIT_STATUS)
        }
        ["unhealthy"] => {
            eprintln!("{PROGRAM}: running, and never healthy, on purpose");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        ["health"] => {
            eprintln!("{PROGRAM} health: unhealthy on purpose");
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("{PROGRAM}: usage: fixture-broken exit|unhealthy|health");
            ExitCode::from(2)
        }
    }
}
