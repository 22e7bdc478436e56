//! The grid of every node at a glance.

import { useState } from "preact/hooks";

import { formatBytes, formatPercent, formatUptime, loadPerCore, usedFraction } from "../format";
import { filterNodes, nodeStatus, type NodeState, STATUS_LABEL, statusLine, statusSummary } from "../nodes";
import { dialog, nodes, nodesError, nowSecs, openNode, refreshOverviews } from "../store";
import { Bar, ErrorBanner, FingerprintMismatch, Loading } from "./common";

export function NodesScreen() {
  const list = nodes.value;
  const [query, setQuery] = useState("");
  const error = nodesError.value;

  if (list === null) return <Loading text="Reading your node list…" />;

  return (
    <section class="screen" aria-labelledby="nodes-title">
      <header class="screen-header">
        <div>
          <h1 id="nodes-title">Nodes</h1>
          {list.length > 0 && <Summary list={list} />}
        </div>
        {list.length > 0 && (
          <div class="screen-actions">
            {list.length > 6 && (
              <input
                type="search"
                class="input"
                placeholder="Filter nodes"
                aria-label="Filter nodes by name or address"
                data-testid="node-filter-input"
                value={query}
                onInput={(e) => setQuery(e.currentTarget.value)}
              />
            )}
            <button
              type="button"
              class="button"
              data-testid="refresh-nodes-button"
              onClick={() => void refreshOverviews()}
            >
              Refresh
            </button>
          </div>
        )}
      </header>
      {error && (
        <ErrorBanner
          error={error}
          onRetry={() => void refreshOverviews()}
          onDismiss={() => (nodesError.value = null)}
        />
      )}
      {list.length === 0 ? (
        <div class="empty" data-testid="nodes-empty">
          <h2>No nodes yet — add your first node</h2>
          <p>
            You need the node's address (for example <code>node.local</code> or <code>192.168.1.20</code>) and its
            password. You will compare a fingerprint with what <code>archipelagod pairing</code> prints on the node.
          </p>
          <button
            type="button"
            class="button button-primary"
            data-testid="add-first-node-button"
            onClick={() => (dialog.value = { kind: "add" })}
          >
            Add a node
          </button>
        </div>
      ) : (
        <NodeGrid list={filterNodes(list, query)} />
      )}
    </section>
  );
}

function Summary({ list }: { list: readonly NodeState[] }) {
  const c = statusSummary(list);
  const parts = [`${list.length} ${list.length === 1 ? "node" : "nodes"}`];
  if (c.online + c.degraded > 0) parts.push(`${c.online + c.degraded} online`);
  if (c.degraded > 0) parts.push(`${c.degraded} need attention`);
  if (c.unreachable > 0) parts.push(`${c.unreachable} unreachable`);
  if (c.login > 0) parts.push(`${c.login} need login`);
  if (c.mismatch > 0) parts.push(`${c.mismatch} refused`);
  if (c.checking > 0) parts.push(`${c.checking} checking`);
  return (
    <p class="subtitle" data-testid="nodes-summary">
      {parts.join(" · ")}
    </p>
  );
}

function NodeGrid({ list }: { list: readonly NodeState[] }) {
  const now = nowSecs.value;
  return (
    <ul class="node-grid" aria-label="Your nodes">
      {list.map((s) => (
        <li key={s.node.id}>
          <NodeCard state={s} now={now} />
        </li>
      ))}
    </ul>
  );
}

function NodeCard({ state, now }: { state: NodeState; now: number }) {
  const { node } = state;
  const status = nodeStatus(state);
  const line = statusLine(state, now);
  const info = state.overview?.info ?? null;
  return (
    <article class={`card node-card status-${status}`} data-testid={`node-card-${node.id}`} data-status={status}>
      <header class="node-card-head">
        <h2 class="node-name">
          <button
            type="button"
            class="link-button"
            data-testid={`open-node-${node.id}`}
            title={node.name}
            onClick={() => openNode(node.id)}
          >
            {node.name}
          </button>
        </h2>
        <StatusPill status={status} />
      </header>
      <p class="node-address">
        {node.address}
        {info && <span class="node-uptime"> · up {formatUptime(info.uptime_secs)}</span>}
      </p>
      {status === "mismatch" ? (
        <FingerprintMismatch compact onDetails={() => openNode(node.id)} />
      ) : (
        line && (
          <p
            class={`node-line node-line-${status}`}
            data-testid={`node-status-line-${node.id}`}
            title={state.overview?.error?.message}
          >
            {line}
          </p>
        )
      )}
      {info && (
        <div class="node-facts">
          <dl class="facts">
            <div>
              <dt>Version</dt>
              <dd data-testid={`node-version-${node.id}`}>{info.version}</dd>
            </div>
            <div>
              <dt>Apps</dt>
              <dd data-testid={`node-apps-${node.id}`}>
                {info.apps_running} running
                {info.apps_failed > 0 && <span class="text-danger"> · {info.apps_failed} failed</span>}
              </dd>
            </div>
          </dl>
          <Bar
            label="Disk"
            fraction={usedFraction(info.disk.total_bytes, info.disk.free_bytes)}
            text={`${formatBytes(info.disk.free_bytes)} free of ${formatBytes(info.disk.total_bytes)}`}
          />
          <Bar
            label="Memory"
            fraction={usedFraction(info.memory.total_bytes, info.memory.available_bytes)}
            text={`${formatBytes(info.memory.total_bytes - info.memory.available_bytes)} of ${formatBytes(info.memory.total_bytes)}`}
          />
          <Bar
            label="CPU load"
            fraction={loadPerCore(info.cpu.load[0], info.cpu.cores)}
            text={`${formatPercent(loadPerCore(info.cpu.load[0], info.cpu.cores) * 100)} of ${info.cpu.cores} ${info.cpu.cores === 1 ? "core" : "cores"}`}
          />
        </div>
      )}
      <footer class="card-actions">
        {status === "login" && (
          <button
            type="button"
            class="button button-primary"
            data-testid={`login-open-button-${node.id}`}
            onClick={() => (dialog.value = { kind: "login", nodeId: node.id })}
          >
            Log in
          </button>
        )}
        {status !== "mismatch" && status !== "login" && (
          <button type="button" class="button" onClick={() => openNode(node.id)}>
            Open
          </button>
        )}
        <button
          type="button"
          class="button button-quiet"
          data-testid={`remove-node-button-${node.id}`}
          onClick={() => (dialog.value = { kind: "remove", nodeId: node.id })}
        >
          Remove
        </button>
      </footer>
    </article>
  );
}

export function StatusPill({ status }: { status: ReturnType<typeof nodeStatus> }) {
  return (
    <span class={`pill pill-${status}`} data-testid="node-status">
      <span class="pill-dot" aria-hidden="true" />
      {STATUS_LABEL[status]}
    </span>
  );
}
