//! App-wide state as signals: where the user is, the node list with each
//! node's overview, the open dialog and the installs and updates in flight
//! (which outlive the screen that started them).

import { signal } from "@preact/signals";

import { api } from "./api";
import type { InstallProgress } from "./bindings/InstallProgress";
import type { NodeEntry } from "./bindings/NodeEntry";
import type { PackageStatus } from "./bindings/PackageStatus";
import type { Phase } from "./bindings/Phase";
import type { UpdateResult } from "./bindings/UpdateResult";
import { type AppError, toAppError } from "./errors";
import { mergeOverviews, type NodeState } from "./nodes";

export type Tab = "dashboard" | "marketplace";
export type Route = { screen: "nodes" } | { screen: "node"; nodeId: string; tab: Tab };

export const route = signal<Route>({ screen: "nodes" });

/** null until the node list has been read once. */
export const nodes = signal<NodeState[] | null>(null);
/** Reading the node list or the overviews failed. */
export const nodesError = signal<AppError | null>(null);

/** Unix seconds, ticking, for "last seen 3 min ago". */
export const nowSecs = signal(Math.floor(Date.now() / 1000));

export type DialogState =
  null | { kind: "add" } | { kind: "login"; nodeId: string } | { kind: "remove"; nodeId: string };
export const dialog = signal<DialogState>(null);

export function openNode(nodeId: string, tab: Tab = "dashboard"): void {
  route.value = { screen: "node", nodeId, tab };
}

export function findNode(nodeId: string): NodeState | undefined {
  return nodes.value?.find((s) => s.node.id === nodeId);
}

/** Puts a node entry into the list (new or updated), keeping its overview. */
export function upsertNode(entry: NodeEntry): void {
  const list = nodes.value ?? [];
  const i = list.findIndex((s) => s.node.id === entry.id);
  if (i < 0) {
    nodes.value = [...list, { node: entry, overview: null, checking: false }];
  } else {
    const next = [...list];
    const old = next[i]!;
    next[i] = { ...old, node: entry, overview: old.overview ? { ...old.overview, node: entry } : null };
    nodes.value = next;
  }
}

export function forgetNode(nodeId: string): void {
  nodes.value = (nodes.value ?? []).filter((s) => s.node.id !== nodeId);
  const r = route.value;
  if (r.screen === "node" && r.nodeId === nodeId) route.value = { screen: "nodes" };
}

let overviewsInFlight: Promise<void> | null = null;

/** Asks every node for its overview at once (the desktop side bounds each). */
export function refreshOverviews(): Promise<void> {
  if (overviewsInFlight) return overviewsInFlight;
  nodes.value = (nodes.value ?? []).map((s) => ({ ...s, checking: true }));
  overviewsInFlight = api
    .nodesOverview()
    .then((overviews) => {
      nodes.value = mergeOverviews(nodes.value ?? [], overviews);
      nodesError.value = null;
    })
    .catch((e: unknown) => {
      nodes.value = (nodes.value ?? []).map((s) => ({ ...s, checking: false }));
      nodesError.value = toAppError(e);
    })
    .finally(() => {
      overviewsInFlight = null;
    });
  return overviewsInFlight;
}

/** Reads the node list (local, fast), shows it, then asks the nodes. */
export async function loadNodes(): Promise<void> {
  try {
    const entries = await api.nodesList();
    const old = new Map((nodes.value ?? []).map((s) => [s.node.id, s]));
    nodes.value = entries.map((node) => ({ node, overview: old.get(node.id)?.overview ?? null, checking: false }));
    nodesError.value = null;
  } catch (e) {
    nodesError.value = toAppError(e);
    if (nodes.value === null) nodes.value = [];
    return;
  }
  await refreshOverviews();
}

/** Refreshes one node's overview (after a login, say). */
export async function refreshNode(nodeId: string): Promise<void> {
  const list = nodes.value ?? [];
  nodes.value = list.map((s) => (s.node.id === nodeId ? { ...s, checking: true } : s));
  try {
    const o = await api.nodeOverview(nodeId);
    nodes.value = mergeOverviews(nodes.value ?? [], [o]);
  } catch (e) {
    nodes.value = (nodes.value ?? []).map((s) => (s.node.id === nodeId ? { ...s, checking: false } : s));
    nodesError.value = toAppError(e);
  }
}

// ---------------------------------------------------------------- installs

export interface InstallJob {
  nodeId: string;
  appId: string;
  state: "running" | "done" | "failed";
  /** The last progress event, null before the first. */
  progress: InstallProgress | null;
  /** The last phase before a rollback, to mark the step that failed. */
  lastPhase: Phase | null;
  error: AppError | null;
  result: PackageStatus | null;
}

export const installJobs = signal<Record<string, InstallJob>>({});

