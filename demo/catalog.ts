/**
 * The demo site's catalogue: titles generated from item ids, so the demo never ships real titles
 * (MovieLens' licence forbids that, and YOOCHOOSE has none). Deterministic: the same id always gets
 * the same title and colour.
 */
import { fnv1a32 } from '../protocol/hash.js';

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

/** A catalogue entry as the demo shows it. */
export interface CatalogItem {
  readonly id: string;
  readonly title: string;
  readonly hue: number;
}

/** The demo's entry for an item id. */
export function catalogItem(id: string): CatalogItem {
  const h = fnv1a32(id);
  const title = `${ADJECTIVES[h % 20]} ${NOUNS[(h >>> 5) % 20]} ${KINDS[(h >>> 10) % 8]}`;
  return { id, title, hue: (h >>> 13) % 360 };
}
