//! The backup commands: make one on the node (`backup`), list them
//! (`backups`), copy one here or there (`backup-download`,
//! `backup-upload`), delete one (`backup-delete`) and restore an app from
//! one (`restore`). The passphrase or key comes from [`crate::secrets`],
//! never from the command line, and is asked before anything long starts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use archipelago_api::ErrorCode;
use archipelago_api::methods::{
    BackupDelete, BackupInfo, BackupList, BackupListParams, BackupNameParams, BackupParams,
    PackageBackup, PackageRestore, RestoreParams,
};
use serde::Serialize;

use crate::apps::{call, call_with_progress, print_status};
use crate::cli::{BackupArgs, RestoreArgs};
use crate::context::Ctx;
use crate::exit::{ArchyError, api_error_code};
use crate::output::{Table, bytes, key_values, utc_time};
use crate::pairing::confirm;
use crate::progress::TransferView;
use crate::secrets::{self, Ask, Secret};

pub async fn backup(ctx: &mut Ctx, args: BackupArgs) -> anyhow::Result<()> {
    // Not logged in: say so before asking for a passphrase.
    ctx.session_client()?;
    let passphrase = match &args.recipient {
        Some(_) => None,
        None => Some(
            secrets::passphrase(
                args.passphrase_file.as_deref(),
                &format!("the backup of {}", args.id),
                Ask::Twice,
            )?
            .expose(),
        ),
    };
    let params = BackupParams {
        id: args.id,
        passphrase,
        recipient: args.recipient,
        target: args.target,
    };
    let info = call_with_progress::<PackageBackup>(ctx, params).await?;
    if ctx.json {
        return Ok(ctx.out.json(&info)?);
    }
    let mut text = format!("backed up {} {}\n", info.app, info.version);
    text.push_str(&backup_block(&info));
    let _ = write!(
        text,
        "copy it to this computer with: archy backup-download {}",
        info.name
    );
    Ok(ctx.out.text(&text)?)
}

fn backup_block(info: &BackupInfo) -> String {
    key_values(&[
        ("name", info.name.clone()),
        ("app", format!("{} {}", info.app, info.version)),
        ("created", utc_time(info.created)),
        ("size", bytes(info.bytes)),
        ("path", info.path.clone()),
        ("sha256", info.sha256.clone()),
    ])
}

pub async fn list(ctx: &mut Ctx, app: Option<String>) -> anyhow::Result<()> {
    let result = call::<BackupList>(ctx, BackupListParams { id: app.clone() }).await?;
    if ctx.json {
        return Ok(ctx.out.json(&result)?);
    }
    if result.backups.is_empty() {
        let of = app.map(|a| format!(" of {a}")).unwrap_or_default();
        return Ok(ctx
            .out
            .text(&format!("no backup{of} in the node's backup folder"))?);
    }
    let mut table = Table::new(&["NAME", "APP", "VERSION", "CREATED", "SIZE"]);
    for b in &result.backups {
        table.row(vec![
            b.name.clone(),
            b.app.clone(),
            b.version.clone(),
            utc_time(b.created),
            bytes(b.bytes),
        ]);
    }
    Ok(ctx.out.text(&table.render())?)
}

/// What `backup-download` prints with `--json`.
#[derive(Debug, Serialize)]
struct Downloaded<'a> {
    name: &'a str,
    path: String,
    bytes: u64,
    sha256: &'a str,
}

pub async fn download(ctx: &mut Ctx, name: String, out: Option<PathBuf>) -> anyhow::Result<()> {
    let dest = match out {
        Some(dir) if dir.is_dir() => dir.join(&name),
        Some(file) => file,
        None => Path::new(".").join(&name),
    };
    if dest.exists() {
        return Err(ArchyError::Usage(format!(
            "{} already exists: remove it, or choose another file with --out",
            dest.display()
        ))
        .into());
    }
    // The node's SHA-256 of the backup, to check the copy against.
    let listed = call::<BackupList>(ctx, BackupListParams { id: None }).await?;
    let expected = listed
        .backups
        .into_iter()
        .find(|b| b.name == name)
        .map(|b| b.sha256);
    let (entry, client) = ctx.session_client()?;
    let view = TransferView::new(ctx.json, "downloading");
    let result = client
        .download_backup(&name, &dest, |done, total| view.update(done, total))
        .await;
    view.finish();
    let got = result.map_err(|e| ctx.call_error(&entry, e))?;
    if let Some(expected) = expected {
        if !expected.eq_ignore_ascii_case(&got.sha256) {
            let _ = std::fs::remove_file(&got.path);
            anyhow::bail!(
                "the copy of {name} has SHA-256 {}, but the node's has {expected}: it was deleted; download it again",
                got.sha256
            );
        }
    }
    if ctx.json {
        return Ok(ctx.out.json(&Downloaded {
            name: &name,
            path: got.path.display().to_string(),
            bytes: got.bytes,
            sha256: &got.sha256,
        })?);
    }
    Ok(ctx.out.text(&format!(
        "downloaded {name} to {} ({}, sha256 {})",
        got.path.display(),
        bytes(got.bytes),
        got.sha256
    ))?)
}

