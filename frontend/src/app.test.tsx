// Component tests: the whole app rendered in happy-dom, with the Tauri
// commands answered by a test double (src/test/tauri.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => import("./test/tauri"));

import { App } from "./app";
import type { InstallProgress } from "./bindings/InstallProgress";
import type { LogEntry } from "./bindings/LogEntry";
import type { NodeEntry } from "./bindings/NodeEntry";
import type { NodeInfoResult } from "./bindings/NodeInfoResult";
import type { NodeOverview } from "./bindings/NodeOverview";
import type { PackageStatus } from "./bindings/PackageStatus";
import { dialog, installJobs, nodes, nodesError, route } from "./store";
import { byTestId, click, mount, q, settle, type, unmount, waitFor } from "./test/dom";
import { type Channel, callsOf, handlers, resetTauri } from "./test/tauri";

const FP = Array.from({ length: 32 }, (_, i) => (i * 5).toString(16).padStart(2, "0")).join(":");
const NOW = Math.floor(Date.now() / 1000);

const entry = (id: string, extra: Partial<NodeEntry> = {}): NodeEntry => ({
  id,
  name: `Node ${id}`,
  address: `node-${id}.local:7443`,
  fingerprint: FP,
  logged_in: true,
  last_seen: NOW - 10,
  ...extra,
});
const info: NodeInfoResult = {
  version: "0.1.0",
  hostname: "node",
  uptime_secs: 7200,
  disk: { total_bytes: 1e12, free_bytes: 4e11 },
  memory: { total_bytes: 8e9, available_bytes: 4e9 },
  cpu: { cores: 4, load: [1, 1, 1] },
  apps_installed: 1,
  apps_running: 1,
  apps_failed: 0,
};
const online = (n: NodeEntry): NodeOverview => ({ node: n, reachable: true, info, error: null });

const pkg = (id: string, extra: Partial<PackageStatus> = {}): PackageStatus => ({
  id,
  name: id === "hello-web" ? "Hello Web" : id,
  version: "1.0.0",
  run: "running",
  health: "healthy",
  containers: [{ name: `${id}_web`, unit: `${id}_web.service`, active_state: "active", sub_state: "running" }],
  ui: { scheme: "http", port: 8088, path: "/" },
  problem: null,
  source: "archipelago",
  update_available: null,
  last_backup: null,
  backup_overdue: false,
  settings: { auto_update_hours: 0, backup_schedule: null, backup_max_age_hours: 0 },
  ...extra,
});

function serveNodes(list: NodeOverview[]): void {
  handlers.set("nodes_list", () => list.map((o) => o.node));
  handlers.set("nodes_overview", () => list);
  handlers.set("node_overview", (a) => list.find((o) => o.node.id === a.nodeId));
}

beforeEach(() => {
  resetTauri();
  nodes.value = null;
  nodesError.value = null;
  route.value = { screen: "nodes" };
  dialog.value = null;
  installJobs.value = {};
});
afterEach(() => unmount());

