// Component tests of updates, backups and app settings: the whole app rendered
// in happy-dom, the Tauri commands answered by src/test/tauri.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => import("./test/tauri"));

import { App } from "./app";
import type { BackupInfo } from "./bindings/BackupInfo";
import type { InstallProgress } from "./bindings/InstallProgress";
import type { NodeEntry } from "./bindings/NodeEntry";
import type { NodeOverview } from "./bindings/NodeOverview";
import type { PackageStatus } from "./bindings/PackageStatus";
import type { Phase } from "./bindings/Phase";
import type { TransferProgress } from "./bindings/TransferProgress";
import type { UpdateResult } from "./bindings/UpdateResult";
import { dialog, installJobs, nodes, nodesError, route, updateJobs } from "./store";
import { byTestId, click, mount, q, settle, type, unmount, waitFor } from "./test/dom";
import { type Channel, callsOf, handlers, resetTauri } from "./test/tauri";

const NOW = Math.floor(Date.now() / 1000);

const entry = (id: string, extra: Partial<NodeEntry> = {}): NodeEntry => ({
  id,
  name: `Node ${id}`,
  address: `node-${id}.local:7443`,
  fingerprint: "00",
  logged_in: true,
  last_seen: NOW - 10,
  ...extra,
});
const online = (n: NodeEntry): NodeOverview => ({
  node: n,
  reachable: true,
  info: {
    version: "0.1.0",
    hostname: "node",
    uptime_secs: 7200,
    disk: { total_bytes: 1e12, free_bytes: 4e11 },
    memory: { total_bytes: 8e9, available_bytes: 4e9 },
    cpu: { cores: 4, load: [1, 1, 1] },
    apps_installed: 1,
    apps_running: 1,
    apps_failed: 0,
  },
  error: null,
});

const pkg = (extra: Partial<PackageStatus> = {}): PackageStatus => ({
  id: "hello-web",
  name: "Hello Web",
  version: "1.0.0",
  run: "running",
  health: "healthy",
  containers: [{ name: "hello-web_web", unit: "hello-web_web.service", active_state: "active", sub_state: "running" }],
  ui: { scheme: "http", port: 8088, path: "/" },
  problem: null,
  source: "archipelago",
  update_available: null,
  last_backup: null,
  backup_overdue: false,
  settings: { auto_update_hours: 0, backup_schedule: null, backup_max_age_hours: 0 },
  ...extra,
});

const event = (phase: Phase, extra: Partial<InstallProgress> = {}): InstallProgress => ({
  id: "hello-web",
  phase,
  images_done: 0,
  images_total: 1,
  blobs_seen: 0,
  message: "",
  bytes_done: 0,
  bytes_total: 0,
  ...extra,
});

const NAME = "hello-web-1.0.0-20250101T000000Z.archy-backup";
const backup: BackupInfo = {
  name: NAME,
  app: "hello-web",
  version: "1.0.0",
  created: NOW - 3 * 3600 - 60,
  bytes: 3 * 1024 * 1024,
  path: `/var/lib/archipelago/backups/${NAME}`,
  sha256: "ab".repeat(32),
};

/** Nodes a and b, logged in; c, logged out. The dashboard of a is open. */
function serveNodes(): void {
  const list = [online(entry("a")), online(entry("b")), online(entry("c", { logged_in: false }))];
  handlers.set("nodes_list", () => list.map((o) => o.node));
  handlers.set("nodes_overview", () => list);
  handlers.set("node_overview", (a) => list.find((o) => o.node.id === a.nodeId));
  handlers.set("package_stats", () => ({ containers: [] }));
}

const input = (testId: string) => q(testId) as HTMLInputElement;
const button = (testId: string) => q(testId) as HTMLButtonElement;

beforeEach(() => {
  resetTauri();
  nodes.value = null;
  nodesError.value = null;
  dialog.value = null;
  installJobs.value = {};
  updateJobs.value = {};
  route.value = { screen: "node", nodeId: "a", tab: "dashboard" };
  serveNodes();
});
afterEach(() => unmount());

