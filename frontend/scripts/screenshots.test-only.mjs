// TEST-ONLY: screenshots of the built frontend in headless Chromium at
// 1280×800, with the Tauri IPC replaced by a scripted fake injected into the
// page before it loads (window.__TAURI_INTERNALS__). Nothing here is part of
// the product build: the fake exists only inside this script's browser.
//
//   npm run build && npm run screenshots        # PNGs in scripts/screenshots/
//
// Needs Debian's chromium (/usr/bin/chromium) and the devDependency
// playwright-core. The real app in its real window is tested by the e2e suite.

import { createServer } from "node:http";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, "..");
const repo = resolve(frontend, "..");
const dist = join(frontend, "dist");
const out = join(here, "screenshots");
mkdirSync(out, { recursive: true });

if (!existsSync(join(dist, "index.html"))) {
  console.error("run `npm run build` first");
  process.exit(1);
}

// ------------------------------------------------------------ fixtures

const now = Math.floor(Date.now() / 1000);
const GiB = 1024 ** 3;
const catalogJson = JSON.parse(readFileSync(join(repo, "catalog/catalog.json"), "utf8"));
const icons = {};
for (const a of catalogJson.apps) {
  const p = join(repo, a.icon ?? "");
  if (a.icon && existsSync(p)) icons[a.id] = readFileSync(p).toString("base64");
}
const fp = (seed) =>
  Array.from({ length: 32 }, (_, i) => ((i * 37 + seed * 11) % 256).toString(16).padStart(2, "0")).join(":");

function info(i) {
  return {
    version: i % 7 === 0 ? "0.1.0" : "0.1.1",
    hostname: `node-${i}`,
    uptime_secs: 3600 * (5 + i * 7),
    disk: { total_bytes: 2000 * GiB, free_bytes: (2000 - ((i * 97) % 1900)) * GiB },
    memory: { total_bytes: 16 * GiB, available_bytes: (4 + (i % 10)) * GiB },
    cpu: { cores: 4, load: [((i * 13) % 40) / 10, 0.8, 0.6] },
    apps_installed: 3 + (i % 4),
    apps_running: 3 + (i % 4) - (i === 4 ? 1 : 0),
    apps_failed: i === 4 ? 1 : 0,
  };
}

const names = ["Home node", "Office", "Cabin", "Parents", "Backup", "Lab"];
function makeNodes(n) {
  const list = [];
  for (let i = 1; i <= n; i++) {
    const node = {
      id: `n${i}`,
      name: i <= names.length ? names[i - 1] : `Node ${i}`,
      address: i === 1 ? "node.local:7443" : `192.168.1.${10 + i}:7443`,
      fingerprint: fp(i),
      logged_in: !(i === 3 || i === 9),
      last_seen: now - (i === 2 ? 180 : 20),
    };
    let o;
    if (i === 2 || i === 17) {
      o = {
        node,
        reachable: false,
        info: null,
        error: { code: "unreachable", message: "node unreachable: connection refused" },
      };
    } else if (i === 3 || i === 9) {
      o = { node, reachable: true, info: null, error: { code: "not_logged_in", message: "log in to this node first" } };
    } else if (i === 6) {
      o = {
        node,
        reachable: true,
        info: null,
        error: {
          code: "fingerprint_mismatch",
          message: `the node at ${node.address} presented certificate ${fp(99)}, not the pinned ${node.fingerprint}`,
        },
      };
    } else {
      o = { node, reachable: true, info: info(i), error: null };
    }
    list.push(o);
  }
  return list;
}

const catalog = {
  apps: catalogJson.apps.map((a, i) => ({
    id: a.id,
    name: a.name,
    version: a.version,
    description: a.description,
    category: a.category,
    short_description: a.short_description,
    has_icon: Boolean(icons[a.id]),
    dependencies: a.dependencies ?? [],
    installed: ["bitcoin-core", "electrumx", "mempool", "filebrowser"].includes(a.id) ? a.version : null,
    source: i === 5 ? "community-lab" : "archipelago",
    upstream: a.upstream ?? [],
    update_available: a.id === "mempool",
  })),
  sources: [
    {
      name: "archipelago",
      location: "/usr/share/archipelago/catalog",
      key_id: "0123456789abcdef",
      official: true,
      apps: 9,
      error: null,
    },
    {
      name: "community-lab",
      location: "https://lab.example/catalog",
      key_id: "fedcba9876543210",
      official: false,
      apps: 1,
      error: null,
    },
  ],
};

