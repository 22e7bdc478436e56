//! A node's installed apps: state, health, UI link, lifecycle buttons, logs,
//! CPU/memory, updates (with their rollback), the last backup and the way to
//! the backup and settings dialogs (`BackupDialogs`), and the node's backups
//! of every app, installed or not (the way back after an uninstall).

import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { api } from "../api";
import type { Health } from "../bindings/Health";
import type { InstallProgress } from "../bindings/InstallProgress";
import type { LogEntry } from "../bindings/LogEntry";
import type { PackageStatus } from "../bindings/PackageStatus";
import type { StatsResult } from "../bindings/StatsResult";
import type { UninstallResult } from "../bindings/UninstallResult";
import { backupWarning, lastBackupText } from "../backup";
import { type AppError, needsLogin, toAppError } from "../errors";
import { formatBytes, formatPercent } from "../format";
import { uiUrl } from "../nodes";
import { phaseLabel, progressFraction } from "../progress";
import {
  dialog,
  dismissJob,
  dismissUpdate,
  findNode,
  jobKey,
  jobsForNode,
  nowSecs,
  refreshNode,
  route,
  startUpdate,
  type UpdateJob,
  updateJobs,
  updatesForNode,
} from "../store";
import { AppSettingsDialog, BackupNowDialog, BackupsDialog } from "./BackupDialogs";
import { ConfirmDialog, Dialog, ErrorBanner, Loading } from "./common";
import { InstallProgressView } from "./InstallProgressView";
import { useIcon } from "./Marketplace";

/** How often CPU/memory are asked for while the dashboard is visible. */
const STATS_EVERY_MS = 5000;

const HEALTH_TEXT: Record<Health, string> = {
  healthy: "Healthy",
  starting: "Starting",
  stopped: "Stopped",
  failed: "Failed",
  unknown: "Unknown",
};
const HEALTH_MARK: Record<Health, string> = {
  healthy: "●",
  starting: "◐",
  stopped: "○",
  failed: "✕",
  unknown: "?",
};

type Busy = "start" | "stop" | "restart" | null;

export interface AppStats {
  cpuPercent: number;
  memoryBytes: number | null;
  memoryLimitBytes: number;
}

/** Sums an app's containers: CPU adds up, memory adds up when every container reports it. */
export function sumStats(s: StatsResult): AppStats {
  let cpu = 0;
  let mem: number | null = 0;
  let limit = 0;
  for (const c of s.containers) {
    cpu += c.cpu_percent;
    mem = mem === null || c.memory_bytes === null ? null : mem + c.memory_bytes;
    limit += c.memory_limit_bytes;
  }
  return { cpuPercent: cpu, memoryBytes: mem, memoryLimitBytes: limit };
}

