//! The operator's two commands on the node itself, as library functions so
//! that `main.rs` only parses arguments and prints:
//!
//! - [`init`]: set the node's password (generated, or read from standard
//!   input), refusing to replace one unless asked to — replacing it logs
//!   every client out.
//! - [`pairing`]: what a person needs to add this node to a client: its
//!   addresses with the API port, and the certificate fingerprint to compare
//!   on the client (making the TLS identity if the daemon has not yet).
//!
//! Run both as the service user, so that the files belong to the daemon.

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, bail};

use super::auth::{self, DEFAULT_BCRYPT_COST};
use super::host;
use super::tls::TlsIdentity;
use crate::layout::Layout;

/// Longest line read from standard input as a password.
const MAX_STDIN_PASSWORD: u64 = 4096;

/// Sets the node's password. With `password_from_stdin`, the first line of
/// standard input is the password (its line end removed); otherwise one is
/// generated and returned, for the caller to print once. Refuses when a
/// password is set and `reset` is false.
pub fn init(
    layout: &Layout,
    password_from_stdin: bool,
    reset: bool,
) -> anyhow::Result<Option<String>> {
    // Refused before standard input is read.
    refuse_if_set(layout, reset)?;
    let given = if password_from_stdin {
        Some(read_password_line(std::io::stdin().lock())?)
    } else {
        None
    };
    init_with(layout, given, reset, DEFAULT_BCRYPT_COST)
}

/// [`init`] with the password already read (`None`: generate one) and a
/// chosen bcrypt cost.
pub fn init_with(
    layout: &Layout,
    given: Option<String>,
    reset: bool,
    bcrypt_cost: u32,
) -> anyhow::Result<Option<String>> {
    refuse_if_set(layout, reset)?;
    let (password, generated) = match given {
        Some(p) => (p, false),
        None => (auth::generate_password()?, true),
    };
    auth::set_password_with_cost(layout, &password, bcrypt_cost)
        .context("cannot set the node's password")?;
    Ok(generated.then_some(password))
}

fn refuse_if_set(layout: &Layout, reset: bool) -> anyhow::Result<()> {
    if !reset && auth::password_is_set(layout)? {
        bail!(
            "this node already has a password ({}); to replace it, which logs every client out, \
             run `archipelagod init --reset`",
            auth::password_file(layout).display()
        );
    }
    Ok(())
}

/// The first line of `input`, without its line end.
fn read_password_line(input: impl std::io::BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .take(MAX_STDIN_PASSWORD)
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!(
            "no password on standard input: pipe one line, e.g. `archipelagod init --password-stdin < file`"
        );
    }
    Ok(password.to_owned())
}

/// The pairing text: where the node answers and the fingerprint a person
/// compares on the client.
pub fn pairing(layout: &Layout, port: u16) -> anyhow::Result<String> {
    let identity = TlsIdentity::load_or_create(layout)
        .context("cannot load or create the node's TLS certificate")?;
    Ok(pairing_text(
        &host::addresses(),
        host::hostname().as_deref(),
        port,
        &identity.fingerprint(),
    ))
}

fn pairing_text(
    addresses: &[IpAddr],
    hostname: Option<&str>,
    port: u16,
    fingerprint: &str,
) -> String {
    let mut out = String::from(
        "Add this node to the Archipelago app or to archy with one of these addresses:\n\n",
    );
    for ip in addresses {
        let _ = writeln!(out, "    {}", SocketAddr::new(*ip, port));
    }
    if let Some(name) = hostname {
        let _ = writeln!(out, "    {name}:{port}");
    }
    if addresses.is_empty() && hostname.is_none() {
        let _ = writeln!(
            out,
            "    (no address found: use the node's address with port {port})"
        );
    }
    let _ = write!(
        out,
        "\nThe client then shows the node's certificate fingerprint. Compare it with this one,\n\
         every pair: if any differs, do not connect, something is in between.\n\n    {fingerprint}\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{AuthSettings, MIN_BCRYPT_COST};
    use crate::api::{Auth, auth::ManualClock};
    use std::sync::Arc;

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under_home(dir.path());
        (dir, layout)
    }

    #[test]
    fn init_generates_a_password_once_and_refuses_to_replace_it() {
        let (_dir, layout) = layout();
        let generated = init_with(&layout, None, false, MIN_BCRYPT_COST)
            .unwrap()
            .unwrap();
        assert!(generated.len() >= 20);
        let e = init_with(&layout, None, false, MIN_BCRYPT_COST).unwrap_err();
        assert!(e.to_string().contains("--reset"), "{e}");
        let hash = std::fs::read_to_string(auth::password_file(&layout)).unwrap();
        assert!(bcrypt::verify(&generated, hash.trim()).unwrap());
    }

    #[tokio::test]
    async fn init_reset_sets_the_given_password_and_logs_everyone_out() {
        let (_dir, layout) = layout();
        init_with(
            &layout,
            Some("first password".into()),
            false,
            MIN_BCRYPT_COST,
        )
        .unwrap();
        let auth = Auth::with_settings(
            &layout,
            AuthSettings {
                bcrypt_cost: MIN_BCRYPT_COST,
                clock: Arc::new(ManualClock::new()),
                ..AuthSettings::default()
            },
        )
        .unwrap();
        let s = auth
            .login("first password", "127.0.0.1".parse().unwrap())
            .await
            .unwrap();
        let shown = init_with(
            &layout,
            Some("second password".into()),
            true,
            MIN_BCRYPT_COST,
        )
        .unwrap();
        assert_eq!(shown, None, "a given password is not echoed back");
        assert!(auth.check(Some(&s.token)).is_err());
        auth.login("second password", "127.0.0.2".parse().unwrap())
            .await
            .unwrap();
        let e = init_with(&layout, Some("short".into()), true, MIN_BCRYPT_COST).unwrap_err();
        assert!(format!("{e:#}").contains("at least 8"), "{e:#}");
    }

    #[test]
    fn the_password_is_the_first_line_of_stdin() {
        let read = |s: &str| read_password_line(s.as_bytes());
        assert_eq!(read("pass word 1\nignored\n").unwrap(), "pass word 1");
        assert_eq!(read("windows line\r\n").unwrap(), "windows line");
        assert_eq!(read("no newline").unwrap(), "no newline");
        assert!(read("").is_err());
        assert!(read("\n").is_err());
    }

    #[test]
    fn pairing_shows_addresses_with_the_port_and_the_fingerprint() {
        let (_dir, layout) = layout();
        let text = pairing(&layout, 7443).unwrap();
        let identity = TlsIdentity::load_or_create(&layout).unwrap();
        assert!(text.contains(&identity.fingerprint()), "{text}");
        assert!(text.contains(":7443"), "{text}");
        assert!(text.contains("Compare"), "{text}");

        let text = pairing_text(
            &[
                "192.168.1.20".parse().unwrap(),
                "2001:db8::20".parse().unwrap(),
            ],
            Some("node1"),
            7443,
            "ab:cd",
        );
        assert!(text.contains("    192.168.1.20:7443\n"), "{text}");
        assert!(text.contains("    [2001:db8::20]:7443\n"), "{text}");
        assert!(text.contains("    node1:7443\n"), "{text}");
        assert!(text.contains("    ab:cd\n"), "{text}");
        assert!(pairing_text(&[], None, 1, "x").contains("no address found"));
    }
}