describe("updates", () => {
  it("offers the catalog's new version and updates with the progress view", async () => {
    let apps = [pkg({ update_available: "1.1.0" })];
    handlers.set("package_list", () => ({ apps }));
    let channel: Channel<InstallProgress> | null = null;
    let finish: (r: UpdateResult) => void = () => {};
    handlers.set("update_app", (a) => {
      channel = a.onProgress as Channel<InstallProgress>;
      return new Promise<UpdateResult>((r) => (finish = r));
    });
    await mount(<App />);

    expect((await byTestId("update-badge-hello-web")).textContent).toBe("Update available: 1.1.0");
    const update = await byTestId("update-button-hello-web");
    expect(update.textContent).toBe("Update to 1.1.0");
    await click(update);
    expect(callsOf("update_app")).toEqual([{ nodeId: "a", appId: "hello-web", onProgress: channel }]);
    expect(button("update-button-hello-web").disabled).toBe(true);
    expect(button("uninstall-button-hello-web").disabled).toBe(true);

    channel!.onmessage(event("pulling", { images_done: 1 }));
    await settle();
    expect(q("update-phase")?.textContent).toBe("Downloading");
    channel!.onmessage(event("snapshotting", { bytes_done: 512, bytes_total: 1024, message: "copying data" }));
    await settle();
    expect(q("update-phase")?.textContent).toBe("Saving a copy of the data");
    expect(q("update-progress-box")?.textContent).toContain("512 B of 1.0 KiB (50%)");
    const bar = q("update-progress")!;
    const before = Number(bar.dataset.value);
    channel!.onmessage(event("switching"));
    await settle();
    expect(Number(bar.dataset.value)).toBeGreaterThan(before);

    const updated = pkg({ version: "1.1.0" });
    apps = [updated];
    finish({ status: updated, from_version: "1.0.0", to_version: "1.1.0", data_snapshot: true });
    await waitFor(() => q("update-done-hello-web"), "update done");
    expect(q("update-done-hello-web")?.textContent).toContain("Updated from 1.0.0 to 1.1.0");
    expect(q("update-phase")?.dataset.phase).toBe("done");
    await waitFor(() => q("update-badge-hello-web") === null, "badge gone after the reload");
    expect(q("app-row-hello-web")?.textContent).toContain("1.1.0");
  });

  it("says a failed update was rolled back and shows the node's words in full", async () => {
    const message =
      "update of hello-web to 1.1.0 rolled back: container hello-web_web exited with status 1\nlast log lines:\n  panic: config key `port` missing";
    handlers.set("package_list", () => ({ apps: [pkg({ update_available: "1.1.0" })] }));
    handlers.set("update_app", (a) => {
      const ch = a.onProgress as Channel<InstallProgress>;
      ch.onmessage(event("starting"));
      ch.onmessage(event("rolling_back", { message: "putting 1.0.0 back" }));
      throw { code: "update_rolled_back", message };
    });
    await mount(<App />);
    await click(await byTestId("update-button-hello-web"));

    const panel = await byTestId("update-rollback-hello-web");
    expect(panel.getAttribute("role")).toBe("alert");
    expect(panel.textContent).toContain("Update failed — rolled back to 1.0.0, which is running");
    const pre = panel.querySelector("pre")!;
    expect(pre.textContent).toBe(message);
    expect(q("error-banner")).toBeNull(); // the panel, not the generic banner
    expect(q("update-progress")).toBeNull();

    const dismiss = [...panel.querySelectorAll("button")].find((b) => b.textContent === "Dismiss")!;
    await click(dismiss);
    expect(q("update-rollback-hello-web")).toBeNull();
  });

  it("shows other update failures as an error banner", async () => {
    handlers.set("package_list", () => ({ apps: [pkg({ update_available: "1.1.0" })] }));
    handlers.set("update_app", () => {
      throw { code: "unreachable", message: "node unreachable: connection refused" };
    });
    await mount(<App />);
    await click(await byTestId("update-button-hello-web"));
    const banner = await byTestId("error-banner");
    expect(banner.dataset.code).toBe("unreachable");
    expect(banner.textContent).toContain("Updating Hello Web");
    expect(q("update-rollback-hello-web")).toBeNull();
  });

  it("marks installed apps with an update in the marketplace", async () => {
    const app = (id: string, installed: string | null, update_available: boolean) => ({
      id,
      name: id,
      version: "1.1.0",
      description: "",
      category: "x",
      short_description: "",
      has_icon: false,
      dependencies: [],
      installed,
      source: "archipelago",
      upstream: [],
      update_available,
    });
    handlers.set("catalog_list", () => ({
      apps: [app("old", "1.0.0", true), app("current", "1.1.0", false), app("new", null, false)],
      sources: [],
    }));
    route.value = { screen: "node", nodeId: "a", tab: "marketplace" };
    await mount(<App />);
    expect((await byTestId("update-available-badge-old")).textContent).toBe("Update available");
    expect(q("update-available-badge-current")).toBeNull();
    expect(q("update-available-badge-new")).toBeNull();
  });
});

