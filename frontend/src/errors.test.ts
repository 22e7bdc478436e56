import { describe, expect, it } from "vitest";

import type { ErrorCode } from "./bindings/ErrorCode";
import { AppError, describeError, needsLogin, toAppError } from "./errors";

// Every node error code, checked by tsc against the generated ErrorCode: a
// new code on the Rust side fails `npm run check` until it is listed here.
const NODE_CODES: Record<ErrorCode, true> = {
  invalid_manifest: true,
  state_corrupt: true,
  io: true,
  secret: true,
  systemd: true,
  podman: true,
  app_not_installed: true,
  missing_dependency: true,
  port_conflict: true,
  unauthenticated: true,
  login_failed: true,
  too_many_attempts: true,
  install_failed: true,
  already_installed: true,
  not_in_catalog: true,
  has_dependants: true,
  request_too_large: true,
  busy: true,
  catalog_untrusted: true,
  update_rolled_back: true,
  backup_failed: true,
  restore_failed: true,
  bad_passphrase: true,
  backup_corrupt: true,
  backup_not_found: true,
  parse_error: true,
  invalid_request: true,
  method_not_found: true,
  invalid_params: true,
  internal: true,
};
const DESKTOP_CODES = [
  "invalid_address",
  "fingerprint_mismatch",
  "unreachable",
  "timeout",
  "tls",
  "protocol",
  "unknown_node",
  "not_logged_in",
  "storage",
  "already_added",
  "invalid_fingerprint",
  "invalid_input",
  "no_ui",
  "open_failed",
  "local_file",
];

describe("toAppError", () => {
  it("keeps the desktop's {code, message}", () => {
    const e = toAppError({ code: "unreachable", message: "node unreachable: last seen 3 min ago" });
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe("unreachable");
    expect(e.message).toBe("node unreachable: last seen 3 min ago");
    expect(e.toDesktopError()).toEqual({ code: "unreachable", message: "node unreachable: last seen 3 min ago" });
  });
  it("wraps Tauri's own string errors and anything else", () => {
    expect(toAppError("command node_probe not found").code).toBe("internal");
    expect(toAppError(new Error("boom")).message).toBe("boom");
    expect(toAppError(42).message).toBe("42");
    const same = new AppError("tls", "x");
    expect(toAppError(same)).toBe(same);
    expect(toAppError({ code: 1, message: "not ours" }).code).toBe("internal");
  });
});

describe("describeError", () => {
  it("says what to do for every code", () => {
    for (const code of [...Object.keys(NODE_CODES), ...DESKTOP_CODES]) {
      const d = describeError({ code });
      expect(d.title, code).not.toBe("");
      expect(d.advice, code).not.toBe("");
    }
  });
  it("gives the codes people meet their own words", () => {
    const specific = [
      ...DESKTOP_CODES,
      "unauthenticated",
      "login_failed",
      "too_many_attempts",
      "install_failed",
      "port_conflict",
      "missing_dependency",
      "has_dependants",
      "catalog_untrusted",
      "busy",
      "update_rolled_back",
      "backup_failed",
      "restore_failed",
      "bad_passphrase",
      "backup_corrupt",
      "backup_not_found",
    ];
    const fallback = describeError({ code: "no_such_code" });
    for (const code of specific) expect(describeError({ code }).title, code).not.toBe(fallback.title);
  });
  it("offers a login where one helps, and retry for transient failures", () => {
    expect(describeError({ code: "not_logged_in" }).action).toBe("login");
    expect(describeError({ code: "unauthenticated" }).action).toBe("login");
    expect(describeError({ code: "unreachable" }).action).toBe("retry");
    expect(describeError({ code: "fingerprint_mismatch" }).action).toBe("none");
    expect(describeError({ code: "fingerprint_mismatch" }).advice).toContain("archipelagod pairing");
    expect(needsLogin({ code: "unauthenticated" })).toBe(true);
    expect(needsLogin({ code: "login_failed" })).toBe(false);
  });
});
