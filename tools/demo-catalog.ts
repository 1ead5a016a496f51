/**
 * The demo site's catalogue, which `npm start` and the e2e stack load into the server (`--catalog`)
 * when no site catalogue is given: titles generated from item ids, so the demo never ships real
 * titles (MovieLens' licence forbids that, and YOOCHOOSE has none). Deterministic: the same id always
 * gets the same title, category and cover (the demo's own drawings, public/covers/). The demo page renders from the server's `GET /v1/catalog`, as a
 * site would.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CatalogItem } from '../protocol/catalog.js';
import { fnv1a32 } from '../protocol/hash.js';
import type { ModelManifest } from '../protocol/manifest.js';

const ADJECTIVES = [
  'Amber',
  'Quiet',
  'Copper',
  'Velvet',
  'Northern',
  'Hidden',
  'Silver',
  'Wild',
  'Paper',
  'Golden',
  'Lunar',
  'Salt',
  'Ember',
  'Cedar',
  'Glass',
  'Iron',
  'Misty',
  'Coral',
  'Linen',
  'Autumn',
];
const NOUNS = [
  'Lantern',
  'Harbour',
  'Kettle',
  'Atlas',
  'Garden',
  'Compass',
  'Orchard',
  'Journal',
  'Tide',
  'Meadow',
  'Engine',
  'Parlour',
  'Canyon',
  'Archive',
  'Workshop',
  'Signal',
  'Voyage',
  'Pantry',
  'Ridge',
  'Loom',
];
const KINDS = [
  'Stories',
  'Guide',
  'Notes',
  'Recipes',
  'Letters',
  'Field Book',
  'Almanac',
  'Sketches',
];

/** The demo's entry for an item id. */
export function demoItem(id: string): CatalogItem {
  const h = fnv1a32(id);
  const kind = KINDS[(h >>> 10) % 8]!;
  return {
    id,
    title: `${ADJECTIVES[h % 20]} ${NOUNS[(h >>> 5) % 20]} ${kind}`,
    url: `/#item-${encodeURIComponent(id)}`,
    // One drawn cover per category (public/covers/), shipped with the demo.
    image: `/covers/${kind.toLowerCase().replace(' ', '-')}.svg`,
    category: kind,
  };
}

/** The demo catalogue of a model: its items, most popular first, then the rest in row order. */
export function demoCatalog(manifest: Pick<ModelManifest, 'itemIds' | 'popular'>): CatalogItem[] {
  const rows = [...new Set([...manifest.popular, ...manifest.itemIds.keys()])].filter((r) => r > 0);
  return rows.map((row) => demoItem(manifest.itemIds[row]!));
}

/** The demo catalogue of the model in `modelDir` (its manifest.json). */
export function demoCatalogOf(modelDir: string): CatalogItem[] {
  return demoCatalog(
    JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as ModelManifest,
  );
}

/** Writes the demo catalogue of the model in `modelDir` to `file` (JSON). */
export async function writeDemoCatalog(modelDir: string, file: string): Promise<void> {
  await writeFile(file, `${JSON.stringify(demoCatalogOf(modelDir))}\n`);
}
