import { describe, expect, it } from "vitest";

import type { InstallProgress } from "./bindings/InstallProgress";
import type { Phase } from "./bindings/Phase";
import {
  bytesFraction,
  installSteps,
  type Operation,
  phaseLabel,
  progressDetail,
  progressFraction,
  transferPercent,
  transferText,
} from "./progress";

const p = (phase: Phase, images_done = 0, images_total = 2, blobs_seen = 0, message = ""): InstallProgress => ({
  id: "hello-web",
  phase,
  images_done,
  images_total,
  blobs_seen,
  message,
  bytes_done: 0,
  bytes_total: 0,
});
const bytes = (phase: Phase, bytes_done: number, bytes_total: number): InstallProgress => ({
  ...p(phase),
  bytes_done,
  bytes_total,
});
const ALL_PHASES: Phase[] = [
  "validating",
  "pulling",
  "starting",
  "healthy",
  "rolling_back",
  "stopping",
  "removing",
  "done",
  "snapshotting",
  "switching",
  "archiving",
  "verifying",
  "restoring",
];
const increasing = (fractions: number[]) => {
  for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]!);
};

describe("progressFraction", () => {
  it("moves forward only as the node reports", () => {
    const seq = [
      p("validating"),
      p("pulling", 0, 2, 3),
      p("pulling", 1, 2, 0),
      p("pulling", 1, 2, 7),
      p("pulling", 2, 2, 7),
      p("starting", 2, 2),
      p("healthy", 2, 2),
      p("done", 2, 2),
    ];
    const fractions = seq.map((e) => progressFraction(e));
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]!);
    expect(fractions[0]).toBeGreaterThan(0);
    expect(fractions.at(-1)).toBe(1);
  });
  it("counts images, not blobs (podman gives no blob totals)", () => {
    expect(progressFraction(p("pulling", 0, 2, 1))).toBe(progressFraction(p("pulling", 0, 2, 9)));
    expect(progressFraction(p("pulling", 1, 2))).toBeCloseTo(0.425);
    expect(progressFraction(p("pulling", 0, 0))).toBeCloseTo(0.05);
    expect(progressFraction(p("pulling", 5, 2))).toBeCloseTo(0.8);
  });
  it("places uninstall phases", () => {
    expect(progressFraction(p("stopping"))).toBeLessThan(progressFraction(p("removing")));
    expect(progressFraction(p("rolling_back"))).toBe(0);
  });
});

describe("progressDetail", () => {
  it("shows layer counts while pulling", () => {
    expect(progressDetail(p("pulling", 0, 2, 3))).toBe("image 1 of 2 · 3 layers seen");
    expect(progressDetail(p("pulling", 1, 2, 1))).toBe("image 2 of 2 · 1 layer seen");
    expect(progressDetail({ ...p("pulling", 0, 1, 2), image: "registry.local/hello-web:1" })).toBe(
      "image 1 of 1 · 2 layers seen · registry.local/hello-web:1",
    );
    expect(progressDetail(p("pulling", 2, 2, 4))).toBe("2 of 2 images pulled");
  });
  it("shows the node's message otherwise", () => {
    expect(progressDetail(p("starting", 2, 2, 0, "starting hello-web_web"))).toBe("starting hello-web_web");
  });
  it("labels every phase", () => {
    for (const ph of ALL_PHASES) expect(phaseLabel(ph)).not.toBe("");
    expect(phaseLabel("rolling_back", "update")).toBe("Update failed, rolling back");
    expect(phaseLabel("snapshotting", "update")).toBe("Saving a copy of the data");
  });
  it("shows bytes while data is copied", () => {
    expect(progressDetail({ ...bytes("archiving", 1536, 3 * 1024), message: "archiving data" })).toBe(
      "1.5 KiB of 3.0 KiB (50%) · archiving data",
    );
    expect(progressDetail(bytes("restoring", 2048, 0))).toBe("2.0 KiB");
  });
});

