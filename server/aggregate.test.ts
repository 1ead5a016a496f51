import { describe, expect, it } from 'vitest';
import { l2Norm } from '../protocol/clip.js';
import { aggregate, updateWeight } from './aggregate.js';
import { makeDelta, seedWeights } from './test-helpers.js';

const options = { clipNorm: 1, maxExamples: 1000, serverLearningRate: 1 };

function distance(a: Float32Array, b: Float32Array): number {
  return l2Norm(Float64Array.from(a, (v, i) => v - b[i]!));
}

describe('aggregate', () => {
  it('weighs every update the same by default, whatever example count it claims', () => {
    const global = seedWeights();
    const a = makeDelta(0.5, 1);
    const b = makeDelta(0.25, 2);
    const claims = [
      [1, 1],
      [1000, 1],
      [5, 100_000],
    ];
    for (const [ea, eb] of claims) {
      const next = aggregate(
        global,
        [
          { delta: a, examples: ea! },
          { delta: b, examples: eb! },
        ],
        options,
      );
      for (let i = 0; i < global.length; i++) {
        expect(next[i]).toBeCloseTo(global[i]! + (a[i]! + b[i]!) / 2, 6);
      }
    }
  });

  it("is the example-weighted mean with 'weighted-mean'", () => {
    const global = seedWeights();
    const a = makeDelta(0.5, 1);
    const b = makeDelta(0.25, 2);
    const next = aggregate(
      global,
      [
        { delta: a, examples: 30 },
        { delta: b, examples: 10 },
      ],
      { ...options, aggregator: 'weighted-mean' },
    );
    for (let i = 0; i < global.length; i++) {
      expect(next[i]).toBeCloseTo(global[i]! + (30 * a[i]! + 10 * b[i]!) / 40, 6);
    }
  });

  it('re-clips an update scaled by 1000 so the model moves by at most S', () => {
    const global = seedWeights();
    const huge = makeDelta(1000, 3);
    const next = aggregate(global, [{ delta: huge, examples: 5 }], options);
    const moved = distance(next, global);
    expect(moved).toBeLessThanOrEqual(options.clipNorm * (1 + 1e-5));
    expect(moved).toBeGreaterThan(0.99);
    // The caller's delta is not clipped in place.
    expect(l2Norm(huge)).toBeCloseTo(1000, 2);
  });

  it('moves by at most lr * S for any mix of norms and weights', () => {
    const global = seedWeights();
    for (let trial = 0; trial < 20; trial++) {
      const updates = Array.from({ length: 1 + (trial % 5) }, (_, k) => ({
        delta: makeDelta(10 ** ((trial + k) % 7) / 100, trial * 7 + k),
        examples: (trial * 37 + k * 101) % 3000,
      }));
      const lr = 0.5 + (trial % 3) * 0.5;
      for (const aggregator of ['mean', 'weighted-mean'] as const) {
        const next = aggregate(global, updates, { ...options, serverLearningRate: lr, aggregator });
        expect(distance(next, global)).toBeLessThanOrEqual(lr * options.clipNorm * (1 + 1e-5));
      }
    }
  });

  it('clamps weights to [1, maxExamples]', () => {
    expect(updateWeight(0, 1000)).toBe(1);
    expect(updateWeight(5000, 1000)).toBe(1000);
    expect(updateWeight(17, 1000)).toBe(17);
  });

  it('hands the mean delta to the seam for DP noise / server optimisers', () => {
    const global = new Float32Array(3);
    const seen: number[] = [];
    const next = aggregate(global, [{ delta: Float32Array.of(0.1, 0, 0), examples: 1 }], {
      ...options,
      adjustMeanDelta: (mean, round) => {
        seen.push(round.cohort);
        mean[1] = 0.5;
      },
    });
    expect(seen).toEqual([1]);
    expect(Array.from(next)).toEqual([Math.fround(0.1), 0.5, 0]);
  });

  it('refuses an empty round, a wrong length and non-finite values', () => {
    const global = new Float32Array(3);
    expect(() => aggregate(global, [], options)).toThrow(RangeError);
    expect(() => aggregate(global, [{ delta: new Float32Array(2), examples: 1 }], options)).toThrow(
      RangeError,
    );
    expect(() =>
      aggregate(global, [{ delta: Float32Array.of(0, NaN, 0), examples: 1 }], options),
    ).toThrow(RangeError);
  });
});