describe("backups", () => {
  it("shows when the last backup was made and warns when it is overdue", async () => {
    handlers.set("package_list", () => ({
      apps: [
        pkg({ last_backup: NOW - 3 * 3600 - 30 }),
        pkg({
          id: "vault",
          name: "Vault",
          last_backup: NOW - 3 * 86_400 - 3600,
          backup_overdue: true,
          settings: { auto_update_hours: 0, backup_schedule: null, backup_max_age_hours: 48 },
        }),
      ],
    }));
    await mount(<App />);
    expect((await byTestId("last-backup-hello-web")).textContent).toBe("Last backup: 3 h ago");
    expect(q("backup-overdue-hello-web")).toBeNull();
    expect(q("last-backup-vault")?.textContent).toBe("Last backup: 3 days ago");
    expect(q("backup-overdue-vault")?.textContent).toBe("⚠ Backup overdue: older than 2 days");
  });

  it("backs up only with a passphrase typed twice, showing the bytes archived", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    let channel: Channel<InstallProgress> | null = null;
    let finish: (b: BackupInfo) => void = () => {};
    handlers.set("backup_app", (a) => {
      channel = a.onProgress as Channel<InstallProgress>;
      return new Promise<BackupInfo>((r) => (finish = r));
    });
    await mount(<App />);
    await click(await byTestId("backup-button-hello-web"));
    await byTestId("backup-dialog");
    expect(document.activeElement).toBe(q("backup-passphrase-input"));
    const confirm = button("confirm-backup-button");
    expect(confirm.disabled).toBe(true);

    await type(input("backup-passphrase-input"), "short");
    await type(input("backup-passphrase-repeat-input"), "short");
    expect(q("passphrase-problem")?.textContent).toBe("Use at least 8 characters.");
    expect(confirm.disabled).toBe(true);
    await type(input("backup-passphrase-input"), "long enough phrase");
    expect(q("passphrase-problem")?.textContent).toBe("The two passphrases differ.");
    expect(confirm.disabled).toBe(true);
    await type(input("backup-passphrase-repeat-input"), "long enough phrase");
    expect(q("passphrase-problem")).toBeNull();
    expect(confirm.disabled).toBe(false);

    await click(confirm);
    expect(callsOf("backup_app")[0]).toMatchObject({
      nodeId: "a",
      appId: "hello-web",
      passphrase: "long enough phrase",
    });
    channel!.onmessage(event("archiving", { bytes_done: 1024 * 1024, bytes_total: 4 * 1024 * 1024 }));
    await settle();
    const bar = q("backup-progress") as HTMLProgressElement;
    expect(bar.getAttribute("value")).toBe("25");
    expect(q("backup-progress-text")?.textContent).toContain("1.0 MiB of 4.0 MiB (25%)");
    expect(button("dialog-close-button").disabled).toBe(true); // not while it runs

    const lists = callsOf("package_list").length;
    finish(backup);
    await waitFor(() => q("backup-done"), "backup done");
    expect(q("backup-done")?.textContent).toContain(NAME);
    expect(input("backup-passphrase-input")).toBeNull();
    expect(document.activeElement).toBe(q("backup-close-button")); // keyboard users land on Close
    await settle();
    expect(callsOf("package_list").length).toBeGreaterThan(lists); // "last backup" read again
    await click(button("backup-close-button"));
    expect(q("backup-dialog")).toBeNull();
  });

  it("lists the node's backups and downloads one with a progress bar", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    let channel: Channel<TransferProgress> | null = null;
    let finish: (path: string) => void = () => {};
    handlers.set("download_backup", (a) => {
      channel = a.onProgress as Channel<TransferProgress>;
      return new Promise<string>((r) => (finish = r));
    });
    await mount(<App />);
    await click(await byTestId("backups-button-hello-web"));
    const row = await byTestId(`backup-row-${NAME}`);
    expect(callsOf("list_backups")).toEqual([{ nodeId: "a", appId: "hello-web" }]);
    expect(row.textContent).toContain("3 h ago");
    expect(row.textContent).toContain("3.0 MiB");

    await click(button(`download-backup-button-${NAME}`));
    expect(callsOf("download_backup")[0]).toMatchObject({ nodeId: "a", name: NAME });
    channel!.onmessage({ done: 768 * 1024, total: 3 * 1024 * 1024 });
    await settle();
    expect(q("download-progress")?.getAttribute("value")).toBe("25");
    expect(q("download-progress-text")?.textContent).toContain("768 KiB of 3.0 MiB (25%)");
    expect(button(`restore-backup-button-${NAME}`).disabled).toBe(true);

    finish(`/home/me/Downloads/Archipelago/${NAME}`);
    const saved = await byTestId("download-saved");
    expect(saved.dataset.path).toBe(`/home/me/Downloads/Archipelago/${NAME}`);
    expect(q("download-progress")).toBeNull();
  });

  it("restores a backup on another node: download, upload, restore, each with progress", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    const path = `/home/me/Downloads/Archipelago/${NAME}`;
    handlers.set("download_backup", (a) => {
      (a.onProgress as Channel<TransferProgress>).onmessage({ done: 10, total: 10 });
      return path;
    });
    let upload: Channel<TransferProgress> | null = null;
    let restore: Channel<InstallProgress> | null = null;
    let finish: (s: PackageStatus) => void = () => {};
    handlers.set("upload_and_restore", (a) => {
      upload = a.onUpload as Channel<TransferProgress>;
      restore = a.onProgress as Channel<InstallProgress>;
      return new Promise<PackageStatus>((r) => (finish = r));
    });
    await mount(<App />);
    await click(await byTestId("backups-button-hello-web"));
    await click(await byTestId(`restore-backup-button-${NAME}`));
    await byTestId("restore-dialog");
    expect(q("backups-dialog")).toBeNull(); // one dialog at a time

    const select = q("restore-target-select") as HTMLSelectElement;
    const options = [...select.options].map((o) => o.value);
    expect(options).toEqual(["a", "b"]); // logged-in nodes, this one first
    expect(select.value).toBe("a");
    select.value = "b";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await settle();
    expect(button("confirm-restore-button").disabled).toBe(true); // no passphrase yet
    await type(input("restore-passphrase-input"), "long enough phrase");
    await click(button("confirm-restore-button"));

    expect(callsOf("download_backup")[0]).toMatchObject({ nodeId: "a", name: NAME });
    expect(callsOf("upload_and_restore")[0]).toMatchObject({
      nodeId: "b",
      localPath: path,
      passphrase: "long enough phrase",
    });
    upload!.onmessage({ done: 5, total: 10 });
    await settle();
    const transfer = q("restore-transfer-progress")!;
    expect(transfer.dataset.stage).toBe("upload");
    expect(transfer.getAttribute("value")).toBe("50");
    restore!.onmessage(event("verifying", { bytes_done: 10, bytes_total: 10 }));
    restore!.onmessage(event("restoring", { message: "putting data back" }));
    await settle();
    expect(q("restore-phase")?.textContent).toBe("Putting the data back");
    expect(q("restore-transfer-progress")).toBeNull();

    finish(pkg());
    const done = await byTestId("restore-done");
    expect(done.textContent).toContain("restored on Node b");
    expect(callsOf("restore_backup")).toHaveLength(0);
    expect(callsOf("node_overview").some((c) => c.nodeId === "b")).toBe(true);
  });

  it("restores on the backup's own node directly, and asks again after a wrong passphrase", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    handlers.set("restore_backup", (a) => {
      if (a.passphrase !== "the right one") {
        throw { code: "bad_passphrase", message: "the passphrase does not open this backup" };
      }
      return pkg();
    });
    await mount(<App />);
    await click(await byTestId("backups-button-hello-web"));
    await click(await byTestId(`restore-backup-button-${NAME}`));
    await type(await byTestId("restore-passphrase-input"), "the wrong one");
    await click(button("confirm-restore-button"));
    const banner = await byTestId("error-banner");
    expect(banner.dataset.code).toBe("bad_passphrase");
    expect(banner.textContent).toContain("Wrong passphrase");
    expect(input("restore-passphrase-input").value).toBe("");

    await type(input("restore-passphrase-input"), "the right one");
    await click(button("confirm-restore-button"));
    await byTestId("restore-done");
    expect(callsOf("restore_backup").at(-1)).toMatchObject({ nodeId: "a", name: NAME, passphrase: "the right one" });
    expect(callsOf("download_backup")).toHaveLength(0);
    expect(callsOf("upload_and_restore")).toHaveLength(0);
  });

  it("deletes a backup only after a second click", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    handlers.set("delete_backup", () => null);
    await mount(<App />);
    await click(await byTestId("backups-button-hello-web"));
    await click(await byTestId(`delete-backup-button-${NAME}`));
    expect(callsOf("delete_backup")).toHaveLength(0);
    expect(document.activeElement?.textContent).toBe("Keep"); // the safe answer first
    await click(button("confirm-delete-backup-button"));
    expect(callsOf("delete_backup")).toEqual([{ nodeId: "a", name: NAME }]);
    await byTestId("backups-empty");
  });
});

