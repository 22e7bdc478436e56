//! Backups of a node's apps as the dashboard makes and moves them: back up
//! now with a passphrase, list and delete the node's backups, restore one
//! on its own node, download one to this computer, and upload a downloaded
//! one to another node to restore it there. The archives are encrypted on
//! the node; this side only copies the encrypted files (the client crate
//! does the piece-by-piece transfer and checks the SHA-256).
//!
//! Limits, on purpose:
//! - downloads go only into the backups folder ([`Settings::backup_dir`]),
//!   under the node's name for the file, which must be a plain file name;
//! - uploads come only from that folder, so a page that misbehaved could
//!   not send another file of this computer to a node;
//! - passphrases are passed to the node and dropped: never stored, never
//!   logged ([`archipelago_api::methods::BackupParams`]'s `Debug` hides
//!   them too).
//!
//! [`Settings::backup_dir`]: crate::settings::Settings::backup_dir

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use archipelago_api::methods::{
    BackupDelete, BackupInfo, BackupList, BackupListParams, BackupListResult, BackupNameParams,
    BackupParams, Empty, InstallProgress, PackageBackup, PackageRestore, PackageStatus,
    RestoreParams,
};

use crate::apps::progress_only;
use crate::error::{DesktopError, Kind};
use crate::nodes::Nodes;
use crate::settings::BACKUP_DIR_ENV;
use crate::types::TransferProgress;

/// The shortest passphrase a backup is made with: it is all that protects
/// the archive once it leaves the node.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// The longest backup file name taken (a file name's limit on Linux).
const MAX_NAME_BYTES: usize = 255;

impl Nodes {
    /// Backs an app up now into the node's backup folder, encrypted with
    /// `passphrase`; progress (phase `archiving`, bytes) goes to
    /// `on_progress`.
    pub async fn backup(
        &self,
        node: &str,
        app_id: &str,
        passphrase: String,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<BackupInfo, DesktopError> {
        check_new_passphrase(&passphrase)?;
        let params = BackupParams {
            id: app_id.to_owned(),
            passphrase: Some(passphrase),
            recipient: None,
            target: None,
        };
        self.call_streaming::<PackageBackup>(node, params, progress_only(on_progress))
            .await
    }

    /// The backups in the node's backup folder (of one app, when given),
    /// newest first.
    pub async fn backup_list(
        &self,
        node: &str,
        app_id: Option<&str>,
    ) -> Result<BackupListResult, DesktopError> {
        let params = BackupListParams {
            id: app_id.map(str::to_owned),
        };
        self.call::<BackupList>(node, params).await
    }

    /// Deletes a backup from the node's backup folder.
    pub async fn backup_delete(&self, node: &str, name: &str) -> Result<(), DesktopError> {
        let name = backup_file_name(name)?;
        let Empty {} = self
            .call::<BackupDelete>(
                node,
                BackupNameParams {
                    name: name.to_owned(),
                },
            )
            .await?;
        Ok(())
    }

    /// Restores an app from a backup in the node's backup folder; progress
    /// (verifying, pulling, restoring, starting, healthy, done) goes to
    /// `on_progress`.
    pub async fn restore(
        &self,
        node: &str,
        name: &str,
        passphrase: String,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<PackageStatus, DesktopError> {
        let name = backup_file_name(name)?;
        check_passphrase_given(&passphrase)?;
        let params = RestoreParams {
            backup: name.to_owned(),
            passphrase: Some(passphrase),
            identity: None,
        };
        self.call_streaming::<PackageRestore>(node, params, progress_only(on_progress))
            .await
    }

    /// Copies a backup from the node into the backups folder (as a 0600
    /// file of the same name, replacing an earlier copy only once the new
    /// one is whole) and returns where it was saved.
    pub async fn backup_download(
        &self,
        node: &str,
        name: &str,
        mut on_progress: impl FnMut(TransferProgress) + Send,
    ) -> Result<PathBuf, DesktopError> {
        let name = backup_file_name(name)?.to_owned();
        let dir = self.backup_dir()?;
        let dest = dir.join(&name);
        local(
            move || create_folder(&dir),
            "cannot create the backups folder",
        )
        .await?;
        let downloaded = self
            .with_client(node, |client| async move {
                client
                    .download_backup(&name, &dest, |done, total| {
                        on_progress(TransferProgress { done, total });
                    })
                    .await
            })
            .await?;
        // The client wrote it as a 0600 `.part` file, renamed when whole.
        let path = downloaded.path;
        tracing::info!(
            node,
            path = %path.display(),
            bytes = downloaded.bytes,
            sha256 = %downloaded.sha256,
            "backup downloaded"
        );
        Ok(path)
    }

    /// Uploads a downloaded backup (a file in the backups folder) to a node,
    /// its progress to `on_upload`, then restores it there, its progress to
    /// `on_progress`. The uploaded file stays in the node's backup folder.
    pub async fn upload_and_restore(
        &self,
        node: &str,
        local_path: &str,
        passphrase: String,
        mut on_upload: impl FnMut(TransferProgress) + Send,
        on_progress: impl FnMut(InstallProgress) + Send,
    ) -> Result<PackageStatus, DesktopError> {
        check_passphrase_given(&passphrase)?;
        let dir = self.backup_dir()?;
        let file = {
            let local_path = PathBuf::from(local_path);
            local(
                move || in_folder(&dir, &local_path),
                "cannot read the backup file",
            )
            .await??
        };
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = backup_file_name(&name)?.to_owned();
        let uploaded = self
            .with_client(node, |client| async move {
                client
                    .upload_backup(&file, &name, |done, total| {
                        on_upload(TransferProgress { done, total });
                    })
                    .await
            })
            .await?;
        tracing::info!(node, backup = %uploaded.name, bytes = uploaded.bytes, "backup uploaded");
        self.restore(node, &uploaded.name, passphrase, on_progress)
            .await
    }

    fn backup_dir(&self) -> Result<PathBuf, DesktopError> {
        self.settings.backup_dir.clone().ok_or_else(|| {
            DesktopError::new(
                Kind::LocalFile,
                format!(
                    "this computer has no downloads folder to save backups in: set {BACKUP_DIR_ENV} to a folder"
                ),
            )
        })
    }
}

/// A backup's name as the node gave it, if it is a plain file name (no
/// folder, no `..`, no hidden or control characters).
pub fn backup_file_name(name: &str) -> Result<&str, DesktopError> {
    let plain = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(name)
    } else {
        Err(DesktopError::new(
            Kind::InvalidInput,
            format!("`{}` is not a backup's file name", name.escape_debug()),
        ))
    }
}

/// A passphrase for a new backup: at least [`MIN_PASSPHRASE_CHARS`].
pub fn check_new_passphrase(passphrase: &str) -> Result<(), DesktopError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(DesktopError::new(
            Kind::InvalidInput,
            format!(
                "the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters: it is all that protects the backup"
            ),
        ));
    }
    Ok(())
}

