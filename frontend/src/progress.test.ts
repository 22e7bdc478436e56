import { describe, expect, it } from "vitest";

import type { InstallProgress } from "./bindings/InstallProgress";
import type { Phase } from "./bindings/Phase";
import { installSteps, phaseLabel, progressDetail, progressFraction } from "./progress";

const p = (phase: Phase, images_done = 0, images_total = 2, blobs_seen = 0, message = ""): InstallProgress => ({
  id: "hello-web",
  phase,
  images_done,
  images_total,
  blobs_seen,
  message,
});

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
    const fractions = seq.map(progressFraction);
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
    const phases: Phase[] = [
      "validating",
      "pulling",
      "starting",
      "healthy",
      "rolling_back",
      "stopping",
      "removing",
      "done",
    ];
    for (const ph of phases) expect(phaseLabel(ph)).not.toBe("");
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
