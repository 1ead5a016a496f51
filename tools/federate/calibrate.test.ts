import { describe, expect, it } from 'vitest';
import { computeEpsilon } from '../../protocol/privacy/index.js';
import { windowNoiseMultiplier } from '../../protocol/privacy/ledger.js';
import { noiseForEpsilon, noiseForWindows } from './calibrate.js';

describe('noiseForEpsilon', () => {
  it('finds the noise that spends the target, and no less noise does', () => {
    for (const target of [0.5, 2, 8]) {
      const z = noiseForEpsilon(target, 0.01, 500, 1e-6);
      const at = (noise: number) =>
        computeEpsilon({ noise, sampleRate: 0.01, steps: 500, delta: 1e-6 }).epsilon;
      expect(at(z)).toBeLessThanOrEqual(target);
      expect(at(z * 0.99)).toBeGreaterThan(target * 0.98);
    }
    // More rounds cost more: the same target needs more noise.
    expect(noiseForEpsilon(2, 0.01, 1000, 1e-6)).toBeGreaterThan(
      noiseForEpsilon(2, 0.01, 100, 1e-6),
    );
  });
});

describe('noiseForWindows', () => {
  it("finds the sum's noise whose multiplier combined with the count's is the one asked for", () => {
    for (const combined of [0.5, 1.1915, 3]) {
      const z = noiseForWindows(combined, 10);
      expect(z).toBeGreaterThan(combined);
      expect(windowNoiseMultiplier(z, 10)).toBeCloseTo(combined, 10);
    }
    expect(() => noiseForWindows(10, 10)).toThrow(RangeError);
  });
});
