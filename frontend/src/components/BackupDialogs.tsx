//! The dashboard's backup and settings dialogs: back up now (passphrase twice,
//! progress in bytes), the node's backups of one app or of all its apps
//! (download to this computer, restore to any logged-in node, delete), and an
//! app's update and backup settings. Passphrases live only in these dialogs'
//! state until sent.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { api } from "../api";
import type { BackupInfo } from "../bindings/BackupInfo";
import type { InstallProgress } from "../bindings/InstallProgress";
import type { PackageStatus } from "../bindings/PackageStatus";
import type { Phase } from "../bindings/Phase";
import type { TransferProgress } from "../bindings/TransferProgress";
import {
  backupTime,
  hoursText,
  MAX_HOURS,
  MIN_PASSPHRASE_CHARS,
  parseHours,
  passphraseProblem,
  restoreTargets,
} from "../backup";
import { type AppError, toAppError } from "../errors";
import { formatAge, formatBytes } from "../format";
import { phaseLabel, progressDetail, progressFraction, transferPercent, transferText } from "../progress";
import { findNode, nodes, nowSecs, reachedPhase } from "../store";
import { ConfirmDialog, Dialog, ErrorBanner, Loading, PassphraseInput } from "./common";
import { InstallProgressView } from "./InstallProgressView";

/** A bar for bytes copied, with its words ("1.5 MiB of 3.0 MiB (50%)"). */
export function TransferBar({
  testId,
  label,
  progress,
  stage,
}: {
  testId: string;
  label: string;
  progress: TransferProgress | null;
  stage?: string;
}) {
  const pct = progress ? transferPercent(progress.done, progress.total) : 0;
  return (
    <div class="transfer" data-stage={stage}>
      <progress
        class="progress"
        max={100}
        value={pct}
        aria-label={label}
        data-testid={testId}
        data-value={pct}
        data-stage={stage}
      />
      <span class="small" data-testid={`${testId}-text`}>
        {label}
        {progress ? ` — ${transferText(progress.done, progress.total)}` : " — waiting for the node…"}
      </span>
    </div>
  );
}

// ------------------------------------------------------------ back up now

interface BackupNowProps {
  nodeId: string;
  app: PackageStatus;
  onClose: () => void;
  onDone: (info: BackupInfo) => void;
}