describe("installSteps", () => {
  const states = (current: Phase | null, last: Phase | null = null) => installSteps(current, last).map((s) => s.state);
  it("marks steps before the current one done", () => {
    expect(states(null)).toEqual(["pending", "pending", "pending", "pending"]);
    expect(states("pulling")).toEqual(["done", "current", "pending", "pending"]);
    expect(states("healthy")).toEqual(["done", "done", "done", "done"]);
    expect(states("done")).toEqual(["done", "done", "done", "done"]);
  });
  it("marks the step a rolled-back install failed in", () => {
    expect(states("rolling_back", "starting")).toEqual(["done", "done", "failed", "pending"]);
  });
});

describe("bytes", () => {
  it("gives the percentage copied from the bytes", () => {
    expect(transferPercent(0, 1000)).toBe(0);
    expect(transferPercent(250, 1000)).toBe(25);
    expect(transferPercent(999, 1000)).toBe(99); // 100 only when every byte is there
    expect(transferPercent(1000, 1000)).toBe(100);
    expect(transferPercent(2000, 1000)).toBe(100);
    expect(transferPercent(10, 0)).toBe(0); // the total is not known yet
    expect(bytesFraction(NaN, 10)).toBe(0);
  });
  it("says how much of how much", () => {
    expect(transferText(512 * 1024, 1024 * 1024)).toBe("512 KiB of 1.0 MiB (50%)");
    expect(transferText(100, 0)).toBe("100 B");
  });
  it("moves a backup's bar with its bytes", () => {
    const seq = [bytes("archiving", 0, 4000), bytes("archiving", 1000, 4000), bytes("archiving", 4000, 4000)];
    const fractions = seq.map((e) => progressFraction(e, "backup"));
    increasing(fractions);
    expect(fractions[1]).toBeGreaterThan(fractions[0]!);
    expect(fractions[2]).toBeLessThan(1);
    expect(progressFraction(p("done"), "backup")).toBe(1);
  });
});

describe("operations", () => {
  const runs: Record<Exclude<Operation, "backup">, InstallProgress[]> = {
    install: [p("validating"), p("pulling", 1, 2), p("starting"), p("healthy"), p("done")],
    update: [
      p("pulling", 0, 1),
      p("pulling", 1, 1),
      bytes("snapshotting", 10, 100),
      bytes("snapshotting", 100, 100),
      p("switching"),
      p("starting"),
      p("healthy"),
      p("done"),
    ],
    restore: [
      bytes("verifying", 5, 10),
      p("pulling", 1, 2),
      bytes("restoring", 1, 4),
      bytes("restoring", 4, 4),
      p("starting"),
      p("healthy"),
      p("done"),
    ],
  };
  it("moves forward through each operation's phases", () => {
    for (const [op, seq] of Object.entries(runs)) increasing(seq.map((e) => progressFraction(e, op as Operation)));
  });
  it("places every phase in every operation", () => {
    for (const op of ["install", "update", "backup", "restore"] as Operation[]) {
      for (const ph of ALL_PHASES) {
        const f = progressFraction(p(ph), op);
        expect(f, `${op} ${ph}`).toBeGreaterThanOrEqual(0);
        expect(f, `${op} ${ph}`).toBeLessThanOrEqual(1);
      }
    }
  });
  it("has the update's own steps", () => {
    const steps = installSteps("switching", null, "update");
    expect(steps.map((s) => s.label)).toEqual(["Download", "Copy data", "Switch", "Start", "Healthy"]);
    expect(steps.map((s) => s.state)).toEqual(["done", "done", "current", "pending", "pending"]);
    const rolledBack = installSteps("rolling_back", "starting", "update").map((s) => s.state);
    expect(rolledBack).toEqual(["done", "done", "done", "failed", "pending"]);
    expect(installSteps("restoring", null, "restore").map((s) => s.state)).toEqual([
      "done",
      "done",
      "current",
      "pending",
      "pending",
    ]);
  });
});
