//! `archipelago-catalog`: the publisher's side of a catalog. Makes a key
//! pair, signs a catalog folder (refreshing the digests of its manifests and
//! icons first) and verifies one as a node would.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use archipelago_catalog::sign::{SigningKey, sign_catalog};
use archipelago_catalog::{SignedCatalog, TrustedKey};
use clap::{Parser, Subcommand};

/// Environment variable holding the secret key's text (preferred over a
/// file on build machines that inject secrets).
const KEY_ENV: &str = "ARCHIPELAGO_CATALOG_KEY";
/// Environment variable naming the secret key file.
const KEY_FILE_ENV: &str = "ARCHIPELAGO_CATALOG_KEY_FILE";

#[derive(Parser)]
#[command(about = "Sign and verify Archipelago app catalogs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes a new key pair. The secret key file is created with mode 0600
    /// and never overwritten.
    Keygen {
        #[arg(long)]
        secret_key: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long, default_value = "Archipelago catalog key")]
        comment: String,
    },
    /// Refreshes the digests in `<root>/catalog/catalog.json` and signs it.
    /// The key comes from `--secret-key-file`, else
    /// `$ARCHIPELAGO_CATALOG_KEY` (the key's text), else
    /// `$ARCHIPELAGO_CATALOG_KEY_FILE`.
    Sign {
        root: PathBuf,
        #[arg(long)]
        secret_key_file: Option<PathBuf>,
        /// Signed with the catalog (shown by `minisign -V`).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Checks a catalog as a node does: signature, then every manifest and
    /// icon against its digest.
    Verify {
        root: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("archipelago-catalog: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen {
            secret_key,
            public_key,
            comment,
        } => {
            let pair = SigningKey::generate(&comment).map_err(|e| e.to_string())?;
            write_new(&secret_key, &pair.secret, 0o600)?;
            write_new(&public_key, &pair.public, 0o644)?;
            println!(
                "secret key: {} (keep it out of the repository)\npublic key: {}",
                secret_key.display(),
                public_key.display()
            );
            Ok(())
        }
        Command::Sign {
            root,
            secret_key_file,
            comment,
        } => {
            let text = secret_key_text(secret_key_file)?;
            let key = SigningKey::parse(&text).map_err(|e| e.to_string())?;
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let comment =
                comment.unwrap_or_else(|| format!("Archipelago catalog, signed at {secs}"));
            sign_catalog(&root, &key, &comment).map_err(|e| e.to_string())?;
            println!(
                "signed {} with key {}",
                archipelago_catalog::catalog_path(&root).display(),
                key.public_base64()
            );
            Ok(())
        }
        Command::Verify { root, public_key } => {
            let text = std::fs::read_to_string(&public_key)
                .map_err(|e| format!("{}: {e}", public_key.display()))?;
            let key = TrustedKey::parse(&text).map_err(|e| e.to_string())?;
            let catalog = SignedCatalog::open(&root, &key).map_err(|e| e.to_string())?;
            for entry in &catalog.file().apps {
                catalog.manifest(entry).map_err(|e| e.to_string())?;
                catalog.icon(entry).map_err(|e| e.to_string())?;
            }
            println!(
                "{}: signature by key {} verifies; {} apps, every manifest and icon matches",
                root.display(),
                key.id(),
                catalog.file().apps.len()
            );
            Ok(())
        }
    }
}

fn secret_key_text(file: Option<PathBuf>) -> Result<String, String> {
    let file = if let Some(f) = file {
        f
    } else if let Ok(text) = std::env::var(KEY_ENV) {
        return Ok(text);
    } else if let Some(f) = std::env::var_os(KEY_FILE_ENV) {
        PathBuf::from(f)
    } else {
        return Err(format!(
            "no secret key: pass --secret-key-file, or set {KEY_ENV} or {KEY_FILE_ENV}"
        ));
    };
    std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))
}

fn write_new(path: &std::path::Path, text: &str, mode: u32) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e} (refusing to overwrite a key)", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