describe("nodes", () => {
  it("shows the empty state when there is no node", async () => {
    serveNodes([]);
    await mount(<App />);
    const empty = await byTestId("nodes-empty");
    expect(empty.textContent).toContain("No nodes yet — add your first node");
  });

  it("pairs a node: probe, show the fingerprint, pin it only on confirmation, then log in", async () => {
    serveNodes([]);
    handlers.set("node_probe", (a) => ({ address: `${a.address}:7443`, fingerprint: FP }));
    const added = entry("n1", { name: "node.local", address: "node.local:7443", logged_in: false, last_seen: null });
    handlers.set("node_add", () => added);
    handlers.set("node_login", () => ({ ...added, logged_in: true }));
    handlers.set("package_list", () => ({ apps: [] }));
    handlers.set("package_stats", () => ({ containers: [] }));
    await mount(<App />);

    await click(await byTestId("add-node-button"));
    await type(await byTestId("node-address-input"), "node.local");
    await click(await byTestId("probe-button"));
    const fp = await byTestId("fingerprint-text");
    expect(fp.dataset.fingerprint).toBe(FP);
    expect(fp.textContent).toContain("00:05:0a:0f:14:19:1e:23");
    expect(document.activeElement).toBe(fp); // keyboard users land on what to compare
    expect(callsOf("node_add")).toHaveLength(0);

    // A pasted fingerprint that differs blocks the confirmation.
    await type(await byTestId("fingerprint-compare-input"), FP.replace(/^00/, "ff"));
    expect((await byTestId("fingerprint-compare-result")).dataset.match).toBe("false");
    expect((q("confirm-fingerprint-button") as HTMLButtonElement).disabled).toBe(true);
    await type(await byTestId("fingerprint-compare-input"), FP.toUpperCase());
    expect((await byTestId("fingerprint-compare-result")).dataset.match).toBe("true");

    await click(await byTestId("confirm-fingerprint-button"));
    expect(callsOf("node_add")).toEqual([{ address: "node.local:7443", fingerprint: FP, name: null }]);

    const pw = (await byTestId("password-input")) as HTMLInputElement;
    await settle();
    expect(document.activeElement).toBe(pw);
    await type(pw, "hunter2");
    await click(await byTestId("login-button"));
    expect(callsOf("node_login")).toEqual([{ nodeId: "n1", password: "hunter2" }]);
    await waitFor(() => q("add-node-dialog") === null, "dialog to close");
    expect(route.value).toEqual({ screen: "node", nodeId: "n1", tab: "dashboard" });
    expect(q("password-input")).toBeNull();
  });

  it("shows the node's error when probing fails, with what to do", async () => {
    serveNodes([]);
    handlers.set("node_probe", () => {
      throw { code: "unreachable", message: "node unreachable: connection refused" };
    });
    await mount(<App />);
    await click(await byTestId("add-node-button"));
    await type(await byTestId("node-address-input"), "10.0.0.9");
    await click(await byTestId("probe-button"));
    const banner = await byTestId("error-banner");
    expect(banner.textContent).toContain("node unreachable: connection refused");
    expect(banner.textContent).toContain("Check that the node is switched on");
  });

  it("refuses loudly when node_add finds a different certificate", async () => {
    serveNodes([]);
    handlers.set("node_probe", (a) => ({ address: String(a.address), fingerprint: FP }));
    handlers.set("node_add", () => {
      throw { code: "fingerprint_mismatch", message: "the certificate changed since the probe" };
    });
    await mount(<App />);
    await click(await byTestId("add-node-button"));
    await type(await byTestId("node-address-input"), "node.local:7443");
    await click(await byTestId("probe-button"));
    await click(await byTestId("confirm-fingerprint-button"));
    const warning = await byTestId("fingerprint-mismatch-warning");
    expect(warning.textContent).toContain("identity has changed");
    expect(warning.textContent).toContain("archipelagod pairing");
    expect(q("password-input")).toBeNull();
  });

  it("shows every node at a glance, unreachable and refused ones included", async () => {
    const list = [
      online(entry("a")),
      {
        node: entry("b", { last_seen: NOW - 180 }),
        reachable: false,
        info: null,
        error: { code: "unreachable", message: "connection refused" },
      },
      { node: entry("c"), reachable: true, info: null, error: { code: "fingerprint_mismatch", message: "changed" } },
      {
        node: entry("d", { logged_in: false }),
        reachable: true,
        info: null,
        error: { code: "not_logged_in", message: "log in" },
      },
    ];
    serveNodes(list);
    await mount(<App />);
    await waitFor(() => q("node-card-a")?.dataset.status === "online", "overviews");
    expect(q("node-version-a")?.textContent).toBe("0.1.0");
    expect(q("node-status-line-b")?.textContent).toBe("unreachable: last seen 3 min ago");
    expect(q("node-card-c")?.querySelector('[data-testid="fingerprint-mismatch-warning"]')).not.toBeNull();
    expect(q("login-open-button-d")).not.toBeNull();
    expect(q("nodes-summary")?.textContent).toContain("4 nodes");
  });

  it("tells when an unreachable node was last seen, once, with a retry", async () => {
    const n = entry("b", { last_seen: NOW - 180 });
    serveNodes([
      { node: n, reachable: false, info: null, error: { code: "unreachable", message: "connection refused" } },
    ]);
    route.value = { screen: "node", nodeId: "b", tab: "dashboard" };
    await mount(<App />);
    await waitFor(() => document.querySelectorAll('[data-testid="error-banner"]').length === 1, "one banner");
    const banner = q("error-banner")!;
    expect(banner.textContent).toContain("unreachable: last seen 3 min ago (connection refused)");
    expect(callsOf("package_list")).toHaveLength(0);
    const retry = [...banner.querySelectorAll("button")].find((b) => b.textContent === "Try again")!;
    await click(retry);
    expect(callsOf("node_overview")).toEqual([{ nodeId: "b" }]);
  });

  it("renders 50 nodes", async () => {
    serveNodes(Array.from({ length: 50 }, (_, i) => online(entry(`n${i}`))));
    await mount(<App />);
    await waitFor(() => q("node-card-n49")?.dataset.status === "online", "50 cards");
    expect(document.querySelectorAll(".node-card")).toHaveLength(50);
    expect(callsOf("nodes_overview")).toHaveLength(1);
  });

  it("removes a node only after confirmation", async () => {
    serveNodes([online(entry("a"))]);
    handlers.set("node_remove", () => null);
    await mount(<App />);
    await click(await byTestId("remove-node-button-a"));
    expect(callsOf("node_remove")).toHaveLength(0);
    await click(await byTestId("confirm-remove-node-button"));
    expect(callsOf("node_remove")).toEqual([{ nodeId: "a" }]);
    await waitFor(() => q("node-card-a") === null, "card to go");
  });
});

