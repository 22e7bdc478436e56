import { describe, expect, it } from "vitest";

import type { AppSettings } from "./bindings/AppSettings";
import { backupWarning, hoursText, lastBackupText, parseHours, passphraseProblem, restoreTargets } from "./backup";
import type { NodeState } from "./nodes";

describe("passphraseProblem", () => {
  it("wants at least 8 characters, typed the same twice", () => {
    expect(passphraseProblem("", "")).toBe("Use at least 8 characters.");
    expect(passphraseProblem("1234567", "1234567")).toBe("Use at least 8 characters.");
    expect(passphraseProblem("12345678", "1234567")).toBe("The two passphrases differ.");
    expect(passphraseProblem("12345678", "12345678")).toBeNull();
    expect(passphraseProblem("correct horse", "correct horse ")).toBe("The two passphrases differ.");
  });
  it("counts characters, not UTF-16 units", () => {
    expect(passphraseProblem("🔑🔑🔑🔑", "🔑🔑🔑🔑")).toBe("Use at least 8 characters.");
    expect(passphraseProblem("ééééèèèè", "ééééèèèè")).toBeNull();
  });
});

const settings = (backup_max_age_hours: number): AppSettings => ({
  auto_update_hours: 0,
  backup_schedule: null,
  backup_max_age_hours,
});

describe("backups on the dashboard", () => {
  const now = 1_700_000_000;
  it("says when the last backup was made", () => {
    expect(lastBackupText(now - 3 * 3600 - 20, now)).toBe("Last backup: 3 h ago");
    expect(lastBackupText(now - 2 * 86_400, now)).toBe("Last backup: 2 days ago");
    expect(lastBackupText(null, now)).toBe("No backup yet");
  });
  it("warns only when the node says the backup is overdue", () => {
    expect(backupWarning({ backup_overdue: false, last_backup: null, settings: settings(24) })).toBeNull();
    expect(backupWarning({ backup_overdue: true, last_backup: now, settings: settings(48) })).toBe(
      "Backup overdue: older than 2 days",
    );
    expect(backupWarning({ backup_overdue: true, last_backup: now, settings: settings(12) })).toBe(
      "Backup overdue: older than 12 hours",
    );
    expect(backupWarning({ backup_overdue: true, last_backup: null, settings: settings(24) })).toBe(
      "Backup overdue: this app has never been backed up",
    );
    expect(hoursText(1)).toBe("1 hour");
    expect(hoursText(24)).toBe("24 hours");
  });
});

describe("parseHours", () => {
  it("takes whole hours from 0 to a year", () => {
    expect(parseHours("0")).toBe(0);
    expect(parseHours(" 24 ")).toBe(24);
    expect(parseHours("8784")).toBe(8784);
    for (const bad of ["", "-1", "1.5", "1e3", "twelve", "8785"]) expect(parseHours(bad), bad).toBeNull();
  });
});

describe("restoreTargets", () => {
  const state = (id: string, logged_in: boolean): NodeState => ({
    node: { id, name: id, address: `${id}:7443`, fingerprint: "", logged_in, last_seen: null },
    overview: null,
    checking: false,
  });
  it("offers logged-in nodes, the backup's own first", () => {
    const all = [state("a", true), state("b", false), state("c", true), state("d", true)];
    expect(restoreTargets(all, "c").map((s) => s.node.id)).toEqual(["c", "a", "d"]);
    expect(restoreTargets(all, "b").map((s) => s.node.id)).toEqual(["a", "c", "d"]);
  });
});