const container = (app, c, state) => ({
  name: `${app}_${c}`,
  unit: `${app}_${c}.service`,
  active_state: state,
  sub_state: state === "active" ? "running" : "dead",
});
const settings = (backup_max_age_hours = 0) => ({ auto_update_hours: 0, backup_schedule: null, backup_max_age_hours });
const packages = [
  {
    id: "bitcoin-core",
    name: "Bitcoin Core",
    version: "25.0",
    run: "running",
    health: "healthy",
    containers: [container("bitcoin-core", "bitcoind", "active")],
    ui: null,
    problem: null,
    source: "archipelago",
    update_available: null,
    last_backup: now - 4 * 86_400,
    backup_overdue: true,
    settings: settings(72),
  },
  {
    id: "electrumx",
    name: "ElectrumX",
    version: "1.16.0",
    run: "running",
    health: "starting",
    containers: [container("electrumx", "server", "activating")],
    ui: null,
    problem: null,
    source: "archipelago",
    update_available: null,
    last_backup: now - 5 * 3600,
    backup_overdue: false,
    settings: settings(),
  },
  {
    id: "mempool",
    name: "Mempool",
    version: "2.5.0",
    run: "running",
    health: "failed",
    containers: [
      container("mempool", "web", "active"),
      container("mempool", "api", "failed"),
      container("mempool", "db", "active"),
    ],
    ui: { scheme: "http", port: 8080, path: "/" },
    problem:
      "container mempool_api exited with status 1: could not connect to bitcoind RPC (last log: ECONNREFUSED 10.89.0.2:8332)",
    source: "archipelago",
    update_available: "2.6.0",
    last_backup: null,
    backup_overdue: false,
    settings: settings(),
  },
  {
    id: "filebrowser",
    name: "File Browser",
    version: "2.27.0",
    run: "stopped",
    health: "stopped",
    containers: [container("filebrowser", "app", "inactive")],
    ui: { scheme: "http", port: 8081, path: "/files" },
    problem: null,
    source: "archipelago",
    update_available: null,
    last_backup: now - 26 * 3600,
    backup_overdue: false,
    settings: settings(48),
  },
  {
    id: "hello-web",
    name: "Hello Web",
    version: "1.0.0",
    run: "running",
    health: "healthy",
    containers: [container("hello-web", "web", "active")],
    ui: { scheme: "http", port: 8088, path: "/" },
    problem: null,
    source: "archipelago",
    update_available: "1.1.0",
    last_backup: now - 3 * 3600,
    backup_overdue: false,
    settings: settings(24),
  },
];

const logLines = [];
for (let i = 0; i < 60; i++) {
  logLines.push({
    container: i % 3 === 0 ? "api" : "web",
    stream: i % 11 === 5 ? "stderr" : "stdout",
    text: `2026-11-27T18:${String(i).padStart(2, "0")}:12Z ${i % 11 === 5 ? "WARN slow response from bitcoind (2.3 s)" : `GET /api/v1/blocks/tip/height 200 ${3 + (i % 7)} ms`}`,
  });
}

const backupName = (app, version, hoursAgo) => {
  const t = new Date((now - hoursAgo * 3600) * 1000)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return { name: `${app}-${version}-${t}.archy-backup`, created: now - hoursAgo * 3600 };
};
const backups = [3, 27, 75].map((h, i) => {
  const { name, created } = backupName("hello-web", "1.0.0", h);
  return {
    name,
    app: "hello-web",
    version: "1.0.0",
    created,
    bytes: (48 - i * 3) * 1024 * 1024,
    path: `/var/lib/archipelago/backups/${name}`,
    sha256: "ab".repeat(32),
  };
});
// An app that is no longer installed: only the node's list of all backups shows it.
{
  const { name, created } = backupName("nextcloud", "29.0.4", 120);
  backups.push({
    name,
    app: "nextcloud",
    version: "29.0.4",
    created,
    bytes: 612 * 1024 * 1024,
    path: `/var/lib/archipelago/backups/${name}`,
    sha256: "cd".repeat(32),
  });
}

