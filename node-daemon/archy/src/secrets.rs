//! Where the passphrase or age secret key that opens a backup comes from:
//! a file (`--passphrase-file`, `--identity-file`), the environment
//! (`ARCHY_BACKUP_PASSPHRASE`), or a prompt on the terminal without echo —
//! never the command line, where any user of the computer can read it
//! (`ps`, shell history). A [`Secret`] is only ever put into a request; its
//! `Debug` does not print it, and no error message quotes it or the file
//! it came from.

use std::path::Path;

use anyhow::Context as _;

use crate::exit::ArchyError;

/// The environment variable a backup's passphrase may come from.
pub const PASSPHRASE_ENV: &str = "ARCHY_BACKUP_PASSPHRASE";

/// The start of an age secret key (what `age-keygen` writes).
const AGE_SECRET_KEY_PREFIX: &str = "AGE-SECRET-KEY-1";

/// A passphrase or secret key.
pub struct Secret(String);

/// Never prints the secret.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// The secret itself, to put into a request.
    pub fn expose(self) -> String {
        self.0
    }
}

/// Whether a passphrase asked on the terminal is asked twice (a new backup:
/// a typo would make it unopenable) or once (opening one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Twice,
    Once,
}

/// A passphrase: the first line of `file`, else `ARCHY_BACKUP_PASSPHRASE`,
/// else asked on the terminal (`what` says for what).
pub fn passphrase(file: Option<&Path>, what: &str, ask: Ask) -> anyhow::Result<Secret> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the passphrase file {}", file.display()))?;
        let line = first_line(&text);
        if line.is_empty() {
            return Err(ArchyError::Usage(format!(
                "the passphrase file {} is empty (the passphrase is its first line)",
                file.display()
            ))
            .into());
        }
        return Ok(Secret(line.to_owned()));
    }
    match std::env::var(PASSPHRASE_ENV) {
        Ok(value) if value.is_empty() => Err(ArchyError::Usage(format!(
            "{PASSPHRASE_ENV} is set but empty: set the passphrase, or unset it to be asked"
        ))
        .into()),
        Ok(value) => Ok(Secret(value)),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(ArchyError::Usage(format!("{PASSPHRASE_ENV} is not valid UTF-8")).into())
        }
        Err(std::env::VarError::NotPresent) => prompt(what, ask),
    }
}

fn prompt(what: &str, ask: Ask) -> anyhow::Result<Secret> {
    let read = |question: String| {
        rpassword::prompt_password(question).map_err(|e| {
            anyhow::Error::from(ArchyError::NoTerminal(format!(
                "cannot ask for the passphrase ({e}): use --passphrase-file FILE or set {PASSPHRASE_ENV}"
            )))
        })
    };
    let first = read(format!("Passphrase for {what}: "))?;
    if first.is_empty() {
        return Err(
            ArchyError::NotConfirmed("no passphrase given; nothing was done".to_owned()).into(),
        );
    }
    if ask == Ask::Twice && read("The same passphrase again: ".to_owned())? != first {
        return Err(ArchyError::NotConfirmed(
            "the two passphrases differ; nothing was done".to_owned(),
        )
        .into());
    }
    Ok(Secret(first))
}

/// The age secret key in `file`: its first `AGE-SECRET-KEY-1…` line, as
/// `age-keygen` writes it (comment lines are skipped).
pub fn identity(file: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the identity file {}", file.display()))?;
    identity_in(&text).map(Secret).ok_or_else(|| {
        ArchyError::Usage(format!(
            "{} holds no age secret key (a line starting with {AGE_SECRET_KEY_PREFIX}, as age-keygen writes)",
            file.display()
        ))
        .into()
    })
}

fn identity_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with(AGE_SECRET_KEY_PREFIX))
        .map(str::to_owned)
}

/// The first line, without its line end.
fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or_default();
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_passphrase_file_gives_its_first_line_whole() {
        assert_eq!(first_line("two words \nrest"), "two words ");
        assert_eq!(first_line("pass\r\n"), "pass");
        assert_eq!(first_line("no-newline"), "no-newline");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn the_key_is_found_among_age_keygen_comments() {
        let file = "# created: 2026-11-27T21:30:00Z\n# public key: age1abc\nAGE-SECRET-KEY-1QQQ\n";
        assert_eq!(identity_in(file).as_deref(), Some("AGE-SECRET-KEY-1QQQ"));
        assert_eq!(identity_in("age1abc\n"), None);
        assert_eq!(identity_in(""), None);
    }

    #[test]
    fn errors_about_files_do_not_quote_them() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key");
        std::fs::write(&path, "not-a-key-but-secret\n").unwrap();
        let err = identity(&path).unwrap_err();
        assert!(!format!("{err:#}").contains("not-a-key-but-secret"));
        let empty = tmp.path().join("empty");
        std::fs::write(&empty, "\nsecond line\n").unwrap();
        let err = passphrase(Some(&empty), "x", Ask::Once).unwrap_err();
        assert!(!format!("{err:#}").contains("second line"));
        let missing = passphrase(Some(&tmp.path().join("none")), "x", Ask::Once).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read the passphrase file"));
    }
}
