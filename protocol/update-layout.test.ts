/**
 * Update layouts: carrying a stale update into the current round's layout, the rows a version
 * names, and the layout a manifest publishes.
 */
import { describe, expect, it } from 'vitest';
import { l2Norm } from './clip.js';
import { denseLength, type ItemSketch, type ModelDims } from './manifest.js';
import { roundSketch, sentDense, unsketchUpdate } from './item-sketch.js';
import {
  biasLedRows,
  fitUpdate,
  gatherLayout,
  itemSpan,
  manifestLayout,
  modelLayout,
  sentUpdate,
  strideOfOlderSdk,
  wholeUpdateIn,
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

describe('fitUpdate with item sketches', () => {
  const bigger: ModelDims = { ...dims, items: 400 };
  const whole = updateLength(bigger, { kind: 'full' });
  const dense = denseLength(bigger);
  const itemsEnd = whole - dense;
  const sketchOf = (version: number): UpdateLayout => ({
    kind: 'sketch',
    sketch: roundSketch(16, version),
  });
  /** An update in the whole model: a few items moved, and the dense tensors. */
  const update = (): Float32Array => {
    const u = new Float32Array(whole);
    for (const item of [3, 50, 222]) {
      for (let c = 0; c < bigger.embedding; c++)
        u[item * bigger.embedding + c] = 1 + c + item / 100;
      u[bigger.items * bigger.embedding + item] = 0.5;
    }
    for (let i = itemsEnd; i < whole; i++) u[i] = Math.sin(i);
    return u;
  };
  const itemNorm = (v: Float32Array, layout: UpdateLayout, d: ModelDims = bigger) => {
    const span = itemSpan(d, layout);
    return l2Norm(v.subarray(span.start, span.end));
  };

  it('keeps a sketch of the same version as it is', () => {
    const sent = sentUpdate(update(), bigger, sketchOf(1));
    expect(fitUpdate(sent, bigger, sketchOf(1), sketchOf(1))).toBe(sent);
  });

  it('sketches a stale sketch again with the new hashes: dense part kept, item norm not grown, the right way on average', () => {
    const original = update();
    const dots: number[] = [];
    for (let version = 1; version <= 200; version++) {
      const from = sketchOf(version);
      const to = sketchOf(version + 1000);
      const stale = sentUpdate(original, bigger, from);
      const fitted = fitUpdate(stale, bigger, from, to);
      expect(fitted.length).toBe(updateLength(bigger, to));
      expect(Array.from(fitted.subarray(0, dense))).toEqual(Array.from(stale.subarray(0, dense)));
      expect(itemNorm(fitted, to)).toBeLessThanOrEqual(itemNorm(stale, from) * (1 + 1e-6));
      // Read back with the new hashes, the items' rows against the original's.
      const sketch = (to as { sketch: ItemSketch }).sketch;
      const read = unsketchUpdate(fitted, bigger, sketch, new Float32Array(whole));
      let dot = 0;
      for (let i = 0; i < itemsEnd; i++) dot += read[i]! * original[i]!;
      dots.push(dot);
    }
    // Along the original on average, by more than 4 standard errors (hashes read back wrong, or
    // the old sketch read with the new hashes, average out to about zero).
    const mean = dots.reduce((a, b) => a + b, 0) / dots.length;
    const sd = Math.sqrt(dots.reduce((a, b) => a + (b - mean) ** 2, 0) / (dots.length - 1));
    expect(mean).toBeGreaterThan((4 * sd) / Math.sqrt(dots.length));
  });

  it('carries a stale sketch with a dense stride: its buckets fitted as without one, its dense values where both carry them', () => {
    const strided = (version: number): UpdateLayout => ({
      kind: 'sketch',
      sketch: roundSketch(16, version, 1, 3),
    });
    const original = update();
    const from = strided(1);
    const to = strided(2);
    const stale = sentUpdate(original, bigger, from);
    const fitted = fitUpdate(stale, bigger, from, to);
    const span = itemSpan(bigger, to);
    const carried = sentDense(dense, (to as { sketch: ItemSketch }).sketch);
    expect(span).toEqual({ start: carried.count, end: updateLength(bigger, to) });
    // The item part: what the sketches without a stride give, the norm kept.
    const plain = fitUpdate(
      sentUpdate(original, bigger, sketchOf(1)),
      bigger,
      sketchOf(1),
      sketchOf(2),
    );
    const items = fitted.subarray(span.start);
    const plainItems = plain.subarray(dense);
    expect(items.length).toBe(plainItems.length);
    items.forEach((v, i) => expect(v).toBeCloseTo(plainItems[i]!, 5));
    expect(itemNorm(fitted, to)).toBeLessThanOrEqual(itemNorm(stale, from) * (1 + 1e-6));
    expect(itemNorm(fitted, to)).toBeGreaterThan(0);
    // The dense values: each the original's where both rounds carry it, else zero.
    const before = sentDense(dense, (from as { sketch: ItemSketch }).sketch);
    expect(before.offset).not.toBe(carried.offset);
    for (let j = 0; j < carried.count; j++) {
      const at = carried.offset + j * carried.stride;
      const both = (at - before.offset) % before.stride === 0;
      expect(fitted[j]).toBe(both ? original[itemsEnd + at] : 0);
    }
  });

  it("takes an older SDK's sketch without the stride as the stride sends it, and nothing else", () => {
    const original = update();
    for (const depth of [1, 2]) {
      const stridedLayout: UpdateLayout = { kind: 'sketch', sketch: roundSketch(16, 3, depth, 3) };
      const olderLayout: UpdateLayout = { kind: 'sketch', sketch: roundSketch(16, 3, depth) };
      const older = sentUpdate(original, bigger, olderLayout);
      const taken = strideOfOlderSdk(older, bigger, stridedLayout)!;
      expect(Array.from(taken)).toEqual(Array.from(sentUpdate(original, bigger, stridedLayout)));
      expect(l2Norm(taken)).toBeLessThan(l2Norm(older));
      // Any other length, and any layout without a stride, is not an older SDK's.
      expect(strideOfOlderSdk(older.subarray(1), bigger, stridedLayout)).toBeNull();
      expect(strideOfOlderSdk(taken, bigger, stridedLayout)).toBeNull();
      expect(strideOfOlderSdk(older, bigger, olderLayout)).toBeNull();
    }
  });

  it('carries named rows into a sketch and a sketch into named rows, within the norm', () => {
    const rows: UpdateLayout = { kind: 'rows', rows: [3, 50, 60] };
    const named = gatherLayout(
      update(),
      bigger,
      rows,
      new Float32Array(updateLength(bigger, rows)),
    );
    const into = fitUpdate(named, bigger, rows, sketchOf(2));
    expect(into.length).toBe(updateLength(bigger, sketchOf(2)));
    expect(l2Norm(into)).toBeLessThanOrEqual(l2Norm(named) * (1 + 1e-6));
    const back = fitUpdate(into, bigger, sketchOf(2), rows);
    expect(back.length).toBe(updateLength(bigger, rows));
    expect(l2Norm(back)).toBeLessThanOrEqual(l2Norm(into) * (1 + 1e-6));
    // Onto a grown model (new catalogue rows), a sketch of the larger model.
    const grown: ModelDims = { ...bigger, items: 450 };
    const onGrown = fitUpdate(into, bigger, sketchOf(2), sketchOf(3), grown);
    expect(onGrown.length).toBe(updateLength(grown, sketchOf(3)));
    expect(Array.from(onGrown.subarray(0, dense))).toEqual(Array.from(into.subarray(0, dense)));
  });

  it("sends a whole update in a newer version's layout exactly, on a grown model too", () => {
    const original = update();
    // In a sketch: the sketch of the whole update with that version's hashes, not a re-sketch.
    expect(Array.from(wholeUpdateIn(original, bigger, sketchOf(5)))).toEqual(
      Array.from(sentUpdate(original, bigger, sketchOf(5))),
    );
    const stale = fitUpdate(
      sentUpdate(original, bigger, sketchOf(4)),
      bigger,
      sketchOf(4),
      sketchOf(5),
    );
    expect(Array.from(stale)).not.toEqual(Array.from(wholeUpdateIn(original, bigger, sketchOf(5))));
    // In named rows: those rows as they are.
    const rows: UpdateLayout = { kind: 'rows', rows: [3, 60] };
    expect(Array.from(wholeUpdateIn(original, bigger, rows))).toEqual(
      Array.from(
        gatherLayout(original, bigger, rows, new Float32Array(updateLength(bigger, rows))),
      ),
    );
    // On a grown model: its new rows are zero, the rest as they were.
    const grown: ModelDims = { ...bigger, items: 450 };
    const onGrown = wholeUpdateIn(original, bigger, { kind: 'full' }, grown);
    const at = rowOffsets(grown, { kind: 'full' });
    const from = rowOffsets(bigger, { kind: 'full' });
    const rowOf = (v: Float32Array, o: typeof at, row: number) => [
      ...Array.from(v.subarray(o.embedding(row), o.embedding(row) + bigger.embedding)),
      v[o.bias(row)]!,
    ];
    expect(onGrown.length).toBe(updateLength(grown, { kind: 'full' }));
    expect(rowOf(onGrown, at, 222)).toEqual(rowOf(original, from, 222));
    expect(rowOf(onGrown, at, 420)).toEqual([0, 0, 0, 0]);
  });

  it('a sketch holds buckets, not rows or model coordinates', () => {
    expect(() => rowOffsets(bigger, sketchOf(1))).toThrow(RangeError);
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
    const sketch = roundSketch(2, 5);
    expect(manifestLayout({ itemSketch: sketch })).toEqual({ kind: 'sketch', sketch });
    expect(modelLayout({ kind: 'sketch', sketch })).toEqual({ kind: 'full' });
    expect(modelLayout({ kind: 'rows', rows: [3] })).toEqual({ kind: 'rows', rows: [3] });
  });
});
