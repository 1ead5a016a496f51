/**
 * New catalogue items get model rows without retraining: every version a round publishes appends a
 * row for each catalogue item the model does not have yet. No other row moves or changes (rows are
 * numbered in the order items arrived), so devices' state, keyed by item id, stays valid, and an
 * update computed on the version before still fits (protocol/update-layout.ts grownFrom).
 *
 * A new row starts from what is known about the item: the mean embedding and bias of the modelled
 * items of its category, else of those sharing one of its tags, else of those published the same
 * day; with none of these, a small random vector (seeded by its id) and the median bias. The new
 * items lead the manifest's recency order, so cold lists show them at once; federated rounds then
 * learn their vectors like any other row's. An item that left the catalogue keeps its row (devices
 * never show it).
 */
import { EMBEDDING_INIT_STD } from '../model/init.js';
import type { CatalogItem } from '../protocol/catalog.js';
import { fnv1a32 } from '../protocol/hash.js';
import {
  layoutHash,
  splitFlat,
  tensorLayout,
  weightsByteLength,
  type ModelManifest,
} from '../protocol/manifest.js';
import { mulberry32, normal } from '../protocol/prng.js';
import { withAddedItems } from '../protocol/update-layout.js';
import { newestFirst } from './cold-start.js';
import { FEDADAM, type FedAdamState } from './fedadam.js';

/** A version's template, weights and optimiser state after growing, and how many rows it gained. */
export interface Grown {
  readonly manifest: ModelManifest;
  readonly weights: Float32Array;
  readonly optimizerState?: FedAdamState;
  readonly added: number;
}

/** Where a new item's first vector came from (for tests and logs). */
export type Origin = 'category' | 'tags' | 'day' | 'random';

const DAY_MS = 86_400_000;

function day(published: string | undefined): number | undefined {
  return published === undefined ? undefined : Math.floor(Date.parse(published) / DAY_MS);
}

function push<K>(map: Map<K, number[]>, key: K, row: number): void {
  const list = map.get(key);
  if (list) list.push(row);
  else map.set(key, [row]);
}

/**
 * The first embedding (d values) and bias of each item in `added`, from the rows of `model` (the
 * current weights, split by tensor) that the catalogue says are alike.
 */
export function initialRows(
  manifest: ModelManifest,
  weights: Float32Array,
  catalog: readonly CatalogItem[],
  added: readonly CatalogItem[],
): { rows: Float32Array; bias: Float32Array; origins: Origin[] } {
  const d = manifest.dims.embedding;
  const parts = splitFlat(weights, manifest.tensors);
  const table = parts.get('item_embedding')!;
  const biases = parts.get('item_bias')!;
  const rowOf = new Map(manifest.itemIds.map((id, row) => [id, row]));
  const byCategory = new Map<string, number[]>();
  const byTag = new Map<string, number[]>();
  const byDay = new Map<number, number[]>();
  for (const item of catalog) {
    const row = rowOf.get(item.id);
    if (row === undefined || row === 0) continue;
    if (item.category !== undefined) push(byCategory, item.category, row);
    for (const tag of item.tags ?? []) push(byTag, tag, row);
    const when = day(item.published);
    if (when !== undefined) push(byDay, when, row);
  }
  const sorted = Array.from(biases.subarray(1)).sort((a, b) => a - b);
  const medianBias = sorted.length ? sorted[sorted.length >> 1]! : 0;

  const rows = new Float32Array(added.length * d);
  const bias = new Float32Array(added.length);
  const origins: Origin[] = [];
  added.forEach((item, i) => {
    const tagged = [...new Set((item.tags ?? []).flatMap((tag) => byTag.get(tag) ?? []))];
    const when = day(item.published);
    const sameDay =
      when === undefined ? [] : [when - 1, when, when + 1].flatMap((k) => byDay.get(k) ?? []);
    const candidates: [Origin, readonly number[]][] = [
      ['category', (item.category !== undefined && byCategory.get(item.category)) || []],
      ['tags', tagged],
      ['day', sameDay],
    ];
    const found = candidates.find(([, peers]) => peers.length > 0);
    const out = rows.subarray(i * d, (i + 1) * d);
    if (found) {
      const [origin, peers] = found;
      for (const row of peers) {
        for (let k = 0; k < d; k++) out[k]! += table[row * d + k]! / peers.length;
        bias[i]! += biases[row]! / peers.length;
      }
      origins.push(origin);
    } else {
      const rng = mulberry32(fnv1a32(item.id));
      for (let k = 0; k < d; k++) out[k] = EMBEDDING_INIT_STD * normal(rng);
      bias[i] = medianBias;
      origins.push('random');
    }
  });
  return { rows, bias, origins };
}

/**
 * `manifest` and `weights` grown by a row for each item of `catalog` the model does not have, in
 * catalogue order (FedAdam's moments grown as a fresh state starts them); unchanged when there is
 * none.
 */
export function growForCatalog(
  manifest: ModelManifest,
  weights: Float32Array,
  optimizerState: FedAdamState | undefined,
  catalog: readonly CatalogItem[] | undefined,
): Grown {
  const known = new Set(manifest.itemIds);
  const added = (catalog ?? []).filter((item) => !known.has(item.id));
  if (added.length === 0) {
    return { manifest, weights, ...(optimizerState ? { optimizerState } : {}), added: 0 };
  }
  const { rows, bias } = initialRows(manifest, weights, catalog!, added);
  const dims = { ...manifest.dims, items: manifest.dims.items + added.length };
  const tensors = tensorLayout(dims);
  // newestFirst numbers `added` from 1; their rows start after the model's last.
  const newest = newestFirst(added).map((i) => manifest.dims.items + i - 1);
  const grown: ModelManifest = {
    ...manifest,
    dims,
    tensors,
    layoutHash: layoutHash(tensors),
    weights: {
      ...manifest.weights,
      byteLength: weightsByteLength(tensors, manifest.weights.dtype),
    },
    itemIds: [...manifest.itemIds, ...added.map((item) => item.id)],
    recent: [...newest, ...(manifest.recent ?? [])],
  };
  const grow = <T extends Float32Array | Float64Array>(
    full: T,
    r?: ArrayLike<number>,
    b?: ArrayLike<number>,
  ) => withAddedItems(full, manifest.dims, added.length, r, b);
  // New coordinates' moments start where a fresh FedAdam state starts them (fedadam.ts).
  const v0 = FEDADAM.tau * FEDADAM.tau;
  return {
    manifest: grown,
    weights: grow(weights, rows, bias),
    ...(optimizerState
      ? {
          optimizerState: {
            step: optimizerState.step,
            m: grow(optimizerState.m),
            v: grow(
              optimizerState.v,
              new Float64Array(rows.length).fill(v0),
              new Float64Array(added.length).fill(v0),
            ),
          },
        }
      : {}),
    added: added.length,
  };
}
