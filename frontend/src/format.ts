//! Pure formatting helpers: bytes, ages, loads and fingerprints as people read them.

/** Bytes in binary units, one decimal below 10 ("512 B", "1.5 GiB", "23 GiB"). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const text = value < 10 ? value.toFixed(1) : Math.round(value).toString();
  return `${text} ${units[unit]}`;
}

/** How long ago, in words: "just now", "3 min ago", "2 h ago", "5 days ago". */
export function formatAge(secondsAgo: number): string {
  const s = Math.max(0, Math.floor(secondsAgo));
  if (s < 45) return "just now";
  if (s < 90) return "1 min ago";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  const days = Math.floor(s / 86_400);
  return days === 1 ? "1 day ago" : `${days} days ago`;
}

/** "last seen 3 min ago", or "not seen yet" for a node that never answered. */
export function lastSeenText(lastSeen: number | null, nowSecs: number): string {
  if (lastSeen === null || lastSeen <= 0) return "not seen yet";
  return `last seen ${formatAge(nowSecs - lastSeen)}`;
}

/** An uptime: "12 min", "5 h 12 min", "3 d 4 h". */
export function formatUptime(secs: number): string {
  const s = Math.max(0, Math.floor(secs));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min`;
}

/** A percentage with no more precision than is useful: "0.4%", "12%". */
export function formatPercent(pct: number): string {
  if (!Number.isFinite(pct)) return "–";
  if (pct > 0 && pct < 10) return `${pct.toFixed(1)}%`;
  return `${Math.round(pct)}%`;
}

/** The share of a total in use, 0..1 (0 when the total is unknown). */
export function usedFraction(total: number, free: number): number {
  if (!(total > 0)) return 0;
  return Math.min(1, Math.max(0, (total - free) / total));
}

/** One-minute load per core, 0.. (may exceed 1 when overloaded). */
export function loadPerCore(load1: number, cores: number): number {
  return cores > 0 ? load1 / cores : load1;
}

/**
 * A fingerprint normalised to lowercase hex pairs joined by colons, the way
 * `archipelagod pairing` prints it; null unless it is 32 bytes of hex.
 */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.toLowerCase().replace(/[\s:-]/g, "");
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(":");
}

/** Whether two fingerprints are the same, however they are spelled. */
export function fingerprintsMatch(a: string, b: string): boolean {
  const na = normalizeFingerprint(a);
  return na !== null && na === normalizeFingerprint(b);
}

/**
 * A fingerprint in rows of 8 pairs, for comparing by eye with the node's
 * screen: 4 rows for a SHA-256.
 */
export function fingerprintRows(fingerprint: string, perRow = 8): string[] {
  const pairs = (normalizeFingerprint(fingerprint) ?? fingerprint).split(":");
  const rows: string[] = [];
  for (let i = 0; i < pairs.length; i += perRow) {
    rows.push(pairs.slice(i, i + perRow).join(":"));
  }
  return rows;
}

/** The host part of a node address (`host`, `host:port`, `[v6]:port`). */
export function addressHost(address: string): string {
  const a = address
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "");
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    return end > 0 ? a.slice(0, end + 1) : a;
  }
  const colons = a.split(":").length - 1;
  if (colons === 1) return a.slice(0, a.indexOf(":"));
  if (colons > 1) return `[${a}]`; // bare IPv6 without port
  return a;
}

/** Words for a category id: `bitcoin` → "Bitcoin", `home-automation` → "Home automation". */
export function categoryLabel(category: string): string {
  const words = category.replace(/[-_]+/g, " ").trim();
  if (words === "") return "Other";
  return words.charAt(0).toUpperCase() + words.slice(1);
}
