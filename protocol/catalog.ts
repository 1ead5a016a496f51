/**
 * The site's catalogue: the items devices may be shown, with what a page needs to show them. It
 * belongs to the server (loaded from a file or a feed, replaced by the operator) and is public data:
 * devices fetch it with its own ETag, apart from the model's weights, so a changed title never
 * re-downloads the model. Both sides validate it with `catalogItem` and `checkCatalog` here.
 *
 *   { "id": "a-17", "title": "Salt and cedar", "url": "https://example.com/a-17",
 *     "image": "https://example.com/a-17.jpg", "published": "2026-11-30T08:00:00Z",
 *     "category": "Food", "tags": ["cooking", "winter"] }
 */
import { HearthError } from './hearth-error.js';

/** One item of the catalogue, normalised (trimmed strings, `published` as ISO 8601 UTC). */
export interface CatalogItem {
  readonly id: string;
  readonly title: string;
  /** Where the item lives: an absolute http(s) URL or a path on the site ("/articles/17"). */
  readonly url: string;
  readonly image?: string;
  readonly published?: string;
  readonly category?: string;
  readonly tags?: readonly string[];
}

/** The catalogue as `GET /v1/catalog` serves it. */
export interface CatalogDocument {
  /** Counts up by one with every change the server stores. */
  readonly version: number;
  /** ISO time of that change. */
  readonly updatedAt: string;
  readonly items: readonly CatalogItem[];
}

/** Bounds on a catalogue and its fields; anything past them is refused with HEARTH_E_CATALOG. */
export const CATALOG_LIMITS = {
  /** Bytes of one catalogue file, feed or request body. */
  bytes: 16 * 1024 * 1024,
  items: 200_000,
  id: 256,
  title: 500,
  url: 2048,
  category: 100,
  tags: 32,
  tag: 100,
} as const;

/** Where a value came from, for error messages: "line 7", "item 3", "entry 12". */
export type Where = string;

function fail(where: Where, problem: string): never {
  throw new HearthError('HEARTH_E_CATALOG', `${where}: ${problem}`);
}

/** Control characters (C0 and C1, tab included) never belong in an id or a title. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A required or optional text field: trimmed, inner whitespace runs made one space, bounded. */
function text(value: unknown, field: string, max: number, where: Where): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' && typeof value !== 'number') {
    fail(where, `"${field}" must be a string`);
  }
  const out = String(value).replace(/\s+/g, ' ').trim();
  if (out === '') return undefined;
  if (out.length > max) fail(where, `"${field}" is longer than ${max} characters`);
  return out;
}

/**
 * A link a page may follow or load: absolute http(s), or a path on the site. Anything else
 * (javascript:, data:, a bare word) is refused rather than silently dropped.
 */
function link(value: unknown, field: string, where: Where): string | undefined {
  const raw = text(value, field, CATALOG_LIMITS.url, where);
  if (raw === undefined) return undefined;
  if (/\s/.test(raw)) fail(where, `"${field}" contains whitespace`);
  if (raw.startsWith('/') && !raw.startsWith('//')) return raw;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    fail(where, `"${field}" must use http or https, not ${scheme}:`);
  }
  if (!/^https?:\/\/[^/?#@]+(?:[/?#]|$)/i.test(raw)) {
    fail(where, `"${field}" is not an absolute http(s) URL or a path starting with /`);
  }
  return raw;
}

/** A time as ISO 8601 UTC; accepts what feeds write (ISO 8601, RFC 822 dates, epoch ms). */
function time(value: unknown, field: string, where: Where): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date =
    typeof value === 'number'
      ? new Date(value)
      : typeof value === 'string'
        ? new Date(value.trim())
        : new Date(NaN);
  if (Number.isNaN(date.getTime())) fail(where, `"${field}" is not a date: ${String(value)}`);
  return date.toISOString();
}

/** Tags from an array or a "a|b|c" / "a;b" / "a,b" string; trimmed, deduplicated, bounded. */
function tagList(value: unknown, where: Where): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const raw = Array.isArray(value)
    ? value
    : typeof value === 'string'
      ? value.split(/[|;,]/)
      : fail(where, '"tags" must be an array of strings or a list separated by |');
  const tags: string[] = [];
  for (const tag of raw) {
    const t = text(tag, 'tags', CATALOG_LIMITS.tag, where);
    if (t !== undefined && !tags.includes(t)) tags.push(t);
  }
  if (tags.length > CATALOG_LIMITS.tags) fail(where, `more than ${CATALOG_LIMITS.tags} tags`);
  return tags.length ? tags : undefined;
}

/** One raw entry (from JSON, a CSV row, a feed item) checked and normalised; throws naming `where`. */
export function catalogItem(raw: unknown, where: Where): CatalogItem {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(where, 'an item must be an object with "id", "title" and "url"');
  }
  const entry = raw as Record<string, unknown>;
  const id = text(entry.id, 'id', CATALOG_LIMITS.id, where) ?? fail(where, '"id" is missing');
  if (CONTROL.test(String(entry.id))) fail(where, '"id" contains control characters');
  const title =
    text(entry.title, 'title', CATALOG_LIMITS.title, where) ?? fail(where, '"title" is missing');
  const url = link(entry.url, 'url', where) ?? fail(where, '"url" is missing');
  const image = link(entry.image, 'image', where);
  const published = time(entry.published, 'published', where);
  const category = text(entry.category, 'category', CATALOG_LIMITS.category, where);
  const tags = tagList(entry.tags, where);
  return {
    id,
    title,
    url,
    ...(image === undefined ? {} : { image }),
    ...(published === undefined ? {} : { published }),
    ...(category === undefined ? {} : { category }),
    ...(tags === undefined ? {} : { tags }),
  };
}

/**
 * A whole catalogue checked: at least one item, at most CATALOG_LIMITS.items, no id twice (the
 * error names both places). `places[i]` says where item i came from.
 */
export function checkCatalog(
  items: readonly CatalogItem[],
  places: readonly Where[],
  source: string,
): readonly CatalogItem[] {
  if (items.length === 0) throw new HearthError('HEARTH_E_CATALOG', `${source}: no items`);
  if (items.length > CATALOG_LIMITS.items) {
    throw new HearthError(
      'HEARTH_E_CATALOG',
      `${source}: ${items.length} items, more than ${CATALOG_LIMITS.items}`,
    );
  }
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(item.id);
    if (first !== undefined) {
      fail(`${source}, ${places[i]}`, `duplicate id "${item.id}" (first at ${places[first]})`);
    }
    seen.set(item.id, i);
  });
  return items;
}

/** A served catalogue document checked on the device (an older server or a proxy may mangle it). */
export function parseCatalogDocument(value: unknown): CatalogDocument {
  const doc = value as Partial<CatalogDocument> | null;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.items)) {
    throw new HearthError('HEARTH_E_CATALOG', 'catalogue document has no "items" array');
  }
  if (!Number.isSafeInteger(doc.version) || (doc.version as number) < 1) {
    throw new HearthError('HEARTH_E_CATALOG', 'catalogue document has no valid "version"');
  }
  const items = doc.items.map((item, i) => catalogItem(item, `item ${i + 1}`));
  checkCatalog(
    items,
    items.map((_, i) => `item ${i + 1}`),
    'catalogue',
  );
  return { version: doc.version as number, updatedAt: String(doc.updatedAt ?? ''), items };
}
