/**
 * Update layouts: carrying a stale update into the current round's layout, the rows a version
 * names, and the layout a manifest publishes.
 */
import { describe, expect, it } from 'vitest';
import { l2Norm } from './clip.js';
import type { ModelDims } from './manifest.js';
import {
  biasLedRows,
  denseLength,
  fitUpdate,
  gatherLayout,
  manifestLayout,
  roundRows,
  rowOffsets,
  scatterLayout,
  updateLength,
  type UpdateLayout,
} from './update-layout.js';

const dims: ModelDims = { items: 9, embedding: 3, hidden: 2, maxSessionLength: 4 };
const full = (): number => updateLength(dims, { kind: 'full' });
/** A full vector whose every value names its own coordinate (1-based, so none is zero). */
const numbered = (): Float32Array => Float32Array.from({ length: full() }, (_, i) => i + 1);

describe('fitUpdate', () => {
  const from: UpdateLayout = { kind: 'rows', rows: [1, 4, 6] };
  const to: UpdateLayout = { kind: 'rows', rows: [2, 4, 8] };

  it('keeps the dense tensors and the rows both layouts name, zeroes the new rows, drops the rest', () => {
    const source = gatherLayout(numbered(), dims, from, new Float32Array(updateLength(dims, from)));
    const fitted = fitUpdate(source, dims, from, to);
    expect(fitted.length).toBe(updateLength(dims, to));
    // Back in full coordinates: exactly the dense part and row 4 of the source.
    const back = new Float32Array(full());
    scatterLayout(fitted, dims, to, back);
    const expected = new Float32Array(full());
    const kept = new Float32Array(full());
    scatterLayout(source, dims, from, kept);
    const at = rowOffsets(dims, { kind: 'full' });
    const dense = full() - denseLength(dims);
    expected.set(kept.subarray(dense), dense);
    expected.set(kept.subarray(at.embedding(4), at.embedding(4) + dims.embedding), at.embedding(4));
    expected[at.bias(4)] = kept[at.bias(4)]!;
    expect(Array.from(back)).toEqual(Array.from(expected));
    expect(l2Norm(fitted)).toBeLessThan(l2Norm(source));
  });

  it('gathers a whole-model update, and spreads one back with zeros elsewhere', () => {
    const all = numbered();
    const compact = fitUpdate(all, dims, { kind: 'full' }, to);
    expect(Array.from(compact)).toEqual(
      Array.from(gatherLayout(all, dims, to, new Float32Array(updateLength(dims, to)))),
    );
    const spread = fitUpdate(compact, dims, to, { kind: 'full' });
    const expected = new Float32Array(full());
    scatterLayout(compact, dims, to, expected);
    expect(Array.from(spread)).toEqual(Array.from(expected));
  });

  it('returns the same layout unchanged', () => {
    const delta = new Float32Array(updateLength(dims, from)).fill(0.5);
    expect(fitUpdate(delta, dims, from, { kind: 'rows', rows: [1, 4, 6] })).toBe(delta);
  });
});

describe('the rows a version names', () => {
  it('biasLedRows: half by largest bias, the rest a moving window, ascending and distinct', () => {
    const bias = Float32Array.from([0, 0.1, 5, -1, 0.3, 4, 0.2, -2, 0.0, 3, 0.05]);
    for (let version = 1; version < 12; version++) {
      const rows = biasLedRows(bias, 4, version, 7);
      expect(rows).toHaveLength(4);
      expect(rows).toEqual([...new Set(rows)].sort((a, b) => a - b));
      expect(rows).toEqual(expect.arrayContaining([2, 5]));
      expect(rows.every((r) => r >= 1 && r < bias.length)).toBe(true);
    }
    // Over the versions the window names every row.
    const named = new Set(Array.from({ length: 12 }, (_, v) => biasLedRows(bias, 4, v, 7)).flat());
    expect(named.size).toBe(bias.length - 1);
  });

  it('roundRows names every row once per pass', () => {
    const passes = Array.from({ length: 4 }, (_, v) => roundRows(9, 2, v, 3));
    expect(new Set(passes.flat()).size).toBe(8);
  });

  it('a manifest without updateRows means the whole model', () => {
    expect(manifestLayout({})).toEqual({ kind: 'full' });
    expect(manifestLayout({ updateRows: [3, 5] })).toEqual({ kind: 'rows', rows: [3, 5] });
  });
});
