import { describe, expect, it } from 'vitest';
import { aggregate } from './aggregate.js';
import { coordinateMedian, trimCount, trimmedMean } from './robust.js';

/** Five hand-made 3-value updates; the last is an outlier in every coordinate. */
const deltas = [
  Float32Array.of(0.1, -0.2, 0),
  Float32Array.of(0.3, -0.1, 0.02),
  Float32Array.of(0.2, 0, -0.02),
  Float32Array.of(0, -0.3, 0.04),
  Float32Array.of(0.5, 0.5, 0.5),
];
const f = Math.fround;

describe('robust aggregators', () => {
  it('takes the coordinate-wise median (odd and even counts)', () => {
    expect(Array.from(coordinateMedian(deltas, 3))).toEqual([f(0.2), f(-0.1), f(0.02)]);
    const even = coordinateMedian(deltas.slice(0, 4), 3);
    expect(even[0]).toBeCloseTo((0.1 + 0.2) / 2, 7);
    expect(even[1]).toBeCloseTo((-0.2 + -0.1) / 2, 7);
    expect(even[2]).toBeCloseTo(0.01, 7);
  });

  it('cuts floor(fraction * n) values from each end before averaging', () => {
    expect(trimCount(5, 0.2)).toBe(1);
    expect(trimCount(5, 0.1)).toBe(0);
    const trimmed = trimmedMean(deltas, 3, 0.2);
    // Sorted columns minus one value at each end: {0.1,0.2,0.3}, {-0.2,-0.1,0}, {0,0.02,0.04}.
    expect(trimmed[0]).toBeCloseTo(0.2, 7);
    expect(trimmed[1]).toBeCloseTo(-0.1, 7);
    expect(trimmed[2]).toBeCloseTo(0.02, 7);
    // Nothing trimmed: the plain unweighted mean.
    expect(trimmedMean(deltas, 3, 0.1)[0]).toBeCloseTo((0.1 + 0.3 + 0.2 + 0 + 0.5) / 5, 7);
    expect(() => trimmedMean(deltas, 3, 0.5)).toThrow(RangeError);
  });

  it('plugs into aggregate(), unweighted and after re-clipping', () => {
    const global = new Float32Array(3);
    // The outlier's claim of 1000 examples does not matter to the median.
    const updates = deltas.map((delta, k) => ({ delta, examples: k === 4 ? 1000 : 1 }));
    const options = { clipNorm: 1, maxExamples: 1000, serverLearningRate: 1 };
    const median = aggregate(global, updates, { ...options, aggregator: 'median' });
    expect(Array.from(median)).toEqual([f(0.2), f(-0.1), f(0.02)]);
    const trimmed = aggregate(global, updates, {
      ...options,
      aggregator: 'trimmed-mean',
      trimFraction: 0.2,
    });
    expect(trimmed[0]).toBeCloseTo(0.2, 6);
    // A huge update is clipped to S before it takes part in any statistic.
    const huge = [...deltas.slice(0, 4), Float32Array.of(1000, 1000, 1000)].map((delta) => ({
      delta,
      examples: 1,
    }));
    const clippedMax = aggregate(global, huge, {
      ...options,
      aggregator: 'trimmed-mean',
      trimFraction: 0,
    });
    expect(clippedMax[0]).toBeCloseTo((0.1 + 0.3 + 0.2 + 0 + 1 / Math.sqrt(3)) / 5, 5);
  });
});