export function BackupNowDialog({ nodeId, app, onClose, onDone }: BackupNowProps) {
  const [passphrase, setPassphrase] = useState("");
  const [repeated, setRepeated] = useState("");
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<InstallProgress | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [result, setResult] = useState<BackupInfo | null>(null);
  const problem = passphraseProblem(passphrase, repeated);

  const run = async () => {
    setBusy(true);
    setError(null);
    setProgress(null);
    try {
      const info = await api.backupApp(nodeId, app.id, passphrase, setProgress);
      setPassphrase("");
      setRepeated("");
      setResult(info);
      onDone(info);
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  const pct = progress
    ? progress.bytes_total > 0
      ? transferPercent(progress.bytes_done, progress.bytes_total)
      : Math.round(progressFraction(progress, "backup") * 100)
    : 0;

  return (
    <ConfirmDialog
      title={`Back up ${app.name}`}
      testId="backup-dialog"
      onClose={onClose}
      onConfirm={() => void run()}
      confirmLabel="Back up now"
      busyLabel="Backing up…"
      confirmTestId="confirm-backup-button"
      busy={busy}
      confirmDisabled={problem !== null}
      error={error}
      focusCancel={false}
      done={
        result && (
          <div data-testid="backup-done">
            <p>
              ✓ {app.name} {result.version} is backed up on the node as <code>{result.name}</code> (
              {formatBytes(result.bytes)}).
            </p>
            <p class="hint">Keep the passphrase safe: without it this backup cannot be restored.</p>
            <div class="form-actions">
              <button
                type="button"
                class="button button-primary"
                autoFocus
                data-testid="backup-close-button"
                onClick={onClose}
              >
                Close
              </button>
            </div>
          </div>
        )
      }
    >
      <p>
        The node archives {app.name}'s data, volumes and secrets and encrypts them with this passphrase; the app keeps
        running. Nobody can restore the backup without the passphrase — keep it somewhere safe. It is not stored.
      </p>
      <PassphraseInput
        label="Passphrase"
        value={passphrase}
        onInput={setPassphrase}
        testId="backup-passphrase-input"
        autoFocus
        disabled={busy}
        describedBy="backup-passphrase-rule"
      />
      <PassphraseInput
        label="The same passphrase again"
        value={repeated}
        onInput={setRepeated}
        testId="backup-passphrase-repeat-input"
        disabled={busy}
        describedBy="backup-passphrase-rule"
      />
      {repeated !== "" && problem !== null ? (
        <p class="text-danger small" id="backup-passphrase-rule" role="status" data-testid="passphrase-problem">
          {problem}
        </p>
      ) : (
        <p class="hint" id="backup-passphrase-rule">
          At least {MIN_PASSPHRASE_CHARS} characters; a few unrelated words are easy to type and hard to guess.
        </p>
      )}
      {busy && (
        <div class="uninstall-progress">
          <progress
            class="progress"
            max={100}
            value={pct}
            aria-label={`Backing up ${app.name}`}
            data-testid="backup-progress"
            data-value={pct}
          />
          <span data-testid="backup-progress-text">
            {progress
              ? `${phaseLabel(progress.phase, "backup")} — ${progressDetail(progress)}`
              : "Waiting for the node…"}
          </span>
        </div>
      )}
    </ConfirmDialog>
  );
}

// ------------------------------------------------------------ the node's backups

interface BackupsProps {
  nodeId: string;
  /**
   * The app whose backups are shown; without it, the backups of every app on
   * the node, installed or not (the way back for an app that was uninstalled).
   */
  app?: PackageStatus | undefined;
  onClose: () => void;
  /** A restore ended well on `target` (this node or another). */
  onRestored: (target: string, status: PackageStatus) => void;
}

export function BackupsDialog({ nodeId, app, onClose, onRestored }: BackupsProps) {
  const appId = app?.id ?? null;
  const nodeName = findNode(nodeId)?.node.name ?? nodeId;
  const title = app ? `Backups of ${app.name}` : `Backups on ${nodeName}`;
  const [backups, setBackups] = useState<BackupInfo[] | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [downloading, setDownloading] = useState<{ name: string; progress: TransferProgress | null } | null>(null);
  /** Backup name → where it was saved on this computer. */
  const [saved, setSaved] = useState<Record<string, string>>({});
  const [deleting, setDeleting] = useState<{ name: string; busy: boolean } | null>(null);
  const [restoreOf, setRestoreOf] = useState<BackupInfo | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await api.listBackups(nodeId, appId);
      setBackups(r.backups);
      setError(null);
    } catch (e) {
      setError(toAppError(e));
      setBackups((old) => old ?? []);
    }
  }, [nodeId, appId]);

  useEffect(() => {
    void load();
  }, [load]);

  const download = async (b: BackupInfo) => {
    setError(null);
    setDownloading({ name: b.name, progress: null });
    try {
      const path = await api.downloadBackup(nodeId, b.name, (p) => setDownloading({ name: b.name, progress: p }));
      setSaved((old) => ({ ...old, [b.name]: path }));
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setDownloading(null);
    }
  };

  const remove = async (name: string) => {
    setError(null);
    setDeleting({ name, busy: true });
    try {
      await api.deleteBackup(nodeId, name);
      setBackups((old) => (old ?? []).filter((b) => b.name !== name));
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setDeleting(null);
    }
  };

  if (restoreOf) {
    return (
      <RestoreDialog
        sourceNodeId={nodeId}
        appName={app?.name ?? restoreOf.app}
        backup={restoreOf}
        savedPath={saved[restoreOf.name] ?? null}
        onSaved={(name, path) => setSaved((old) => ({ ...old, [name]: path }))}
        onClose={() => setRestoreOf(null)}
        onRestored={onRestored}
      />
    );
  }

  const busy = downloading !== null || deleting?.busy === true;
  return (
    <Dialog title={title} onClose={onClose} testId="backups-dialog" wide dismissable={!busy}>
      {error && <ErrorBanner error={error} onRetry={() => void load()} onDismiss={() => setError(null)} />}
      {backups === null ? (
        <Loading text="Asking the node for its backups…" />
      ) : backups.length === 0 ? (
        <p class="empty-inline" data-testid="backups-empty">
          {app
            ? `The node has no backup of ${app.name} yet. “Back up now” on the dashboard makes one.`
            : `${nodeName} has no backups yet. “Back up now” on an app's row of the dashboard makes one.`}
        </p>
      ) : (
        <ul class="backup-list" aria-label={title}>
          {backups.map((b) => (
            <li key={b.name} class="backup-row" data-testid={`backup-row-${b.name}`} data-app-id={b.app}>
              <div class="backup-main">
                {app ? (
                  <div>
                    <strong>{backupTime(b.created)}</strong>{" "}
                    <span class="text-muted">
                      ({formatAge(nowSecs.value - b.created)}) · version {b.version} · {formatBytes(b.bytes)}
                    </span>
                  </div>
                ) : (
                  <div>
                    <strong>{b.app}</strong> <span class="app-version">{b.version}</span>{" "}
                    <span class="text-muted">
                      · {backupTime(b.created)} ({formatAge(nowSecs.value - b.created)}) · {formatBytes(b.bytes)}
                    </span>
                  </div>
                )}
                <div class="mono small text-muted backup-name">{b.name}</div>
                {downloading?.name === b.name && (
                  <TransferBar
                    testId="download-progress"
                    label="Copying to this computer"
                    progress={downloading.progress}
                  />
                )}
                {saved[b.name] && (
                  <p class="small" data-testid="download-saved" data-path={saved[b.name]}>
                    ✓ Saved to <code class="saved-path">{saved[b.name]}</code>
                  </p>
                )}
              </div>
              <div class="backup-actions">
                {deleting?.name === b.name ? (
                  <DeleteQuestion
                    busy={deleting.busy}
                    onDelete={() => void remove(b.name)}
                    onKeep={() => setDeleting(null)}
                  />
                ) : (
                  <>
                    <button
                      type="button"
                      class="button button-small"
                      data-testid={`download-backup-button-${b.name}`}
                      disabled={busy}
                      onClick={() => void download(b)}
                    >
                      {downloading?.name === b.name ? "Downloading…" : saved[b.name] ? "Download again" : "Download"}
                    </button>
                    <button
                      type="button"
                      class="button button-small"
                      data-testid={`restore-backup-button-${b.name}`}
                      disabled={busy}
                      onClick={() => setRestoreOf(b)}
                    >
                      Restore to node…
                    </button>
                    <button
                      type="button"
                      class="button button-small button-quiet-danger"
                      data-testid={`delete-backup-button-${b.name}`}
                      disabled={busy}
                      onClick={() => setDeleting({ name: b.name, busy: false })}
                    >
                      Delete
                    </button>
                  </>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
      <div class="form-actions">
        <button type="button" class="button" data-testid="backups-close-button" disabled={busy} onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}

/** "Delete it for good?" in a backup's row, starting on the safe answer. */
function DeleteQuestion({ busy, onDelete, onKeep }: { busy: boolean; onDelete: () => void; onKeep: () => void }) {
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => keep.current?.focus(), []);
  return (
    <>
      <span class="small text-danger">Delete it from the node for good?</span>
      <button
        type="button"
        class="button button-small button-danger"
        data-testid="confirm-delete-backup-button"
        disabled={busy}
        onClick={onDelete}
      >
        {busy ? "Deleting…" : "Delete"}
      </button>
      <button type="button" class="button button-small button-quiet" ref={keep} disabled={busy} onClick={onKeep}>
        Keep
      </button>
    </>
  );
}

// ------------------------------------------------------------ restore

type Stage = "download" | "upload" | "restore";

interface RestoreProps {
  sourceNodeId: string;
  /** The app's name as the dashboard shows it, or its id when it is not installed. */
  appName: string;
  backup: BackupInfo;
  /** Where this backup was downloaded to already, if it was. */
  savedPath: string | null;
  onSaved: (name: string, path: string) => void;
  onClose: () => void;
  onRestored: (target: string, status: PackageStatus) => void;
}

/**
 * Restores a backup on any logged-in node: on its own node directly; on
 * another one by downloading it here (unless it already was), uploading it
 * there, then restoring.
 */
function RestoreDialog({ sourceNodeId, appName, backup, savedPath, onSaved, onClose, onRestored }: RestoreProps) {
  const targets = restoreTargets(nodes.value ?? [], sourceNodeId);
  const [target, setTarget] = useState(targets[0]?.node.id ?? "");
  const [passphrase, setPassphrase] = useState("");
  const [busy, setBusy] = useState(false);
  const [stage, setStage] = useState<Stage | null>(null);
  const [transfer, setTransfer] = useState<TransferProgress | null>(null);
  const [progress, setProgress] = useState<{ progress: InstallProgress | null; lastPhase: Phase | null }>({
    progress: null,
    lastPhase: null,
  });
  const [failed, setFailed] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const [result, setResult] = useState<PackageStatus | null>(null);
  const targetName = (id: string) => targets.find((t) => t.node.id === id)?.node.name ?? id;
  const sourceName = targetName(sourceNodeId);

  const onRestoreProgress = (p: InstallProgress) => {
    setStage("restore");
    setProgress((old) => ({ progress: p, lastPhase: reachedPhase(old, p) }));
  };

  const run = async () => {
    const to = target;
    setBusy(true);
    setFailed(false);
    setError(null);
    setProgress({ progress: null, lastPhase: null });
    try {
      let status: PackageStatus;
      if (to === sourceNodeId) {
        setStage("restore");
        status = await api.restoreBackup(to, backup.name, passphrase, onRestoreProgress);
      } else {
        let path = savedPath;
        if (path === null) {
          setStage("download");
          setTransfer(null);
          path = await api.downloadBackup(sourceNodeId, backup.name, setTransfer);
          onSaved(backup.name, path);
        }
        setStage("upload");
        setTransfer(null);
        status = await api.uploadAndRestore(to, path, passphrase, setTransfer, onRestoreProgress);
      }
      setPassphrase("");
      setResult(status);
      onRestored(to, status);
    } catch (e) {
      const err = toAppError(e);
      setError(err);
      setFailed(true);
      if (err.code === "bad_passphrase") setPassphrase("");
    } finally {
      setBusy(false);
    }
  };

  if (targets.length === 0) {
    return (
      <Dialog title={`Restore ${appName}`} onClose={onClose} testId="restore-dialog">
        <p data-testid="restore-no-target">
          Log in to a node first: a backup is restored on a node you are logged in to.
        </p>
      </Dialog>
    );
  }

  return (
    <ConfirmDialog
      title={`Restore ${appName} ${backup.version}`}
      testId="restore-dialog"
      onClose={onClose}
      onConfirm={() => void run()}
      confirmLabel="Restore"
      busyLabel="Restoring…"
      confirmTestId="confirm-restore-button"
      busy={busy}
      confirmDisabled={passphrase === "" || target === ""}
      error={error}
      focusCancel={false}
      done={
        result && (
          <div data-testid="restore-done">
            <p>
              ✓ {result.name} {result.version} was restored on <strong>{targetName(target)}</strong> and is{" "}
              {result.health === "healthy" ? "running" : result.health}.
            </p>
            <div class="form-actions">
              <button
                type="button"
                class="button button-primary"
                autoFocus
                data-testid="restore-close-button"
                onClick={onClose}
              >
                Close
              </button>
            </div>
          </div>
        )
      }
    >
      <p>
        The backup of {backup.app} {backup.version} from {backupTime(backup.created)} is checked in full before anything
        changes, then the app is installed at that version with the backup's data and secrets, and started.
      </p>
      <label class="field">
        <span>Restore on</span>
        <select
          class="input"
          data-testid="restore-target-select"
          value={target}
          disabled={busy}
          onChange={(e) => setTarget(e.currentTarget.value)}
        >
          {targets.map((t) => (
            <option key={t.node.id} value={t.node.id}>
              {t.node.name}
              {t.node.id === sourceNodeId ? " (this node, where the backup is)" : ` (${t.node.address})`}
            </option>
          ))}
        </select>
        {target !== sourceNodeId && (
          <small>
            The backup is copied from {sourceName} to this computer
            {savedPath ? " (done already)" : ""}, then sent to {targetName(target)}.
          </small>
        )}
      </label>
      <PassphraseInput
        label="The backup's passphrase"
        value={passphrase}
        onInput={setPassphrase}
        testId="restore-passphrase-input"
        autoFocus
        disabled={busy}
      />
      {(stage === "download" || stage === "upload") && busy && (
        <TransferBar
          testId="restore-transfer-progress"
          stage={stage}
          label={
            stage === "download" ? `Copying from ${sourceName} to this computer` : `Sending to ${targetName(target)}`
          }
          progress={transfer}
        />
      )}
      {stage === "restore" && (busy || failed) && (
        <InstallProgressView
          appId={backup.app}
          progress={progress.progress}
          lastPhase={progress.lastPhase}
          failed={failed}
          op="restore"
        />
      )}
    </ConfirmDialog>
  );
}

// ------------------------------------------------------------ settings

interface SettingsProps {
  nodeId: string;
  app: PackageStatus;
  onClose: () => void;
  onSaved: (status: PackageStatus) => void;
}

/** Auto-update and backup age limit; a backup schedule the app already has is kept as it is. */
export function AppSettingsDialog({ nodeId, app, onClose, onSaved }: SettingsProps) {
  const [autoUpdate, setAutoUpdate] = useState(String(app.settings.auto_update_hours));
  const [maxAge, setMaxAge] = useState(String(app.settings.backup_max_age_hours));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const autoUpdateHours = parseHours(autoUpdate);
  const maxAgeHours = parseHours(maxAge);
  const schedule = app.settings.backup_schedule;

  const save = async () => {
    if (autoUpdateHours === null || maxAgeHours === null) return;
    setBusy(true);
    setError(null);
    try {
      const status = await api.setAppSettings(nodeId, app.id, {
        ...app.settings,
        auto_update_hours: autoUpdateHours,
        backup_max_age_hours: maxAgeHours,
      });
      onSaved(status);
      onClose();
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  const invalid = `A whole number of hours, 0 to ${MAX_HOURS}.`;
  return (
    <ConfirmDialog
      title={`Settings: ${app.name}`}
      testId="settings-dialog"
      onClose={onClose}
      onConfirm={() => void save()}
      confirmLabel="Save"
      busyLabel="Saving…"
      confirmTestId="save-settings-button"
      busy={busy}
      confirmDisabled={autoUpdateHours === null || maxAgeHours === null}
      error={error}
      focusCancel={false}
    >
      <label class="field">
        <span>Update automatically, looking every … hours</span>
        <input
          class="input input-hours"
          inputMode="numeric"
          autoFocus
          disabled={busy}
          data-testid="auto-update-hours-input"
          aria-invalid={autoUpdateHours === null}
          value={autoUpdate}
          onInput={(e) => setAutoUpdate(e.currentTarget.value)}
        />
        <small class={autoUpdateHours === null ? "text-danger" : undefined}>
          {autoUpdateHours === null
            ? invalid
            : autoUpdateHours === 0
              ? "0: off. Updates wait for you to click “Update”."
              : `The node looks for a new version every ${hoursText(autoUpdateHours)} and installs it; one that does not get healthy is rolled back.`}
        </small>
      </label>
      <label class="field">
        <span>Warn when the last backup is older than … hours</span>
        <input
          class="input input-hours"
          inputMode="numeric"
          disabled={busy}
          data-testid="backup-max-age-input"
          aria-invalid={maxAgeHours === null}
          value={maxAge}
          onInput={(e) => setMaxAge(e.currentTarget.value)}
        />
        <small class={maxAgeHours === null ? "text-danger" : undefined}>
          {maxAgeHours === null
            ? invalid
            : maxAgeHours === 0
              ? "0: never warn."
              : `The dashboard shows “Backup overdue” once the last backup is older than ${hoursText(maxAgeHours)}.`}
        </small>
      </label>
      <p class="hint" data-testid="backup-schedule">
        {schedule
          ? `Scheduled backups: every ${hoursText(schedule.every_hours)}, encrypted to ${schedule.recipient}, keeping the last ${schedule.keep}. Kept as they are.`
          : "No scheduled backups."}
      </p>
    </ConfirmDialog>
  );
}
