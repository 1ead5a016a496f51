import { describe, expect, it } from 'vitest';
import type { CatalogItem } from '../protocol/catalog.js';
import { manifestFor, parseManifest, splitFlat, tensorLayout } from '../protocol/manifest.js';
import {
  fitUpdate,
  grownFrom,
  manifestLayout,
  roundRows,
  withAddedItems,
} from '../protocol/update-layout.js';
import { growForCatalog, initialRows } from './catalog-growth.js';
import { initialFedAdamState } from './fedadam.js';

const DIMS = { items: 5, embedding: 3, hidden: 2, maxSessionLength: 4 };
const manifest = parseManifest(
  manifestFor(DIMS, {
    itemIds: ['', 'a', 'b', 'c', 'd'],
    popular: [1, 2],
    recent: [4, 3],
    federation: { clipNorm: 1, minCohort: 2, maxExamples: 10, updateRows: [1, 2, 3, 4] },
  }),
);
const weights = Float32Array.from({ length: manifest.weights.byteLength / 4 }, (_, i) => i / 7);
const parts = splitFlat(weights, manifest.tensors);
const row = (r: number) => Array.from(parts.get('item_embedding')!.subarray(r * 3, r * 3 + 3));
const bias = (r: number) => parts.get('item_bias')![r]!;

const at = (id: string, extra: Partial<CatalogItem> = {}): CatalogItem => ({
  id,
  title: id,
  url: `/${id}`,
  ...extra,
});
const catalog: CatalogItem[] = [
  at('a', { category: 'food', published: '2026-12-01T08:00:00Z' }),
  at('b', { category: 'food', tags: ['x'] }),
  at('c', { tags: ['x', 'y'], published: '2026-11-01T08:00:00Z' }),
  at('d', { published: '2026-11-20T08:00:00Z' }),
];

describe('initialRows', () => {
  it('starts a new row from its category, else its tags, else its day, else at random', () => {
    const added = [
      at('n1', { category: 'food', tags: ['y'] }),
      at('n2', { tags: ['x'] }),
      at('n3', { published: '2026-11-20T23:00:00Z' }),
      at('n4', { category: 'none', published: '2020-01-01T00:00:00Z' }),
    ];
    const { rows, bias: b, origins } = initialRows(manifest, weights, catalog, added);
    expect(origins).toEqual(['category', 'tags', 'day', 'random']);
    const mean = (...r: number[]) =>
      [0, 1, 2].map((k) => r.reduce((sum, x) => sum + row(x)[k]!, 0) / r.length);
    expect(Array.from(rows.subarray(0, 3))).toEqual(mean(1, 2).map((x) => Math.fround(x)));
    expect(b[0]).toBeCloseTo((bias(1) + bias(2)) / 2, 6);
    expect(Array.from(rows.subarray(3, 6))).toEqual(mean(2, 3).map((x) => Math.fround(x)));
    expect(Array.from(rows.subarray(6, 9))).toEqual(row(4).map((x) => Math.fround(x)));
    // Random: small, seeded by the id (the same item always starts the same), median bias.
    const random = Array.from(rows.subarray(9, 12));
    expect(random.every((x) => Math.abs(x) < 0.5 && x !== 0)).toBe(true);
    expect(Array.from(initialRows(manifest, weights, catalog, [added[3]!]).rows)).toEqual(random);
    expect(b[3]).toBe(Math.fround(bias(3)));
  });
});

describe('growForCatalog', () => {
  it('changes nothing when the model has every catalogue item', () => {
    const same = growForCatalog(manifest, weights, undefined, catalog.slice(1));
    expect(same.added).toBe(0);
    expect(same.manifest).toBe(manifest);
    expect(same.weights).toBe(weights);
  });

  it('appends rows, moves no other value, leads the recency order with the new items, grows the moments', () => {
    const withNew = [
      ...catalog,
      at('old-news', { published: '2026-01-01T00:00:00Z' }),
      at('fresh', { published: '2026-12-03T00:00:00Z' }),
    ];
    const state = initialFedAdamState(weights.length);
    state.m.fill(0.5);
    const grown = growForCatalog(manifest, weights, { ...state, step: 3 }, withNew);
    expect(grown.added).toBe(2);
    expect(parseManifest(grown.manifest)).toEqual(grown.manifest);
    expect(grown.manifest.itemIds).toEqual(['', 'a', 'b', 'c', 'd', 'old-news', 'fresh']);
    expect(grown.manifest.dims.items).toBe(7);
    expect(grown.manifest.recent).toEqual([6, 5, 4, 3]);
    expect(grown.manifest.tensors).toEqual(tensorLayout(grown.manifest.dims));
    expect(grownFrom(manifest.dims, grown.manifest.dims)).toBe(true);

    const before = splitFlat(weights, manifest.tensors);
    const after = splitFlat(grown.weights, grown.manifest.tensors);
    for (const [name, values] of before) {
      expect(Array.from(after.get(name)!.subarray(0, values.length)), name).toEqual(
        Array.from(values),
      );
    }
    expect(after.get('item_embedding')!.length).toBe(7 * 3);
    const m = splitFlat(grown.optimizerState!.m as unknown as Float32Array, grown.manifest.tensors);
    expect(Array.from(m.get('item_bias')!)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0, 0]);
    expect(Array.from(m.get('lstm_bias')!).every((x) => x === 0.5)).toBe(true);
    const v = splitFlat(grown.optimizerState!.v as unknown as Float32Array, grown.manifest.tensors);
    expect(Array.from(v.get('item_bias')!.subarray(5))).toEqual([1e-6, 1e-6].map((x) => x));
    expect(grown.optimizerState!.step).toBe(3);
  });

  it('lets an update on the version before carry over, the new rows at zero', () => {
    const grown = growForCatalog(manifest, weights, undefined, [...catalog, at('e')]);
    const { dims } = grown.manifest;
    // Rows to rows: the rows both name keep their values, row 5 is new (zero) if named.
    const from = manifestLayout(manifest.federation);
    const to = { kind: 'rows' as const, rows: roundRows(6, 5, 2, 1) };
    const delta = Float32Array.from({ length: 2 * 2 * 4 + 3 * 2 + 3 + 4 * 4 }, (_, i) => i + 1);
    const fitted = fitUpdate(delta, manifest.dims, from, to, dims);
    expect(fitted).toEqual(fitUpdate(delta, manifest.dims, from, to));
    // Whole model to whole model: every value in its tensor's place, the new row and bias zero.
    // Row 0 is padding: no update moves it, and fitting keeps real rows only.
    const full = Float32Array.from(weights, (_, i) => i + 1);
    full.fill(0, 0, 3);
    full[5 * 3] = 0;
    const grownFull = fitUpdate(full, manifest.dims, { kind: 'full' }, { kind: 'full' }, dims);
    expect(grownFull).toEqual(withAddedItems(full, manifest.dims, 1));
    const split = splitFlat(grownFull, grown.manifest.tensors);
    expect(Array.from(split.get('item_embedding')!.subarray(15))).toEqual([0, 0, 0]);
    expect(split.get('item_bias')![5]).toBe(0);
    expect(Array.from(split.get('projection_bias')!)).toEqual(
      Array.from(splitFlat(full, manifest.tensors).get('projection_bias')!),
    );
  });
});
