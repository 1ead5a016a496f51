/**
 * Item sketches: the slots a round draws, the sketch's layout, linearity, and reading rows back
 * (exact without collisions, unbiased over rounds with them).
 */
import { describe, expect, it } from 'vitest';
import { denseLength, MAX_DENSE_STRIDE, type ModelDims } from './manifest.js';
import {
  roundSketch,
  sentDense,
  sketchDenseLength,
  sketchLength,
  sketchSlot,
  sketchUpdate,
  unsketchUpdate,
} from './item-sketch.js';
import { rowOffsets, updateLength } from './update-layout.js';
import { mulberry32 } from './prng.js';

const dims: ModelDims = { items: 40, embedding: 3, hidden: 2, maxSessionLength: 4 };
const fullLength = updateLength(dims, { kind: 'full' });
const at = rowOffsets(dims, { kind: 'full' });
const dense = denseLength(dims);

/** A full vector of uniform values in [-1, 1) with row 0 (padding) zero. */
function randomFull(seed: number): Float64Array {
  const random = mulberry32(seed);
  const u = Float64Array.from({ length: fullLength }, () => 2 * random() - 1);
  u.fill(0, at.embedding(0), at.embedding(0) + dims.embedding);
  u[at.bias(0)] = 0;
  return u;
}

const sketchOf = (u: Float64Array, version: number, buckets: number) => {
  const sketch = roundSketch(buckets, version);
  return sketchUpdate(u, dims, sketch, new Float64Array(sketchLength(dims, sketch)));
};

describe('sketchSlot', () => {
  it('puts every item in a bucket of the range, with both signs, the same way every time', () => {
    const sketch = roundSketch(8, 3);
    const slots = Array.from({ length: 400 }, (_, i) => sketchSlot(i + 1, sketch));
    for (const slot of slots) expect(Math.abs(slot)).toBeGreaterThanOrEqual(1);
    for (const slot of slots) expect(Math.abs(slot)).toBeLessThanOrEqual(8);
    expect(new Set(slots.map(Math.abs)).size).toBe(8);
    expect(slots.some((s) => s > 0) && slots.some((s) => s < 0)).toBe(true);
    expect(slots).toEqual(Array.from({ length: 400 }, (_, i) => sketchSlot(i + 1, sketch)));
  });

  it('draws the slots afresh every round', () => {
    const a = roundSketch(1024, 1);
    const b = roundSketch(1024, 2);
    const moved = Array.from({ length: 400 }, (_, i) => i + 1).filter(
      (item) => sketchSlot(item, a) !== sketchSlot(item, b),
    );
    expect(moved.length).toBeGreaterThan(390);
  });

  it('refuses a bucket count that is not a whole number >= 1', () => {
    expect(() => roundSketch(0, 1)).toThrow(RangeError);
    expect(() => roundSketch(2.5, 1)).toThrow(RangeError);
  });
});

describe('sketchUpdate and unsketchUpdate', () => {
  it('sends the dense tensors as they are, then d + 1 values a bucket', () => {
    const u = randomFull(1);
    const s = sketchOf(u, 1, 6);
    expect(s.length).toBe(dense + 6 * (dims.embedding + 1));
    const denseFrom = at.bias(dims.items - 1) + 1;
    expect(Array.from(s.subarray(0, dense))).toEqual(Array.from(u.subarray(denseFrom)));
  });

  it('is linear: the sum of the sketches is the sketch of the sum', () => {
    const a = randomFull(2);
    const b = randomFull(3);
    const sum = a.map((x, i) => x + b[i]!);
    const apart = sketchOf(a, 5, 7).map((x, i) => x + sketchOf(b, 5, 7)[i]!);
    const together = sketchOf(sum, 5, 7);
    for (let i = 0; i < together.length; i++) expect(apart[i]).toBeCloseTo(together[i]!, 12);
  });

  it('reads every row back exactly when no two items share a bucket', () => {
    // Enough buckets that some round's draw has no collision among the 39 items.
    let version = 1;
    const free = (v: number) => {
      const sketch = roundSketch(4096, v);
      const buckets = new Set<number>();
      for (let item = 1; item < dims.items; item++) buckets.add(Math.abs(sketchSlot(item, sketch)));
      return buckets.size === dims.items - 1;
    };
    while (!free(version)) version++;
    const u = randomFull(4);
    const sketch = roundSketch(4096, version);
    const back = unsketchUpdate(
      sketchOf(u, version, 4096),
      dims,
      sketch,
      new Float64Array(fullLength),
    );
    expect(Array.from(back)).toEqual(Array.from(u));
  });

  it('reads rows back with their bucket mates in one round, unbiased over many rounds', () => {
    const u = randomFull(5);
    const buckets = 8;
    const rounds = 4000;
    const mean = new Float64Array(fullLength);
    let oneRoundError = 0;
    let squaredNorm = 0;
    for (let version = 1; version <= rounds; version++) {
      const s = sketchOf(u, version, buckets);
      squaredNorm += s.reduce((acc, x) => acc + x * x, 0) / rounds;
      const back = unsketchUpdate(
        s,
        dims,
        roundSketch(buckets, version),
        new Float64Array(fullLength),
      );
      if (version === 1) oneRoundError = Math.max(...back.map((x, i) => Math.abs(x - u[i]!)));
      for (let i = 0; i < fullLength; i++) mean[i]! += back[i]! / rounds;
    }
    // 39 items in 8 buckets: one round's rows are far off ...
    expect(oneRoundError).toBeGreaterThan(0.5);
    // ... their mean over rounds is not: one round's error on a value has variance 38 / 8 / 3 (each
    // of 38 other items a mate with chance 1/8, values of variance 1/3), so over 4000 rounds std
    // 0.02, and 0.15 is 7.5 std. Signs that did not cancel would leave about 0.44.
    const worst = Math.max(...mean.map((x, i) => Math.abs(x - u[i]!)));
    expect(worst).toBeLessThan(0.15);
    // And the sketch keeps the squared norm in expectation.
    const norm2 = u.reduce((acc, x) => acc + x * x, 0);
    expect(Math.abs(squaredNorm / norm2 - 1)).toBeLessThan(0.05);
  });
});