export function Dashboard({ nodeId }: { nodeId: string }) {
  const [apps, setApps] = useState<PackageStatus[] | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [stats, setStats] = useState<Record<string, AppStats>>({});
  const [uninstalling, setUninstalling] = useState<PackageStatus | null>(null);
  const [logsOf, setLogsOf] = useState<PackageStatus | null>(null);
  const [backupOf, setBackupOf] = useState<PackageStatus | null>(null);
  /** The backups dialog: of one app, or of every app on the node ("node"). */
  const [backupsOf, setBackupsOf] = useState<PackageStatus | "node" | null>(null);
  const [settingsOf, setSettingsOf] = useState<PackageStatus | null>(null);
  const node = findNode(nodeId)?.node;
  const jobs = jobsForNode(nodeId);

  const load = useCallback(async () => {
    try {
      const r = await api.packageList(nodeId);
      setApps(r.apps);
      setError(null);
    } catch (e) {
      setError(toAppError(e));
    }
  }, [nodeId]);

  useEffect(() => {
    setApps(null);
    void load();
  }, [load]);

  // Reload when an install started from the marketplace finishes.
  const finished = jobs.filter((j) => j.state === "done").length;
  useEffect(() => {
    if (finished > 0) void load();
  }, [finished, load]);

  // Reload when an update ends either way: a new version, or the old one back.
  const updatesEnded = updatesForNode(nodeId).filter((j) => j.state !== "running").length;
  useEffect(() => {
    if (updatesEnded > 0) void load();
  }, [updatesEnded, load]);

  // CPU and memory of running apps, every few seconds while visible.
  const appsRef = useRef<PackageStatus[] | null>(null);
  appsRef.current = apps;
  useEffect(() => {
    let cancelled = false;
    const poll = async () => {
      if (document.hidden) return;
      const running = (appsRef.current ?? []).filter((a) => a.run === "running");
      const results = await Promise.allSettled(running.map((a) => api.packageStats(nodeId, a.id)));
      if (cancelled) return;
      const next: Record<string, AppStats> = {};
      results.forEach((r, i) => {
        const app = running[i];
        if (app && r.status === "fulfilled") next[app.id] = sumStats(r.value);
      });
      setStats(next);
    };
    void poll();
    const timer = setInterval(() => void poll(), STATS_EVERY_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [nodeId, apps === null]);

  const replace = (s: PackageStatus) => setApps((list) => (list ?? []).map((a) => (a.id === s.id ? s : a)));

  const login = () => (dialog.value = { kind: "login", nodeId });
  const running = jobs.filter((j) => j.state === "running" || j.state === "failed");

  return (
    <div class="dashboard">
      <div class="dashboard-toolbar">
        <button
          type="button"
          class="button button-small"
          data-testid="node-backups-button"
          title="The backups of every app on this node, installed or not: download, restore, delete"
          onClick={() => setBackupsOf("node")}
        >
          Backups on this node
        </button>
      </div>
      {error && (
        <ErrorBanner
          error={error}
          onRetry={() => void load()}
          onLogin={needsLogin(error) ? login : undefined}
          onDismiss={() => setError(null)}
        />
      )}
      {running.map((j) => (
        <div class="card install-card" key={j.appId}>
          <h3>Installing {j.appId}</h3>
          <InstallProgressView
            appId={j.appId}
            progress={j.progress}
            lastPhase={j.lastPhase}
            failed={j.state === "failed"}
          />
          {j.error && (
            <ErrorBanner
              error={j.error}
              context={`Installing ${j.appId}`}
              onDismiss={() => dismissJob(nodeId, j.appId)}
            />
          )}
        </div>
      ))}
      {apps === null && !error && <Loading text="Asking the node for its apps…" />}
      {apps !== null && apps.length === 0 && (
        <div class="empty" data-testid="dashboard-empty">
          <h2>No apps installed yet</h2>
          <p>Pick one from the marketplace; it is installed and started on this node.</p>
          <p>An app you uninstalled comes back from its backup: “Backups on this node” above.</p>
          <button
            type="button"
            class="button button-primary"
            onClick={() => (route.value = { screen: "node", nodeId, tab: "marketplace" })}
          >
            Browse the marketplace
          </button>
        </div>
      )}
      {apps !== null && apps.length > 0 && node && (
        <ul class="app-list" aria-label="Installed apps">
          {apps.map((a) => (
            <li key={a.id}>
              <AppRow
                app={a}
                nodeId={nodeId}
                nodeAddress={node.address}
                stats={stats[a.id]}
                onChange={replace}
                onError={setError}
                onUninstall={() => setUninstalling(a)}
                onLogs={() => setLogsOf(a)}
                onBackup={() => setBackupOf(a)}
                onBackups={() => setBackupsOf(a)}
                onSettings={() => setSettingsOf(a)}
              />
            </li>
          ))}
        </ul>
      )}
      {uninstalling && (
        <UninstallDialog
          nodeId={nodeId}
          app={uninstalling}
          onClose={() => setUninstalling(null)}
          onRemoved={() => {
            setApps((list) => (list ?? []).filter((a) => a.id !== uninstalling.id));
            // The marketplace would still show the finished install as "Installed".
            dismissJob(nodeId, uninstalling.id);
            void refreshNode(nodeId);
          }}
        />
      )}
      {logsOf && <LogsDialog nodeId={nodeId} app={logsOf} onClose={() => setLogsOf(null)} />}
      {backupOf && (
        <BackupNowDialog nodeId={nodeId} app={backupOf} onClose={() => setBackupOf(null)} onDone={() => void load()} />
      )}
      {backupsOf && (
        <BackupsDialog
          nodeId={nodeId}
          app={backupsOf === "node" ? undefined : backupsOf}
          onClose={() => setBackupsOf(null)}
          onRestored={(target) => {
            if (target === nodeId) void load();
            void refreshNode(target);
          }}
        />
      )}
      {settingsOf && (
        <AppSettingsDialog nodeId={nodeId} app={settingsOf} onClose={() => setSettingsOf(null)} onSaved={replace} />
      )}
    </div>
  );
}

interface RowProps {
  app: PackageStatus;
  nodeId: string;
  nodeAddress: string;
  stats: AppStats | undefined;
  onChange: (s: PackageStatus) => void;
  onError: (e: AppError) => void;
  onUninstall: () => void;
  onLogs: () => void;
  onBackup: () => void;
  onBackups: () => void;
  onSettings: () => void;
}

function AppRow(props: RowProps) {
  const { app, nodeId, nodeAddress, stats, onChange, onError, onUninstall, onLogs } = props;
  const [busy, setBusy] = useState<Busy>(null);
  const [copied, setCopied] = useState(false);
  const [openError, setOpenError] = useState<AppError | null>(null);
  const url = app.ui ? uiUrl(nodeAddress, app.ui) : null;
  // Apps from the catalog have their icon there; others show their initial.
  const icon = useIcon(nodeId, app.id, app.source !== "");

  const act = async (what: Exclude<Busy, null>) => {
    setBusy(what);
    try {
      const f = what === "start" ? api.packageStart : what === "stop" ? api.packageStop : api.packageRestart;
      onChange(await f(nodeId, app.id));
      void refreshNode(nodeId);
    } catch (e) {
      onError(toAppError(e));
      try {
        onChange(await api.packageStatus(nodeId, app.id));
      } catch {
        // The banner already says what went wrong.
      }
    } finally {
      setBusy(null);
    }
  };

  const openUi = async () => {
    setOpenError(null);
    try {
      await api.packageOpenUi(nodeId, app.id);
    } catch (e) {
      setOpenError(toAppError(e));
    }
  };

  const copy = async () => {
    if (!url) return;
    try {
      await navigator.clipboard.writeText(url);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      setCopied(false);
      const el = document.querySelector<HTMLElement>(`[data-testid="ui-url-${app.id}"]`);
      if (el) window.getSelection()?.selectAllChildren(el);
    }
  };

  const update = updateJobs.value[jobKey(nodeId, app.id)];
  const updating = update?.state === "running";
  const warning = backupWarning(app);

  const health = busy ? "starting" : app.health;
  const healthText = busy
    ? { start: "Starting…", stop: "Stopping…", restart: "Restarting…" }[busy]
    : HEALTH_TEXT[app.health];

  return (
    <article
      class={`card app-row row-${health}`}
      data-testid={`app-row-${app.id}`}
      data-health={app.health}
      data-run={app.run}
    >
      {icon ? (
        <img class="app-icon app-icon-small" src={icon} alt="" width={36} height={36} />
      ) : (
        <span class="app-icon app-icon-small app-icon-placeholder" aria-hidden="true">
          {app.name.charAt(0).toUpperCase()}
        </span>
      )}
      <div class="app-main">
        <h3 class="app-name">
          {app.name} <span class="app-version">{app.version}</span>
          {app.update_available !== null && !updating && (
            <span class="badge badge-update" data-testid={`update-badge-${app.id}`}>
              Update available: {app.update_available}
            </span>
          )}
        </h3>
        <p class="app-state">
          <span class={`health health-${health}`} data-testid={`app-health-${app.id}`} data-health={app.health}>
            <span aria-hidden="true">{HEALTH_MARK[health]} </span>
            {healthText}
          </span>
          <span class="text-muted"> · {app.run === "running" ? "set to run" : "set to stay stopped"}</span>
          {app.containers.length > 1 && <span class="text-muted"> · {app.containers.length} containers</span>}
        </p>
        {app.problem && (
          <p class="app-problem" data-testid={`app-problem-${app.id}`}>
            {app.problem}
          </p>
        )}
        {url && (
          <p class="app-url">
            <a
              href={url}
              data-testid={`ui-url-${app.id}`}
              onClick={(e) => {
                e.preventDefault();
                void openUi();
              }}
            >
              {url}
            </a>
            <button
              type="button"
              class="button button-small button-quiet"
              data-testid={`copy-url-${app.id}`}
              onClick={() => void copy()}
            >
              {copied ? "Copied" : "Copy"}
            </button>
          </p>
        )}
        {openError && (
          <p class="text-danger small" role="alert">
            Could not open the browser ({openError.message}). Copy the address above into your browser.
          </p>
        )}
      </div>
      <div class="app-usage" data-testid={`app-stats-${app.id}`}>
        {app.run === "running" && stats ? (
          <>
            <span>CPU {formatPercent(stats.cpuPercent)}</span>
            <span>
              Memory {stats.memoryBytes === null ? "not reported" : formatBytes(stats.memoryBytes)}
              {stats.memoryBytes !== null && stats.memoryLimitBytes > 0 && ` of ${formatBytes(stats.memoryLimitBytes)}`}
            </span>
          </>
        ) : (
          <span class="text-muted">{app.run === "running" ? "Reading usage…" : "Not running"}</span>
        )}
      </div>
      <div class="app-actions">
        {app.update_available !== null && (
          <button
            type="button"
            class="button button-update"
            data-testid={`update-button-${app.id}`}
            disabled={updating || busy !== null}
            onClick={() => void startUpdate(nodeId, app)}
          >
            {updating ? "Updating…" : `Update to ${app.update_available}`}
          </button>
        )}
        {url && (
          <button
            type="button"
            class="button button-primary"
            data-testid={`open-ui-${app.id}`}
            disabled={app.run === "stopped" || app.health === "stopped"}
            title={app.run === "stopped" ? "Start the app first" : undefined}
            onClick={() => void openUi()}
          >
            Open
          </button>
        )}
        {app.run === "running" ? (
          <button
            type="button"
            class="button"
            data-testid={`stop-button-${app.id}`}
            disabled={busy !== null}
            onClick={() => void act("stop")}
          >
            {busy === "stop" ? "Stopping…" : "Stop"}
          </button>
        ) : (
          <button
            type="button"
            class="button"
            data-testid={`start-button-${app.id}`}
            disabled={busy !== null}
            onClick={() => void act("start")}
          >
            {busy === "start" ? "Starting…" : "Start"}
          </button>
        )}
        <button
          type="button"
          class="button"
          data-testid={`restart-button-${app.id}`}
          disabled={busy !== null || app.run !== "running"}
          onClick={() => void act("restart")}
        >
          {busy === "restart" ? "Restarting…" : "Restart"}
        </button>
        <button type="button" class="button" data-testid={`logs-button-${app.id}`} onClick={onLogs}>
          Logs
        </button>
        <button
          type="button"
          class="button button-quiet-danger"
          data-testid={`uninstall-button-${app.id}`}
          disabled={busy !== null || updating}
          onClick={onUninstall}
        >
          Uninstall
        </button>
      </div>
      <p class="app-backup">
        <span class="text-muted" data-testid={`last-backup-${app.id}`}>
          {lastBackupText(app.last_backup, nowSecs.value)}
        </span>
        {warning && (
          <span class="badge badge-warn" data-testid={`backup-overdue-${app.id}`}>
            ⚠ {warning}
          </span>
        )}
        <button
          type="button"
          class="button button-small"
          data-testid={`backup-button-${app.id}`}
          disabled={updating}
          onClick={props.onBackup}
        >
          Back up now
        </button>
        <button
          type="button"
          class="button button-small button-quiet"
          data-testid={`backups-button-${app.id}`}
          onClick={props.onBackups}
        >
          Backups
        </button>
        <button
          type="button"
          class="button button-small button-quiet"
          data-testid={`settings-button-${app.id}`}
          onClick={props.onSettings}
        >
          Settings
        </button>
      </p>
      {update && <UpdateStatus job={update} appName={app.name} />}
    </article>
  );
}

/** An update under its app's row: progress, then what came of it. */
function UpdateStatus({ job, appName }: { job: UpdateJob; appName: string }) {
  const dismiss = () => dismissUpdate(job.nodeId, job.appId);
  const rolledBack = job.error?.code === "update_rolled_back";
  return (
    <div class="app-row-extra">
      {!rolledBack && (
        <InstallProgressView
          appId={job.appId}
          progress={job.progress}
          lastPhase={job.lastPhase}
          failed={job.state === "failed"}
          op="update"
        />
      )}
      {job.error && rolledBack && (
        <RollbackPanel
          appId={job.appId}
          appName={appName}
          version={job.fromVersion}
          message={job.error.message}
          onDismiss={dismiss}
        />
      )}
      {job.error && !rolledBack && (
        <ErrorBanner error={job.error} context={`Updating ${appName}`} onDismiss={dismiss} />
      )}
      {job.state === "done" && job.result && (
        <p class="update-done" data-testid={`update-done-${job.appId}`}>
          <span class="text-ok">
            ✓ Updated from {job.result.from_version} to {job.result.to_version}
            {job.result.data_snapshot ? " (the data was copied aside first)" : ""}
          </span>
          <button type="button" class="button button-small button-quiet" onClick={dismiss}>
            Dismiss
          </button>
        </p>
      )}
    </div>
  );
}

interface RollbackProps {
  appId: string;
  appName: string;
  /** The version that ran before the update and runs again. */
  version: string;
  /** The node's explanation: the container, its exit status, its last log lines. */
  message: string;
  onDismiss: () => void;
}

/** An update the node undid: the old version runs again, and the node's words say why, in full. */
export function RollbackPanel({ appId, appName, version, message, onDismiss }: RollbackProps) {
  return (
    <div class="banner banner-warn rollback" role="alert" data-testid={`update-rollback-${appId}`}>
      <div class="banner-body">
        <strong class="banner-title">Update failed — rolled back to {version}, which is running</strong>
        <pre class="banner-message rollback-message" data-testid={`update-rollback-message-${appId}`}>
          {message}
        </pre>
        <p class="banner-advice">
          {appName} {version} runs again with its data as it was before the update. The lines above come from the new
          version; the update can be tried again once its catalog offers a fixed version.
        </p>
      </div>
      <div class="banner-actions">
        <button type="button" class="button button-quiet" onClick={onDismiss}>
          Dismiss
        </button>
      </div>
    </div>
  );
}

interface UninstallProps {
  nodeId: string;
  app: PackageStatus;
  onClose: () => void;
  onRemoved: () => void;
}

function UninstallDialog({ nodeId, app, onClose, onRemoved }: UninstallProps) {
  const [keepData, setKeepData] = useState(false);
  const [progress, setProgress] = useState<InstallProgress | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const [result, setResult] = useState<UninstallResult | null>(null);

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await api.packageUninstall(nodeId, app.id, keepData, setProgress);
      setResult(r);
      onRemoved();
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <ConfirmDialog
      title={`Uninstall ${app.name}?`}
      testId="uninstall-dialog"
      onClose={onClose}
      onConfirm={() => void run()}
      confirmLabel={keepData ? "Uninstall, keep data" : "Uninstall and delete data"}
      busyLabel="Uninstalling…"
      confirmTestId="confirm-uninstall-button"
      busy={busy}
      error={error}
      danger
      done={
        result && (
          <div data-testid="uninstall-done">
            <p>
              <strong>{app.name}</strong> was removed
              {result.kept_data ? "; its data was kept for a later install" : ", with its data"}.
            </p>
            {result.removed.length > 0 && (
              <details>
                <summary>What was removed ({result.removed.length})</summary>
                <ul class="removed-list">
                  {result.removed.map((r) => (
                    <li key={r}>{r}</li>
                  ))}
                </ul>
              </details>
            )}
            <div class="form-actions">
              <button
                type="button"
                class="button button-primary"
                autoFocus
                data-testid="uninstall-close-button"
                onClick={onClose}
              >
                Close
              </button>
            </div>
          </div>
        )
      }
    >
      <p>This stops the app and removes its containers, units and secrets from the node.</p>
      <label class="checkbox">
        <input
          type="checkbox"
          data-testid="keep-data-checkbox"
          checked={keepData}
          disabled={busy}
          onChange={(e) => setKeepData(e.currentTarget.checked)}
        />
        <span>Keep its data (volumes and data folders), so a later install picks up where it left off</span>
      </label>
      {!keepData && <p class="text-danger small">Without this, the app's data is deleted for good.</p>}
      {busy && (
        <div class="uninstall-progress">
          <progress
            class="progress"
            max={100}
            value={progress ? Math.round(progressFraction(progress) * 100) : 0}
            data-testid="uninstall-progress"
          />
          <span data-testid="uninstall-phase">
            {progress ? `${phaseLabel(progress.phase)} — ${progress.message}` : "Waiting for the node…"}
          </span>
        </div>
      )}
    </ConfirmDialog>
  );
}

/** The most lines the logs view keeps; older ones scroll away. */
export const MAX_LOG_LINES = 5000;
const HISTORY_LINES = 200;

/** Appends lines, keeping only the newest `max`. */
export function appendLines(old: readonly LogEntry[], add: readonly LogEntry[], max = MAX_LOG_LINES): LogEntry[] {
  const all = old.concat(add);
  return all.length > max ? all.slice(all.length - max) : all;
}

function LogsDialog({ nodeId, app, onClose }: { nodeId: string; app: PackageStatus; onClose: () => void }) {
  const [lines, setLines] = useState<LogEntry[] | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [live, setLive] = useState(false);
  const [container, setContainer] = useState<string>("");
  const view = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    let closed = false;
    let followId: string | null = null;
    // Lines that arrive before the history is in are queued, not lost.
    let pending: LogEntry[] = [];
    let historyIn = false;
    const onLine = (l: LogEntry) => {
      if (closed) return;
      if (!historyIn) {
        pending.push(l);
        return;
      }
      setLines((old) => appendLines(old ?? [], [l]));
    };
    (async () => {
      try {
        const h = await api.packageLogs(nodeId, app.id, HISTORY_LINES);
        if (closed) return;
        historyIn = true;
        setLines(appendLines(h.lines, pending));
        pending = [];
        const id = await api.packageLogsFollow(nodeId, app.id, onLine);
        if (closed) {
          void api.packageLogsStop(id).catch(() => undefined);
          return;
        }
        followId = id;
        setLive(true);
      } catch (e) {
        if (!closed) {
          setError(toAppError(e));
          setLines((old) => old ?? []);
        }
      }
    })();
    const stopOnUnload = () => {
      if (followId) void api.packageLogsStop(followId).catch(() => undefined);
    };
    window.addEventListener("beforeunload", stopOnUnload);
    return () => {
      closed = true;
      window.removeEventListener("beforeunload", stopOnUnload);
      if (followId) void api.packageLogsStop(followId).catch(() => undefined);
    };
  }, [nodeId, app.id]);

  // Keep the newest line in view unless the user scrolled up to read.
  useEffect(() => {
    const el = view.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines, container]);

  const containers = [...new Set((lines ?? []).map((l) => l.container))].sort();
  const shown = (lines ?? []).filter((l) => container === "" || l.container === container);

  return (
    <Dialog title={`Logs: ${app.name}`} onClose={onClose} testId="logs-dialog" wide>
      <div class="logs-toolbar">
        <span class={live ? "live live-on" : "live"} data-testid="logs-live">
          {live ? "● Following new lines" : error ? "Not following" : "Connecting…"}
        </span>
        {containers.length > 1 && (
          <label class="inline-field">
            Container{" "}
            <select class="input" value={container} onChange={(e) => setContainer(e.currentTarget.value)}>
              <option value="">All</option>
              {containers.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {error && <ErrorBanner error={error} />}
      <div
        class="logs-view"
        ref={view}
        tabIndex={0}
        role="log"
        aria-label={`Log lines of ${app.name}`}
        data-testid="logs-view"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {lines === null ? (
          <p class="text-muted">Reading the last {HISTORY_LINES} lines…</p>
        ) : shown.length === 0 ? (
          <p class="text-muted">No log lines yet.</p>
        ) : (
          shown.map((l, i) => (
            <div class={`log-line log-${l.stream}`} key={i}>
              {containers.length > 1 && <span class="log-container">{l.container}</span>}
              <span class="log-text">{l.text}</span>
            </div>
          ))
        )}
      </div>
      <div class="form-actions">
        <button type="button" class="button" data-testid="logs-close-button" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
