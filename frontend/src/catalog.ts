//! Marketplace search and category filters, kept pure for tests.

import type { CatalogApp } from "./bindings/CatalogApp";

export interface CatalogFilter {
  query: string;
  /** A category id, or null for all. */
  category: string | null;
}

/** Every word of the query must appear in the app's name, id, descriptions, category or source. */
export function matchesQuery(app: CatalogApp, query: string): boolean {
  const words = query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== "");
  if (words.length === 0) return true;
  const haystack = [app.name, app.id, app.short_description, app.description, app.category, app.source]
    .join("\n")
    .toLowerCase();
  return words.every((w) => haystack.includes(w));
}

/** The apps shown for a filter, sorted by name; matches in the name come first. */
export function filterApps(apps: readonly CatalogApp[], filter: CatalogFilter): CatalogApp[] {
  const q = filter.query.trim().toLowerCase();
  const shown = apps.filter((a) => (filter.category === null || a.category === filter.category) && matchesQuery(a, q));
  return shown.sort((a, b) => {
    if (q !== "") {
      const an = a.name.toLowerCase().includes(q) ? 0 : 1;
      const bn = b.name.toLowerCase().includes(q) ? 0 : 1;
      if (an !== bn) return an - bn;
    }
    return a.name.localeCompare(b.name);
  });
}

export interface CategoryCount {
  category: string;
  count: number;
}

/** The categories present, with how many apps each has, in alphabetical order. */
export function categoryCounts(apps: readonly CatalogApp[]): CategoryCount[] {
  const counts = new Map<string, number>();
  for (const a of apps) counts.set(a.category, (counts.get(a.category) ?? 0) + 1);
  return [...counts.entries()]
    .map(([category, count]) => ({ category, count }))
    .sort((a, b) => a.category.localeCompare(b.category));
}

/** A data: URL for an icon returned by `catalog_icon`. */
export function iconDataUrl(icon: { media_type: string; data_base64: string }): string {
  const type = /^image\/(png|jpeg|webp|gif)$/.test(icon.media_type) ? icon.media_type : "image/png";
  return `data:${type};base64,${icon.data_base64}`;
}
