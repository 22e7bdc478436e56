//! Turns the daemon's progress events into what the progress bar shows.
//!
//! The bar only moves on what the node reports: phases, images pulled out of
//! all. podman names blobs as they start and gives no byte counts, so blobs
//! are shown as a count, never turned into a made-up fraction.

import type { InstallProgress } from "./bindings/InstallProgress";
import type { Phase } from "./bindings/Phase";

/** The share of the bar each install phase starts at. */
const PULL_START = 0.05;
const PULL_END = 0.8;

/** How far an install (or uninstall) is, 0..1, from one progress event. */
export function progressFraction(p: InstallProgress): number {
  switch (p.phase) {
    case "validating":
      return 0.02;
    case "pulling": {
      const share = p.images_total > 0 ? Math.min(1, p.images_done / p.images_total) : 0;
      return PULL_START + (PULL_END - PULL_START) * share;
    }
    case "starting":
      return 0.85;
    case "healthy":
      return 0.95;
    case "done":
      return 1;
    case "stopping":
      return 0.3;
    case "removing":
      return 0.6;
    case "rolling_back":
      return 0;
  }
}

/** A short label for the phase the operation is in. */
export function phaseLabel(phase: Phase): string {
  switch (phase) {
    case "validating":
      return "Checking the app";
    case "pulling":
      return "Downloading";
    case "starting":
      return "Starting";
    case "healthy":
      return "Healthy";
    case "done":
      return "Done";
    case "rolling_back":
      return "Install failed, undoing";
    case "stopping":
      return "Stopping";
    case "removing":
      return "Removing";
  }
}

/** The detail line under the bar: counts while pulling, the node's message otherwise. */
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
  return p.message;
}

export type StepState = "done" | "current" | "pending" | "failed";

export interface Step {
  phase: Phase;
  label: string;
  state: StepState;
}

const INSTALL_STEPS: Phase[] = ["validating", "pulling", "starting", "healthy"];
const INSTALL_LABELS: Record<string, string> = {
  validating: "Check",
  pulling: "Download",
  starting: "Start",
  healthy: "Healthy",
};

/**
 * The install's steps with where it is: everything before the current phase
 * done, the current one in progress. A finished install has every step done;
 * a rolled-back one marks the step it failed in (the last one reached).
 */
export function installSteps(current: Phase | null, lastReached: Phase | null = null): Step[] {
  const at = current === "rolling_back" ? lastReached : current;
  const idx = at === "done" ? INSTALL_STEPS.length : at ? INSTALL_STEPS.indexOf(at) : -1;
  return INSTALL_STEPS.map((phase, i) => {
    let state: StepState = "pending";
    if (i < idx) state = "done";
    else if (i === idx) state = current === "rolling_back" ? "failed" : phase === "healthy" ? "done" : "current";
    return { phase, label: INSTALL_LABELS[phase] ?? phase, state };
  });
}