fn check_passphrase_given(passphrase: &str) -> Result<(), DesktopError> {
    if passphrase.is_empty() {
        return Err(DesktopError::new(
            Kind::InvalidInput,
            "enter the passphrase the backup was made with",
        ));
    }
    Ok(())
}

/// Creates the backups folder (and its parents) as 0700 when missing; an
/// existing folder (one the user chose) is left as it is.
fn create_folder(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `path` resolved, if it is a file inside `dir` (links resolved first, so
/// a link in the folder cannot point out of it).
fn in_folder(dir: &Path, path: &Path) -> io::Result<Result<PathBuf, DesktopError>> {
    let dir = fs::canonicalize(dir)?;
    let file = fs::canonicalize(path)?;
    if !file.starts_with(&dir) || !fs::metadata(&file)?.is_file() {
        return Ok(Err(DesktopError::new(
            Kind::InvalidInput,
            format!(
                "{} is not a backup downloaded by this app: only files in {} are uploaded",
                path.display(),
                dir.display()
            ),
        )));
    }
    Ok(Ok(file))
}

/// Runs file work off the async threads; its failure is a `local_file`
/// error saying `what` could not be done.
async fn local<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
    what: &str,
) -> Result<T, DesktopError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(DesktopError::new(Kind::LocalFile, format!("{what}: {e}"))),
        Err(e) => Err(DesktopError::new(Kind::LocalFile, format!("{what}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_plain_file_names_are_taken() {
        let name = "hello-web-1.0.0-20250101T000000Z.archy-backup";
        assert_eq!(backup_file_name(name).unwrap(), name);
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(
                backup_file_name(bad).unwrap_err().is(Kind::InvalidInput),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn new_backups_need_eight_characters() {
        assert!(check_new_passphrase("1234567").is_err());
        assert!(check_new_passphrase("12345678").is_ok());
        // Characters, not bytes.
        assert!(check_new_passphrase("ééééééé").is_err());
        let e = check_new_passphrase("short").unwrap_err();
        assert!(!e.message.contains("short"), "the passphrase is in {e}");
        assert!(check_passphrase_given("").is_err());
        assert!(check_passphrase_given("x").is_ok());
    }

    #[test]
    fn uploads_come_only_from_the_backups_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("downloads");
        create_folder(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let inside = dir.join("a.archy-backup");
        fs::write(&inside, b"x").unwrap();
        let outside = tmp.path().join("secret");
        fs::write(&outside, b"x").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();

        assert_eq!(
            in_folder(&dir, &inside).unwrap().unwrap(),
            fs::canonicalize(&inside).unwrap()
        );
        assert!(in_folder(&dir, &outside).unwrap().is_err());
        assert!(in_folder(&dir, &dir.join("link")).unwrap().is_err());
        assert!(in_folder(&dir, &dir.join("../secret")).unwrap().is_err());
        assert!(in_folder(&dir, &dir).unwrap().is_err(), "a folder");
        assert!(in_folder(&dir, &dir.join("missing")).is_err());
    }
}