const fixtures = { nodes: makeNodes(50), catalog, icons, packages, logLines, backups, probeFingerprint: fp(1) };

// ------------------------------------------------------------ the fake IPC (runs in the page)

function installFake(fx) {
  const callbacks = new Map();
  let nextId = 1;
  const channelIndex = new Map();
  const send = (ch, message) => {
    const cb = callbacks.get(ch.id);
    const i = channelIndex.get(ch.id) ?? 0;
    channelIndex.set(ch.id, i + 1);
    if (cb) cb({ index: i, message });
  };
  const pendingInstalls = new Map();
  const err = (code, message) => Promise.reject({ code, message });
  window.__fake = {
    nodes: fx.nodes,
    /**
     * Sends the next scripted progress event of an operation (`{ send }` for a
     * message that is not an install progress), resolving it after the last.
     */
    advance(appId) {
      const job = pendingInstalls.get(appId);
      if (!job) return false;
      const step = job.steps.shift();
      if (step === undefined) return false;
      if (step.send) send(job.channel, step.send);
      else if (step.fail) {
        pendingInstalls.delete(appId);
        job.reject(step.fail);
      } else if (step.done) {
        pendingInstalls.delete(appId);
        job.resolve(step.done);
      } else send(job.channel, step);
      return true;
    },
  };
  const progress = (
    id,
    phase,
    images_done,
    images_total,
    blobs_seen,
    message,
    image,
    bytes_done = 0,
    bytes_total = 0,
  ) => ({
    id,
    phase,
    images_done,
    images_total,
    blobs_seen,
    message,
    bytes_done,
    bytes_total,
    ...(image ? { image } : {}),
  });
  /** An operation whose progress the script plays step by step with `advance(key)`. */
  const scripted = (key, channel, steps) =>
    new Promise((resolve, reject) => pendingInstalls.set(key, { channel, steps, resolve, reject }));
  const MiB = 1024 * 1024;
  window.__TAURI_INTERNALS__ = {
    transformCallback(cb) {
      const id = nextId++;
      callbacks.set(id, cb);
      return id;
    },
    unregisterCallback(id) {
      callbacks.delete(id);
    },
    invoke(cmd, args) {
      const a = args ?? {};
      switch (cmd) {
        case "nodes_list":
          return Promise.resolve(window.__fake.nodes.map((o) => o.node));
        case "nodes_overview":
          return new Promise((r) => setTimeout(() => r(window.__fake.nodes), 150));
        case "node_overview":
          return Promise.resolve(window.__fake.nodes.find((o) => o.node.id === a.nodeId));
        case "node_probe":
          return new Promise((r) =>
            setTimeout(
              () =>
                r({
                  address: a.address.includes(":") ? a.address : `${a.address}:7443`,
                  fingerprint: fx.probeFingerprint,
                }),
              100,
            ),
          );
        case "node_add":
          return Promise.resolve({
            id: "new",
            name: a.name ?? a.address,
            address: a.address,
            fingerprint: a.fingerprint,
            logged_in: false,
            last_seen: null,
          });
        case "node_login":
          return a.password === "wrong"
            ? err("login_failed", "wrong password")
            : Promise.resolve({ ...window.__fake.nodes[0].node, id: a.nodeId, logged_in: true });
        case "catalog_list":
          return Promise.resolve(fx.catalog);
        case "catalog_icon":
          return fx.icons[a.appId]
            ? Promise.resolve({ media_type: "image/png", data_base64: fx.icons[a.appId] })
            : err("not_in_catalog", "no icon");
        case "package_list":
          return Promise.resolve({ apps: fx.packages });
        case "package_stats":
          return Promise.resolve({
            containers: [
              {
                container: "main",
                cpu_percent: a.appId === "bitcoin-core" ? 37.5 : 1.2,
                memory_bytes: a.appId === "bitcoin-core" ? 2.4 * 1024 ** 3 : 180 * 1024 ** 2,
                memory_limit_bytes: a.appId === "bitcoin-core" ? 4 * 1024 ** 3 : 512 * 1024 ** 2,
              },
            ],
          });
        case "package_logs":
          return Promise.resolve({ lines: fx.logLines });
        case "package_logs_follow":
          setTimeout(
            () =>
              send(a.onLine, {
                container: "web",
                stream: "stdout",
                text: "2026-11-27T18:59:59Z GET / 200 2 ms (followed)",
              }),
            200,
          );
          return Promise.resolve("follow-1");
        case "package_logs_stop":
          return Promise.resolve(null);
        case "package_install": {
          const id = a.appId;
          const failing = id === "lnd";
          const steps = [
            progress(id, "validating", 0, 2, 0, "checking the manifest"),
            progress(id, "pulling", 0, 2, 3, "Copying blob 3f1e…", `registry.local/${id}:latest`),
            progress(id, "pulling", 1, 2, 2, "Copying blob 9ab0…", `registry.local/${id}-db:16`),
            progress(id, "pulling", 1, 2, 5, "Copying blob 77c2…", `registry.local/${id}-db:16`),
            progress(id, "pulling", 2, 2, 6, "image pulled"),
            progress(id, "starting", 2, 2, 6, `starting ${id}_web`),
          ];
          if (failing) {
            steps.push(progress(id, "rolling_back", 2, 2, 6, "undoing the install"));
            steps.push({
              fail: {
                code: "install_failed",
                message: `install failed: container ${id}_lnd exited with status 1 (last log lines:\n  [ERR] unable to connect to bitcoind: dial tcp 10.89.0.2:8332: connection refused\n  [INF] shutdown complete)`,
              },
            });
          } else {
            steps.push(progress(id, "healthy", 2, 2, 6, `${id} is healthy`));
            steps.push(progress(id, "done", 2, 2, 6, "installed"));
            steps.push({
              done: {
                id,
                name: id,
                version: "1.0.0",
                run: "running",
                health: "healthy",
                containers: [],
                ui: null,
                problem: null,
              },
            });
          }
          return new Promise((resolve, reject) =>
            pendingInstalls.set(id, { channel: a.onProgress, steps, resolve, reject }),
          );
        }
        case "package_uninstall":
          return Promise.resolve({ id: a.appId, kept_data: a.keepData, removed: [`unit ${a.appId}_web.container`] });
        case "package_open_ui":
          return Promise.resolve("http://node.local:8080/");
        case "update_app": {
          const id = a.appId;
          const app = fx.packages.find((x) => x.id === id);
          const steps = [
            progress(id, "pulling", 0, 1, 4, "Copying blob 5d2a…", `registry.local/${id}:${app.update_available}`),
            progress(id, "pulling", 1, 1, 7, "image pulled"),
            progress(id, "snapshotting", 1, 1, 7, "copying the data aside", undefined, 210 * MiB, 512 * MiB),
          ];
          if (id === "hello-web") {
            steps.push(progress(id, "switching", 1, 1, 7, "new units"));
            steps.push(progress(id, "starting", 1, 1, 7, `starting ${id}_web`));
            steps.push(progress(id, "rolling_back", 1, 1, 7, `putting ${app.version} back`));
            steps.push({
              fail: {
                code: "update_rolled_back",
                message: `update of ${id} to ${app.update_available} rolled back: container ${id}_web exited with status 2 after 4 s\nlast log lines of ${id}_web:\n  2026-11-27T18:40:02Z INFO  hello-web ${app.update_available} starting\n  2026-11-27T18:40:02Z ERROR config: unknown key \"listen_addr\" (renamed to \"listen\" in ${app.update_available})\n  2026-11-27T18:40:02Z ERROR exiting\n${app.version} was restored (units, images, data) and is healthy again`,
              },
            });
          } else {
            steps.push({
              done: {
                status: { ...app, version: app.update_available, update_available: null },
                from_version: app.version,
                to_version: app.update_available,
                data_snapshot: true,
              },
            });
          }
          return scripted(`update:${id}`, a.onProgress, steps);
        }
        case "backup_app":
          return scripted(`backup:${a.appId}`, a.onProgress, [
            progress(
              a.appId,
              "archiving",
              0,
              0,
              0,
              "archiving volume systemd-hello-web_data",
              undefined,
              19 * MiB,
              48 * MiB,
            ),
            { done: fx.backups[0] },
          ]);
        case "list_backups":
          return Promise.resolve({ backups: fx.backups.filter((b) => a.appId === null || b.app === a.appId) });
        case "download_backup":
          return scripted(`download`, a.onProgress, [
            { send: { done: 30 * MiB, total: 48 * MiB } },
            { done: `/home/me/Downloads/Archipelago/${a.name}` },
          ]);
        case "upload_and_restore":
          send(a.onUpload, { done: 48 * MiB, total: 48 * MiB });
          return scripted(`restore`, a.onProgress, [
            progress("hello-web", "verifying", 0, 0, 0, "checking the archive", undefined, 48 * MiB, 48 * MiB),
            progress("hello-web", "pulling", 0, 1, 3, "Copying blob 3f1e…", "registry.local/hello-web:1.0.0"),
            progress(
              "hello-web",
              "restoring",
              1,
              1,
              3,
              "putting volume systemd-hello-web_data back",
              undefined,
              31 * MiB,
              96 * MiB,
            ),
            { done: fx.packages.find((x) => x.id === "hello-web") },
          ]);
        case "set_app_settings":
          return Promise.resolve({ ...fx.packages.find((x) => x.id === a.appId), settings: a.settings });
        default:
          return err("internal", `fake: no ${cmd}`);
      }
    },
  };
}

