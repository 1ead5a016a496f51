/**
 * The site's catalogue on the device: `GET /v1/catalog` (revalidated by the browser's HTTP cache with
 * its ETag; a changed title never re-downloads the model), checked before use. It decides what may
 * be shown: a model row whose item left the catalogue is never recommended, and a tracked id the
 * catalogue does not know is reported once (HEARTH_E_UNKNOWN_ITEM) instead of silently doing
 * nothing. A server without a catalogue (404) leaves the model's own item ids in charge.
 */
import type { Recommendation } from '../protocol/api.js';
import { parseCatalogDocument, type CatalogItem } from '../protocol/catalog.js';
import { HearthError } from '../protocol/errors.js';
import { PATHS } from '../protocol/routes.js';
import { hearthGet } from './model-source.js';

/** A checked catalogue, by id. */
export interface DeviceCatalog {
  readonly version: number;
  readonly items: ReadonlyMap<string, CatalogItem>;
}

/** The server's catalogue, or null when it has none (404); throws HEARTH_E_CATALOG otherwise. */
export async function fetchCatalog(endpoint: string): Promise<DeviceCatalog | null> {
  const url = new URL(PATHS.catalog, endpoint).href;
  const response = await hearthGet(url, 'HEARTH_E_CATALOG');
  if (response.status === 404) return null;
  if (!response.ok) throw new HearthError('HEARTH_E_CATALOG', `${url}: HTTP ${response.status}`);
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    throw new HearthError('HEARTH_E_CATALOG', `${url}: not JSON`);
  }
  const doc = parseCatalogDocument(json);
  return { version: doc.version, items: new Map(doc.items.map((item) => [item.id, item])) };
}

/** The model rows (1..) whose item ids the catalogue does not list: never to be recommended. */
export function rowsOutside(itemIds: readonly string[], catalog: DeviceCatalog | null): number[] {
  if (!catalog) return [];
  const out: number[] = [];
  for (let row = 1; row < itemIds.length; row++) {
    if (!catalog.items.has(itemIds[row]!)) out.push(row);
  }
  return out;
}

/** Recommendations with what the catalogue says of each item and of each reason's item. */
export function withCatalogEntries(
  recs: readonly Recommendation[],
  catalog: DeviceCatalog | null,
): Recommendation[] {
  if (!catalog) return [...recs];
  return recs.map((rec) => {
    const entry = catalog.items.get(rec.item);
    const because = rec.reason && catalog.items.get(rec.reason.item);
    return {
      ...rec,
      ...(entry ? shown(entry) : {}),
      ...(rec.reason && because ? { reason: { ...rec.reason, title: because.title } } : {}),
    };
  });
}

function shown(entry: CatalogItem): Pick<Recommendation, 'title' | 'url' | 'image'> {
  return {
    title: entry.title,
    url: entry.url,
    ...(entry.image === undefined ? {} : { image: entry.image }),
  };
}