describe('a sketch with a dense stride k', () => {
  const denseFrom = at.bias(dims.items - 1) + 1;

  it('carries one in k of the dense values, from an offset its key draws, and reads the rest as zero', () => {
    const u = randomFull(6);
    const offsets = new Set<number>();
    for (let version = 1; version <= 40; version++) {
      const sketch = roundSketch(6, version, 1, 3);
      const carried = sentDense(dense, sketch);
      offsets.add(carried.offset);
      expect(carried.stride).toBe(3);
      expect(carried.offset).toBeLessThan(3);
      const expected = Array.from({ length: dense }, (_, j) => j).filter(
        (j) => j % 3 === carried.offset,
      );
      expect(carried.count).toBe(expected.length);
      expect(sketchDenseLength(dims, sketch)).toBe(expected.length);
      const s = sketchUpdate(u, dims, sketch, new Float64Array(sketchLength(dims, sketch)));
      expect(s.length).toBe(expected.length + 6 * (dims.embedding + 1));
      expect(Array.from(s.subarray(0, expected.length))).toEqual(
        expected.map((j) => u[denseFrom + j]!),
      );
      // The buckets are those of the same sketch without a stride.
      const whole = sketchOf(u, version, 6);
      expect(Array.from(s.subarray(expected.length))).toEqual(Array.from(whole.subarray(dense)));
      const back = unsketchUpdate(s, dims, sketch, new Float64Array(fullLength));
      const wholeBack = unsketchUpdate(
        whole,
        dims,
        roundSketch(6, version),
        new Float64Array(fullLength),
      );
      for (let j = 0; j < dense; j++) {
        expect(back[denseFrom + j]).toBe(j % 3 === carried.offset ? u[denseFrom + j] : 0);
      }
      expect(Array.from(back.subarray(0, denseFrom))).toEqual(
        Array.from(wholeBack.subarray(0, denseFrom)),
      );
    }
    // A different set from round to round: every offset comes up.
    expect(offsets.size).toBe(3);
  });

  it('is still linear, and refuses a stride outside 1..MAX_DENSE_STRIDE', () => {
    const a = randomFull(7);
    const b = randomFull(8);
    const sketch = roundSketch(7, 5, 2, 4);
    const of = (u: Float64Array) =>
      sketchUpdate(u, dims, sketch, new Float64Array(sketchLength(dims, sketch)));
    const sum = of(a.map((x, i) => x + b[i]!));
    const apart = of(a).map((x, i) => x + of(b)[i]!);
    for (let i = 0; i < sum.length; i++) expect(apart[i]).toBeCloseTo(sum[i]!, 12);
    expect(roundSketch(7, 5, 1, 1)).toEqual(roundSketch(7, 5));
    for (const bad of [0, 1.5, MAX_DENSE_STRIDE + 1]) {
      expect(() => roundSketch(7, 5, 1, bad)).toThrow(RangeError);
    }
  });
});

