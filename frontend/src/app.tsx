//! The window: a sidebar with every node, the current screen, the open dialog.

import { useEffect } from "preact/hooks";

// The desktop app's own icon (also the source of src-tauri/icons).
import logoUrl from "../../icons/archipelago.svg";

import { NodeDialogs } from "./components/NodeDialogs";
import { NodeScreen } from "./components/NodeScreen";
import { NodesScreen } from "./components/NodesScreen";
import { nodeStatus } from "./nodes";
import { dialog, loadNodes, nodes, nowSecs, openNode, refreshOverviews, route } from "./store";

/** How often every node is asked for its overview while the window is visible. */
const OVERVIEW_EVERY_MS = 20_000;

export function App() {
  useEffect(() => {
    void loadNodes();
    const overview = setInterval(() => {
      if (!document.hidden) void refreshOverviews();
    }, OVERVIEW_EVERY_MS);
    const tick = setInterval(() => (nowSecs.value = Math.floor(Date.now() / 1000)), 15_000);
    return () => {
      clearInterval(overview);
      clearInterval(tick);
    };
  }, []);

  const r = route.value;
  return (
    <div class="shell">
      <Sidebar />
      <main class="main" id="main">
        {r.screen === "nodes" ? <NodesScreen /> : <NodeScreen nodeId={r.nodeId} tab={r.tab} />}
      </main>
      <NodeDialogs />
    </div>
  );
}

function Sidebar() {
  const list = nodes.value ?? [];
  const r = route.value;
  return (
    <aside class="sidebar" aria-label="Navigation">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <div class="brand">
        <img src={logoUrl} alt="" width={24} height={24} />
        <span>Archipelago</span>
      </div>
      <button
        type="button"
        class={`nav-item ${r.screen === "nodes" ? "active" : ""}`}
        aria-current={r.screen === "nodes" ? "page" : undefined}
        data-testid="nav-nodes"
        onClick={() => (route.value = { screen: "nodes" })}
      >
        All nodes <span class="nav-count">{list.length}</span>
      </button>
      <nav class="node-nav" aria-label="Nodes">
        <ul>
          {list.map((s) => {
            const active = r.screen === "node" && r.nodeId === s.node.id;
            const status = nodeStatus(s);
            return (
              <li key={s.node.id}>
                <button
                  type="button"
                  class={`nav-item nav-node ${active ? "active" : ""}`}
                  aria-current={active ? "page" : undefined}
                  data-testid={`nav-node-${s.node.id}`}
                  onClick={() => openNode(s.node.id, r.screen === "node" ? r.tab : "dashboard")}
                >
                  <span class={`dot dot-${status}`} aria-hidden="true" />
                  <span class="nav-node-name">{s.node.name}</span>
                </button>
              </li>
            );
          })}
        </ul>
      </nav>
      <button
        type="button"
        class="button button-primary add-node"
        data-testid="add-node-button"
        onClick={() => (dialog.value = { kind: "add" })}
      >
        + Add node
      </button>
    </aside>
  );
}
