/**
 * A site with a catalogue and no click logs starts cold: with no seed model given, the server
 * publishes a first model over the catalogue's items at once. Its weights are the seeded initial ones
 * (model/init.ts), so its ranking says nothing yet; devices recommend from the manifest's recency
 * order (newest published first) and the exploration slot until federated rounds have taught it.
 */
import { coldStartDims, initialWeights } from '../model/init.js';
import type { CatalogItem } from '../protocol/catalog.js';
import { manifestFor } from '../protocol/manifest.js';
import type { ServerConfig } from './config.js';
import type { StoredVersion } from './store.js';
import { federationParams, versionManifest, versionLayout } from './versions.js';

/** The seed of the initial weights: every cold start of one catalogue publishes the same model. */
const COLD_SEED = 1;

/** Rows 1.. of `items` ordered newest published first; undated items after, in catalogue order. */
export function newestFirst(items: readonly CatalogItem[]): number[] {
  const time = (item: CatalogItem) =>
    item.published === undefined ? -Infinity : Date.parse(item.published);
  return items
    .map((item, i) => ({ row: i + 1, t: time(item) }))
    .sort((a, b) => b.t - a.t || a.row - b.row)
    .map((entry) => entry.row);
}

/** Version 1 of a site that has only its catalogue. */
export function coldStartVersion(
  items: readonly CatalogItem[],
  config: ServerConfig,
  now = new Date(),
): StoredVersion {
  const dims = coldStartDims(items.length + 1);
  const template = manifestFor(dims, {
    itemIds: ['', ...items.map((item) => item.id)],
    popular: [],
    recent: newestFirst(items),
    federation: federationParams(config),
    training: { source: 'catalogue', items: items.length },
  });
  const weights = initialWeights(dims, COLD_SEED);
  const layout = versionLayout(config, dims, 1, weights, template.layoutHash);
  return { manifest: versionManifest(template, 1, now.toISOString(), layout), weights };
}
