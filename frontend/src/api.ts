//! The desktop commands, typed. The frontend talks to nodes only through these
//! (Tauri's `invoke` and `Channel`); every failure becomes an AppError carrying
//! the desktop's `{code, message}`.

import { Channel, invoke } from "@tauri-apps/api/core";

import type { AppSettings } from "./bindings/AppSettings";
import type { BackupInfo } from "./bindings/BackupInfo";
import type { BackupListResult } from "./bindings/BackupListResult";
import type { CatalogIconResult } from "./bindings/CatalogIconResult";
import type { CatalogListResult } from "./bindings/CatalogListResult";
import type { InstallProgress } from "./bindings/InstallProgress";
import type { LogEntry } from "./bindings/LogEntry";
import type { LogsResult } from "./bindings/LogsResult";
import type { NodeEntry } from "./bindings/NodeEntry";
import type { NodeOverview } from "./bindings/NodeOverview";
import type { PackageListResult } from "./bindings/PackageListResult";
import type { PackageStatus } from "./bindings/PackageStatus";
import type { ProbeResult } from "./bindings/ProbeResult";
import type { StatsResult } from "./bindings/StatsResult";
import type { TransferProgress } from "./bindings/TransferProgress";
import type { UninstallResult } from "./bindings/UninstallResult";
import type { UpdateResult } from "./bindings/UpdateResult";
import { toAppError } from "./errors";

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toAppError(e);
  }
}

function channel<T>(onMessage: (message: T) => void): Channel<T> {
  const ch = new Channel<T>();
  ch.onmessage = onMessage;
  return ch;
}

export const api = {
  nodesList: () => call<NodeEntry[]>("nodes_list"),
  nodeProbe: (address: string) => call<ProbeResult>("node_probe", { address }),
  nodeAdd: (address: string, fingerprint: string, name: string | null) =>
    call<NodeEntry>("node_add", { address, fingerprint, name }),
  nodeRemove: (nodeId: string) => call<null>("node_remove", { nodeId }),
  nodeLogin: (nodeId: string, password: string) => call<NodeEntry>("node_login", { nodeId, password }),
  nodeLogout: (nodeId: string) => call<NodeEntry>("node_logout", { nodeId }),
  nodesOverview: () => call<NodeOverview[]>("nodes_overview"),
  nodeOverview: (nodeId: string) => call<NodeOverview>("node_overview", { nodeId }),

  catalogList: (nodeId: string) => call<CatalogListResult>("catalog_list", { nodeId }),
  catalogIcon: (nodeId: string, appId: string) => call<CatalogIconResult>("catalog_icon", { nodeId, appId }),

  packageList: (nodeId: string) => call<PackageListResult>("package_list", { nodeId }),
  packageStatus: (nodeId: string, appId: string) => call<PackageStatus>("package_status", { nodeId, appId }),
  packageInstall: (nodeId: string, appId: string, onProgress: (p: InstallProgress) => void) =>
    call<PackageStatus>("package_install", { nodeId, appId, onProgress: channel(onProgress) }),
  packageStart: (nodeId: string, appId: string) => call<PackageStatus>("package_start", { nodeId, appId }),
  packageStop: (nodeId: string, appId: string) => call<PackageStatus>("package_stop", { nodeId, appId }),
  packageRestart: (nodeId: string, appId: string) => call<PackageStatus>("package_restart", { nodeId, appId }),
  packageUninstall: (nodeId: string, appId: string, keepData: boolean, onProgress: (p: InstallProgress) => void) =>
    call<UninstallResult>("package_uninstall", { nodeId, appId, keepData, onProgress: channel(onProgress) }),
  packageLogs: (nodeId: string, appId: string, lines: number | null) =>
    call<LogsResult>("package_logs", { nodeId, appId, lines }),
  packageLogsFollow: (nodeId: string, appId: string, onLine: (line: LogEntry) => void) =>
    call<string>("package_logs_follow", { nodeId, appId, onLine: channel(onLine) }),
  packageLogsStop: (followId: string) => call<null>("package_logs_stop", { followId }),
  packageStats: (nodeId: string, appId: string) => call<StatsResult>("package_stats", { nodeId, appId }),
  /** Opens the app's UI in the system browser; returns the URL opened. */
  packageOpenUi: (nodeId: string, appId: string) => call<string>("package_open_ui", { nodeId, appId }),

  /** Updates an app to the version its catalog offers; `update_rolled_back` when the node put the old one back. */
  updateApp: (nodeId: string, appId: string, onProgress: (p: InstallProgress) => void) =>
    call<UpdateResult>("update_app", { nodeId, appId, onProgress: channel(onProgress) }),
  /** Replaces an app's update and backup settings (all of them: pass the ones not edited through). */
  setAppSettings: (nodeId: string, appId: string, settings: AppSettings) =>
    call<PackageStatus>("set_app_settings", { nodeId, appId, settings }),

  backupApp: (nodeId: string, appId: string, passphrase: string, onProgress: (p: InstallProgress) => void) =>
    call<BackupInfo>("backup_app", { nodeId, appId, passphrase, onProgress: channel(onProgress) }),
  /** The node's backups (of one app, or all), newest first. */
  listBackups: (nodeId: string, appId: string | null) => call<BackupListResult>("list_backups", { nodeId, appId }),
  deleteBackup: (nodeId: string, name: string) => call<null>("delete_backup", { nodeId, name }),
  /** Copies a backup into this computer's backups folder; returns where it was saved. */
  downloadBackup: (nodeId: string, name: string, onProgress: (p: TransferProgress) => void) =>
    call<string>("download_backup", { nodeId, name, onProgress: channel(onProgress) }),
  /** Restores a backup that is in the node's own backup folder. */
  restoreBackup: (nodeId: string, name: string, passphrase: string, onProgress: (p: InstallProgress) => void) =>
    call<PackageStatus>("restore_backup", { nodeId, name, passphrase, onProgress: channel(onProgress) }),
  /** Uploads a downloaded backup (a path `downloadBackup` returned) to a node, then restores it there. */
  uploadAndRestore: (
    nodeId: string,
    localPath: string,
    passphrase: string,
    onUpload: (p: TransferProgress) => void,
    onProgress: (p: InstallProgress) => void,
  ) =>
    call<PackageStatus>("upload_and_restore", {
      nodeId,
      localPath,
      passphrase,
      onUpload: channel(onUpload),
      onProgress: channel(onProgress),
    }),
};

export type Api = typeof api;