describe("the node's backups", () => {
  const VAULT = "vault-2.3.0-20250102T000000Z.archy-backup";
  const vaultBackup: BackupInfo = {
    ...backup,
    name: VAULT,
    app: "vault",
    version: "2.3.0",
    created: NOW - 86_400 - 60,
    bytes: 5 * 1024 * 1024,
    path: `/var/lib/archipelago/backups/${VAULT}`,
  };

  it("lists the backups of every app on the node, installed or not", async () => {
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup, vaultBackup] }));
    await mount(<App />);
    await byTestId("app-row-hello-web");
    await click(button("node-backups-button"));

    const dialog = await byTestId("backups-dialog");
    expect(callsOf("list_backups")).toEqual([{ nodeId: "a", appId: null }]);
    expect(dialog.querySelector("h2")?.textContent).toBe("Backups on Node a");
    const hello = await byTestId(`backup-row-${NAME}`);
    expect(hello.dataset.appId).toBe("hello-web");
    expect(hello.textContent).toContain("hello-web");
    expect(hello.textContent).toContain("1.0.0");
    expect(hello.textContent).toContain("3 h ago");
    const vault = q(`backup-row-${VAULT}`)!;
    expect(vault.dataset.appId).toBe("vault"); // not installed here, listed all the same
    expect(vault.textContent).toContain("vault");
    expect(vault.textContent).toContain("2.3.0");
    expect(vault.textContent).toContain("5.0 MiB");
    for (const name of [NAME, VAULT]) {
      expect(q(`download-backup-button-${name}`)).not.toBeNull();
      expect(q(`restore-backup-button-${name}`)).not.toBeNull();
      expect(q(`delete-backup-button-${name}`)).not.toBeNull();
    }

    await click(button("backups-close-button"));
    expect(q("backups-dialog")).toBeNull();
  });

  it("says so when the node has no backups, even with no app installed", async () => {
    handlers.set("package_list", () => ({ apps: [] }));
    handlers.set("list_backups", () => ({ backups: [] }));
    await mount(<App />);
    await byTestId("dashboard-empty");
    await click(button("node-backups-button"));
    const empty = await byTestId("backups-empty");
    expect(empty.textContent).toContain("Node a has no backups yet");
    expect(callsOf("list_backups")).toEqual([{ nodeId: "a", appId: null }]);
  });

  it("restores an uninstalled app on this node, then shows it on the dashboard", async () => {
    let apps: PackageStatus[] = [];
    handlers.set("package_list", () => ({ apps }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    let channel: Channel<InstallProgress> | null = null;
    let finish: (s: PackageStatus) => void = () => {};
    handlers.set("restore_backup", (a) => {
      channel = a.onProgress as Channel<InstallProgress>;
      return new Promise<PackageStatus>((r) => (finish = r));
    });
    await mount(<App />);
    await byTestId("dashboard-empty");
    await click(button("node-backups-button"));
    await click(await byTestId(`restore-backup-button-${NAME}`));
    const restore = await byTestId("restore-dialog");
    expect(restore.querySelector("h2")?.textContent).toBe("Restore hello-web 1.0.0");

    const select = q("restore-target-select") as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(["a", "b"]); // logged-in nodes, this one first
    expect(select.value).toBe("a");
    await type(input("restore-passphrase-input"), "long enough phrase");
    await click(button("confirm-restore-button"));
    expect(callsOf("restore_backup")).toEqual([
      { nodeId: "a", name: NAME, passphrase: "long enough phrase", onProgress: channel },
    ]);
    channel!.onmessage(event("restoring", { message: "putting data back" }));
    await settle();
    expect(q("restore-phase")?.textContent).toBe("Putting the data back");

    const lists = callsOf("package_list").length;
    apps = [pkg()];
    finish(pkg());
    const done = await byTestId("restore-done");
    expect(done.textContent).toContain("restored on Node a");
    await waitFor(() => callsOf("package_list").length > lists, "the app list read again");
    expect(callsOf("node_overview").some((c) => c.nodeId === "a")).toBe(true);
    expect(callsOf("upload_and_restore")).toHaveLength(0);

    await click(button("restore-close-button")); // back to the node's backups
    await click(await byTestId("backups-close-button"));
    expect(q("backups-dialog")).toBeNull();
    const row = await byTestId("app-row-hello-web");
    expect(row.dataset.health).toBe("healthy");
    expect(q("dashboard-empty")).toBeNull();
  });

  it("shows the node's words when the app is installed where it is restored", async () => {
    const message =
      "hello-web is installed on this node: uninstall it first (without keeping its data) to restore " +
      `${NAME}. Nothing was changed.`;
    handlers.set("package_list", () => ({ apps: [pkg()] }));
    handlers.set("list_backups", () => ({ backups: [backup] }));
    handlers.set("restore_backup", () => {
      throw { code: "already_installed", message };
    });
    await mount(<App />);
    await byTestId("app-row-hello-web");
    await click(button("node-backups-button"));
    await click(await byTestId(`restore-backup-button-${NAME}`));
    await type(await byTestId("restore-passphrase-input"), "long enough phrase");
    const lists = callsOf("package_list").length;
    await click(button("confirm-restore-button"));

    const banner = await byTestId("error-banner");
    expect(banner.dataset.code).toBe("already_installed");
    expect(banner.querySelector("pre")?.textContent).toBe(message);
    expect(q("restore-done")).toBeNull();
    expect(button("confirm-restore-button").disabled).toBe(false); // another node may be picked
    expect(callsOf("package_list").length).toBe(lists);
  });
});

