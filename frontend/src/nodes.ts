//! What a node's card says about it, derived from its overview (pure).

import type { NodeEntry } from "./bindings/NodeEntry";
import type { NodeOverview } from "./bindings/NodeOverview";
import { addressHost, lastSeenText } from "./format";

/** A node as the app knows it: its entry, and its last overview once fetched. */
export interface NodeState {
  node: NodeEntry;
  overview: NodeOverview | null;
  /** An overview is being fetched. */
  checking: boolean;
}

export type NodeStatus = "checking" | "online" | "degraded" | "login" | "unreachable" | "mismatch" | "error";

/** One word for the node's state, for the pill on its card. */
export function nodeStatus(s: NodeState): NodeStatus {
  const o = s.overview;
  if (o === null) return "checking";
  const code = o.error?.code;
  if (code === "fingerprint_mismatch") return "mismatch";
  if (code === "not_logged_in" || code === "unauthenticated") return "login";
  if (code === "unreachable" || code === "timeout" || (!o.reachable && code === undefined)) {
    return "unreachable";
  }
  if (o.info !== null) return o.info.apps_failed > 0 ? "degraded" : "online";
  if (code === undefined && !o.node.logged_in) return "login";
  return "error";
}

export const STATUS_LABEL: Record<NodeStatus, string> = {
  checking: "Checking…",
  online: "Online",
  degraded: "Needs attention",
  login: "Log in needed",
  unreachable: "Unreachable",
  mismatch: "Identity changed",
  error: "Error",
};

/** The card's one-line explanation under the pill, when there is a problem. */
export function statusLine(s: NodeState, nowSecs: number): string | null {
  const status = nodeStatus(s);
  const lastSeen = (s.overview?.node ?? s.node).last_seen;
  switch (status) {
    case "unreachable":
      return `unreachable: ${lastSeenText(lastSeen, nowSecs)}`;
    case "login":
      return "Log in to see its apps and resources";
    case "mismatch":
      return "The node's certificate is not the one you paired with";
    case "error":
      return s.overview?.error?.message ?? null;
    case "degraded": {
      const n = s.overview?.info?.apps_failed ?? 0;
      return `${n} ${n === 1 ? "app has" : "apps have"} failed`;
    }
    default:
      return null;
  }
}

/** Counts for the summary line above the grid. */
export function statusSummary(list: readonly NodeState[]): Record<NodeStatus, number> {
  const out: Record<NodeStatus, number> = {
    checking: 0,
    online: 0,
    degraded: 0,
    login: 0,
    unreachable: 0,
    mismatch: 0,
    error: 0,
  };
  for (const s of list) out[nodeStatus(s)] += 1;
  return out;
}

/** Nodes whose name or address contains the query (case-insensitive). */
export function filterNodes(list: readonly NodeState[], query: string): NodeState[] {
  const q = query.trim().toLowerCase();
  if (q === "") return [...list];
  return list.filter((s) => s.node.name.toLowerCase().includes(q) || s.node.address.toLowerCase().includes(q));
}

/** Merges fresh overviews into the list, keeping the list's order and its nodes. */
export function mergeOverviews(list: readonly NodeState[], overviews: readonly NodeOverview[]): NodeState[] {
  const byId = new Map(overviews.map((o) => [o.node.id, o]));
  const merged = list.map((s) => {
    const o = byId.get(s.node.id);
    return o ? { node: o.node, overview: o, checking: false } : { ...s, checking: false };
  });
  // Nodes the overview knows but the list does not (added elsewhere) go last.
  const known = new Set(list.map((s) => s.node.id));
  for (const o of overviews) {
    if (!known.has(o.node.id)) merged.push({ node: o.node, overview: o, checking: false });
  }
  return merged;
}

/** The URL of an app's UI on a node: the node's host with the app's scheme, port and path. */
export function uiUrl(nodeAddress: string, ui: { scheme: string; port: number; path: string }): string {
  const path = ui.path.startsWith("/") ? ui.path : `/${ui.path}`;
  return `${ui.scheme}://${addressHost(nodeAddress)}:${ui.port}${path}`;
}