export function jobKey(nodeId: string, appId: string): string {
  return `${nodeId}\u0000${appId}`;
}

function updateJob(key: string, patch: Partial<InstallJob>): void {
  const old = installJobs.value[key];
  if (!old) return;
  installJobs.value = { ...installJobs.value, [key]: { ...old, ...patch } };
}

/**
 * The phase to remember after a progress event, to mark the step that failed:
 * the event's own phase, or during a rollback the phase it interrupted.
 */
export function reachedPhase(
  before: { progress: InstallProgress | null; lastPhase: Phase | null } | undefined,
  p: InstallProgress,
): Phase | null {
  if (p.phase !== "rolling_back") return p.phase;
  const interrupted = before?.progress?.phase;
  return interrupted && interrupted !== "rolling_back" ? interrupted : (before?.lastPhase ?? null);
}

/** The last event of a finished operation, when the node did not send `done` itself. */
export function doneProgress(
  appId: string,
  last: InstallProgress | null | undefined,
  message: string,
): InstallProgress {
  if (last?.phase === "done") return last;
  return {
    id: appId,
    phase: "done",
    images_done: last?.images_total ?? 0,
    images_total: last?.images_total ?? 0,
    blobs_seen: last?.blobs_seen ?? 0,
    message,
    bytes_done: last?.bytes_total ?? 0,
    bytes_total: last?.bytes_total ?? 0,
  };
}

/** Starts an install and follows its progress; resolves when it ends either way. */
export async function startInstall(nodeId: string, appId: string): Promise<void> {
  const key = jobKey(nodeId, appId);
  if (installJobs.value[key]?.state === "running") return;
  installJobs.value = {
    ...installJobs.value,
    [key]: { nodeId, appId, state: "running", progress: null, lastPhase: null, error: null, result: null },
  };
  try {
    const result = await api.packageInstall(nodeId, appId, (p) => {
      updateJob(key, { progress: p, lastPhase: reachedPhase(installJobs.value[key], p) });
    });
    const progress = doneProgress(
      appId,
      installJobs.value[key]?.progress,
      `${result.name} ${result.version} is installed`,
    );
    updateJob(key, { state: "done", result, progress, lastPhase: "done" });
  } catch (e) {
    updateJob(key, { state: "failed", error: toAppError(e) });
  }
}

export function dismissJob(nodeId: string, appId: string): void {
  const next = { ...installJobs.value };
  delete next[jobKey(nodeId, appId)];
  installJobs.value = next;
}

export function jobsForNode(nodeId: string): InstallJob[] {
  return Object.values(installJobs.value).filter((j) => j.nodeId === nodeId);
}

// ---------------------------------------------------------------- updates

export interface UpdateJob {
  nodeId: string;
  appId: string;
  state: "running" | "done" | "failed";
  progress: InstallProgress | null;
  lastPhase: Phase | null;
  /** The version that ran before: it runs again after a rollback. */
  fromVersion: string;
  /** The version the catalog offered. */
  toVersion: string | null;
  error: AppError | null;
  result: UpdateResult | null;
}

/** Updates in flight or just ended, by `jobKey`; shown on the dashboard's app rows. */
export const updateJobs = signal<Record<string, UpdateJob>>({});

function patchUpdate(key: string, patch: Partial<UpdateJob>): void {
  const old = updateJobs.value[key];
  if (!old) return;
  updateJobs.value = { ...updateJobs.value, [key]: { ...old, ...patch } };
}

/** Updates an app and follows its progress; resolves when it ends either way. */
export async function startUpdate(nodeId: string, app: PackageStatus): Promise<void> {
  const key = jobKey(nodeId, app.id);
  if (updateJobs.value[key]?.state === "running") return;
  updateJobs.value = {
    ...updateJobs.value,
    [key]: {
      nodeId,
      appId: app.id,
      state: "running",
      progress: null,
      lastPhase: null,
      fromVersion: app.version,
      toVersion: app.update_available,
      error: null,
      result: null,
    },
  };
  try {
    const result = await api.updateApp(nodeId, app.id, (p) => {
      patchUpdate(key, { progress: p, lastPhase: reachedPhase(updateJobs.value[key], p) });
    });
    const progress = doneProgress(
      app.id,
      updateJobs.value[key]?.progress,
      `${result.status.name} ${result.to_version} is running`,
    );
    patchUpdate(key, { state: "done", result, progress, lastPhase: "done" });
  } catch (e) {
    patchUpdate(key, { state: "failed", error: toAppError(e) });
  }
}

export function dismissUpdate(nodeId: string, appId: string): void {
  const next = { ...updateJobs.value };
  delete next[jobKey(nodeId, appId)];
  updateJobs.value = next;
}

export function updatesForNode(nodeId: string): UpdateJob[] {
  return Object.values(updateJobs.value).filter((j) => j.nodeId === nodeId);
}
