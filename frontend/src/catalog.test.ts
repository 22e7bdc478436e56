import { describe, expect, it } from "vitest";

import type { CatalogApp } from "./bindings/CatalogApp";
import { categoryCounts, filterApps, iconDataUrl, matchesQuery } from "./catalog";

const app = (
  id: string,
  name: string,
  category: string,
  short_description = "",
  source = "archipelago",
): CatalogApp => ({
  id,
  name,
  version: "1.0",
  description: `${name} long description`,
  category,
  short_description,
  has_icon: false,
  dependencies: [],
  installed: null,
  source,
  upstream: [],
  update_available: false,
});

const apps = [
  app("bitcoin-core", "Bitcoin Core", "bitcoin", "The reference full node"),
  app("electrumx", "ElectrumX", "bitcoin", "Electrum server for your bitcoin wallets"),
  app("lnd", "LND", "lightning", "A Lightning node"),
  app("filebrowser", "File Browser", "files", "Manage files", "community-lab"),
];

describe("search and filters", () => {
  it("matches every word anywhere in the app's texts", () => {
    expect(matchesQuery(apps[0]!, "")).toBe(true);
    expect(matchesQuery(apps[0]!, "bitcoin node")).toBe(true);
    expect(matchesQuery(apps[0]!, "BITCOIN lightning")).toBe(false);
    expect(matchesQuery(apps[3]!, "community")).toBe(true);
  });
  it("puts name matches first, then sorts by name", () => {
    expect(filterApps(apps, { query: "bitcoin", category: null }).map((a) => a.id)).toEqual([
      "bitcoin-core",
      "electrumx",
    ]);
    expect(filterApps(apps, { query: "", category: null }).map((a) => a.id)).toEqual([
      "bitcoin-core",
      "electrumx",
      "filebrowser",
      "lnd",
    ]);
  });
  it("filters by category and query together", () => {
    expect(filterApps(apps, { query: "", category: "lightning" }).map((a) => a.id)).toEqual(["lnd"]);
    expect(filterApps(apps, { query: "wallets", category: "bitcoin" }).map((a) => a.id)).toEqual(["electrumx"]);
    expect(filterApps(apps, { query: "wallets", category: "files" })).toEqual([]);
  });
  it("does not reorder its input", () => {
    const copy = [...apps];
    filterApps(apps, { query: "", category: null });
    expect(apps).toEqual(copy);
  });
  it("counts categories", () => {
    expect(categoryCounts(apps)).toEqual([
      { category: "bitcoin", count: 2 },
      { category: "files", count: 1 },
      { category: "lightning", count: 1 },
    ]);
  });
});

describe("icons", () => {
  it("builds a data URL and never another media type than an image", () => {
    expect(iconDataUrl({ media_type: "image/png", data_base64: "AAAA" })).toBe("data:image/png;base64,AAAA");
    expect(iconDataUrl({ media_type: "text/html", data_base64: "AAAA" })).toBe("data:image/png;base64,AAAA");
  });
});
