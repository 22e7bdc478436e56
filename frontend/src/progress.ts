//! Turns the daemon's progress events into what the progress bar shows.
//!
//! The bar only moves on what the node reports: phases, images pulled out of
//! all, bytes copied out of all. podman names blobs as they start and gives no
//! byte counts, so blobs are shown as a count, never turned into a made-up
//! fraction. Install, update, backup and restore go through different phases,
//! so where a phase puts the bar depends on the operation.

import type { InstallProgress } from "./bindings/InstallProgress";
import type { Phase } from "./bindings/Phase";
import { formatBytes } from "./format";

/** The long operations that report progress. */
export type Operation = "install" | "update" | "backup" | "restore";

/** Where a phase starts and ends on the bar, and what moves it in between. */
interface Span {
  start: number;
  end: number;
  by?: "images" | "bytes";
}

const SPANS: Record<Operation, Partial<Record<Phase, Span>>> = {
  install: {
    validating: { start: 0.02, end: 0.02 },
    pulling: { start: 0.05, end: 0.8, by: "images" },
    starting: { start: 0.85, end: 0.85 },
    healthy: { start: 0.95, end: 0.95 },
  },
  update: {
    validating: { start: 0.02, end: 0.02 },
    pulling: { start: 0.05, end: 0.55, by: "images" },
    snapshotting: { start: 0.58, end: 0.7, by: "bytes" },
    switching: { start: 0.74, end: 0.74 },
    starting: { start: 0.85, end: 0.85 },
    healthy: { start: 0.95, end: 0.95 },
  },
  backup: {
    validating: { start: 0.02, end: 0.02 },
    archiving: { start: 0.03, end: 0.98, by: "bytes" },
  },
  restore: {
    verifying: { start: 0.02, end: 0.2, by: "bytes" },
    pulling: { start: 0.22, end: 0.5, by: "images" },
    restoring: { start: 0.52, end: 0.8, by: "bytes" },
    starting: { start: 0.85, end: 0.85 },
    healthy: { start: 0.95, end: 0.95 },
  },
};

/** Every phase's place when an operation does not expect it (checked complete by tsc). */
const ANY_OPERATION: Record<Phase, number> = {
  validating: 0.02,
  pulling: 0.3,
  snapshotting: 0.6,
  switching: 0.74,
  archiving: 0.5,
  verifying: 0.1,
  restoring: 0.6,
  starting: 0.85,
  healthy: 0.95,
  done: 1,
  stopping: 0.3,
  removing: 0.6,
  rolling_back: 0,
};

/** `done` of `total`, 0..1 (0 while the total is not known). */
export function bytesFraction(done: number, total: number): number {
  if (!(total > 0) || !(done > 0)) return 0;
  return Math.min(1, done / total);
}

/** `done` of `total` as a whole percentage, for a `<progress max=100>`. */
export function transferPercent(done: number, total: number): number {
  return Math.floor(bytesFraction(done, total) * 100);
}

/** "1.5 MiB of 3.0 MiB (50%)", or "1.5 MiB" while the total is not known. */
export function transferText(done: number, total: number): string {
  if (!(total > 0)) return formatBytes(done);
  return `${formatBytes(done)} of ${formatBytes(total)} (${transferPercent(done, total)}%)`;
}

/** How far an operation is, 0..1, from one progress event. */
export function progressFraction(p: InstallProgress, op: Operation = "install"): number {
  if (p.phase === "done") return 1;
  if (p.phase === "rolling_back") return 0;
  const span = SPANS[op][p.phase];
  if (!span) return ANY_OPERATION[p.phase];
  let share = 0;
  if (span.by === "images") share = p.images_total > 0 ? Math.min(1, p.images_done / p.images_total) : 0;
  else if (span.by === "bytes") share = bytesFraction(p.bytes_done, p.bytes_total);
  return span.start + (span.end - span.start) * share;
}

const FAILED_UNDOING: Record<Operation, string> = {
  install: "Install failed, undoing",
  update: "Update failed, rolling back",
  backup: "Backup failed, cleaning up",
  restore: "Restore failed, undoing",
};

/** A short label for the phase the operation is in. */
export function phaseLabel(phase: Phase, op: Operation = "install"): string {
  switch (phase) {
    case "validating":
      return "Checking the app";
    case "pulling":
      return "Downloading";
    case "snapshotting":
      return "Saving a copy of the data";
    case "switching":
      return "Switching versions";
    case "archiving":
      return "Archiving and encrypting";
    case "verifying":
      return "Checking the backup";
    case "restoring":
      return "Putting the data back";
    case "starting":
      return "Starting";
    case "healthy":
      return "Healthy";
    case "done":
      return "Done";
    case "rolling_back":
      return FAILED_UNDOING[op];
    case "stopping":
      return "Stopping";
    case "removing":
      return "Removing";
  }
}

/** The detail line under the bar: counts while pulling or copying, the node's message otherwise. */
export function progressDetail(p: InstallProgress): string {
  if (p.phase === "pulling") {
    const current = Math.min(p.images_done + 1, Math.max(p.images_total, 1));
    const parts: string[] = [];
    if (p.images_total > 0) {
      parts.push(
        p.images_done >= p.images_total
          ? `${p.images_total} of ${p.images_total} images pulled`
          : `image ${current} of ${p.images_total}`,
      );
    }
    if (p.images_done < p.images_total || p.images_total === 0) {
      parts.push(`${p.blobs_seen} ${p.blobs_seen === 1 ? "layer" : "layers"} seen`);
    }
    if (p.image) parts.push(p.image);
    return parts.join(" · ");
  }
  if (p.bytes_done > 0 || p.bytes_total > 0) {
    const bytes = transferText(p.bytes_done, p.bytes_total);
    return p.message === "" ? bytes : `${bytes} · ${p.message}`;
  }
  return p.message;
}

export type StepState = "done" | "current" | "pending" | "failed";

export interface Step {
  phase: Phase;
  label: string;
  state: StepState;
}

const STEPS: Record<Operation, Phase[]> = {
  install: ["validating", "pulling", "starting", "healthy"],
  update: ["pulling", "snapshotting", "switching", "starting", "healthy"],
  backup: ["archiving", "done"],
  restore: ["verifying", "pulling", "restoring", "starting", "healthy"],
};
const STEP_LABELS: Partial<Record<Phase, string>> = {
  validating: "Check",
  pulling: "Download",
  snapshotting: "Copy data",
  switching: "Switch",
  archiving: "Archive",
  verifying: "Check",
  restoring: "Restore data",
  starting: "Start",
  healthy: "Healthy",
  done: "Done",
};

/**
 * The operation's steps with where it is: everything before the current
 * phase done, the current one in progress. A finished operation has every
 * step done; a rolled-back one marks the step it failed in (the last one
 * reached). A phase the operation does not list shows no step in progress;
 * a listed step the node skipped (an update that only changed settings makes
 * no copy of the data) shows as done once a later one is reached.
 */
export function installSteps(
  current: Phase | null,
  lastReached: Phase | null = null,
  op: Operation = "install",
): Step[] {
  const steps = STEPS[op];
  const at = current === "rolling_back" ? lastReached : current;
  const idx = at === "done" ? steps.length : at ? steps.indexOf(at) : -1;
  const last = steps.at(-1);
  return steps.map((phase, i) => {
    let state: StepState = "pending";
    if (i < idx) state = "done";
    else if (i === idx) state = current === "rolling_back" ? "failed" : phase === last ? "done" : "current";
    return { phase, label: STEP_LABELS[phase] ?? phase, state };
  });
}