describe('a sketch of depth k', () => {
  const width = dims.embedding + 1;

  it('adds every row over √k into one bucket of each of its k tables, drawn apart', () => {
    const sketch = roundSketch(6, 2, 3);
    expect(sketch.depth).toBe(3);
    expect(sketchLength(dims, sketch)).toBe(dense + 3 * 6 * width);
    const u = randomFull(7);
    const s = sketchOf3(u, sketch);
    for (let table = 0; table < 3; table++) {
      const sums = new Float64Array(6 * width);
      for (let item = 1; item < dims.items; item++) {
        const slot = sketchSlot(item, sketch, table);
        const b = Math.abs(slot) - 1;
        for (let c = 0; c < dims.embedding; c++) {
          sums[b * width + c]! += (Math.sign(slot) * u[at.embedding(item) + c]!) / Math.sqrt(3);
        }
        sums[b * width + dims.embedding]! += (Math.sign(slot) * u[at.bias(item)]!) / Math.sqrt(3);
      }
      const got = s.subarray(dense + table * 6 * width, dense + (table + 1) * 6 * width);
      for (let i = 0; i < sums.length; i++) expect(got[i]).toBeCloseTo(sums[i]!, 12);
    }
    // The tables' hashes differ: most items land in other buckets of table 1 than of table 0.
    const big = roundSketch(1024, 2, 2);
    const apart = Array.from({ length: 400 }, (_, i) => i + 1).filter(
      (item) => sketchSlot(item, big, 0) !== sketchSlot(item, big, 1),
    );
    expect(apart.length).toBeGreaterThan(390);
    expect(roundSketch(6, 2)).not.toHaveProperty('depth');
    expect(() => roundSketch(6, 2, 0)).toThrow(RangeError);
    expect(() => roundSketch(6, 2, 9)).toThrow(RangeError);
  });

  it('reads a row exactly where its readings agree, and nearly zero a row no update touched', () => {
    // Only items 1..4 move; with 4 buckets in each of 2 tables the other rows share buckets with
    // them, so a reading of one table alone would give them their mates' rows.
    const u = randomFull(8);
    for (let item = 5; item < dims.items; item++) {
      u.fill(0, at.embedding(item), at.embedding(item) + dims.embedding);
      u[at.bias(item)] = 0;
    }
    let version = 1;
    const sketchFor = (v: number) => roundSketch(64, v, 2);
    // A round whose draw puts items 1..4 in buckets of their own in both tables.
    const alone = (v: number) =>
      [0, 1].every(
        (t) =>
          new Set([1, 2, 3, 4].map((i) => Math.abs(sketchSlot(i, sketchFor(v), t)))).size === 4,
      );
    while (!alone(version)) version++;
    const sketch = sketchFor(version);
    const back = unsketchUpdate(sketchOf3(u, sketch), dims, sketch, new Float64Array(fullLength));
    for (let item = 1; item <= 4; item++) {
      for (let c = 0; c < dims.embedding; c++) {
        expect(back[at.embedding(item) + c]).toBeCloseTo(u[at.embedding(item) + c]!, 9);
      }
    }
    // A row whose two readings are two different mates' rows (or zero) is read as far less than
    // either: measured over every untouched row against the depth-1 reading of the same tables.
    let shrunk = 0;
    let plain = 0;
    const one = roundSketch(64, version);
    const plainBack = unsketchUpdate(sketchOf3(u, one), dims, one, new Float64Array(fullLength));
    for (let item = 5; item < dims.items; item++) {
      for (let c = 0; c < dims.embedding; c++) {
        shrunk += back[at.embedding(item) + c]! ** 2;
        plain += plainBack[at.embedding(item) + c]! ** 2;
      }
    }
    expect(plain).toBeGreaterThan(0);
    // The plain mean of the two readings would keep a quarter of it (half the reading, squared).
    expect(shrunk).toBeLessThan(0.05 * plain);
  });

  it('keeps the squared norm in expectation', () => {
    const u = randomFull(9);
    const norm2 = u.subarray(0, at.bias(dims.items - 1) + 1).reduce((acc, x) => acc + x * x, 0);
    let items2 = 0;
    const rounds = 2000;
    for (let version = 1; version <= rounds; version++) {
      const s = sketchOf3(u, roundSketch(8, version, 2));
      items2 += s.subarray(dense).reduce((acc, x) => acc + x * x, 0) / rounds;
    }
    expect(Math.abs(items2 / norm2 - 1)).toBeLessThan(0.05);
  });
});

function sketchOf3(u: Float64Array, sketch: ReturnType<typeof roundSketch>): Float64Array {
  return sketchUpdate(u, dims, sketch, new Float64Array(sketchLength(dims, sketch)));
}