/// The name a local backup file keeps on the node: its file name.
fn name_on_node(file: &Path) -> anyhow::Result<String> {
    file.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            ArchyError::Usage(format!(
                "{} does not end with a file name archy can send (UTF-8)",
                file.display()
            ))
            .into()
        })
}

/// Sends a local backup file to the node's backup folder.
async fn send(ctx: &Ctx, file: &Path) -> anyhow::Result<BackupInfo> {
    let name = name_on_node(file)?;
    let (entry, client) = ctx.session_client()?;
    let view = TransferView::new(ctx.json, "uploading");
    let result = client
        .upload_backup(file, &name, |done, total| view.update(done, total))
        .await;
    view.finish();
    result.map_err(|e| ctx.call_error(&entry, e))
}

pub async fn upload(ctx: &mut Ctx, file: PathBuf) -> anyhow::Result<()> {
    let info = send(ctx, &file).await?;
    if ctx.json {
        return Ok(ctx.out.json(&info)?);
    }
    let mut text = format!("uploaded {} as {}\n", file.display(), info.name);
    text.push_str(&backup_block(&info));
    let _ = write!(text, "restore it with: archy restore {}", info.name);
    Ok(ctx.out.text(&text)?)
}

pub async fn delete(ctx: &mut Ctx, name: String, yes: bool) -> anyhow::Result<()> {
    if !yes {
        let node = ctx.node_entry()?.name;
        confirm(&format!("Delete the backup {name} from {node}? [y/N] "))?;
    }
    call::<BackupDelete>(ctx, BackupNameParams { name: name.clone() }).await?;
    if ctx.json {
        return Ok(ctx.out.json(&serde_json::json!({ "deleted": name }))?);
    }
    Ok(ctx.out.text(&format!("deleted {name}"))?)
}

pub async fn restore(ctx: &mut Ctx, args: RestoreArgs) -> anyhow::Result<()> {
    ctx.session_client()?;
    // Asked first: the upload and the restore may take long.
    let (passphrase, identity) = match &args.identity_file {
        Some(file) => (None, Some(secrets::identity(file)?)),
        None => (
            Some(secrets::passphrase(
                args.passphrase_file.as_deref(),
                "the backup",
                Ask::Once,
            )?),
            None,
        ),
    };
    let backup = if args.local {
        send(ctx, Path::new(&args.backup)).await?.name
    } else {
        args.backup.clone()
    };
    let params = RestoreParams {
        backup: backup.clone(),
        passphrase: passphrase.map(Secret::expose),
        identity: identity.map(Secret::expose),
    };
    let status = call_with_progress::<PackageRestore>(ctx, params)
        .await
        .map_err(|e| {
            let local_file = Path::new(&args.backup).is_file();
            if !args.local && local_file && api_error_code(&e) == Some(ErrorCode::BackupNotFound) {
                e.context(format!(
                    "the node has no backup {0}; {0} is a file on this computer: pass --local to upload it first",
                    args.backup
                ))
            } else {
                e
            }
        })?;
    if !ctx.json {
        ctx.out.text(&format!(
            "restored {} {} from {backup}",
            status.id, status.version
        ))?;
    }
    print_status(ctx, &status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_keeps_its_name_on_the_node() {
        assert_eq!(
            name_on_node(Path::new("/tmp/a-1.0-20261127T213000Z.archy-backup")).unwrap(),
            "a-1.0-20261127T213000Z.archy-backup"
        );
        assert!(name_on_node(Path::new("/")).is_err());
        assert!(name_on_node(Path::new("x/..")).is_err());
    }

    #[test]
    fn a_backup_prints_what_identifies_it() {
        let text = backup_block(&BackupInfo {
            name: "n.archy-backup".into(),
            app: "hello-web".into(),
            version: "1.0.0".into(),
            created: 1_795_815_000,
            bytes: 1536,
            path: "/b/n.archy-backup".into(),
            sha256: "ab".into(),
        });
        assert_eq!(
            text,
            "name     n.archy-backup\n\
             app      hello-web 1.0.0\n\
             created  2026-11-27 21:30 UTC\n\
             size     1.5 KiB\n\
             path     /b/n.archy-backup\n\
             sha256   ab\n"
        );
    }
}
