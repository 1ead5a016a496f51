/**
 * Pure helpers of the `<hearth-recs>` element (src/recs-element.ts), kept apart from the DOM so
 * they can be unit-tested in Node.
 */

/** What the page knows about one item: the manifest has ids only, so titles come from the site. */
export interface CatalogEntry {
  readonly title?: string;
  readonly url?: string;
  readonly image?: string;
}

/** `{ "<id>": { title, url, image } }`, as the `catalog` attribute's JSON or `element.catalog`. */
export type Catalog = Readonly<Record<string, CatalogEntry>>;

/** The `k` attribute as an integer in 1..100; anything else gives the default 6. */
export function parseK(value: string | null): number {
  const k = Number(value ?? '');
  return Number.isInteger(k) && k >= 1 && k <= 100 ? k : 6;
}

/** Rows the list needs for k items in `columns` columns (at least one of each). */
export function rowsFor(k: number, columns: number): number {
  const c = Number.isFinite(columns) && columns >= 1 ? Math.floor(columns) : 1;
  return Math.max(1, Math.ceil(k / c));
}

/** Keeps only well-formed entries (string fields) of an untrusted catalogue object. */
export function normalizeCatalog(input: unknown): Record<string, CatalogEntry> {
  const out: Record<string, CatalogEntry> = {};
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return out;
  for (const [id, raw] of Object.entries(input as Record<string, unknown>)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const entry: { title?: string; url?: string; image?: string } = {};
    for (const key of ['title', 'url', 'image'] as const) {
      const value = (raw as Record<string, unknown>)[key];
      if (typeof value === 'string' && value) entry[key] = value;
    }
    out[id] = entry;
  }
  return out;
}

/** Only http(s) and relative URLs become links or images: never `javascript:` from a catalogue. */
export function safeUrl(value: string | undefined, base: string): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}
