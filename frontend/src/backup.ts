//! Pure logic of the backup and settings dialogs: passphrase rules, what the
//! dashboard says about an app's last backup, hour fields, restore targets.

import type { PackageStatus } from "./bindings/PackageStatus";
import { formatAge } from "./format";
import type { NodeState } from "./nodes";

/** The shortest passphrase a backup is made with (the desktop side refuses shorter ones too). */
export const MIN_PASSPHRASE_CHARS = 8;

/**
 * What is wrong with a new backup's passphrase and its repetition, or null
 * when it may be used. Counts characters, not bytes.
 */
export function passphraseProblem(passphrase: string, repeated: string): string | null {
  if ([...passphrase].length < MIN_PASSPHRASE_CHARS) {
    return `Use at least ${MIN_PASSPHRASE_CHARS} characters.`;
  }
  if (passphrase !== repeated) return "The two passphrases differ.";
  return null;
}

/** "Last backup: 3 h ago", or "No backup yet". */
export function lastBackupText(lastBackup: number | null, nowSecs: number): string {
  if (lastBackup === null || lastBackup <= 0) return "No backup yet";
  return `Last backup: ${formatAge(nowSecs - lastBackup)}`;
}

/** Why the dashboard warns about an app's backups, or null when it does not. */
export function backupWarning(app: Pick<PackageStatus, "backup_overdue" | "last_backup" | "settings">): string | null {
  if (!app.backup_overdue) return null;
  const limit = app.settings.backup_max_age_hours;
  if (app.last_backup === null) return "Backup overdue: this app has never been backed up";
  return limit > 0 ? `Backup overdue: older than ${hoursText(limit)}` : "Backup overdue";
}

/** "12 hours", "1 hour", "3 days" (whole days only). */
export function hoursText(hours: number): string {
  if (hours >= 48 && hours % 24 === 0) return `${hours / 24} days`;
  return hours === 1 ? "1 hour" : `${hours} hours`;
}

/** The largest number of hours the settings take (a year). */
export const MAX_HOURS = 24 * 366;

/** A whole number of hours from a text field, 0..MAX_HOURS; null when it is not one. */
export function parseHours(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n <= MAX_HOURS ? n : null;
}

/** The nodes a backup can be restored to: logged-in ones, the backup's own node first. */
export function restoreTargets(all: readonly NodeState[], sourceId: string): NodeState[] {
  const usable = all.filter((s) => s.node.logged_in);
  return [...usable.filter((s) => s.node.id === sourceId), ...usable.filter((s) => s.node.id !== sourceId)];
}

/** A backup's time as people read it in their own zone: "2025-01-31 14:05". */
export function backupTime(unixSecs: number): string {
  const d = new Date(unixSecs * 1000);
  const two = (n: number) => n.toString().padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}