describe("marketplace", () => {
  it("installs with a progress bar fed by the channel, then shows it installed", async () => {
    serveNodes([online(entry("a"))]);
    handlers.set("catalog_list", () => ({
      apps: [
        {
          id: "hello-web",
          name: "Hello Web",
          version: "1.0.0",
          description: "A page",
          category: "developer",
          short_description: "A page",
          has_icon: true,
          dependencies: [],
          installed: null,
          source: "archipelago",
          upstream: [],
          update_available: false,
        },
      ],
      sources: [{ name: "archipelago", location: "/x", key_id: "00", official: true, apps: 1, error: null }],
    }));
    handlers.set("catalog_icon", () => ({ media_type: "image/png", data_base64: "iVBORw0KGgo=" }));
    let channel: Channel<InstallProgress> | null = null;
    let finish: (s: PackageStatus) => void = () => {};
    handlers.set("package_install", (a) => {
      channel = a.onProgress as Channel<InstallProgress>;
      return new Promise<PackageStatus>((r) => (finish = r));
    });
    route.value = { screen: "node", nodeId: "a", tab: "marketplace" };
    await mount(<App />);

    const card = await byTestId("app-card-hello-web");
    await waitFor(() => card.querySelector("img.app-icon"), "icon");
    expect(card.querySelector("img")?.getAttribute("src")).toBe("data:image/png;base64,iVBORw0KGgo=");
    expect(q("source-badge-hello-web")?.textContent).toBe("archipelago");

    await click(await byTestId("install-button-hello-web"));
    expect(callsOf("package_install")[0]).toMatchObject({ nodeId: "a", appId: "hello-web" });
    const bar = (await byTestId("install-progress")) as HTMLProgressElement;
    expect(q("install-phase")?.dataset.phase).toBe("waiting");

    const send = async (p: Partial<InstallProgress>) => {
      channel!.onmessage({
        id: "hello-web",
        images_done: 0,
        images_total: 2,
        blobs_seen: 0,
        message: "",
        phase: "pulling",
        bytes_done: 0,
        bytes_total: 0,
        ...p,
      });
      await settle();
    };
    await send({ phase: "pulling", blobs_seen: 3 });
    expect(q("install-phase")?.textContent).toBe("Downloading");
    expect(q("install-progress-box")?.textContent).toContain("image 1 of 2 · 3 layers seen");
    const pulling = Number(bar.getAttribute("value"));
    await send({ phase: "pulling", images_done: 1 });
    expect(Number(bar.getAttribute("value"))).toBeGreaterThan(pulling);
    await send({ phase: "starting", images_done: 2, message: "starting hello-web_web" });
    expect(q("install-phase")?.textContent).toBe("Starting");
    await send({ phase: "healthy", images_done: 2 });

    const before = callsOf("catalog_list").length;
    finish(pkg("hello-web"));
    await settle();
    expect(q("install-phase")?.dataset.phase).toBe("done");
    expect(bar.getAttribute("value")).toBe("100");
    expect(q("installed-badge-hello-web")).not.toBeNull();
    expect(q("manage-button-hello-web")).not.toBeNull();
    // What is installed changed: the catalog is read again.
    expect(callsOf("catalog_list").length).toBeGreaterThan(before);
  });

  it("shows the daemon's words when an install fails", async () => {
    serveNodes([online(entry("a"))]);
    handlers.set("catalog_list", () => ({
      apps: [
        {
          id: "bad",
          name: "Bad",
          version: "1",
          description: "",
          category: "x",
          short_description: "",
          has_icon: false,
          dependencies: [],
          installed: null,
          source: "lab",
          upstream: [],
          update_available: false,
        },
      ],
      sources: [{ name: "lab", location: "/y", key_id: "01", official: false, apps: 1, error: null }],
    }));
    handlers.set("package_install", () => {
      throw { code: "install_failed", message: "install failed: container bad_web exited (last log lines: boom)" };
    });
    route.value = { screen: "node", nodeId: "a", tab: "marketplace" };
    await mount(<App />);
    expect((await byTestId("source-badge-bad")).textContent).toBe("community: lab");
    await click(await byTestId("install-button-bad"));
    const banner = await byTestId("error-banner");
    expect(banner.textContent).toContain("container bad_web exited (last log lines: boom)");
    expect(banner.textContent).toContain("Everything the install did was undone");
    expect(q("install-phase")?.dataset.phase).toBe("failed");
  });

  it("filters by search and category", async () => {
    serveNodes([online(entry("a"))]);
    const app = (id: string, category: string) => ({
      id,
      name: id,
      version: "1",
      description: "",
      category,
      short_description: "",
      has_icon: false,
      dependencies: [],
      installed: null,
      source: "archipelago",
      upstream: [],
      update_available: false,
    });
    handlers.set("catalog_list", () => ({
      apps: [app("lnd", "lightning"), app("bitcoin-core", "bitcoin"), app("electrumx", "bitcoin")],
      sources: [],
    }));
    route.value = { screen: "node", nodeId: "a", tab: "marketplace" };
    await mount(<App />);
    await byTestId("app-card-lnd");
    await click(await byTestId("category-chip-bitcoin"));
    expect(q("app-card-lnd")).toBeNull();
    expect(q("app-card-electrumx")).not.toBeNull();
    await type(await byTestId("marketplace-search"), "core");
    await settle();
    expect(q("app-card-electrumx")).toBeNull();
    expect(q("app-card-bitcoin-core")).not.toBeNull();
  });
});

