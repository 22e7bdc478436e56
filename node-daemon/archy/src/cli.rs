//! The command line: every command, flag and its help, in one place, so that
//! `archy --help` is the reference and the parsing is clap's (a usage error
//! exits with 2 before anything else runs).

use std::path::PathBuf;

use archipelago_api::methods::LogsParams;
use clap::{Args, Parser, Subcommand};

/// The exit codes, as `archy --help` shows them; `main.rs` documents the
/// same list.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (stable, for scripts):
  0  success
  1  any other error (configuration, unknown node, an answer archy does not understand, …)
  2  usage error: bad command, flag or argument
  3  the node is unreachable or busy, did not answer in time, or TLS with it failed
  4  not logged in, session expired, login failed, too many failed logins, or the
     passphrase or key does not open the backup
  5  the node's certificate is not the pinned one, or not the one given to `pair`
  6  the app operation failed (install failed, update rolled back, backup or restore
     failed, backup damaged or not found, app not installed, dependency missing, …)

With --json, the result goes to stdout as JSON and an error to stderr as
{\"code\": <API code or null>, \"name\": \"<snake_case name>\", \"message\": \"…\"}.";

#[derive(Debug, Parser)]
#[command(
    name = "archy",
    version,
    about = "Manage Archipelago nodes from a terminal: pair, log in, install, update, back up and run apps",
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
    /// Update an app to the version its catalog offers now, showing progress; a new version that does not get healthy is rolled back
    Update {
        /// The app's id
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
    /// Make an encrypted backup of an app on the node (its data, volumes, secrets and manifest)
    #[command(after_help = PASSPHRASE_HELP)]
    Backup(BackupArgs),
    /// The backups in the node's backup folder, newest first
    Backups {
        /// Only this app's backups
        app: Option<String>,
    },
    /// Copy a backup from the node's backup folder to this computer (a broken copy resumes)
    BackupDownload {
        /// The backup's name (see `archy backups`)
        #[arg(value_parser = parse_backup_name)]
        name: String,
        /// Where to write it (a folder keeps the name) [default: ./<name>]
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Copy a backup file from this computer to the node's backup folder (it keeps its file name)
    BackupUpload {
        /// The backup file
        file: PathBuf,
    },
    /// Delete a backup from the node's backup folder
    BackupDelete {
        /// The backup's name (see `archy backups`)
        #[arg(value_parser = parse_backup_name)]
        name: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Restore an app from a backup: installed at the backup's version with its data and secrets, started until healthy
    #[command(after_help = PASSPHRASE_HELP)]
    Restore(RestoreArgs),
    /// Show an app's update and backup settings, or change those given
    Settings(SettingsArgs),
}

/// `archy backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The app's id
    pub id: String,
    /// A folder on the node to write the backup to, an external disk say [default: the node's backup folder]
    #[arg(long, value_name = "DIR")]
    pub target: Option<String>,
    /// Encrypt to this age public key instead of a passphrase (its secret key opens the backup)
    #[arg(long, value_name = "AGE1…", value_parser = parse_recipient, conflicts_with = "passphrase_file")]
    pub recipient: Option<String>,
    /// Read the passphrase from the first line of this file
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `archy restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[arg(
        value_name = "BACKUP",
        help = "A backup's name in the node's backup folder, or the absolute path of a backup file on the node; with --local, a file on this computer"
    )]
    pub backup: String,
    /// BACKUP is a file on this computer: upload it to the node's backup folder first
    #[arg(long)]
    pub local: bool,
    /// Open the backup with the age secret key in this file (its AGE-SECRET-KEY-1… line) instead of a passphrase
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    pub identity_file: Option<PathBuf>,
    /// Read the passphrase from the first line of this file
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// `archy settings`: `None` leaves a setting as it is.
#[derive(Debug, Default, Args)]
pub struct SettingsArgs {
    /// The app's id
    pub id: String,
    /// Update by itself when the catalog offers a new version, looking every N hours (0: never)
    #[arg(long, value_name = "N")]
    pub auto_update_hours: Option<u32>,
    /// Back up by itself every H hours (a new schedule also needs --recipient)
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u32).range(1..))]
    pub backup_every_hours: Option<u32>,
    /// The age public key scheduled backups are encrypted to (no passphrase is kept on the node)
    #[arg(long, value_name = "AGE1…", value_parser = parse_recipient)]
    pub recipient: Option<String>,
    /// How many of the app's backups the schedule keeps [default for a new schedule: 7]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Stop scheduled backups
    #[arg(long, conflicts_with_all = ["backup_every_hours", "recipient", "keep"])]
    pub no_backup_schedule: bool,
    /// Warn when the last backup is older than H hours (0: never)
    #[arg(long, value_name = "H")]
    pub backup_max_age_hours: Option<u32>,
}

/// How `backup` and `restore` get the passphrase.
const PASSPHRASE_HELP: &str = "\
The passphrase is read from --passphrase-file, else from the environment
variable ARCHY_BACKUP_PASSPHRASE, else asked on the terminal without echo
(twice for a new backup). It is never taken from the command line.";

/// A backup's name: a plain file name, which archy may also use as a local
/// file name.
fn parse_backup_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text == "." || text == ".." || text.contains(['/', '\\', '\0']) {
        return Err("a backup's name is a file name, without `/` (see `archy backups`)".to_owned());
    }
    Ok(text.to_owned())
}

/// An age public key: `age1` and lowercase bech32.
fn parse_recipient(text: &str) -> Result<String, String> {
    let valid = text.len() > 4
        && text.starts_with("age1")
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(
            "an age public key starts with `age1` (age-keygen prints it as `public key:`)"
                .to_owned(),
        )
    }
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

    #[test]
    fn backup_flags_that_clash_are_usage_errors() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("archy").chain(args.iter().copied()))
        };
        let key = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
        assert!(parse(&["backup", "a", "--recipient", key]).is_ok());
        assert!(parse(&["backup", "a", "--recipient", "AGE-SECRET-KEY-1X"]).is_err());
        assert!(parse(&["backup", "a", "--recipient", key, "--passphrase-file", "f"]).is_err());
        // There is no flag that takes the passphrase itself.
        assert!(parse(&["backup", "a", "--passphrase", "x"]).is_err());
        assert!(
            parse(&[
                "restore",
                "b",
                "--identity-file",
                "k",
                "--passphrase-file",
                "f"
            ])
            .is_err()
        );
        assert!(parse(&["backup-download", "../etc/passwd"]).is_err());
        assert!(parse(&["backup-delete", ".."]).is_err());
        assert!(parse(&["settings", "a", "--no-backup-schedule", "--keep", "2"]).is_err());
        assert!(parse(&["settings", "a", "--backup-every-hours", "0"]).is_err());
        assert!(parse(&["settings", "a", "--keep", "0"]).is_err());
        let cli = parse(&["backup-download", "n.archy-backup", "-o", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Command::BackupDownload { .. }));
    }
}