describe("settings", () => {
  it("saves auto-update and the backup age limit, keeping the backup schedule", async () => {
    const schedule = { every_hours: 24, recipient: "age1qyqszqgpqyqszqgpqyqszqgp", keep: 7 };
    const app = pkg({ settings: { auto_update_hours: 0, backup_schedule: schedule, backup_max_age_hours: 0 } });
    handlers.set("package_list", () => ({ apps: [app] }));
    handlers.set("set_app_settings", (a) => pkg({ settings: a.settings as PackageStatus["settings"] }));
    await mount(<App />);
    await click(await byTestId("settings-button-hello-web"));
    await byTestId("settings-dialog");
    expect(q("backup-schedule")?.textContent).toContain("every 24 hours");

    await type(input("auto-update-hours-input"), "1.5");
    expect(button("save-settings-button").disabled).toBe(true);
    await type(input("auto-update-hours-input"), "12");
    await type(input("backup-max-age-input"), "48");
    expect(q("settings-dialog")?.textContent).toContain("older than 2 days");
    await click(button("save-settings-button"));
    expect(callsOf("set_app_settings")).toEqual([
      {
        nodeId: "a",
        appId: "hello-web",
        settings: { auto_update_hours: 12, backup_schedule: schedule, backup_max_age_hours: 48 },
      },
    ]);
    await waitFor(() => q("settings-dialog") === null, "dialog to close");
  });
});
