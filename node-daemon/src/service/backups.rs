//! Backups and restores of one app, their transfer in pieces to and from
//! clients, the per-app settings, and the schedule that runs automatic
//! updates and backups.
//!
//! A backup stops the app for the copy (its data is then consistent
//! whatever the app is) and starts it again; the archive is written next
//! to its target under a temporary name and renamed when complete, so a
//! full disk fails the backup, never the app. A restore decrypts and checks
//! the whole archive before anything on the node changes, then installs
//! the app at the archived version with its data and secrets and waits
//! until healthy; a failure undoes it.

use super::{NodeService, Progress, check_id, err, fs_error};
use crate::api::Events;
use crate::backup::{self, BackupError, BackupMeta, Key, Lock};
use crate::fsutil;
use crate::podman::PodmanApi;
use crate::state::{InstalledApp, Removal};
use crate::systemd::SystemdManager;
use archipelago_api::methods::{self as m, AppSettings, BACKUP_CHUNK_BYTES, Phase};
use archipelago_api::{ApiError, AppId, ErrorCode, RunState};
use base64::Engine as _;
use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a long copy reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Longest an automatic update or backup waits after it was due.
pub const SCHEDULE_TICK: Duration = Duration::from_secs(300);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The API error for a backup failure.
fn backup_error(e: &BackupError, context: &str) -> ApiError {
    match e {
        BackupError::WrongKey => err(
            ErrorCode::BadPassphrase,
            format!(
                "{context}: the passphrase or key does not open this backup. Nothing on the node was changed."
            ),
        ),
        BackupError::Corrupt(why) => err(
            ErrorCode::BackupCorrupt,
            format!(
                "{context}: the backup is damaged or not an Archipelago backup ({why}). Nothing on the node was changed."
            ),
        ),
        BackupError::Invalid(why) => err(ErrorCode::InvalidParams, format!("{context}: {why}")),
        other if other.is_disk_full() => err(
            ErrorCode::BackupFailed,
            format!("{context}: the disk is full ({other}). Make room and try again."),
        ),
        other => err(ErrorCode::BackupFailed, format!("{context}: {other}")),
    }
}

/// The sidecar holding a backup's SHA-256.
fn sidecar(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.sha256"))
}

/// A folder given by the client for backups on the node: absolute, plain,
/// an existing folder.
fn check_target(t: &str) -> Result<PathBuf, ApiError> {
    let path = PathBuf::from(t);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain || !path.is_dir() {
        return Err(err(
            ErrorCode::InvalidParams,
            format!("{t:?} is not an existing folder on the node (an absolute path without `..`)"),
        ));
    }
    Ok(path)
}

/// A backup in the node's backup folder: (name, path, app, version,
/// created), all but the path read from its name.
type BackupFile = (String, PathBuf, AppId, String, u64);

