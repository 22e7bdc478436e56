//! The progress bar of an install, update or restore, fed only by the daemon's progress events.

import { useEffect, useRef } from "preact/hooks";

import type { InstallProgress } from "../bindings/InstallProgress";
import type { Phase } from "../bindings/Phase";
import { installSteps, type Operation, phaseLabel, progressDetail, progressFraction } from "../progress";

const MARK: Record<string, string> = { done: "✓", current: "●", pending: "○", failed: "✕" };

const VERB: Record<Operation, string> = {
  install: "Installing",
  update: "Updating",
  backup: "Backing up",
  restore: "Restoring",
};
const FAILED: Record<Operation, string> = {
  install: "Install failed",
  update: "Update failed",
  backup: "Backup failed",
  restore: "Restore failed",
};

interface Props {
  appId: string;
  progress: InstallProgress | null;
  lastPhase: Phase | null;
  failed?: boolean;
  /** Which operation this is (its steps and words); install by default. */
  op?: Operation;
}

/**
 * The steps, the bar and the phase. Its test ids start with the operation:
 * `install-progress-box`, `update-progress`, `restore-phase`, …
 */
export function InstallProgressView({ appId, progress, lastPhase, failed, op = "install" }: Props) {
  const phase = progress?.phase ?? null;
  const steps = installSteps(failed && phase !== "rolling_back" ? "rolling_back" : phase, lastPhase ?? phase, op);
  // A failed operation keeps the bar where it got to, in red.
  const reached = phase === "rolling_back" || failed ? lastPhase : phase;
  const pct =
    progress && reached && reached !== "rolling_back"
      ? Math.round(progressFraction({ ...progress, phase: reached }, op) * 100)
      : 0;
  const label = failed ? FAILED[op] : progress ? phaseLabel(progress.phase, op) : "Waiting for the node…";
  // The box appears under the button just clicked, often below the fold at
  // 1280×800: bring it into view once.
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView?.({ block: "nearest" });
  }, []);
  return (
    <div
      ref={box}
      class={`install-box ${failed ? "install-failed" : ""}`}
      data-testid={`${op}-progress-box`}
      data-app-id={appId}
    >
      <ol class="install-steps" aria-label={`${VERB[op]} steps`}>
        {steps.map((s) => (
          <li key={s.phase} class={`step step-${s.state}`}>
            <span aria-hidden="true">{MARK[s.state]}</span> {s.label}
            <span class="sr-only"> ({s.state})</span>
          </li>
        ))}
      </ol>
      <progress
        class="progress"
        max={100}
        value={pct}
        aria-label={`${VERB[op]} ${appId}: ${label}`}
        data-testid={`${op}-progress`}
        data-app-id={appId}
        data-value={pct}
      />
      <div class="install-status" aria-live="polite">
        <span class="install-phase" data-testid={`${op}-phase`} data-phase={failed ? "failed" : (phase ?? "waiting")}>
          {label}
        </span>
        {progress && !failed && <span class="install-detail">{progressDetail(progress)}</span>}
      </div>
    </div>
  );
}
