//! The install progress bar, fed only by the daemon's progress events.

import { useEffect, useRef } from "preact/hooks";

import type { InstallProgress } from "../bindings/InstallProgress";
import type { Phase } from "../bindings/Phase";
import { installSteps, phaseLabel, progressDetail, progressFraction } from "../progress";

const MARK: Record<string, string> = { done: "✓", current: "●", pending: "○", failed: "✕" };

interface Props {
  appId: string;
  progress: InstallProgress | null;
  lastPhase: Phase | null;
  failed?: boolean;
}

export function InstallProgressView({ appId, progress, lastPhase, failed }: Props) {
  const phase = progress?.phase ?? null;
  const steps = installSteps(failed && phase !== "rolling_back" ? "rolling_back" : phase, lastPhase ?? phase);
  // A failed install keeps the bar where it got to, in red.
  const reached = phase === "rolling_back" || failed ? lastPhase : phase;
  const pct =
    progress && reached && reached !== "rolling_back"
      ? Math.round(progressFraction({ ...progress, phase: reached }) * 100)
      : 0;
  const label = failed ? "Install failed" : progress ? phaseLabel(progress.phase) : "Waiting for the node…";
  // The box appears under the Install button just clicked, often below the
  // fold at 1280×800: bring it into view once.
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView?.({ block: "nearest" });
  }, []);
  return (
    <div
      ref={box}
      class={`install-box ${failed ? "install-failed" : ""}`}
      data-testid="install-progress-box"
      data-app-id={appId}
    >
      <ol class="install-steps" aria-label="Install steps">
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
        aria-label={`Installing ${appId}: ${label}`}
        data-testid="install-progress"
        data-app-id={appId}
        data-value={pct}
      />
      <div class="install-status" aria-live="polite">
        <span class="install-phase" data-testid="install-phase" data-phase={failed ? "failed" : (phase ?? "waiting")}>
          {label}
        </span>
        {progress && !failed && <span class="install-detail">{progressDetail(progress)}</span>}
      </div>
    </div>
  );
}
