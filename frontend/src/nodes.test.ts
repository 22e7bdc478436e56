import { describe, expect, it } from "vitest";

import type { NodeEntry } from "./bindings/NodeEntry";
import type { NodeInfoResult } from "./bindings/NodeInfoResult";
import type { NodeOverview } from "./bindings/NodeOverview";
import { filterNodes, mergeOverviews, nodeStatus, type NodeState, statusLine, statusSummary, uiUrl } from "./nodes";

const entry = (id: string, extra: Partial<NodeEntry> = {}): NodeEntry => ({
  id,
  name: `Node ${id}`,
  address: `10.0.0.${id}:7443`,
  fingerprint: "aa",
  logged_in: true,
  last_seen: 1000,
  ...extra,
});
const info = (failed = 0): NodeInfoResult => ({
  version: "0.1.0",
  hostname: "h",
  uptime_secs: 10,
  disk: { total_bytes: 100, free_bytes: 50 },
  memory: { total_bytes: 100, available_bytes: 50 },
  cpu: { cores: 2, load: [0.1, 0.2, 0.3] },
  apps_installed: 2,
  apps_running: 2 - failed,
  apps_failed: failed,
});
const overview = (node: NodeEntry, o: Partial<NodeOverview>): NodeOverview => ({
  node,
  reachable: true,
  info: null,
  error: null,
  ...o,
});
const state = (o: NodeOverview | null, node = o?.node ?? entry("1")): NodeState => ({
  node,
  overview: o,
  checking: false,
});

describe("nodeStatus", () => {
  it("reads every overview shape", () => {
    const n = entry("1");
    expect(nodeStatus(state(null))).toBe("checking");
    expect(nodeStatus(state(overview(n, { info: info() })))).toBe("online");
    expect(nodeStatus(state(overview(n, { info: info(1) })))).toBe("degraded");
    expect(nodeStatus(state(overview(n, { reachable: false, error: { code: "unreachable", message: "x" } })))).toBe(
      "unreachable",
    );
    expect(nodeStatus(state(overview(n, { reachable: false, error: { code: "timeout", message: "x" } })))).toBe(
      "unreachable",
    );
    expect(nodeStatus(state(overview(n, { error: { code: "not_logged_in", message: "x" } })))).toBe("login");
    expect(nodeStatus(state(overview(n, { error: { code: "unauthenticated", message: "x" } })))).toBe("login");
    expect(
      nodeStatus(state(overview(n, { reachable: false, error: { code: "fingerprint_mismatch", message: "x" } }))),
    ).toBe("mismatch");
    expect(nodeStatus(state(overview(n, { error: { code: "protocol", message: "x" } })))).toBe("error");
    expect(nodeStatus(state(overview(entry("2", { logged_in: false }), {})))).toBe("login");
  });
});

describe("statusLine", () => {
  it("says when an unreachable node was last seen", () => {
    const n = entry("1", { last_seen: 1000 });
    const s = state(overview(n, { reachable: false, error: { code: "unreachable", message: "refused" } }));
    expect(statusLine(s, 1180)).toBe("unreachable: last seen 3 min ago");
  });
  it("counts failed apps", () => {
    expect(statusLine(state(overview(entry("1"), { info: info(2) })), 0)).toBe("2 apps have failed");
    expect(statusLine(state(overview(entry("1"), { info: info(1) })), 0)).toBe("1 app has failed");
    expect(statusLine(state(overview(entry("1"), { info: info() })), 0)).toBeNull();
  });
});

describe("lists", () => {
  const list = [state(null, entry("1")), state(null, entry("2", { name: "Cabin" }))];
  it("merges overviews in the list's order and adds unknown nodes last", () => {
    const merged = mergeOverviews(list, [
      overview(entry("3"), { info: info() }),
      overview(entry("2", { name: "Cabin", last_seen: 2000 }), { info: info() }),
    ]);
    expect(merged.map((s) => s.node.id)).toEqual(["1", "2", "3"]);
    expect(merged[1]!.node.last_seen).toBe(2000);
    expect(merged[0]!.overview).toBeNull();
  });
  it("filters by name or address", () => {
    expect(filterNodes(list, "cab").map((s) => s.node.id)).toEqual(["2"]);
    expect(filterNodes(list, "10.0.0.1").map((s) => s.node.id)).toEqual(["1"]);
    expect(filterNodes(list, " ")).toHaveLength(2);
  });
  it("summarises states", () => {
    const s = statusSummary([state(overview(entry("1"), { info: info() })), state(null)]);
    expect(s.online).toBe(1);
    expect(s.checking).toBe(1);
  });
  it("builds an app's UI URL on the node's host", () => {
    expect(uiUrl("node.local:7443", { scheme: "http", port: 8080, path: "/" })).toBe("http://node.local:8080/");
    expect(uiUrl("192.168.1.2", { scheme: "https", port: 8443, path: "admin" })).toBe("https://192.168.1.2:8443/admin");
    expect(uiUrl("[fe80::1]:7443", { scheme: "http", port: 80, path: "/x" })).toBe("http://[fe80::1]:80/x");
  });
});
