//! Errors as the desktop commands return them (`{code, message}`), and what a
//! person should be told to do about each code.

import type { DesktopError } from "./bindings/DesktopError";

/** A failed command, carrying the desktop's stable code. */
export class AppError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "AppError";
    this.code = code;
  }

  toDesktopError(): DesktopError {
    return { code: this.code, message: this.message };
  }
}

function isDesktopError(v: unknown): v is DesktopError {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as { code?: unknown }).code === "string" &&
    typeof (v as { message?: unknown }).message === "string"
  );
}

/**
 * Whatever a command rejected with, as an AppError. Tauri itself rejects with
 * a plain string when a command is missing or its arguments do not fit.
 */
export function toAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  if (isDesktopError(e)) return new AppError(e.code, e.message);
  if (typeof e === "string") return new AppError("internal", e);
  if (e instanceof Error) return new AppError("internal", e.message);
  return new AppError("internal", String(e));
}

/** What the user can do from the banner that shows an error. */
export type ErrorAction = "login" | "retry" | "none";

export interface ErrorDescription {
  /** One line: what happened. */
  title: string;
  /** What to do about it. */
  advice: string;
  action: ErrorAction;
}

const DESCRIPTIONS: Record<string, ErrorDescription> = {
  unreachable: {
    title: "Node unreachable",
    advice: "Check that the node is switched on and on the same network as this computer, then try again.",
    action: "retry",
  },
  timeout: {
    title: "The node did not answer in time",
    advice: "It may be busy or on a slow link. Try again in a moment.",
    action: "retry",
  },
  invalid_address: {
    title: "That address does not look right",
    advice: "Enter the node's host name or IP address, optionally with a port: node.local or 192.168.1.20:7443.",
    action: "none",
  },
  invalid_fingerprint: {
    title: "That is not a fingerprint",
    advice:
      "A fingerprint is 64 hexadecimal digits, usually written in pairs with colons, as `archipelagod pairing` prints it.",
    action: "none",
  },
  invalid_input: {
    title: "That value is not accepted",
    advice: "Check what you typed (a name may be too long) and try again.",
    action: "none",
  },
  no_ui: {
    title: "This app has no web interface",
    advice: "Manage it from the dashboard; its logs show what it does.",
    action: "none",
  },
  open_failed: {
    title: "Could not open the browser",
    advice: "Copy the app's address shown on its row into your browser.",
    action: "none",
  },
  fingerprint_mismatch: {
    title: "The node's identity has changed",
    advice:
      "Do not log in. Someone may be intercepting the connection. If you reinstalled the node, run `archipelagod pairing` on it, remove this node here and add it again after comparing fingerprints.",
    action: "none",
  },
  tls: {
    title: "Secure connection failed",
    advice:
      "The node's TLS handshake failed. Check that the address points at an Archipelago node (port 7443 by default).",
    action: "retry",
  },
  protocol: {
    title: "The node answered something unexpected",
    advice: "The node may run a different version of Archipelago. Update the node or this app.",
    action: "retry",
  },
  unknown_node: {
    title: "This node is no longer in your list",
    advice: "Add it again from the Nodes screen.",
    action: "none",
  },
  not_logged_in: {
    title: "Not logged in",
    advice: "Log in to this node with its password to see and manage its apps.",
    action: "login",
  },
  unauthenticated: {
    title: "Your session on this node has ended",
    advice: "Log in again with the node's password.",
    action: "login",
  },
  login_failed: {
    title: "Wrong password",
    advice: "Check the node's password and try again.",
    action: "none",
  },
  too_many_attempts: {
    title: "Too many failed logins",
    advice: "The node is refusing logins from this computer for a while. Wait a few minutes, then try again.",
    action: "none",
  },
  storage: {
    title: "Could not save the node list",
    advice: "This app could not write its settings. Check the free space and permissions of your config folder.",
    action: "retry",
  },
  already_added: {
    title: "This node is already in your list",
    advice: "Pick it from the Nodes screen.",
    action: "none",
  },
  install_failed: {
    title: "Install failed",
    advice:
      "Everything the install did was undone. The lines above come from the app's logs; fix the cause (free a port, free disk space) and install again.",
    action: "retry",
  },
  already_installed: {
    title: "Already installed",
    advice:
      "Open the Dashboard to manage it. A backup is restored only where the app is not installed: uninstall it there first (without keeping its data), or restore on another node.",
    action: "none",
  },
  missing_dependency: {
    title: "An app it needs is not installed",
    advice: "Install the app it depends on first, then this one.",
    action: "none",
  },
  port_conflict: {
    title: "Port already in use",
    advice: "Another app uses the same port. Uninstall or stop that app first.",
    action: "none",
  },
  has_dependants: {
    title: "Other apps depend on this app",
    advice: "Uninstall the apps that depend on it first.",
    action: "none",
  },
  app_not_installed: {
    title: "The app is not installed",
    advice: "It may have been removed from another device. Refresh the dashboard.",
    action: "retry",
  },
  not_in_catalog: {
    title: "Not in the node's catalog",
    advice: "The node's catalog does not offer this app (any more). Refresh the marketplace.",
    action: "retry",
  },
  catalog_untrusted: {
    title: "Catalog refused",
    advice:
      "The catalog's signature did not verify, so the node will not install from it. Check the catalog's source and key on the node.",
    action: "none",
  },
  busy: {
    title: "The node is busy",
    advice: "It is serving as many connections as it allows. Try again in a moment.",
    action: "retry",
  },
  invalid_manifest: {
    title: "The app's manifest is invalid",
    advice: "Report this to the catalog's publisher.",
    action: "none",
  },
  update_rolled_back: {
    title: "Update failed and was rolled back",
    advice:
      "The previous version runs again with its data as it was. The lines above say why the new version failed; try again once the catalog offers a fixed version.",
    action: "none",
  },
  backup_failed: {
    title: "Backup failed",
    advice: "The app runs as before and no partial backup was left. Check the node's free disk space, then try again.",
    action: "retry",
  },
  restore_failed: {
    title: "Restore failed",
    advice: "What the restore did was undone. The message above says why; fix that on the node, then try again.",
    action: "retry",
  },
  bad_passphrase: {
    title: "Wrong passphrase",
    advice: "This passphrase does not open the backup. Enter the one it was made with.",
    action: "none",
  },
  backup_corrupt: {
    title: "The backup is damaged",
    advice:
      "It is not a complete Archipelago backup, so nothing on the node was changed. Download it again, or use another backup.",
    action: "none",
  },
  backup_not_found: {
    title: "No such backup",
    advice: "It may have been deleted (older backups are removed on a schedule). Refresh the list of backups.",
    action: "retry",
  },
  local_file: {
    title: "Could not use the backup file on this computer",
    advice:
      "Check the free space and permissions of the backups folder (Downloads/Archipelago, or ARCHIPELAGO_DESKTOP_BACKUP_DIR).",
    action: "retry",
  },
  podman: {
    title: "The node's container engine failed",
    advice: "See the message above; the node's logs (journalctl --user -u archipelagod) say more.",
    action: "retry",
  },
  systemd: {
    title: "The node's service manager failed",
    advice: "See the message above; the node's logs (journalctl --user -u archipelagod) say more.",
    action: "retry",
  },
};

const FALLBACK: ErrorDescription = {
  title: "Something went wrong",
  advice: "Try again. If it keeps happening, the node's logs (journalctl --user -u archipelagod) say more.",
  action: "retry",
};

/** What to tell a person about an error with this code. */
export function describeError(err: { code: string }): ErrorDescription {
  return DESCRIPTIONS[err.code] ?? FALLBACK;
}

/** Whether this error means "log in (again)". */
export function needsLogin(err: { code: string }): boolean {
  return err.code === "not_logged_in" || err.code === "unauthenticated";
}