// ------------------------------------------------------------ serve + drive

const types = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};
const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  if (path === "/favicon.ico") {
    res.writeHead(204).end();
    return;
  }
  const file = join(dist, path === "/" ? "index.html" : path);
  if (!file.startsWith(dist) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  // The same CSP as the app's window (no inline scripts).
  res.writeHead(200, {
    "content-type": types[extname(file)] ?? "application/octet-stream",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
  });
  res.end(readFileSync(file));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const problems = [];
async function page(scheme, fx = fixtures) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: scheme });
  const p = await context.newPage();
  p.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  p.on("pageerror", (e) => problems.push(String(e)));
  await p.addInitScript(installFake, fx);
  await p.goto(url);
  await p.waitForSelector('[data-testid="nav-nodes"]');
  return p;
}
const shot = async (p, name) => {
  await p.waitForTimeout(250);
  await p.screenshot({ path: join(out, `${name}.png`) });
  console.log(`screenshot ${name}.png`);
};
const tid = (id) => `[data-testid="${id}"]`;

for (const scheme of ["light", "dark"]) {
  const p = await page(scheme);
  await p.waitForSelector(tid("node-card-n1") + '[data-status="online"]');
  await shot(p, `${scheme}-nodes-50`);
  if (scheme === "dark") continue;

  await p.click(tid("add-node-button"));
  await p.fill(tid("node-address-input"), "node.local");
  await p.click(tid("probe-button"));
  await p.waitForSelector(tid("fingerprint-text"));
  await shot(p, "add-node-fingerprint");
  await p.fill(tid("fingerprint-compare-input"), fp(2));
  await shot(p, "add-node-fingerprint-differs");
  await p.keyboard.press("Escape");

  await p.click(tid("open-node-n1"));
  await p.waitForSelector(tid("app-row-bitcoin-core"));
  await shot(p, "dashboard");
  // The window's minimum size (tauri.conf.json: 1024×640).
  await p.setViewportSize({ width: 1024, height: 640 });
  await shot(p, "dashboard-1024");
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.click(tid("logs-button-mempool"));
  await p.waitForSelector(tid("logs-view"));
  await shot(p, "logs");
  await p.click(tid("logs-close-button"));
  await p.click(tid("uninstall-button-filebrowser"));
  await shot(p, "uninstall-dialog");
  await p.keyboard.press("Escape");

  // Updates: one in progress, one rolled back.
  await p.click(tid("update-button-mempool"));
  for (let i = 0; i < 3; i++) await p.evaluate(() => window.__fake.advance("update:mempool"));
  await p.click(tid("update-button-hello-web"));
  for (let i = 0; i < 7; i++) await p.evaluate(() => window.__fake.advance("update:hello-web"));
  await p.waitForSelector(tid("update-rollback-hello-web"));
  await p.locator(tid("app-row-mempool")).scrollIntoViewIfNeeded();
  await shot(p, "update-progress");
  await p.locator(tid("update-rollback-hello-web")).scrollIntoViewIfNeeded();
  await shot(p, "update-rolled-back");

  // Backups: back up now, the list, download, restore to another node, settings.
  await p.click(tid("backup-button-hello-web"));
  await p.fill(tid("backup-passphrase-input"), "correct horse battery");
  await p.fill(tid("backup-passphrase-repeat-input"), "correct horse");
  await shot(p, "backup-passphrase-differs");
  await p.fill(tid("backup-passphrase-repeat-input"), "correct horse battery");
  await p.keyboard.press("Enter");
  await p.evaluate(() => window.__fake.advance("backup:hello-web"));
  await shot(p, "backup-progress");
  await p.evaluate(() => window.__fake.advance("backup:hello-web"));
  await p.waitForSelector(tid("backup-done"));
  await p.click(tid("backup-close-button"));
  await p.click(tid("backups-button-hello-web"));
  await p.waitForSelector(tid(`backup-row-${fixtures.backups[1].name}`));
  await p.click(tid(`download-backup-button-${fixtures.backups[0].name}`));
  await p.evaluate(() => window.__fake.advance("download"));
  await shot(p, "backups-downloading");
  await p.evaluate(() => window.__fake.advance("download"));
  await p.waitForSelector(tid("download-saved"));
  await shot(p, "backups-downloaded");
  await p.click(tid(`restore-backup-button-${fixtures.backups[0].name}`));
  await p.selectOption(tid("restore-target-select"), "n4");
  await p.fill(tid("restore-passphrase-input"), "correct horse battery");
  await p.click(tid("confirm-restore-button"));
  for (let i = 0; i < 3; i++) await p.evaluate(() => window.__fake.advance("restore"));
  await shot(p, "restore-progress");
  await p.evaluate(() => window.__fake.advance("restore"));
  await p.waitForSelector(tid("restore-done"));
  await p.click(tid("restore-close-button"));
  await p.click(tid("backups-close-button"));
  await p.click(tid("node-backups-button"));
  await p.waitForSelector(tid(`backup-row-${fixtures.backups[3].name}`));
  await shot(p, "node-backups");
  await p.click(tid("backups-close-button"));
  await p.click(tid("settings-button-hello-web"));
  await shot(p, "settings-dialog");
  await p.keyboard.press("Escape");

  await p.click(tid("marketplace-tab"));
  await p.waitForSelector(tid("app-card-lnd"));
  await shot(p, "marketplace");
  await p.click(tid("install-button-fedimint"));
  for (let i = 0; i < 3; i++) await p.evaluate(() => window.__fake.advance("fedimint"));
  await p.click(tid("install-button-lnd"));
  for (let i = 0; i < 8; i++) await p.evaluate(() => window.__fake.advance("lnd"));
  await p.locator(tid("app-card-fedimint")).scrollIntoViewIfNeeded();
  await shot(p, "install-progress");
  await p.locator(tid("app-card-lnd")).scrollIntoViewIfNeeded();
  await shot(p, "install-failed");
  for (let i = 0; i < 6; i++) await p.evaluate(() => window.__fake.advance("fedimint"));
  await p.locator(tid("app-card-fedimint")).scrollIntoViewIfNeeded();
  await shot(p, "install-done");
  await p.fill(tid("marketplace-search"), "bitcoin");
  await shot(p, "marketplace-search");

  await p.click(tid("nav-node-n6"));
  await p.waitForSelector(tid("fingerprint-mismatch-warning"));
  await shot(p, "fingerprint-mismatch");
  await p.click(tid("nav-node-n3"));
  await shot(p, "login-needed");
  await p.click(tid("login-prompt-button"));
  await p.fill(tid("password-input"), "wrong");
  await p.click(tid("login-button"));
  await p.waitForSelector(tid("error-banner"));
  await shot(p, "login-wrong-password");
}

{
  const p = await page("light", { ...fixtures, nodes: [] });
  await p.waitForSelector(tid("nodes-empty"));
  await shot(p, "empty");
}

await browser.close();
server.close();
if (problems.length > 0) {
  console.error("page errors:\n" + problems.join("\n"));
  process.exit(1);
}
