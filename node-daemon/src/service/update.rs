//! `package.update`: an installed app to the version its catalog offers
//! now, rolled back automatically when the new version does not get
//! healthy.
//!
//! The steps, each safe to die in:
//!
//! 1. Check the new manifest alone and with the installed apps; pull its
//!    images while the old version runs. Nothing recorded yet.
//! 2. When the images or volumes change: hold off reconcile passes, stop
//!    the app's units and snapshot its data, secrets and volumes.
//! 3. Switch: one state edit points the app at the new manifest
//!    (`manifest.next.yml`) and records the [`PendingUpdate`]. A daemon that
//!    dies from here on rolls the update back when it starts again
//!    ([`NodeService::finish_updates`]).
//! 4. A pass starts the new units; wait until healthy.
//! 5. Healthy: the new manifest becomes `manifest.yml`, the pending record
//!    goes, the snapshot is deleted, and the images of the version before
//!    the previous one are removed (the previous version's stay, so that a
//!    later rollback needs no pull). Not healthy: stop, put the snapshot
//!    back, point the state at the old manifest, start, wait until healthy,
//!    and report why the new version failed.

use super::{NodeService, Progress, check_id, err, fs_error};
use crate::api::Events;
use crate::archive::Entry;
use crate::backup;
use crate::fsutil;
use crate::manifest::{self, Manifest};
use crate::podman::PodmanApi;
use crate::quadlet;
use crate::reconcile::Paused;
use crate::state::{InstalledApp, NodeState, PendingUpdate};
use crate::systemd::SystemdManager;
use archipelago_api::methods::{self as m, Phase};
use archipelago_api::{ApiError, AppId, ErrorCode};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Instant, SystemTime};

/// Whether a catalog manifest (its digest and version) is another version
/// than the one `app` was installed from. Apps installed before the digest
/// was recorded compare by version.
pub(super) fn offers_update(app: &InstalledApp, manifest_sha256: &str, version: &str) -> bool {
    if app.catalog_sha256.is_empty() {
        version != app.version
    } else {
        manifest_sha256 != app.catalog_sha256
    }
}

/// The images a manifest runs.
pub(super) fn images_of(m: &Manifest) -> BTreeSet<String> {
    m.containers.iter().map(|c| c.image.clone()).collect()
}

