//! The command line: every command, flag and its help, in one place, so that
//! `archy --help` is the reference and the parsing is clap's (a usage error
//! exits with 2 before anything else runs).

use std::path::PathBuf;

use archipelago_api::methods::LogsParams;
use clap::{Parser, Subcommand};

/// The exit codes, as `archy --help` shows them; `main.rs` documents the
/// same list.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (stable, for scripts):
  0  success
  1  any other error (configuration, unknown node, an answer archy does not understand, …)
  2  usage error: bad command, flag or argument
  3  the node is unreachable or busy, did not answer in time, or TLS with it failed
  4  not logged in, session expired, login failed, or too many failed logins
  5  the node's certificate is not the pinned one, or not the one given to `pair`
  6  the app operation failed (install failed, app not installed, dependency missing, …)

With --json, the result goes to stdout as JSON and an error to stderr as
{\"code\": <API code or null>, \"name\": \"<snake_case name>\", \"message\": \"…\"}.";

#[derive(Debug, Parser)]
#[command(
    name = "archy",
    version,
    about = "Manage Archipelago nodes from a terminal: pair, log in, install and run apps",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// The paired node to talk to [default: the only, or first paired, node]
    #[arg(long, global = true, env = "ARCHY_NODE", value_name = "NAME")]
    pub node: Option<String>,

    /// Machine output: results as JSON on stdout, errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,

    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help = "Where pairings and sessions are kept [default: $XDG_CONFIG_HOME/archy or ~/.config/archy]"
    )]
    pub config_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pair with a node: read its certificate's fingerprint, have it confirmed, remember the node
    Pair {
        #[arg(help = "host, host:port or [v6]:port (the port is 7443 unless given)")]
        address: String,
        /// The name to use with --node [default: the host]
        #[arg(long)]
        name: Option<String>,
        /// The fingerprint the node shows (`archipelagod pairing`); anything else is refused
        #[arg(long, value_parser = parse_fingerprint, value_name = "SHA256", conflicts_with = "yes")]
        fingerprint: Option<[u8; 32]>,
        /// Trust the presented certificate without asking
        #[arg(long)]
        yes: bool,
        /// Pair again a name already paired with another address or certificate
        #[arg(long)]
        replace: bool,
    },
    /// List the paired nodes
    Nodes,
    /// Forget a paired node and its session (the node is not contacted)
    Forget {
        /// The node's name
        name: String,
    },
    /// Log in to the node (the password is asked without echo)
    Login {
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the session on the node and forget it here
    Logout,
    /// The node's version, uptime and resources
    Info,
    /// The apps the node can install
    Catalog,
    /// Install an app and wait until it is healthy, showing progress
    Install {
        /// The app's id (see `archy catalog`)
        id: String,
    },
    /// Start an installed app and wait until it is healthy
    Start {
        /// The app's id
        id: String,
    },
    /// Stop an installed app (it stays stopped across reboots)
    Stop {
        /// The app's id
        id: String,
    },
    /// Restart an installed app and wait until it is healthy
    Restart {
        /// The app's id
        id: String,
    },
    /// One installed app's state
    Status {
        /// The app's id
        id: String,
    },
    /// Remove an app: its containers, units, secrets and, unless kept, its data
    Uninstall {
        /// The app's id
        id: String,
        /// Keep the app's data for a later install
        #[arg(long)]
        keep_data: bool,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Every installed app's state
    List,
    /// An app's recent log lines; with -f, new lines as they come until Ctrl-C
    Logs {
        /// The app's id
        id: String,
        /// Only this container (its name in the manifest)
        #[arg(long)]
        container: Option<String>,
        /// How many of the last lines per container
        #[arg(
            long,
            default_value_t = LogsParams::DEFAULT_LINES,
            value_parser = clap::value_parser!(u32).range(0..=i64::from(LogsParams::MAX_LINES))
        )]
        lines: u32,
        /// Keep following the logs until Ctrl-C
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// CPU and memory of an app's containers
    Stats {
        /// The app's id
        id: String,
    },
}

fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    archipelago_api::rpc::parse_fingerprint(text).ok_or_else(|| {
        "a fingerprint is 32 bytes of hex (64 digits), with or without colons".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"));
        assert!(help.contains("5  the node's certificate"));
    }

    #[test]
    fn a_bad_fingerprint_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["archy", "pair", "node", "--fingerprint", "abc"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from([
            "archy",
            "pair",
            "node",
            "--fingerprint",
            &"ab".repeat(32),
            "--yes",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["archy", "list", "--json", "--node", "n1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.node.as_deref(), Some("n1"));
        let cli = Cli::try_parse_from(["archy", "logs", "web", "-f", "--lines", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Logs {
                follow: true,
                lines: 5,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["archy", "logs", "web", "--lines", "10001"]).is_err());
    }
}
