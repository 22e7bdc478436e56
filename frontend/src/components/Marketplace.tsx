//! A node's catalog: search, category chips, app cards with icons, install with progress, update badges.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { api } from "../api";
import type { CatalogApp } from "../bindings/CatalogApp";
import type { CatalogListResult } from "../bindings/CatalogListResult";
import { categoryCounts, filterApps, iconDataUrl } from "../catalog";
import { type AppError, needsLogin, toAppError } from "../errors";
import { categoryLabel } from "../format";
import { dialog, dismissJob, installJobs, jobKey, openNode, refreshNode, startInstall } from "../store";
import { ErrorBanner, Loading } from "./common";
import { InstallProgressView } from "./InstallProgressView";

/** Icons as data URLs, per node and app; the desktop side caches too. */
const iconCache = new Map<string, string | null>();

/** An app's icon as a data URL once loaded; null without one (or before). */
export function useIcon(nodeId: string, appId: string, hasIcon: boolean): string | null {
  const key = `${nodeId}/${appId}`;
  const [url, setUrl] = useState<string | null>(iconCache.get(key) ?? null);
  useEffect(() => {
    if (!hasIcon || iconCache.has(key)) return;
    let live = true;
    api
      .catalogIcon(nodeId, appId)
      .then((icon) => {
        const u = iconDataUrl(icon);
        iconCache.set(key, u);
        if (live) setUrl(u);
      })
      .catch(() => iconCache.set(key, null));
    return () => {
      live = false;
    };
  }, [key, hasIcon]);
  return url;
}