impl<S: SystemdManager + 'static, P: PodmanApi + 'static> NodeService<S, P> {
    /// `package.update`.
    pub async fn update(
        &self,
        id: &str,
        events: Option<&Events>,
    ) -> Result<m::UpdateResult, ApiError> {
        check_id(id)?;
        let lock = self.app_lock(id);
        let _guard = lock.lock().await;
        let progress = Progress::new(id, events);
        progress.send(Phase::Validating, format!("checking the update of {id}"));
        self.recover_interrupted(id).await?;
        let state = self.state().unwrap_or_default();
        let Some(app) = state.apps.get(id).cloned() else {
            return Err(err(
                ErrorCode::AppNotInstalled,
                format!("{id} is not installed"),
            ));
        };
        let old = self.installed(id)?;
        let (origin, text, source) = self.catalog_manifest(id)?;
        let new_sha = backup::sha256_hex(text.as_bytes());
        if new_sha == app.catalog_sha256 {
            progress.send(Phase::Done, format!("{id} {} is up to date", app.version));
            return self.up_to_date(id, app.version).await;
        }
        let new = self.check_update(id, &origin, &text, &state)?;
        let old_images = images_of(&old);
        let new_images = images_of(&new);
        let snapshot_needed = old_images != new_images || old.volumes != new.volumes;
        tracing::info!(app = id, from = %old.version, to = %new.version, snapshot_needed, "updating");

        // 1. Pull while the old version runs.
        self.pull_update(id, &new_images, &old.version, &progress)
            .await?;
        let text_bytes = super::bound_text(&origin, &text, &new)?;
        let next = self.layout().next_manifest(id);
        fsutil::atomic_write(&next, &text_bytes, 0o644).map_err(|e| fs_error(&e))?;
        let begun = SystemTime::now();

        // 2. Snapshot. The app and its dependants are paused from here to
        //    the end: no pass of the daemon's loop starts the old version
        //    over its copied data, or the new one while it is being rolled
        //    back. Only this update's own passes touch them.
        let held = self.ctx.pause(self.with_dependants(id)).await;
        let snapshot = if snapshot_needed {
            progress.send(
                Phase::Snapshotting,
                format!("stopping {id} and copying its data aside"),
            );
            match self.snapshot(id, &old).await {
                Ok(path) => Some(path),
                Err(reason) => {
                    return Err(self.snapshot_failed(id, &old.version, &reason, &held).await);
                }
            }
        } else {
            None
        };

        // 3. Switch.
        progress.send(
            Phase::Switching,
            format!("switching {id} from {} to {}", old.version, new.version),
        );
        let pending = PendingUpdate {
            from_version: app.version.clone(),
            from_manifest: app.manifest.clone(),
            snapshot: snapshot.clone(),
        };
        if let Err(e) = self.switch_to(id, &next, &new.version, &pending).await {
            self.discard_update_files(id, pending.snapshot.as_deref());
            let _ = self.pass_for_held(id, &held).await;
            return Err(e);
        }

        // 4. Start and wait.
        progress.send(Phase::Starting, format!("starting {id} {}", new.version));
        let outcome = match self.pass_for_held(id, &held).await {
            Ok(()) => self.wait_healthy(id, &new).await,
            Err(reason) => Err(reason),
        };
        match outcome {
            Ok(()) => {
                progress.send(Phase::Healthy, format!("{id} {} is healthy", new.version));
                self.finish_update(
                    id,
                    &text_bytes,
                    &new_sha,
                    &source,
                    &app.previous_images,
                    &old_images,
                    &new_images,
                )
                .await?;
                tracing::info!(app = id, from = %old.version, to = %new.version, "updated and healthy");
                let status = self.status(id).await?;
                progress.send(Phase::Done, format!("{id} updated to {}", new.version));
                Ok(m::UpdateResult {
                    status,
                    from_version: old.version.clone(),
                    to_version: new.version.clone(),
                    data_snapshot: snapshot.is_some(),
                })
            }
            Err(reason) => Err(self
                .roll_back_failed_update(id, &old, &new, &pending, &reason, begun, &progress, &held)
                .await),
        }
    }

    /// The answer to an update with nothing new in the catalog.
    async fn up_to_date(&self, id: &str, version: String) -> Result<m::UpdateResult, ApiError> {
        Ok(m::UpdateResult {
            status: self.status(id).await?,
            from_version: version.clone(),
            to_version: version,
            data_snapshot: false,
        })
    }

    /// Rolls back an update of `id` that a daemon died in, if there is one.
    async fn recover_interrupted(&self, id: &str) -> Result<(), ApiError> {
        let pending = self
            .state()
            .and_then(|s| s.apps.get(id).and_then(|a| a.update.clone()));
        if let Some(pending) = pending {
            let held = self.ctx.pause(self.with_dependants(id)).await;
            self.roll_back(id, &pending, None, &held)
                .await
                .map_err(|reason| {
                    err(
                        ErrorCode::Systemd,
                        format!("an interrupted update of {id} could not be rolled back: {reason}"),
                    )
                })?;
        }
        Ok(())
    }

