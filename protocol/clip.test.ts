import { describe, expect, it } from 'vitest';
import { mulberry32 as rng } from './prng.js';
import { allFinite, clipL2InPlace, l2Norm } from './clip.js';

describe('L2 clipping', () => {
  it('never leaves a norm above the bound, for random vectors of any scale', () => {
    const random = rng(1);
    for (let trial = 0; trial < 300; trial++) {
      const length = 1 + Math.floor(random() * 5000);
      const scale = 10 ** (random() * 12 - 6);
      const bound = 10 ** (random() * 4 - 2);
      const v = Float32Array.from({ length }, () => (random() - 0.5) * scale);
      const before = l2Norm(v);
      const reported = clipL2InPlace(v, bound);
      expect(reported).toBe(before);
      expect(l2Norm(v)).toBeLessThanOrEqual(bound);
    }
  });

  it('holds for adversarial inputs: one huge coordinate, many equal ones, float32 extremes', () => {
    const cases = [
      Float32Array.of(3.4e38, 0, 0),
      Float32Array.of(-3.4e38, 3.4e38),
      new Float32Array(1_000_000).fill(1e-3),
      new Float32Array(1_000_000).fill(1),
      Float32Array.of(1e-45, -1e-45, 1.0000001),
      Float32Array.from({ length: 4097 }, (_, i) => (i % 2 ? 1 : -1) * 1e20),
    ];
    for (const v of cases) {
      for (const bound of [1e-3, 1, 1.0000001, 1e6]) {
        const copy = v.slice();
        clipL2InPlace(copy, bound);
        expect(l2Norm(copy)).toBeLessThanOrEqual(bound);
      }
    }
  });

  it('leaves vectors already inside the bound untouched', () => {
    const v = Float32Array.of(0.3, 0.4);
    clipL2InPlace(v, 1);
    expect(Array.from(v)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });

  it('rejects a non-positive bound and detects non-finite values', () => {
    expect(() => clipL2InPlace(Float32Array.of(1), 0)).toThrow(RangeError);
    expect(allFinite(Float32Array.of(1, NaN))).toBe(false);
    expect(allFinite(Float32Array.of(1, Infinity))).toBe(false);
    expect(allFinite(Float32Array.of(1, 2))).toBe(true);
  });
});
