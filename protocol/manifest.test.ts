import { describe, expect, it } from 'vitest';
import { HearthError } from './errors.js';
import {
  layoutHash,
  maxStalenessOf,
  MAX_DENSE_STRIDE,
  MAX_ROUND_WINDOW_SECONDS,
  roundWindowAt,
  updateDtypeOf,
  parameterCount,
  parseManifest,
  scoringOf,
  splitFlat,
  tensorLayout,
  type ModelManifest,
} from './manifest.js';

const dims = { items: 5, embedding: 2, hidden: 3, maxSessionLength: 4 };
const layout = tensorLayout(dims);

function manifest(): ModelManifest {
  return {
    format: 'hearth-model/1',
    version: 1,
    createdAt: '2026-11-22T00:00:00Z',
    dims,
    tensors: layout,
    layoutHash: layoutHash(layout),
    weights: { url: 'weights.bin', dtype: 'float32', byteLength: parameterCount(layout) * 4 },
    itemIds: ['', 'a', 'b', 'c', 'd'],
    popular: [2, 1],
    federation: { clipNorm: 1, minCohort: 3, maxExamples: 1000 },
  };
}

describe('manifest', () => {
  it('counts parameters of the tied-embedding LSTM', () => {
    // E 5x2 + bias 5 + kernel 2x12 + recurrent 3x12 + bias 12 + proj 3x2 + bias 2
    expect(parameterCount(layout)).toBe(10 + 5 + 24 + 36 + 12 + 6 + 2);
  });

  it('accepts a good manifest and rejects each broken field', () => {
    expect(parseManifest(JSON.parse(JSON.stringify(manifest()))).version).toBe(1);
    const broken: [string, (m: Record<string, unknown>) => void][] = [
      ['format', (m) => (m.format = 'x')],
      ['version', (m) => (m.version = 0)],
      ['dims.items', (m) => (m.dims = { ...dims, items: 1 })],
      ['tensors', (m) => (m.tensors = layout.slice(1))],
      ['layoutHash', (m) => (m.layoutHash = 1)],
      ['weights.byteLength', (m) => (m.weights = { url: 'w', dtype: 'float32', byteLength: 3 })],
      ['itemIds', (m) => (m.itemIds = ['a', 'b', 'c', 'd', 'e'])],
      ['popular', (m) => (m.popular = [0])],
      ['recent', (m) => (m.recent = [0])],
      ['recent', (m) => (m.recent = 'trending')],
      ['dims.scoring', (m) => (m.dims = { ...dims, scoring: 'cosine' })],
      [
        'dims.scoring.normalize',
        (m) => (m.dims = { ...dims, scoring: { normalize: 1, scale: 12, lastItem: false } }),
      ],
      [
        'dims.scoring.scale',
        (m) => (m.dims = { ...dims, scoring: { normalize: true, scale: 0, lastItem: false } }),
      ],
      [
        'dims.scoring.lastItem',
        (m) => (m.dims = { ...dims, scoring: { normalize: true, scale: 12 } }),
      ],
      [
        'dims.scoring.itemMean',
        (m) =>
          (m.dims = {
            ...dims,
            scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 1.5 },
          }),
      ],
      [
        'dims.scoring.itemMean',
        (m) =>
          (m.dims = {
            ...dims,
            scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 'all' },
          }),
      ],
      [
        'federation.clipNorm',
        (m) => (m.federation = { clipNorm: -1, minCohort: 1, maxExamples: 1 }),
      ],
    ];
    // The optional cold-start recency order: absent or a list of item indices.
    expect(parseManifest({ ...manifest(), recent: [1, 2] }).recent).toEqual([1, 2]);
    expect(parseManifest(manifest()).recent).toBeUndefined();
    for (const [field, breakIt] of broken) {
      const m = JSON.parse(JSON.stringify(manifest())) as Record<string, unknown>;
      breakIt(m);
      expect(() => parseManifest(m), field).toThrow(HearthError);
      expect(() => parseManifest(m), field).toThrow(field);
    }
  });

  it('reads federation.maxStaleness: optional, 0 when absent, a non-negative integer when given', () => {
    const federation = manifest().federation;
    expect(maxStalenessOf(parseManifest(manifest()).federation)).toBe(0);
    const withBound = { ...manifest(), federation: { ...federation, maxStaleness: 3 } };
    expect(maxStalenessOf(parseManifest(withBound).federation)).toBe(3);
    for (const bad of [-1, 1.5, '2', null, 2 ** 32]) {
      const m = { ...manifest(), federation: { ...federation, maxStaleness: bad } };
      expect(() => parseManifest(m), String(bad)).toThrow('federation.maxStaleness');
    }
  });

  it('reads federation.roundWindowSeconds: optional, a positive whole number of seconds up to a year', () => {
    const federation = manifest().federation;
    expect(parseManifest(manifest()).federation.roundWindowSeconds).toBeUndefined();
    const windowed = {
      ...manifest(),
      federation: { ...federation, roundWindowSeconds: 3600, countNoise: 10 },
    };
    expect(parseManifest(windowed).federation).toMatchObject({
      roundWindowSeconds: 3600,
      countNoise: 10,
    });
    for (const bad of [0, -60, 1.5, '60', null, MAX_ROUND_WINDOW_SECONDS + 1]) {
      const m = { ...windowed, federation: { ...windowed.federation, roundWindowSeconds: bad } };
      expect(() => parseManifest(m), String(bad)).toThrow('federation.roundWindowSeconds');
    }
    // The count's noise comes with a window, and only with one.
    for (const countNoise of [undefined, 0, -1, Infinity, '10']) {
      const m = { ...windowed, federation: { ...windowed.federation, countNoise } };
      expect(() => parseManifest(m), String(countNoise)).toThrow('federation.countNoise');
    }
    const noWindow = { ...manifest(), federation: { ...federation, countNoise: 10 } };
    expect(() => parseManifest(noWindow)).toThrow('federation.countNoise');
  });

  it('numbers round windows from the Unix epoch: window r is [r T, (r + 1) T)', () => {
    expect(roundWindowAt(0, 60)).toBe(0);
    expect(roundWindowAt(59_999, 60)).toBe(0);
    expect(roundWindowAt(60_000, 60)).toBe(1);
    expect(roundWindowAt(Date.UTC(2026, 11, 5, 17), 3600)).toBe(
      Date.UTC(2026, 11, 5, 17) / 3_600_000,
    );
  });

  it('reads federation.updateRows: optional; ascending distinct rows in 1..items-1 when given', () => {
    const federation = manifest().federation;
    expect(parseManifest(manifest()).federation.updateRows).toBeUndefined();
    const named = { ...manifest(), federation: { ...federation, updateRows: [1, 3, 4] } };
    expect(parseManifest(named).federation.updateRows).toEqual([1, 3, 4]);
    for (const bad of [[0, 2], [3, 1], [2, 2], [1, 5], [1.5], 'all', null, [1, '2']]) {
      const m = { ...manifest(), federation: { ...federation, updateRows: bad } };
      expect(() => parseManifest(m), JSON.stringify(bad)).toThrow('federation.updateRows');
    }
  });

  it('reads federation.itemSketch: optional; whole buckets and a u32 key, never with updateRows', () => {
    const federation = manifest().federation;
    expect(parseManifest(manifest()).federation.itemSketch).toBeUndefined();
    const sketch = { buckets: 2, key: 4_000_000_000 };
    const named = { ...manifest(), federation: { ...federation, itemSketch: sketch } };
    expect(parseManifest(named).federation.itemSketch).toEqual(sketch);
    for (const bad of [
      { buckets: 0, key: 1 },
      { buckets: 1.5, key: 1 },
      { buckets: 5_000_001, key: 1 },
      { buckets: 2, key: -1 },
      { buckets: 2, key: 2 ** 32 },
      { buckets: 2 },
      { buckets: '2', key: 1 },
      2,
      null,
    ]) {
      const m = { ...manifest(), federation: { ...federation, itemSketch: bad } };
      expect(() => parseManifest(m), JSON.stringify(bad)).toThrow('federation.itemSketch');
    }
    const both = {
      ...manifest(),
      federation: { ...federation, itemSketch: sketch, updateRows: [1] },
    };
    expect(() => parseManifest(both)).toThrow('federation.itemSketch');
  });

  it("reads a sketch's depth: optional (1), a whole number of tables up to 8", () => {
    const federation = manifest().federation;
    const sketch = { buckets: 2, key: 1, depth: 2 };
    const named = { ...manifest(), federation: { ...federation, itemSketch: sketch } };
    expect(parseManifest(named).federation.itemSketch).toEqual(sketch);
    for (const depth of [0, 9, 1.5, '2', null]) {
      const m = { ...manifest(), federation: { ...federation, itemSketch: { ...sketch, depth } } };
      expect(() => parseManifest(m), JSON.stringify(depth)).toThrow('federation.itemSketch');
    }
  });

  it("reads a sketch's dense stride: optional (1), a whole number up to MAX_DENSE_STRIDE", () => {
    const federation = manifest().federation;
    const sketch = { buckets: 2, key: 1, denseStride: 10 };
    const named = { ...manifest(), federation: { ...federation, itemSketch: sketch } };
    expect(parseManifest(named).federation.itemSketch).toEqual(sketch);
    for (const denseStride of [0, MAX_DENSE_STRIDE + 1, 2.5, '10', null]) {
      const m = {
        ...manifest(),
        federation: { ...federation, itemSketch: { ...sketch, denseStride } },
      };
      expect(() => parseManifest(m), JSON.stringify(denseStride)).toThrow('federation.itemSketch');
    }
  });

  it('reads federation.updateDtype: optional (float16), one of float16, int8, int4, int2 when given', () => {
    const federation = manifest().federation;
    expect(updateDtypeOf(parseManifest(manifest()).federation)).toBe('float16');
    for (const dtype of ['float16', 'int8', 'int4', 'int2']) {
      const named = { ...manifest(), federation: { ...federation, updateDtype: dtype } };
      expect(updateDtypeOf(parseManifest(named).federation)).toBe(dtype);
    }
    for (const bad of ['float32', 'int3', 3, null]) {
      const m = { ...manifest(), federation: { ...federation, updateDtype: bad } };
      expect(() => parseManifest(m), String(bad)).toThrow('federation.updateDtype');
    }
  });

  it('reads a manifest without dims.scoring as the dot-product model, and keeps one with it', () => {
    const old = parseManifest(JSON.parse(JSON.stringify(manifest())));
    expect(old.dims.scoring).toBeUndefined();
    expect(scoringOf(old.dims)).toEqual({ normalize: false, scale: 1, lastItem: false });
    for (const scoring of [
      { normalize: true, scale: 12, lastItem: true },
      { normalize: true, scale: 8, lastItem: false, itemMean: 0.5 },
    ]) {
      const m = { ...manifest(), dims: { ...dims, scoring } };
      // The layout and its hash do not depend on the scoring: updates stay interchangeable.
      const parsed = parseManifest(JSON.parse(JSON.stringify(m)));
      expect(scoringOf(parsed.dims)).toEqual(scoring);
      expect(parsed.layoutHash).toBe(old.layoutHash);
    }
  });

  it('adds the repeat bonus tensor, one value per age, only for scoring.repeat', () => {
    const scoring = { normalize: true, scale: 8, lastItem: false, repeat: true };
    const withBonus = tensorLayout({ ...dims, scoring });
    expect(withBonus.slice(0, -1)).toEqual(layout);
    expect(withBonus.at(-1)).toEqual({ name: 'repeat_bonus', shape: [dims.maxSessionLength] });
    expect(layoutHash(withBonus)).not.toBe(layoutHash(layout));
    expect(tensorLayout({ ...dims, scoring: { ...scoring, repeat: false } })).toEqual(layout);
    const m = JSON.parse(JSON.stringify(manifest())) as Record<string, unknown>;
    m.dims = { ...dims, scoring: { ...scoring, repeat: 'yes' } };
    expect(() => parseManifest(m)).toThrow('dims.scoring.repeat');
  });

  it('splits a flat vector into views in layout order', () => {
    const flat = Float32Array.from({ length: parameterCount(layout) }, (_, i) => i);
    const parts = splitFlat(flat, layout);
    expect(parts.get('item_embedding')![0]).toBe(0);
    expect(parts.get('item_bias')![0]).toBe(10);
    expect(parts.get('projection_bias')!.length).toBe(2);
    expect(() => splitFlat(flat.subarray(1), layout)).toThrow(HearthError);
  });
});