    /// Points the app at the new manifest and records the pending update,
    /// in one state edit.
    async fn switch_to(
        &self,
        id: &str,
        next: &Path,
        version: &str,
        pending: &PendingUpdate,
    ) -> Result<(), ApiError> {
        self.edit_state(|s| {
            let a = s
                .apps
                .get_mut(id)
                .ok_or_else(|| err(ErrorCode::AppNotInstalled, format!("{id} is not installed")))?;
            a.update = Some(pending.clone());
            next.clone_into(&mut a.manifest);
            version.clone_into(&mut a.version);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Pulls an update's images while the old version runs.
    async fn pull_update(
        &self,
        id: &str,
        images: &BTreeSet<String>,
        old_version: &str,
        progress: &Progress<'_>,
    ) -> Result<(), ApiError> {
        let total = u32::try_from(images.len()).unwrap_or(u32::MAX);
        for (done, image) in (0u32..).zip(images) {
            self.pull(image, done, total, progress).await.map_err(|e| {
                err(
                    ErrorCode::UpdateRolledBack,
                    format!(
                        "{} {id} still runs {old_version} unchanged.",
                        e.message
                            .replace("Nothing was installed", "Nothing was changed")
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// The error of an update whose snapshot could not be made; the old
    /// version is started again.
    async fn snapshot_failed(
        &self,
        id: &str,
        old_version: &str,
        reason: &str,
        held: &Paused<'_, S, P>,
    ) -> ApiError {
        let _ = std::fs::remove_file(self.layout().next_manifest(id));
        let restarted = self.pass_for_held(id, held).await;
        err(
            ErrorCode::UpdateRolledBack,
            format!(
                "could not snapshot the data of {id} before updating it: {reason}. The update was not applied; {id} {old_version}{}",
                if restarted.is_ok() {
                    " runs as before"
                } else {
                    " is being started again"
                }
            ),
        )
    }

    /// Rolls a failed update back and says why it failed and how the
    /// rollback went.
    #[allow(clippy::too_many_arguments)]
    async fn roll_back_failed_update(
        &self,
        id: &str,
        old: &Manifest,
        new: &Manifest,
        pending: &PendingUpdate,
        reason: &str,
        begun: SystemTime,
        progress: &Progress<'_>,
        held: &Paused<'_, S, P>,
    ) -> ApiError {
        use std::fmt::Write as _;
        let logs = self.failure_logs(id, new, begun).await;
        progress.send(
            Phase::RollingBack,
            format!("{reason}; rolling back to {}", old.version),
        );
        tracing::warn!(app = id, "update failed, rolling back: {reason}");
        let started = Instant::now();
        let back = self.roll_back(id, pending, Some(new), held).await;
        let mut message = format!(
            "update of {id} from {} to {} failed: {reason}.{logs}",
            old.version, new.version
        );
        match back {
            Ok(()) => {
                let _ = write!(
                    message,
                    " Rolled back in {:.1} s: {id} {} runs and is healthy again{}.",
                    started.elapsed().as_secs_f64(),
                    old.version,
                    if pending.snapshot.is_some() {
                        ", with its data as it was before the update"
                    } else {
                        ""
                    }
                );
                err(ErrorCode::UpdateRolledBack, message)
            }
            Err(why) => {
                let _ = write!(
                    message,
                    " Rolling back to {} failed too ({why}); the daemon tries again at its next start, or run the update again.",
                    old.version
                );
                err(ErrorCode::Systemd, message)
            }
        }
    }

    /// Checks the catalog's manifest of an installed app: alone, and with
    /// the other installed apps (whose dependencies it must still serve).
    fn check_update(
        &self,
        id: &str,
        file: &Path,
        text: &str,
        state: &NodeState,
    ) -> Result<Manifest, ApiError> {
        let mut others = state.clone();
        others.apps.remove(id);
        // Dependencies are checked against the other apps; what the new
        // version must offer its dependants is checked by the set below.
        let bound = self.check_install(id, file, text, &others)?;
        let desired = self.desired();
        let dependants: Vec<(&Path, &Manifest)> = state
            .apps
            .iter()
            .filter(|(other, _)| other.as_str() != id)
            .filter_map(|(other, a)| {
                desired
                    .apps()
                    .get(other)
                    .map(|d| (a.manifest.as_path(), &d.manifest))
            })
            .chain(std::iter::once((file, &bound)))
            .collect();
        manifest::validate_set(dependants).map_err(|errors| {
            err(
                ErrorCode::InvalidManifest,
                format!(
                    "{id} {} does not fit the apps installed with it: {}",
                    bound.version,
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        })?;
        Ok(bound)
    }

    /// Stops the app's units and copies its data, secrets and volumes into
    /// its snapshot file.
    /// The caller holds passes off.
    async fn snapshot(&self, id: &str, m: &Manifest) -> Result<std::path::PathBuf, String> {
        self.stop_units(id, m).await?;
        let entries = self
            .data_entries(id, m, false)
            .await
            .map_err(|e| e.message)?;
        fsutil::ensure_dir(&self.layout().snapshots_dir, 0o700).map_err(|e| e.to_string())?;
        let path = self.layout().snapshot(id);
        let tool = self.ctx.data.clone();
        let dest = path.clone();
        tokio::task::spawn_blocking(move || backup::write_snapshot(&*tool, &entries, &dest))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                if e.is_disk_full() {
                    format!("the disk is full ({e})")
                } else {
                    e.to_string()
                }
            })?;
        Ok(path)
    }

    /// Stops each container unit of an app (a unit that requires one of
    /// them stops with it; the next pass starts them again).
    pub(super) async fn stop_units(&self, id: &str, m: &Manifest) -> Result<(), String> {
        for c in m.containers.iter().rev() {
            let unit = quadlet::container_service(id, &c.name);
            self.ctx
                .systemd
                .stop_unit(&unit)
                .await
                .map_err(|e| format!("stopping {unit}: {e}"))?;
        }
        Ok(())
    }

    /// The folders of an app's data, secrets and volumes, with their
    /// prefixes in snapshots and backups. With `create`, missing volumes
    /// are created (a restore); without, they are left out.
    pub(super) async fn data_entries(
        &self,
        id: &str,
        m: &Manifest,
        create: bool,
    ) -> Result<Vec<Entry>, ApiError> {
        let mut volumes = Vec::new();
        for v in &m.volumes {
            let name = format!("{id}_{}", v.name);
            let dir = if create {
                Some(self.ctx.podman.create_volume(&name, id).await)
            } else {
                self.ctx.podman.volume_mountpoint(&name).await.transpose()
            };
            if let Some(dir) = dir {
                let dir = dir.map_err(|e| err(ErrorCode::Podman, e.to_string()))?;
                volumes.push((v.name.clone(), dir));
            }
        }
        Ok(backup::app_entries(
            &self.layout().app_secrets_dir(id),
            &self.layout().app_data_dir(id),
            &volumes,
        ))
    }

    /// Makes the new version the installed one and drops what the update
    /// no longer needs.
    #[allow(clippy::too_many_arguments)]
    async fn finish_update(
        &self,
        id: &str,
        text: &[u8],
        sha: &str,
        source: &str,
        before_previous: &[String],
        old_images: &BTreeSet<String>,
        new_images: &BTreeSet<String>,
    ) -> Result<(), ApiError> {
        let installed = self.layout().installed_manifest(id);
        fsutil::atomic_write(&installed, text, 0o644).map_err(|e| fs_error(&e))?;
        let keep: Vec<String> = old_images.difference(new_images).cloned().collect();
        let state = self
            .edit_state(|s| {
                if let Some(a) = s.apps.get_mut(id) {
                    a.manifest.clone_from(&installed);
                    a.update = None;
                    sha.clone_into(&mut a.catalog_sha256);
                    source.clone_into(&mut a.source);
                    a.previous_images.clone_from(&keep);
                }
                Ok(())
            })
            .await?;
        self.discard_update_files(id, Some(&self.layout().snapshot(id)));
        // The images of the version before the previous one, unless some
        // app still runs or keeps them.
        let desired = self.desired();
        let in_use: BTreeSet<String> = desired
            .apps()
            .values()
            .flat_map(|d| images_of(&d.manifest))
            .chain(
                state
                    .apps
                    .values()
                    .flat_map(|a| a.previous_images.iter().cloned()),
            )
            .collect();
        for image in before_previous.iter().filter(|i| !in_use.contains(*i)) {
            match self.ctx.podman.remove_image(image).await {
                Ok(true) => tracing::info!(app = id, image, "removed an image two versions old"),
                Ok(false) => {}
                Err(e) => tracing::warn!(app = id, image, "could not remove an old image: {e}"),
            }
        }
        Ok(())
    }

    /// Removes an update's next manifest and snapshot.
    fn discard_update_files(&self, id: &str, snapshot: Option<&Path>) {
        let _ = std::fs::remove_file(self.layout().next_manifest(id));
        if let Some(s) = snapshot {
            let _ = std::fs::remove_file(s);
        }
    }

    /// Puts an app back on the version before an update: units stopped,
    /// snapshot restored, state pointed at the old manifest, started and
    /// waited for. `failed` is the new version's manifest when known (its
    /// units are stopped first). `held` pauses the app and its dependants
    /// for the whole rollback: only its own passes start them.
    pub(super) async fn roll_back(
        &self,
        id: &str,
        pending: &PendingUpdate,
        failed: Option<&Manifest>,
        held: &Paused<'_, S, P>,
    ) -> Result<(), String> {
        let old = manifest::load(&pending.from_manifest, self.strictness)
            .map_err(|e| format!("the previous manifest cannot be read: {e}"))?;
        {
            if let Some(new) = failed {
                self.stop_units(id, new).await?;
            } else if let Some(current) = self.desired().apps().get(id) {
                self.stop_units(id, &current.manifest).await?;
            }
            if let Some(snapshot) = &pending.snapshot {
                if snapshot.exists() {
                    let entries = self
                        .data_entries(id, &old, true)
                        .await
                        .map_err(|e| e.message)?;
                    let tool = self.ctx.data.clone();
                    let snap = snapshot.clone();
                    tokio::task::spawn_blocking(move || {
                        backup::restore_tar(&*tool, &snap, &entries)
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("putting the data snapshot back: {e}"))?;
                }
            }
            // Still held: no pass of the loop may start the new version
            // over the restored data.
            self.edit_state(|s| {
                if let Some(a) = s.apps.get_mut(id) {
                    a.manifest.clone_from(&pending.from_manifest);
                    a.version.clone_from(&pending.from_version);
                    a.update = None;
                }
                Ok(())
            })
            .await
            .map_err(|e| e.message)?;
        }
        self.discard_update_files(id, pending.snapshot.as_deref());
        if let Err(why) = self.pass_for_held(id, held).await {
            // A start that failed once while systemd restarts the unit
            // (the new version's port not yet free, say) is waited for.
            if !self.restarting(id, &old).await {
                return Err(why);
            }
        }
        self.wait_healthy_again(id, &old).await?;
        tracing::info!(app = id, version = %pending.from_version, "rolled back and healthy");
        Ok(())
    }

    /// True when systemd is restarting a container unit of `id` after it
    /// exited.
    async fn restarting(&self, id: &str, m: &Manifest) -> bool {
        let services = super::container_services(id, m);
        self.ctx
            .systemd
            .list_units_by_names(&services)
            .await
            .is_ok_and(|units| units.iter().any(|u| u.sub_state == "auto-restart"))
    }

    /// Rolls back updates a daemon that died left half done (the old
    /// version is the one known to work).
    pub(super) async fn finish_updates(&self) {
        let apps: Vec<(AppId, Option<PendingUpdate>)> = self
            .state()
            .map(|s| s.apps.into_iter().map(|(id, a)| (id, a.update)).collect())
            .unwrap_or_default();
        for (id, update) in apps {
            let lock = self.app_lock(&id);
            let Ok(_busy) = lock.try_lock() else {
                continue;
            };
            let Some(update) = update else {
                // A daemon that died before an update's switch leaves its
                // next manifest and snapshot behind: nothing uses them.
                let next = self.layout().next_manifest(&id);
                let snapshot = self.layout().snapshot(&id);
                if next.exists() || snapshot.exists() {
                    tracing::info!(app = %id, "removing what an interrupted update left");
                    self.discard_update_files(&id, Some(&snapshot));
                }
                continue;
            };
            tracing::warn!(app = %id, version = %update.from_version, "an update was interrupted: rolling back");
            let held = self.ctx.pause(self.with_dependants(&id)).await;
            if let Err(e) = self.roll_back(&id, &update, None, &held).await {
                tracing::warn!(app = %id, "could not roll back the interrupted update: {e}");
            }
        }
    }

    /// The version the catalog offers for an installed app, when its
    /// manifest differs from the one installed (read, digest-checked, only
    /// then).
    pub(super) fn offered_updates(
        &self,
        state: &NodeState,
    ) -> std::collections::HashMap<AppId, String> {
        let sources = crate::catalogs::open_all(self.layout());
        state
            .apps
            .iter()
            .filter_map(|(id, app)| {
                let found = crate::catalogs::find(&sources, id)?;
                if found.entry.manifest_sha256 == app.catalog_sha256 {
                    // The one installed: no need to read it.
                    return None;
                }
                let bytes = found.catalog.manifest(found.entry).ok()?;
                let offered = manifest::from_yaml(
                    &found.catalog.manifest_path(found.entry),
                    &String::from_utf8_lossy(&bytes),
                    self.strictness,
                )
                .ok()?;
                offers_update(app, &found.entry.manifest_sha256, &offered.version)
                    .then(|| (id.clone(), offered.version))
            })
            .collect()
    }
}
