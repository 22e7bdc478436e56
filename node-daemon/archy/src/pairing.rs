//! The commands about nodes and sessions: `pair` (the trust decision:
//! which certificate a node name stands for), `nodes`, `forget`, `login`,
//! `logout`.
//!
//! Pairing is where a man in the middle would strike, so it never trusts
//! silently: the presented fingerprint is either compared with one the user
//! typed (`--fingerprint`), confirmed by the user, or accepted by an
//! explicit `--yes`; and a name already pinned to another certificate is
//! only re-pinned with `--replace`.

use std::io::{self, BufRead, IsTerminal, Write};

use archipelago_api::rpc::format_fingerprint;
use archipelago_client::{Address, fetch_fingerprint, pin::fingerprints_equal};
use serde::Serialize;

use crate::config::{NodeEntry, name_from_host, valid_node_name};
use crate::context::Ctx;
use crate::exit::ArchyError;
use crate::output::{Table, duration, now_unix, secs_until, short_fingerprint};

/// What `pair` and `nodes` print with `--json`.
#[derive(Debug, Serialize)]
struct NodeView<'a> {
    name: &'a str,
    address: &'a str,
    fingerprint: String,
    /// Whether a session that has not expired is stored.
    logged_in: bool,
    default: bool,
}

pub struct PairArgs {
    pub address: String,
    pub name: Option<String>,
    pub fingerprint: Option<[u8; 32]>,
    pub yes: bool,
    pub replace: bool,
}

pub async fn pair(ctx: &mut Ctx, args: PairArgs) -> anyhow::Result<()> {
    let address = Address::parse(&args.address)?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| name_from_host(address.host()));
    if !valid_node_name(&name) {
        return Err(ArchyError::InvalidName(name).into());
    }
    let address = address.to_string();
    let mut nodes = ctx.config.load_nodes()?;
    let presented = fetch_fingerprint(&address).await?;

    if let Some(given) = args.fingerprint {
        if !fingerprints_equal(&given, &presented) {
            return Err(ArchyError::PairMismatch {
                address,
                given: format_fingerprint(&given),
                presented: format_fingerprint(&presented),
            }
            .into());
        }
    }
    let mut replaced_certificate = false;
    if let Some(old) = nodes.get(&name) {
        if old.fingerprint == presented && old.address == address {
            return report_paired(ctx, &name, &address, &presented, "already paired with");
        }
        if !args.replace {
            if old.fingerprint != presented {
                return Err(ArchyError::AlreadyPaired {
                    name,
                    address,
                    pinned: format_fingerprint(&old.fingerprint),
                    presented: format_fingerprint(&presented),
                }
                .into());
            }
            return Err(ArchyError::NameTaken {
                name,
                address: old.address.clone(),
                new_address: address,
            }
            .into());
        }
        replaced_certificate = old.fingerprint != presented;
    }
    if args.fingerprint.is_none() && !args.yes {
        confirm(&format!(
            "The node at {address} presents the certificate\n\n  {}\n\n\
             Check that `archipelagod pairing` on the node shows the same fingerprint.\n\
             Pair with it as `{name}`? [y/N] ",
            format_fingerprint(&presented)
        ))?;
    }
    nodes.upsert(NodeEntry {
        name: name.clone(),
        address: address.clone(),
        fingerprint: presented,
    });
    ctx.config.save_nodes(&nodes)?;
    if replaced_certificate {
        // A session of the node that used to be here means nothing now.
        ctx.config.remove_session(&name)?;
    }
    report_paired(ctx, &name, &address, &presented, "paired with")
}

fn report_paired(
    ctx: &mut Ctx,
    name: &str,
    address: &str,
    fingerprint: &[u8; 32],
    verb: &str,
) -> anyhow::Result<()> {
    if ctx.json {
        let is_default = ctx
            .config
            .load_nodes()?
            .nodes
            .first()
            .is_some_and(|n| n.name == name);
        ctx.out.json(&NodeView {
            name,
            address,
            fingerprint: format_fingerprint(fingerprint),
            logged_in: logged_in(ctx, name),
            default: is_default,
        })?;
    } else {
        ctx.out.text(&format!(
            "{verb} {name} ({address})\nlog in with: archy --node {name} login"
        ))?;
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; anything but yes, or no
/// terminal to ask on, refuses.
pub fn confirm(question: &str) -> anyhow::Result<()> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(ArchyError::NotConfirmed(
            "confirmation needed, but standard input is not a terminal: pass --yes (or, for pair, --fingerprint)".to_owned(),
        )
        .into());
    }
    eprint!("{question}");
    io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ArchyError::NotConfirmed("not confirmed; nothing was changed".to_owned()).into())
    }
}

