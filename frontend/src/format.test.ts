import { describe, expect, it } from "vitest";

import {
  addressHost,
  categoryLabel,
  fingerprintRows,
  fingerprintsMatch,
  formatAge,
  formatBytes,
  formatPercent,
  formatUptime,
  lastSeenText,
  loadPerCore,
  normalizeFingerprint,
  usedFraction,
} from "./format";

const FP = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, "0")).join(":");

describe("formatBytes", () => {
  it("uses binary units with one decimal below ten", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(180 * 1024 ** 2)).toBe("180 MiB");
    expect(formatBytes(2.4 * 1024 ** 3)).toBe("2.4 GiB");
    expect(formatBytes(2000 * 1024 ** 3)).toBe("2.0 TiB");
  });
  it("says it does not know instead of printing nonsense", () => {
    expect(formatBytes(-1)).toBe("–");
    expect(formatBytes(Number.NaN)).toBe("–");
  });
});

describe("ages", () => {
  it("rounds to what a person says", () => {
    expect(formatAge(5)).toBe("just now");
    expect(formatAge(60)).toBe("1 min ago");
    expect(formatAge(180)).toBe("3 min ago");
    expect(formatAge(7200)).toBe("2 h ago");
    expect(formatAge(86_400)).toBe("1 day ago");
    expect(formatAge(5 * 86_400 + 10)).toBe("5 days ago");
    expect(formatAge(-30)).toBe("just now");
  });
  it("writes the last-seen line of an unreachable node", () => {
    expect(lastSeenText(1000, 1180)).toBe("last seen 3 min ago");
    expect(lastSeenText(null, 1180)).toBe("not seen yet");
  });
  it("writes uptimes", () => {
    expect(formatUptime(59)).toBe("0 min");
    expect(formatUptime(12 * 60)).toBe("12 min");
    expect(formatUptime(5 * 3600 + 12 * 60)).toBe("5 h 12 min");
    expect(formatUptime(3 * 86_400 + 4 * 3600)).toBe("3 d 4 h");
  });
});

describe("numbers", () => {
  it("formats percentages", () => {
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.44)).toBe("0.4%");
    expect(formatPercent(37.5)).toBe("38%");
    expect(formatPercent(Number.POSITIVE_INFINITY)).toBe("–");
  });
  it("computes used shares and load per core", () => {
    expect(usedFraction(100, 25)).toBe(0.75);
    expect(usedFraction(0, 0)).toBe(0);
    expect(usedFraction(100, 150)).toBe(0);
    expect(loadPerCore(2, 4)).toBe(0.5);
    expect(loadPerCore(2, 0)).toBe(2);
  });
});

describe("fingerprints", () => {
  it("normalises any spelling to colon pairs", () => {
    expect(normalizeFingerprint(FP)).toBe(FP);
    expect(normalizeFingerprint(FP.replace(/:/g, "").toUpperCase())).toBe(FP);
    expect(normalizeFingerprint(` ${FP.replace(/:/g, " ")} `)).toBe(FP);
    expect(normalizeFingerprint(FP.slice(0, 90))).toBeNull();
    expect(normalizeFingerprint("zz")).toBeNull();
  });
  it("matches only identical fingerprints", () => {
    expect(fingerprintsMatch(FP, FP.toUpperCase())).toBe(true);
    expect(fingerprintsMatch(FP, `${FP.slice(0, -2)}ff`)).toBe(false);
    expect(fingerprintsMatch("", "")).toBe(false);
  });
  it("shows 4 rows of 8 pairs", () => {
    const rows = fingerprintRows(FP);
    expect(rows).toHaveLength(4);
    expect(rows[0]).toBe("00:07:0e:15:1c:23:2a:31");
    expect(rows.join(":")).toBe(FP);
  });
});

describe("addresses and labels", () => {
  it("takes the host out of an address", () => {
    expect(addressHost("node.local:7443")).toBe("node.local");
    expect(addressHost("192.168.1.20")).toBe("192.168.1.20");
    expect(addressHost("[fe80::1]:7443")).toBe("[fe80::1]");
    expect(addressHost("fe80::1")).toBe("[fe80::1]");
    expect(addressHost("https://node.local:7443/rpc")).toBe("node.local");
  });
  it("labels categories", () => {
    expect(categoryLabel("bitcoin")).toBe("Bitcoin");
    expect(categoryLabel("home-automation")).toBe("Home automation");
    expect(categoryLabel("")).toBe("Other");
  });
});
