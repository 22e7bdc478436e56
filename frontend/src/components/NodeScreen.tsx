//! One node: its header, then the Dashboard or the Marketplace tab.

import { api } from "../api";
import { toAppError } from "../errors";
import { formatBytes, formatUptime, lastSeenText, usedFraction } from "../format";
import { nodeStatus, type NodeState, statusLine } from "../nodes";
import { dialog, findNode, nodesError, nowSecs, refreshNode, route, type Tab, upsertNode } from "../store";
import { ErrorBanner, FingerprintMismatch } from "./common";
import { Dashboard } from "./Dashboard";
import { Marketplace } from "./Marketplace";
import { StatusPill } from "./NodesScreen";

const TABS: { id: Tab; label: string }[] = [
  { id: "dashboard", label: "Dashboard" },
  { id: "marketplace", label: "Marketplace" },
];

export function NodeScreen({ nodeId, tab }: { nodeId: string; tab: Tab }) {
  const state = findNode(nodeId);
  if (!state) {
    return (
      <section class="screen">
        <p class="empty">This node is no longer in your list.</p>
      </section>
    );
  }
  const status = nodeStatus(state);
  const setTab = (t: Tab) => (route.value = { screen: "node", nodeId, tab: t });
  const logout = async () => {
    try {
      upsertNode(await api.nodeLogout(nodeId));
      void refreshNode(nodeId);
    } catch (e) {
      nodesError.value = toAppError(e);
    }
  };

  return (
    <section class="screen" aria-labelledby="node-title">
      <header class="screen-header node-header">
        <div>
          <h1 id="node-title">
            {state.node.name} <StatusPill status={status} />
          </h1>
          <p class="subtitle">
            {state.node.address}
            <NodeFacts state={state} />
          </p>
        </div>
        <div class="screen-actions">
          {status === "mismatch" ? null : state.node.logged_in ? (
            <button type="button" class="button button-quiet" data-testid="logout-button" onClick={() => void logout()}>
              Log out
            </button>
          ) : (
            <button
              type="button"
              class="button button-primary"
              data-testid="open-login-button"
              onClick={() => (dialog.value = { kind: "login", nodeId })}
            >
              Log in
            </button>
          )}
          <button
            type="button"
            class="button button-quiet"
            data-testid="remove-node-button"
            onClick={() => (dialog.value = { kind: "remove", nodeId })}
          >
            Remove
          </button>
        </div>
      </header>
      {status !== "mismatch" && (
        <div
          class="tabs"
          role="tablist"
          aria-label="Node views"
          onKeyDown={(e) => {
            if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
            const i = TABS.findIndex((t) => t.id === tab);
            const next = TABS[(i + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length]!;
            setTab(next.id);
            document.getElementById(`tab-${next.id}`)?.focus();
          }}
        >
          {TABS.map((t) => (
            <button
              type="button"
              role="tab"
              id={`tab-${t.id}`}
              key={t.id}
              class="tab"
              aria-selected={t.id === tab}
              aria-controls="node-panel"
              tabIndex={t.id === tab ? 0 : -1}
              data-testid={`${t.id}-tab`}
              onClick={() => setTab(t.id)}
            >
              {t.label}
            </button>
          ))}
        </div>
      )}
      <div id="node-panel" role="tabpanel" aria-labelledby={`tab-${tab}`} class="tab-panel">
        <NodeBody state={state} tab={tab} />
      </div>
    </section>
  );
}

function NodeFacts({ state }: { state: NodeState }) {
  const info = state.overview?.info;
  if (!info) return null;
  return (
    <span class="node-facts-inline">
      {" · "}Archipelago {info.version} · up {formatUptime(info.uptime_secs)} · disk{" "}
      {Math.round(usedFraction(info.disk.total_bytes, info.disk.free_bytes) * 100)}% used (
      {formatBytes(info.disk.free_bytes)} free)
    </span>
  );
}

function NodeBody({ state, tab }: { state: NodeState; tab: Tab }) {
  const status = nodeStatus(state);
  const nodeId = state.node.id;
  if (status === "mismatch") {
    return (
      <FingerprintMismatch
        message={state.overview?.error?.message ?? ""}
        onRemove={() => (dialog.value = { kind: "remove", nodeId })}
      />
    );
  }
  if (status === "login" || !state.node.logged_in) {
    return (
      <div class="empty" data-testid="login-needed">
        <h2>Log in to {state.node.name}</h2>
        <p>You need the node's password to see and manage its apps.</p>
        <button
          type="button"
          class="button button-primary"
          data-testid="login-prompt-button"
          onClick={() => (dialog.value = { kind: "login", nodeId })}
        >
          Log in
        </button>
      </div>
    );
  }
  // An unreachable node gets one banner (with when it was last seen and a
  // retry), not one per failing call of the tab below.
  if (status === "unreachable" && state.overview?.error) {
    const line =
      statusLine(state, nowSecs.value) ?? `unreachable: ${lastSeenText(state.node.last_seen, nowSecs.value)}`;
    return (
      <ErrorBanner
        error={toAppError({ code: state.overview.error.code, message: `${line} (${state.overview.error.message})` })}
        onRetry={() => void refreshNode(nodeId)}
      />
    );
  }
  return tab === "dashboard" ? <Dashboard nodeId={nodeId} /> : <Marketplace nodeId={nodeId} />;
}