fn logged_in(ctx: &Ctx, name: &str) -> bool {
    ctx.config
        .load_session(name)
        .ok()
        .flatten()
        .is_some_and(|s| s.expires_at > now_unix())
}

pub fn nodes(ctx: &mut Ctx) -> anyhow::Result<()> {
    let nodes = ctx.config.load_nodes()?;
    let views: Vec<NodeView<'_>> = nodes
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| NodeView {
            name: &n.name,
            address: &n.address,
            fingerprint: format_fingerprint(&n.fingerprint),
            logged_in: logged_in(ctx, &n.name),
            default: i == 0,
        })
        .collect();
    if ctx.json {
        ctx.out.json(&views)?;
        return Ok(());
    }
    if views.is_empty() {
        ctx.out
            .text("no node is paired yet: pair one with `archy pair <address>`")?;
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "ADDRESS", "FINGERPRINT", "SESSION"]);
    for (view, entry) in views.iter().zip(&nodes.nodes) {
        let name = if view.default {
            format!("{} (default)", view.name)
        } else {
            view.name.to_owned()
        };
        let session = if view.logged_in { "logged in" } else { "-" };
        table.row(vec![
            name,
            view.address.to_owned(),
            short_fingerprint(&entry.fingerprint),
            session.to_owned(),
        ]);
    }
    ctx.out.text(&table.render())?;
    Ok(())
}

pub fn forget(ctx: &mut Ctx, name: &str) -> anyhow::Result<()> {
    let mut nodes = ctx.config.load_nodes()?;
    if !nodes.remove(name) {
        return Err(ArchyError::UnknownNode(name.to_owned()).into());
    }
    ctx.config.save_nodes(&nodes)?;
    ctx.config.remove_session(name)?;
    if ctx.json {
        ctx.out.json(&serde_json::json!({ "forgotten": name }))?;
    } else {
        ctx.out.text(&format!("forgot {name}"))?;
    }
    Ok(())
}

pub async fn login(ctx: &mut Ctx, password_stdin: bool) -> anyhow::Result<()> {
    let entry = ctx.node_entry()?;
    let client = Ctx::client(&entry)?;
    let password = if password_stdin {
        read_password_line(&mut io::stdin().lock())?
    } else {
        prompt_password(&entry.name)?
    };
    let session = client.login(&password).await?;
    ctx.config.save_session(&entry.name, &session)?;
    if ctx.json {
        ctx.out.json(&serde_json::json!({
            "node": entry.name,
            "expires_at": session.expires_at,
        }))?;
    } else {
        ctx.out.text(&format!(
            "logged in to {} (the session lasts {})",
            entry.name,
            duration(secs_until(session.expires_at))
        ))?;
    }
    Ok(())
}

fn prompt_password(node: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(format!("Password for {node}: ")).map_err(|e| {
        ArchyError::NoTerminal(format!(
            "cannot ask for the password ({e}): pass it on standard input with --password-stdin"
        ))
        .into()
    })
}

/// The first line of `input`, without its line end.
fn read_password_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(ArchyError::NoTerminal(
            "no password on standard input (--password-stdin reads its first line)".to_owned(),
        )
        .into());
    }
    Ok(password.to_owned())
}

pub async fn logout(ctx: &mut Ctx) -> anyhow::Result<()> {
    let entry = ctx.node_entry()?;
    let Some(session) = ctx.config.load_session(&entry.name)? else {
        if ctx.json {
            ctx.out
                .json(&serde_json::json!({ "node": entry.name, "was_logged_in": false }))?;
        } else {
            ctx.out.text(&format!("not logged in to {}", entry.name))?;
        }
        return Ok(());
    };
    let client = Ctx::client(&entry)?.with_token(session.token);
    let result = client.logout().await;
    // Forgotten here whatever the node said: the user asked for it to go.
    ctx.config.remove_session(&entry.name)?;
    if let Err(e) = result {
        return Err(anyhow::Error::from(e).context(format!(
            "the session was forgotten here, but {} could not be told to end it",
            entry.name
        )));
    }
    if ctx.json {
        ctx.out
            .json(&serde_json::json!({ "node": entry.name, "was_logged_in": true }))?;
    } else {
        ctx.out.text(&format!("logged out of {}", entry.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_line_loses_only_its_line_end() {
        let read = |s: &str| read_password_line(&mut s.as_bytes());
        assert_eq!(read("pa ss \n").unwrap(), "pa ss ");
        assert_eq!(read("secret\r\nrest").unwrap(), "secret");
        assert_eq!(read("no-newline").unwrap(), "no-newline");
        assert!(read("\n").is_err());
        assert!(read("").is_err());
    }
}