export function Marketplace({ nodeId }: { nodeId: string }) {
  const [catalog, setCatalog] = useState<CatalogListResult | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [query, setQuery] = useState("");
  const [category, setCategory] = useState<string | null>(null);
  const search = useRef<HTMLInputElement>(null);

  const load = useCallback(async () => {
    try {
      setCatalog(await api.catalogList(nodeId));
      setError(null);
    } catch (e) {
      setError(toAppError(e));
    }
  }, [nodeId]);

  useEffect(() => {
    setCatalog(null);
    void load();
  }, [load]);

  // An install finishing changes what is installed.
  const done = Object.values(installJobs.value).filter((j) => j.nodeId === nodeId && j.state === "done").length;
  useEffect(() => {
    if (done > 0) void load();
  }, [done, load]);

  // "/" jumps to the search box.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (
        e.key === "/" &&
        t &&
        !["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName) &&
        !document.querySelector("dialog[open]")
      ) {
        e.preventDefault();
        search.current?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  if (error && !catalog) {
    return (
      <ErrorBanner
        error={error}
        onRetry={() => void load()}
        onLogin={needsLogin(error) ? () => (dialog.value = { kind: "login", nodeId }) : undefined}
      />
    );
  }
  if (!catalog) return <Loading text="Reading the node's catalog…" />;

  const cats = categoryCounts(catalog.apps);
  const shown = filterApps(catalog.apps, { query, category });
  const refused = catalog.sources.filter((s) => s.error !== null);

  return (
    <div class="marketplace">
      {error && <ErrorBanner error={error} onRetry={() => void load()} onDismiss={() => setError(null)} />}
      {refused.map((s) => (
        <div class="banner banner-warn" role="alert" key={s.name} data-testid="catalog-source-warning">
          <div class="banner-body">
            <strong class="banner-title">Catalog “{s.name}” was refused</strong>
            <pre class="banner-message">{s.error}</pre>
            <p class="banner-advice">
              Its apps are hidden because its signature did not verify. Check the catalog's key on the node (
              {s.location}).
            </p>
          </div>
        </div>
      ))}
      <div class="market-toolbar">
        <input
          ref={search}
          type="search"
          class="input market-search"
          placeholder="Search apps  ( / )"
          aria-label="Search apps"
          data-testid="marketplace-search"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
        />
        <div class="chips" role="group" aria-label="Categories">
          <button
            type="button"
            class="chip"
            aria-pressed={category === null}
            data-testid="category-chip-all"
            onClick={() => setCategory(null)}
          >
            All <span class="chip-count">{catalog.apps.length}</span>
          </button>
          {cats.map((c) => (
            <button
              type="button"
              class="chip"
              key={c.category}
              aria-pressed={category === c.category}
              data-testid={`category-chip-${c.category}`}
              onClick={() => setCategory(category === c.category ? null : c.category)}
            >
              {categoryLabel(c.category)} <span class="chip-count">{c.count}</span>
            </button>
          ))}
        </div>
      </div>
      {catalog.apps.length === 0 ? (
        <div class="empty" data-testid="marketplace-empty">
          <h2>The catalog is empty</h2>
          <p>This node's catalogs offer no apps{refused.length > 0 ? " (see the warning above)" : ""}.</p>
        </div>
      ) : shown.length === 0 ? (
        <div class="empty" data-testid="marketplace-no-match">
          <p>
            No app matches “{query}”{category ? ` in ${categoryLabel(category)}` : ""}.
          </p>
          <button
            type="button"
            class="button"
            onClick={() => {
              setQuery("");
              setCategory(null);
            }}
          >
            Show all apps
          </button>
        </div>
      ) : (
        <ul class="app-grid" aria-label="Apps">
          {shown.map((a) => (
            <li key={a.id}>
              <AppCard
                nodeId={nodeId}
                app={a}
                official={catalog.sources.find((s) => s.name === a.source)?.official ?? false}
              />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function AppCard({ nodeId, app, official }: { nodeId: string; app: CatalogApp; official: boolean }) {
  const icon = useIcon(nodeId, app.id, app.has_icon);
  const job = installJobs.value[jobKey(nodeId, app.id)];
  const installed = app.installed !== null || job?.state === "done";
  return (
    <article class="card app-card" data-testid={`app-card-${app.id}`} data-installed={installed}>
      <header class="app-card-head">
        {icon ? (
          <img class="app-icon" src={icon} alt="" width={48} height={48} />
        ) : (
          <span class="app-icon app-icon-placeholder" aria-hidden="true">
            {app.name.charAt(0).toUpperCase()}
          </span>
        )}
        <div class="app-card-title">
          <h3>{app.name}</h3>
          <p class="app-meta">
            {app.version} · {categoryLabel(app.category)}
          </p>
        </div>
      </header>
      <p class="app-desc">{app.short_description}</p>
      <div class="badges">
        <span
          class={official ? "badge" : "badge badge-community"}
          data-testid={`source-badge-${app.id}`}
          title={official ? "From the official catalog" : "From a community catalog added on this node"}
        >
          {official ? app.source : `community: ${app.source}`}
        </span>
        {installed && (
          <span class="badge badge-ok" data-testid={`installed-badge-${app.id}`}>
            ✓ Installed{app.installed ? ` ${app.installed}` : ""}
          </span>
        )}
        {installed && app.update_available && (
          <span
            class="badge badge-update"
            data-testid={`update-available-badge-${app.id}`}
            title={`This catalog offers ${app.version}: update it from the dashboard`}
          >
            Update available
          </span>
        )}
        {app.dependencies.length > 0 && <span class="badge">Needs {app.dependencies.join(", ")}</span>}
      </div>
      {app.description !== app.short_description && app.description !== "" && (
        <details class="app-details">
          <summary>Details</summary>
          <p>{app.description}</p>
          {app.upstream.length > 0 && (
            <ul class="upstream">
              {app.upstream.map((u) => (
                <li key={u} class="mono small">
                  {u}
                </li>
              ))}
            </ul>
          )}
        </details>
      )}
      {job && (job.state === "running" || job.state === "failed" || job.state === "done") && (
        <InstallProgressView
          appId={app.id}
          progress={job.progress}
          lastPhase={job.lastPhase}
          failed={job.state === "failed"}
        />
      )}
      {job?.state === "failed" && job.error && (
        <ErrorBanner
          error={job.error}
          context={`Installing ${app.name}`}
          onLogin={needsLogin(job.error) ? () => (dialog.value = { kind: "login", nodeId }) : undefined}
          onRetry={() => void startInstall(nodeId, app.id)}
          onDismiss={() => dismissJob(nodeId, app.id)}
        />
      )}
      <footer class="card-actions">
        {installed ? (
          <button
            type="button"
            class="button"
            data-testid={`manage-button-${app.id}`}
            onClick={() => openNode(nodeId, "dashboard")}
          >
            Open dashboard
          </button>
        ) : job?.state === "failed" ? null : (
          <button
            type="button"
            class="button button-primary"
            data-testid={`install-button-${app.id}`}
            disabled={job?.state === "running"}
            onClick={() => {
              void startInstall(nodeId, app.id).then(() => refreshNode(nodeId));
            }}
          >
            {job?.state === "running" ? "Installing…" : "Install"}
          </button>
        )}
      </footer>
    </article>
  );
}
