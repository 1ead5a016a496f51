import { describe, expect, it } from 'vitest';
import {
  INT8_BLOCK,
  int8Rows,
  tensorLayout,
  weightsByteLength,
  type TensorSpec,
} from './manifest.js';
import { mulberry32 } from './prng.js';
import { int8StepError } from './testing.js';
import { decodeWeights, encodeWeights, INT8E_STEP_RATIO } from './weights-codec.js';

const layout: TensorSpec[] = [
  { name: 'item_embedding', shape: [5, 3] },
  { name: 'item_bias', shape: [INT8_BLOCK + 7] },
];

/** Random weights whose rows differ in scale by orders of magnitude, with an all-zero row. */
function weights(spec: readonly TensorSpec[], seed: number): Float32Array {
  const random = mulberry32(seed);
  const count = spec.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  return Float32Array.from({ length: count }, (_, i) =>
    i < 3 ? 0 : (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3),
  );
}

/** Layouts and seeds the int8 codecs are checked on. */
const CASES = [
  [layout, 2],
  [tensorLayout({ items: 50, embedding: 8, hidden: 4, maxSessionLength: 5 }), 3],
] as const;

/** Random weights over `spec`, encoded in `dtype` (checked against its byte length) and decoded. */
function roundTrip(spec: readonly TensorSpec[], seed: number, dtype: 'int8' | 'int8e') {
  const flat = weights(spec, seed);
  const bytes = encodeWeights(flat, spec, dtype);
  expect(bytes.length).toBe(weightsByteLength(spec, dtype));
  return { flat, bytes, back: decodeWeights(bytes, spec, dtype) };
}

describe('weights codec', () => {
  it('cuts rows along the last axis, and 1-D tensors into blocks', () => {
    expect(int8Rows(layout)).toEqual([3, 3, 3, 3, 3, INT8_BLOCK, 7]);
    expect(weightsByteLength(layout, 'float32')).toBe(4 * (15 + 71));
    expect(weightsByteLength(layout, 'float16')).toBe(2 * (15 + 71));
    expect(weightsByteLength(layout, 'int8')).toBe(4 * 7 + 15 + 71);
    // A float32 base per tensor, a byte per row, a byte per value.
    expect(weightsByteLength(layout, 'int8e')).toBe(4 * 2 + 7 + 15 + 71);
  });

  it('round-trips float32 exactly and float16 to its precision', () => {
    const flat = weights(layout, 1);
    expect(decodeWeights(encodeWeights(flat, layout, 'float32'), layout, 'float32')).toEqual(flat);
    const half = decodeWeights(encodeWeights(flat, layout, 'float16'), layout, 'float16');
    half.forEach((v, i) =>
      expect(Math.abs(v - flat[i]!)).toBeLessThanOrEqual(Math.abs(flat[i]!) / 1000 + 1e-7),
    );
  });

  it('keeps every int8 value within half a step of its own row', () => {
    for (const [spec, seed] of CASES) {
      const { flat, back } = roundTrip(spec, seed, 'int8');
      let at = 0;
      for (const width of int8Rows(spec)) {
        const row = flat.subarray(at, at + width);
        const step = Math.max(...row.map(Math.abs)) / 127;
        for (let i = at; i < at + width; i++) {
          expect(Math.abs(back[i]! - flat[i]!)).toBeLessThanOrEqual(step / 2 + 1e-12);
        }
        at += width;
      }
      expect(int8StepError(back, flat, spec)).toBeLessThanOrEqual(0.5 + 1e-9);
      expect(
        int8StepError(
          flat.map((v) => v * 1.1),
          flat,
          spec,
        ),
      ).toBeGreaterThan(0.5);
      // An all-zero row stays zero.
      expect([...back.subarray(0, 3)]).toEqual([0, 0, 0]);
    }
  });

  it('keeps every int8e value within half a step of its row, a step at most 9% above ideal', () => {
    for (const [spec, seed] of CASES) {
      const { flat, bytes, back } = roundTrip(spec, seed, 'int8e');
      const view = new DataView(bytes.buffer);
      const rows = int8Rows(spec);
      let at = 0;
      let r = 0;
      spec.forEach((tensor, t) => {
        const base = view.getFloat32(4 * t, true);
        for (const end = r + int8Rows([tensor]).length; r < end; r++) {
          const width = rows[r]!;
          const ideal = Math.max(...flat.subarray(at, at + width).map(Math.abs)) / 127;
          // The format's step, written out here: base * 2^(-code / 8).
          const step = base * 2 ** (-bytes[4 * spec.length + r]! / 8);
          if (ideal > 0) {
            expect(step).toBeGreaterThanOrEqual(ideal);
            expect(step).toBeLessThanOrEqual(ideal * INT8E_STEP_RATIO * (1 + 1e-12));
          }
          for (let i = at; i < at + width; i++) {
            // The decoded value is a float32: half a step, and float32's rounding of it.
            const slack = Math.abs(flat[i]!) * 2 ** -23;
            expect(Math.abs(back[i]! - flat[i]!)).toBeLessThanOrEqual(step / 2 + slack);
          }
          at += width;
        }
      });
      expect(int8StepError(back, flat, spec)).toBeLessThanOrEqual(0.5 * INT8E_STEP_RATIO + 1e-6);
      // An all-zero row stays zero.
      expect([...back.subarray(0, 3)]).toEqual([0, 0, 0]);
    }
  });

  it('gives an int8e row far below its tensor the smallest step, and zero rows their zeros', () => {
    const spec: TensorSpec[] = [{ name: 'item_embedding', shape: [3, 2] }];
    const flat = Float32Array.from([1, -0.5, 1e-12, 3e-13, 0, 0]);
    const bytes = encodeWeights(flat, spec, 'int8e');
    expect([...bytes.subarray(4, 7)]).toEqual([0, 255, 255]);
    const back = decodeWeights(bytes, spec, 'int8e');
    const base = new DataView(bytes.buffer).getFloat32(0, true);
    expect(base).toBeGreaterThanOrEqual(1 / 127);
    expect(base).toBeCloseTo(1 / 127, 7);
    const smallest = base * 2 ** (-255 / 8);
    expect(smallest).toBeGreaterThan(1e-12 / 127);
    for (let i = 0; i < 6; i++) {
      const step = i < 2 ? base : smallest;
      expect(Math.abs(back[i]! - flat[i]!)).toBeLessThanOrEqual(
        step / 2 + 1e-9 * Math.abs(flat[i]!),
      );
    }
    expect([...back.subarray(4)]).toEqual([0, 0]);
    // A tensor of zeros: base 0, every value 0.
    const zeros = encodeWeights(new Float32Array(6), spec, 'int8e');
    expect([...decodeWeights(zeros, spec, 'int8e')]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('reads int8 and int8e weights from a view into a larger buffer', () => {
    const flat = weights(layout, 4);
    for (const dtype of ['int8', 'int8e'] as const) {
      const bytes = encodeWeights(flat, layout, dtype);
      const padded = new Uint8Array(bytes.length + 16);
      padded.set(bytes, 8);
      const view = padded.subarray(8, 8 + bytes.length);
      expect(decodeWeights(view, layout, dtype)).toEqual(decodeWeights(bytes, layout, dtype));
    }
  });
});
