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
import { decodeWeights, encodeWeights } from './weights-codec.js';

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

describe('weights codec', () => {
  it('cuts rows along the last axis, and 1-D tensors into blocks', () => {
    expect(int8Rows(layout)).toEqual([3, 3, 3, 3, 3, INT8_BLOCK, 7]);
    expect(weightsByteLength(layout, 'float32')).toBe(4 * (15 + 71));
    expect(weightsByteLength(layout, 'float16')).toBe(2 * (15 + 71));
    expect(weightsByteLength(layout, 'int8')).toBe(4 * 7 + 15 + 71);
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
    for (const [spec, seed] of [
      [layout, 2],
      [tensorLayout({ items: 50, embedding: 8, hidden: 4, maxSessionLength: 5 }), 3],
    ] as const) {
      const flat = weights(spec, seed);
      const bytes = encodeWeights(flat, spec, 'int8');
      expect(bytes.length).toBe(weightsByteLength(spec, 'int8'));
      const back = decodeWeights(bytes, spec, 'int8');
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

  it('reads int8 weights from a view into a larger buffer', () => {
    const flat = weights(layout, 4);
    const bytes = encodeWeights(flat, layout, 'int8');
    const padded = new Uint8Array(bytes.length + 16);
    padded.set(bytes, 8);
    const view = padded.subarray(8, 8 + bytes.length);
    expect(decodeWeights(view, layout, 'int8')).toEqual(decodeWeights(bytes, layout, 'int8'));
  });
});