impl<S: SystemdManager + 'static, P: PodmanApi + 'static> NodeService<S, P> {
    /// Runs a blocking copy, sending its byte count as progress meanwhile.
    async fn copy_with_progress<T: Send + 'static>(
        &self,
        progress: &Progress<'_>,
        phase: Phase,
        total: u64,
        what: &str,
        work: impl FnOnce(&(dyn Fn(u64) + Sync)) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let mut task =
            tokio::task::spawn_blocking(move || work(&|n| counter.store(n, Ordering::Relaxed)));
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                joined = &mut task => {
                    let n = done.load(Ordering::Relaxed);
                    progress.bytes(phase, n, total.max(n), format!("{what}: {} MB", n / 1_000_000));
                    return joined.map_err(|e| err(ErrorCode::Internal, e.to_string()));
                }
                _ = tick.tick() => {
                    let n = done.load(Ordering::Relaxed);
                    progress.bytes(phase, n, total.max(n), format!("{what}: {} MB", n / 1_000_000));
                }
            }
        }
    }

    /// `package.backup`.
    pub async fn backup(
        &self,
        p: &m::BackupParams,
        events: Option<&Events>,
    ) -> Result<m::BackupInfo, ApiError> {
        check_id(&p.id)?;
        let lock = Lock::from_params(p.passphrase.as_deref(), p.recipient.as_deref())
            .map_err(|e| backup_error(&e, &format!("backup of {}", p.id)))?;
        let dir = match &p.target {
            Some(t) => check_target(t)?,
            None => self.backups_dir()?,
        };
        let app_lock = self.app_lock(&p.id);
        let _guard = app_lock.lock().await;
        let progress = Progress::new(&p.id, events);
        self.backup_locked(&p.id, &lock, &dir, &progress).await
    }

    /// The node's backup folder, created (0700) when missing.
    fn backups_dir(&self) -> Result<PathBuf, ApiError> {
        let dir = self.layout().backups_dir.clone();
        fsutil::ensure_dir(&dir, 0o700).map_err(|e| fs_error(&e))?;
        Ok(dir)
    }

    async fn backup_locked(
        &self,
        id: &str,
        lock: &Lock,
        dir: &Path,
        progress: &Progress<'_>,
    ) -> Result<m::BackupInfo, ApiError> {
        let manifest = self.installed(id)?;
        let state = self.state().unwrap_or_default();
        let app = state
            .apps
            .get(id)
            .ok_or_else(|| err(ErrorCode::AppNotInstalled, format!("{id} is not installed")))?;
        let created = now_secs();
        let name = backup::backup_name(id, &app.version, created);
        let dest = dir.join(&name);
        let context = format!("backup of {id}");
        let (meta_dir, meta_entry) = self.describe(id, app, &manifest, created)?;
        let running = self
            .desired()
            .apps()
            .get(id)
            .is_some_and(|d| d.effective_run == RunState::Running);
        // An app that says how to make its data consistent runs on;
        // any other is stopped for the copy.
        let stop = running && manifest.backup.is_none();
        let result = {
            let held = match self.quiesce(id, &manifest, running, stop, progress).await {
                Ok(held) => held,
                Err(why) => {
                    let _ = std::fs::remove_dir_all(&meta_dir);
                    return Err(err(ErrorCode::BackupFailed, format!("{context}: {why}")));
                }
            };
            let mut entries = vec![meta_entry];
            entries.extend(self.data_entries(id, &manifest, false).await?);
            let total: u64 = entries
                .iter()
                .map(|e| crate::archive::size_of(&e.dir))
                .sum();
            let tool = self.ctx.data.clone();
            let lock_copy = match lock {
                Lock::Passphrase(p) => Lock::Passphrase(p.clone()),
                Lock::Recipient(r) => Lock::Recipient(r.clone()),
            };
            let dest_copy = dest.clone();
            let copied = self
                .copy_with_progress(progress, Phase::Archiving, total, "archiving", move |cb| {
                    backup::write_backup(&*tool, &entries, &lock_copy, &dest_copy, cb)
                })
                .await?;
            drop(held);
            copied
        };
        let _ = std::fs::remove_dir_all(&meta_dir);
        let restarted = if stop {
            progress.send(Phase::Starting, format!("starting {id} again"));
            match self.pass_for(id).await {
                Ok(()) => self.wait_healthy(id, &manifest).await,
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        let (bytes, sha256) = result.map_err(|e| {
            let mut error = backup_error(&e, &context);
            error.message.push_str(match &restarted {
                Ok(()) => " No partial backup was left; the app runs as before.",
                Err(_) => " No partial backup was left.",
            });
            error
        })?;
        if let Err(e) =
            fsutil::atomic_write(&sidecar(&dest), format!("{sha256}\n").as_bytes(), 0o600)
        {
            tracing::warn!("could not record the checksum of {name}: {e}");
        }
        if let Err(why) = restarted {
            return Err(err(
                ErrorCode::Systemd,
                format!("{context} was made ({name}), but {id} did not start again: {why}"),
            ));
        }
        progress.send(Phase::Done, format!("backed up {id} to {name}"));
        tracing::info!(app = id, backup = %name, bytes, "backed up");
        Ok(m::BackupInfo {
            name,
            app: id.to_owned(),
            version: app.version.clone(),
            created,
            bytes,
            path: dest.display().to_string(),
            sha256,
        })
    }

    /// Makes the app's data consistent for a copy: runs its pre-backup
    /// command while it runs, or (`stop`) pauses it and its dependants and
    /// stops it; the guard to keep while copying. On failure the app runs
    /// as before.
    async fn quiesce(
        &self,
        id: &str,
        manifest: &crate::manifest::Manifest,
        running: bool,
        stop: bool,
        progress: &Progress<'_>,
    ) -> Result<Option<crate::reconcile::Paused<'_, S, P>>, String> {
        if let (true, Some(hook)) = (running, &manifest.backup) {
            progress.send(
                Phase::Archiving,
                format!("running the pre-backup command in {}", hook.container),
            );
            let container = crate::quadlet::container_name(id, &hook.container);
            let done = self
                .ctx
                .podman
                .exec(&container, &hook.pre)
                .await
                .map_err(|e| format!("the pre-backup command could not run: {e}"))?;
            if done.exit_code != 0 {
                let tail: Vec<String> = done
                    .output
                    .iter()
                    .rev()
                    .take(10)
                    .rev()
                    .map(|l| format!("  | {}", l.text))
                    .collect();
                return Err(format!(
                    "the pre-backup command `{}` in {container} exited with {}:\n{}\nNothing was archived; {id} runs as before",
                    hook.pre.join(" "),
                    done.exit_code,
                    tail.join("\n")
                ));
            }
        }
        if !stop {
            return Ok(None);
        }
        let held = self.ctx.pause(self.with_dependants(id)).await;
        progress.send(
            Phase::Stopping,
            format!("stopping {id} for a consistent copy"),
        );
        if let Err(why) = self.stop_units(id, manifest).await {
            drop(held);
            let _ = self.pass_for(id).await;
            return Err(why);
        }
        Ok(Some(held))
    }

    /// Writes a backup's description and manifest into a staging folder:
    /// the folder, and the entry that packs it.
    fn describe(
        &self,
        id: &str,
        app: &InstalledApp,
        manifest: &crate::manifest::Manifest,
        created: u64,
    ) -> Result<(PathBuf, crate::archive::Entry), ApiError> {
        let text = std::fs::read(&app.manifest).map_err(|e| {
            err(
                ErrorCode::Io,
                format!("reading {}: {e}", app.manifest.display()),
            )
        })?;
        let meta = BackupMeta {
            format: backup::FORMAT,
            app: id.to_owned(),
            version: app.version.clone(),
            created,
            source: app.source.clone(),
            volumes: manifest.volumes.iter().map(|v| v.name.clone()).collect(),
            manifest_sha256: backup::sha256_hex(&text),
        };
        fsutil::ensure_dir(&self.layout().staging_dir, 0o700).map_err(|e| fs_error(&e))?;
        let meta_dir = self
            .layout()
            .staging_dir
            .join(format!("meta-{id}-{created}"));
        let entry = backup::write_meta(&meta_dir, &meta, &text)
            .map_err(|e| backup_error(&e, &format!("backup of {id}")))?;
        Ok((meta_dir, entry))
    }

    /// Where the backup a client names is: a name in the node's backup
    /// folder, or an absolute path of a file on the node.
    fn backup_file(&self, backup: &str) -> Result<PathBuf, ApiError> {
        let path = if backup.starts_with('/') {
            let p = PathBuf::from(backup);
            if !p
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            {
                return Err(err(
                    ErrorCode::InvalidParams,
                    format!("{backup:?}: a path without `..` please"),
                ));
            }
            p
        } else {
            backup::check_name(backup).map_err(|e| err(ErrorCode::InvalidParams, e.to_string()))?;
            self.layout().backups_dir.join(backup)
        };
        if !path.is_file() {
            return Err(err(
                ErrorCode::BackupNotFound,
                format!("there is no backup {backup} on this node (`archy backups` lists them)"),
            ));
        }
        Ok(path)
    }

    /// `package.restore`.
    pub async fn restore(
        &self,
        p: &m::RestoreParams,
        events: Option<&Events>,
    ) -> Result<m::PackageStatus, ApiError> {
        let file = self.backup_file(&p.backup)?;
        let context = format!("restore of {}", p.backup);
        let key = Key::from_params(p.passphrase.as_deref(), p.identity.as_deref())
            .map_err(|e| backup_error(&e, &context))?;
        fsutil::ensure_dir(&self.layout().staging_dir, 0o700).map_err(|e| fs_error(&e))?;
        let staging = self.layout().staging_dir.join(format!(
            "restore-{}-{}.tar",
            std::process::id(),
            now_secs()
        ));
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        // The id is only known once the backup is open: report under its name.
        let early = Progress::new(&p.backup, events);
        early.send(
            Phase::Verifying,
            format!("decrypting and checking {}", p.backup),
        );
        let (f, s) = (file.clone(), staging.clone());
        let opened = self
            .copy_with_progress(&early, Phase::Verifying, size, "checking", move |cb| {
                backup::open_backup(&f, &key, &s, cb)
            })
            .await?
            .map_err(|e| backup_error(&e, &context))?;
        let id = opened.meta.app.clone();
        check_id(&id)?;
        let app_lock = self.app_lock(&id);
        let _guard = app_lock.lock().await;
        let progress = Progress::new(&id, events);
        let state = self.state().unwrap_or_default();
        if state.apps.contains_key(&id) {
            return Err(err(
                ErrorCode::AlreadyInstalled,
                format!(
                    "{id} is installed on this node: uninstall it first (without keeping its data) to restore {}. Nothing was changed.",
                    p.backup
                ),
            ));
        }
        let origin = PathBuf::from(format!("{}:manifest.yml", p.backup));
        let manifest = self.check_install(&id, &origin, &opened.manifest, &state)?;
        if manifest.version != opened.meta.version {
            return Err(err(
                ErrorCode::BackupCorrupt,
                format!(
                    "{context}: its description says version {}, its manifest {}",
                    opened.meta.version, manifest.version
                ),
            ));
        }
        let images: std::collections::BTreeSet<&str> = manifest
            .containers
            .iter()
            .map(|c| c.image.as_str())
            .collect();
        let total = u32::try_from(images.len()).unwrap_or(u32::MAX);
        for (done, image) in (0u32..).zip(&images) {
            self.pull(image, done, total, &progress).await?;
        }

        // From here the node changes: record a removal first, so that a
        // daemon that dies before the app is installed clears what the
        // restore put down.
        self.edit_state(|s| {
            s.removing.insert(id.clone(), Removal { keep_data: false });
            Ok(())
        })
        .await?;
        // The manifest goes down before any volume: a clean-up after a
        // power cut from here on knows which volumes the restore made.
        self.write_installed_manifest(&id, opened.manifest.as_bytes())?;
        progress.send(Phase::Restoring, format!("putting back the data of {id}"));
        let placed = self
            .place_restored(&id, &manifest, &opened, &context, &progress)
            .await;
        drop(opened);
        let begun = SystemTime::now();
        let outcome = match placed {
            Ok(()) => {
                progress.send(Phase::Starting, format!("starting {id}"));
                match self.pass_for(&id).await {
                    Ok(()) => self.wait_healthy(&id, &manifest).await,
                    Err(reason) => Err(reason),
                }
            }
            Err(e) => Err(e.message),
        };
        match outcome {
            Ok(()) => {
                progress.send(Phase::Healthy, format!("{id} is healthy"));
                let status = self.status(&id).await?;
                progress.send(Phase::Done, format!("{id} restored from {}", p.backup));
                tracing::info!(app = %id, backup = %p.backup, "restored and healthy");
                Ok(status)
            }
            Err(reason) => Err(self
                .undo_restore(&id, &manifest, &reason, begun, &context, &progress)
                .await),
        }
    }

    /// Undoes a restore that did not get healthy and says why.
    async fn undo_restore(
        &self,
        id: &str,
        manifest: &crate::manifest::Manifest,
        reason: &str,
        begun: SystemTime,
        context: &str,
        progress: &Progress<'_>,
    ) -> ApiError {
        let logs = self.failure_logs(id, manifest, begun).await;
        progress.send(Phase::RollingBack, format!("{reason}; undoing the restore"));
        let undo = self.remove(id, false, progress).await;
        err(
            ErrorCode::RestoreFailed,
            format!(
                "{context} failed: {reason}.{logs} {}",
                match undo {
                    Ok(_) => "What the restore did was undone; the backup is unchanged.".to_owned(),
                    Err(e) => format!(
                        "Undoing it failed too ({}); the daemon finishes it in its next passes.",
                        e.message
                    ),
                }
            ),
        )
    }

    /// Puts a checked backup's data, secrets and manifest in place and
    /// records the app as installed.
    async fn place_restored(
        &self,
        id: &str,
        manifest: &crate::manifest::Manifest,
        opened: &backup::Opened,
        context: &str,
        progress: &Progress<'_>,
    ) -> Result<(), ApiError> {
        let entries = self.data_entries(id, manifest, true).await?;
        let tool = self.ctx.data.clone();
        let tar = opened.tar().to_path_buf();
        self.copy_with_progress(progress, Phase::Restoring, 0, "restoring", move |_| {
            backup::restore_tar(&*tool, &tar, &entries)
        })
        .await?
        .map_err(|e| backup_error(&e, context))?;
        self.record_installed(
            id,
            opened.manifest.as_bytes(),
            manifest.version.clone(),
            opened.meta.source.clone(),
            opened.meta.manifest_sha256.clone(),
        )
        .await?;
        Ok(())
    }

    /// The backups in the node's backup folder as their names tell them,
    /// unsorted.
    fn backup_files(&self, only: Option<&str>) -> Result<Vec<BackupFile>, ApiError> {
        let dir = &self.layout().backups_dir;
        let items = match std::fs::read_dir(dir) {
            Ok(items) => items,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(err(
                    ErrorCode::Io,
                    format!("listing {}: {e}", dir.display()),
                ));
            }
        };
        Ok(items
            .filter_map(Result::ok)
            .filter_map(|item| {
                let name = item.file_name().to_string_lossy().into_owned();
                backup::check_name(&name).ok()?;
                let (app, version, created) = backup::parse_name(&name)?;
                if only.is_some_and(|o| o != app) {
                    return None;
                }
                Some((name, item.path(), app, version, created))
            })
            .collect())
    }

    /// `backup.list`: the backups in the node's backup folder, newest
    /// first.
    pub fn backups(&self, only: Option<&str>) -> Result<Vec<m::BackupInfo>, ApiError> {
        let mut out: Vec<m::BackupInfo> = self
            .backup_files(only)?
            .into_iter()
            .map(|(name, path, app, version, created)| m::BackupInfo {
                bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
                sha256: std::fs::read_to_string(sidecar(&path))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default(),
                path: path.display().to_string(),
                name,
                app,
                version,
                created,
            })
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
        Ok(out)
    }

    /// The newest backup time of each app in the node's backup folder, from
    /// the file names alone (a status asks for it every time).
    pub(super) fn last_backups(&self) -> HashMap<AppId, u64> {
        let mut out: HashMap<AppId, u64> = HashMap::new();
        for (_, _, app, _, created) in self.backup_files(None).unwrap_or_default() {
            let e = out.entry(app).or_default();
            *e = (*e).max(created);
        }
        out
    }

    /// `backup.download`: one piece of a backup.
    pub fn download(&self, p: &m::BackupChunkParams) -> Result<m::BackupChunk, ApiError> {
        backup::check_name(&p.name).map_err(|e| err(ErrorCode::InvalidParams, e.to_string()))?;
        let path = self.backup_file(&p.name)?;
        let mut file = std::fs::File::open(&path)
            .map_err(|e| err(ErrorCode::Io, format!("opening {}: {e}", path.display())))?;
        let total = file.metadata().map_or(0, |m| m.len());
        if p.offset > total {
            return Err(err(
                ErrorCode::InvalidParams,
                format!(
                    "offset {} is past the end of {} ({total} bytes)",
                    p.offset, p.name
                ),
            ));
        }
        file.seek(SeekFrom::Start(p.offset))
            .map_err(|e| err(ErrorCode::Io, e.to_string()))?;
        let mut buf = Vec::with_capacity(BACKUP_CHUNK_BYTES);
        file.take(BACKUP_CHUNK_BYTES as u64)
            .read_to_end(&mut buf)
            .map_err(|e| err(ErrorCode::Io, e.to_string()))?;
        let end = p.offset + buf.len() as u64;
        Ok(m::BackupChunk {
            data_base64: base64::engine::general_purpose::STANDARD.encode(&buf),
            offset: p.offset,
            total,
            eof: end >= total,
        })
    }

    /// `backup.upload`: one piece of a backup sent to the node.
    pub fn upload(&self, p: &m::BackupUploadParams) -> Result<m::BackupUploadResult, ApiError> {
        backup::check_name(&p.name).map_err(|e| err(ErrorCode::InvalidParams, e.to_string()))?;
        let dir = self.backups_dir()?;
        let dest = dir.join(&p.name);
        if dest.exists() {
            return Err(err(
                ErrorCode::InvalidParams,
                format!(
                    "the node already has a backup {}: delete it first or restore it",
                    p.name
                ),
            ));
        }
        let part = dir.join(format!(".{}.upload", p.name));
        let have = std::fs::metadata(&part).map_or(0, |m| m.len());
        if p.offset != have {
            // Resume where the node is.
            return Ok(m::BackupUploadResult {
                received: have,
                done: None,
            });
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(&p.data_base64)
            .map_err(|e| {
                err(
                    ErrorCode::InvalidParams,
                    format!("the piece is not base64: {e}"),
                )
            })?;
        if data.len() > BACKUP_CHUNK_BYTES {
            return Err(err(
                ErrorCode::InvalidParams,
                format!("a piece may hold at most {BACKUP_CHUNK_BYTES} bytes"),
            ));
        }
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&part)
                .map_err(|e| err(ErrorCode::Io, format!("opening {}: {e}", part.display())))?;
            f.write_all(&data)
                .and_then(|()| f.sync_data())
                .map_err(|e| {
                    err(
                        ErrorCode::Io,
                        format!(
                            "writing {}: {e}{}",
                            part.display(),
                            if e.kind() == std::io::ErrorKind::StorageFull {
                                " (the disk is full)"
                            } else {
                                ""
                            }
                        ),
                    )
                })?;
        }
        let received = have + data.len() as u64;
        let Some(expected) = &p.sha256 else {
            return Ok(m::BackupUploadResult {
                received,
                done: None,
            });
        };
        let (bytes, sha256) =
            backup::hash_file(&part).map_err(|e| err(ErrorCode::Io, e.to_string()))?;
        if !sha256.eq_ignore_ascii_case(expected.trim()) {
            let _ = std::fs::remove_file(&part);
            return Err(err(
                ErrorCode::BackupCorrupt,
                format!(
                    "{} arrived damaged (SHA-256 {sha256}, expected {expected}); send it again",
                    p.name
                ),
            ));
        }
        std::fs::rename(&part, &dest).map_err(|e| err(ErrorCode::Io, e.to_string()))?;
        let _ = fsutil::atomic_write(&sidecar(&dest), format!("{sha256}\n").as_bytes(), 0o600);
        let (app, version, created) = backup::parse_name(&p.name).unwrap_or_default();
        tracing::info!(backup = %p.name, bytes, "backup received");
        Ok(m::BackupUploadResult {
            received,
            done: Some(m::BackupInfo {
                name: p.name.clone(),
                app,
                version,
                created,
                bytes,
                path: dest.display().to_string(),
                sha256,
            }),
        })
    }

    /// `backup.delete`.
    pub fn delete_backup(&self, name: &str) -> Result<(), ApiError> {
        backup::check_name(name).map_err(|e| err(ErrorCode::InvalidParams, e.to_string()))?;
        let path = self.layout().backups_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                let _ = std::fs::remove_file(sidecar(&path));
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(err(
                ErrorCode::BackupNotFound,
                format!("there is no backup {name} on this node"),
            )),
            Err(e) => Err(err(
                ErrorCode::Io,
                format!("deleting {}: {e}", path.display()),
            )),
        }
    }

    /// `package.settings`.
    pub async fn set_settings(&self, p: &m::SettingsParams) -> Result<m::PackageStatus, ApiError> {
        check_id(&p.id)?;
        let s = &p.settings;
        let invalid = |what: String| err(ErrorCode::InvalidParams, what);
        if s.auto_update_hours > 24 * 365 || s.backup_max_age_hours > 24 * 3650 {
            return Err(invalid(
                "hours must be at most a year (auto-update) or ten years (backup age)".into(),
            ));
        }
        if let Some(b) = &s.backup_schedule {
            if b.every_hours == 0 || b.every_hours > 24 * 365 {
                return Err(invalid(
                    "backups are scheduled every 1 to 8760 hours".into(),
                ));
            }
            if b.keep == 0 || b.keep > 1000 {
                return Err(invalid("keep 1 to 1000 scheduled backups".into()));
            }
            backup::parse_recipient(&b.recipient).map_err(|e| invalid(e.to_string()))?;
        }
        self.edit_state(|state| {
            let app = state.apps.get_mut(&p.id).ok_or_else(|| {
                err(
                    ErrorCode::AppNotInstalled,
                    format!("{} is not installed", p.id),
                )
            })?;
            app.settings = s.clone();
            Ok(())
        })
        .await?;
        self.status(&p.id).await
    }

    /// Runs the automatic updates and backups that are due. The daemon
    /// calls this every [`SCHEDULE_TICK`].
    pub async fn scheduled(&self) {
        let Some(state) = self.state() else {
            return;
        };
        let now = now_secs();
        let last_backups = self.last_backups();
        let offered = self.offered_updates(&state);
        for (id, app) in &state.apps {
            let s = &app.settings;
            if s.auto_update_hours > 0 && offered.contains_key(id) {
                let due = {
                    let mut checks = self
                        .update_checks
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let last = *checks.entry(id.clone()).or_insert(0);
                    let due = now.saturating_sub(last) >= u64::from(s.auto_update_hours) * 3600;
                    if due {
                        checks.insert(id.clone(), now);
                    }
                    due
                };
                if due {
                    tracing::info!(app = %id, "automatic update");
                    match self.update(id, None).await {
                        Ok(r) => {
                            tracing::info!(app = %id, from = %r.from_version, to = %r.to_version, "updated automatically");
                        }
                        Err(e) => tracing::warn!(app = %id, "automatic update: {}", e.message),
                    }
                }
            }
            if let Some(b) = &s.backup_schedule {
                let last = last_backups.get(id).copied().unwrap_or(0);
                if now.saturating_sub(last) >= u64::from(b.every_hours) * 3600 {
                    self.scheduled_backup(id, b).await;
                }
            }
        }
    }

    async fn scheduled_backup(&self, id: &str, b: &m::BackupSchedule) {
        let lock = match backup::parse_recipient(&b.recipient) {
            Ok(r) => Lock::Recipient(Box::new(r)),
            Err(e) => {
                tracing::warn!(app = id, "scheduled backup: {e}");
                return;
            }
        };
        let Ok(dir) = self.backups_dir() else {
            return;
        };
        let app_lock = self.app_lock(id);
        let _guard = app_lock.lock().await;
        let progress = Progress::new(id, None);
        match self.backup_locked(id, &lock, &dir, &progress).await {
            Ok(info) => {
                tracing::info!(app = id, backup = %info.name, "scheduled backup made");
                let keep = usize::try_from(b.keep).unwrap_or(usize::MAX);
                for old in self
                    .backups(Some(id))
                    .unwrap_or_default()
                    .into_iter()
                    .skip(keep)
                {
                    if let Err(e) = self.delete_backup(&old.name) {
                        tracing::warn!(app = id, "could not delete an old backup: {}", e.message);
                    }
                }
            }
            Err(e) => tracing::warn!(app = id, "scheduled backup failed: {}", e.message),
        }
    }
}

/// Whether an app's last backup is older than its limit.
pub(super) fn overdue(settings: &AppSettings, last: Option<u64>, now: u64) -> bool {
    settings.backup_max_age_hours > 0
        && last
            .is_none_or(|t| now.saturating_sub(t) > u64::from(settings.backup_max_age_hours) * 3600)
}

/// Now, in unix seconds (for status).
pub(super) fn now() -> u64 {
    now_secs()
}