describe("dashboard", () => {
  beforeEach(() => {
    serveNodes([online(entry("a"))]);
    route.value = { screen: "node", nodeId: "a", tab: "dashboard" };
    handlers.set("package_stats", () => ({
      containers: [{ container: "web", cpu_percent: 2.5, memory_bytes: 50 * 1024 * 1024, memory_limit_bytes: 0 }],
    }));
  });

  it("lists apps with health in words, the UI address, CPU and memory", async () => {
    handlers.set("package_list", () => ({
      apps: [pkg("hello-web"), pkg("broken", { health: "failed", problem: "container broken_web exited", ui: null })],
    }));
    await mount(<App />);
    const health = await byTestId("app-health-hello-web");
    expect(health.textContent).toContain("Healthy");
    expect(q("app-health-broken")?.textContent).toContain("Failed");
    expect(q("app-problem-broken")?.textContent).toBe("container broken_web exited");
    expect(q("ui-url-hello-web")?.getAttribute("href")).toBe("http://node-a.local:8088/");
    expect(q("open-ui-broken")).toBeNull();
    await waitFor(() => q("app-stats-hello-web")?.textContent?.includes("CPU 2.5%"), "stats");
    expect(q("app-stats-hello-web")?.textContent).toContain("50 MiB");
  });

  it("opens the UI through the desktop side, never by navigating the window", async () => {
    handlers.set("package_list", () => ({ apps: [pkg("hello-web")] }));
    handlers.set("package_open_ui", () => "http://node-a.local:8088/");
    await mount(<App />);
    await click(await byTestId("open-ui-hello-web"));
    await click(await byTestId("ui-url-hello-web"));
    expect(callsOf("package_open_ui")).toEqual([
      { nodeId: "a", appId: "hello-web" },
      { nodeId: "a", appId: "hello-web" },
    ]);
  });

  it("stops and starts an app", async () => {
    handlers.set("package_list", () => ({ apps: [pkg("hello-web")] }));
    handlers.set("package_stop", () => pkg("hello-web", { run: "stopped", health: "stopped" }));
    handlers.set("package_start", () => pkg("hello-web"));
    await mount(<App />);
    await click(await byTestId("stop-button-hello-web"));
    expect((await byTestId("app-health-hello-web")).textContent).toContain("Stopped");
    await click(await byTestId("start-button-hello-web"));
    expect((await byTestId("app-health-hello-web")).textContent).toContain("Healthy");
    expect(callsOf("package_stop")).toEqual([{ nodeId: "a", appId: "hello-web" }]);
  });

  it("asks before uninstalling and whether to keep the data", async () => {
    handlers.set("package_list", () => ({ apps: [pkg("hello-web")] }));
    handlers.set("package_uninstall", (a) => {
      (a.onProgress as Channel<InstallProgress>).onmessage({
        id: "hello-web",
        phase: "removing",
        images_done: 0,
        images_total: 0,
        blobs_seen: 0,
        message: "removing units",
        bytes_done: 0,
        bytes_total: 0,
      });
      return { id: "hello-web", kept_data: a.keepData, removed: ["unit hello-web_web.container"] };
    });
    await mount(<App />);
    await click(await byTestId("uninstall-button-hello-web"));
    expect(callsOf("package_uninstall")).toHaveLength(0);
    await click(await byTestId("keep-data-checkbox"));
    await click(await byTestId("confirm-uninstall-button"));
    expect(callsOf("package_uninstall")[0]).toMatchObject({ nodeId: "a", appId: "hello-web", keepData: true });
    expect((await byTestId("uninstall-done")).textContent).toContain("its data was kept");
    expect(q("app-row-hello-web")).toBeNull();
  });

  it("shows logs, follows new lines and stops following when closed", async () => {
    handlers.set("package_list", () => ({ apps: [pkg("hello-web")] }));
    handlers.set("package_logs", () => ({ lines: [{ container: "web", stream: "stdout", text: "old line" }] }));
    let onLine: Channel<LogEntry> | null = null;
    handlers.set("package_logs_follow", (a) => {
      onLine = a.onLine as Channel<LogEntry>;
      return "follow-7";
    });
    handlers.set("package_logs_stop", () => null);
    await mount(<App />);
    await click(await byTestId("logs-button-hello-web"));
    const view = await byTestId("logs-view");
    await waitFor(() => view.textContent?.includes("old line"), "history");
    await waitFor(() => q("logs-live")?.textContent?.includes("Following"), "follow");
    expect(callsOf("package_logs")[0]).toMatchObject({ appId: "hello-web", lines: 200 });
    onLine!.onmessage({ container: "web", stream: "stderr", text: "new line" });
    await settle();
    expect(view.textContent).toContain("new line");
    await click(await byTestId("logs-close-button"));
    expect(callsOf("package_logs_stop")).toEqual([{ followId: "follow-7" }]);
    expect(q("logs-view")).toBeNull();
  });

  it("asks to log in when the session has ended", async () => {
    handlers.set("package_list", () => {
      throw { code: "unauthenticated", message: "session expired" };
    });
    await mount(<App />);
    const banner = await byTestId("error-banner");
    expect(banner.textContent).toContain("Your session on this node has ended");
    const login = [...banner.querySelectorAll("button")].find((b) => b.textContent === "Log in");
    expect(login).toBeDefined();
    await click(login!);
    expect(dialog.value).toEqual({ kind: "login", nodeId: "a" });
    await byTestId("password-input");
  });
});
