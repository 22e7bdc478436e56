//! `archy`: an Archipelago node's API from a terminal — what scripts, the
//! node tests and the release gate use, and a person at a shell.
//!
//! `archy pair <address>` pins a node's certificate (see [`pairing`]),
//! `archy login` stores a session, then every other command is one API call
//! through `archipelago-client` (a backup copied to or from the node is a
//! series of them). Pairings and sessions live in
//! `$XDG_CONFIG_HOME/archy/` ([`config`]).
//!
//! Exit codes, stable for scripts (also in `archy --help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error (configuration, unknown node, an answer archy does not understand, …) |
//! | 2 | usage error: bad command, flag or argument |
//! | 3 | the node is unreachable or busy, did not answer in time, or TLS with it failed |
//! | 4 | not logged in, session expired, login failed, or too many failed logins; or the passphrase or key does not open the backup |
//! | 5 | the node's certificate is not the pinned one, or not the one given to `pair` |
//! | 6 | the app operation failed (install failed, update rolled back, backup or restore failed, backup damaged or not found, app not installed, dependency missing, …) |
//!
//! With `--json` a command's result is printed on stdout as the API method's
//! result in JSON, and an error on stderr as `{"code", "name", "message"}`.
//! The password is read from the terminal without echo, or from the first
//! line of stdin with `--password-stdin`; never from the environment or the
//! command line. A backup's passphrase comes from `--passphrase-file`,
//! `ARCHY_BACKUP_PASSPHRASE` or the terminal, its age key from
//! `--identity-file` — never from the command line either ([`secrets`]).

mod apps;
mod backups;
mod cli;
mod config;
mod context;
mod exit;
mod output;
mod pairing;
mod progress;
mod secrets;
mod settings;

use std::process::ExitCode;

use archipelago_api::methods::LogsParams;
use clap::Parser;

use crate::apps::Verb;
use crate::cli::{Cli, Command};
use crate::config::ConfigDir;
use crate::context::Ctx;
use crate::output::Out;

fn main() -> ExitCode {
    // Usage errors exit with 2 here, before anything else; `--help` and
    // `--version` with 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let json = cli.json;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            exit::report(&err, json);
            ExitCode::from(exit::code(&err))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut ctx = Ctx {
        config: ConfigDir::locate(cli.config_dir)?,
        json: cli.json,
        node: cli.node,
        out: Out::new(),
    };
    let ctx = &mut ctx;
    match cli.command {
        Command::Pair {
            address,
            name,
            fingerprint,
            yes,
            replace,
        } => {
            let args = pairing::PairArgs {
                address,
                name,
                fingerprint,
                yes,
                replace,
            };
            pairing::pair(ctx, args).await
        }
        Command::Nodes => pairing::nodes(ctx),
        Command::Forget { name } => pairing::forget(ctx, &name),
        Command::Login { password_stdin } => pairing::login(ctx, password_stdin).await,
        Command::Logout => pairing::logout(ctx).await,
        Command::Info => apps::info(ctx).await,
        Command::Catalog => apps::catalog(ctx).await,
        Command::Install { id } => apps::install(ctx, id).await,
        Command::Start { id } => apps::lifecycle(ctx, Verb::Start, id).await,
        Command::Stop { id } => apps::lifecycle(ctx, Verb::Stop, id).await,
        Command::Restart { id } => apps::lifecycle(ctx, Verb::Restart, id).await,
        Command::Status { id } => apps::lifecycle(ctx, Verb::Status, id).await,
        Command::Uninstall { id, keep_data, yes } => apps::uninstall(ctx, id, keep_data, yes).await,
        Command::List => apps::list(ctx).await,
        Command::Logs {
            id,
            container,
            lines,
            follow,
        } => {
            let params = LogsParams {
                id,
                container,
                lines,
                follow,
            };
            apps::logs(ctx, params).await
        }
        Command::Stats { id } => apps::stats(ctx, id).await,
        Command::Update { id } => apps::update(ctx, id).await,
        Command::Backup(args) => backups::backup(ctx, args).await,
        Command::Backups { app } => backups::list(ctx, app).await,
        Command::BackupDownload { name, out } => backups::download(ctx, name, out).await,
        Command::BackupUpload { file } => backups::upload(ctx, file).await,
        Command::BackupDelete { name, yes } => backups::delete(ctx, name, yes).await,
        Command::Restore(args) => backups::restore(ctx, args).await,
        Command::Settings(args) => settings::settings(ctx, args).await,
    }
}
