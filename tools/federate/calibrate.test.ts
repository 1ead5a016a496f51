import { describe, expect, it } from 'vitest';
import { computeEpsilon, pldEpsilon } from '../../protocol/privacy/index.js';
import { windowNoiseMultiplier } from '../../protocol/privacy/ledger.js';
import { noiseForEpsilon, noiseForWindows, runEpsilon } from './calibrate.js';

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

describe('noiseForEpsilon by the PLD', () => {
  it('finds the PLD noise that spends the target, below the RDP noise for it', () => {
    const z = noiseForEpsilon(2, 0.1, 5, 1e-6, 'pld');
    const at = (noise: number) => pldEpsilon([{ noise, sampleRate: 0.1, steps: 5 }], 1e-6);
    expect(at(z)).toBeLessThanOrEqual(2);
    expect(at(z * 0.99)).toBeGreaterThan(2 * 0.98);
    expect(z).toBeLessThan(noiseForEpsilon(2, 0.1, 5, 1e-6) * 0.95);
  });

  it('prices a run without noise at infinity, and one nobody joins at 0', () => {
    expect(runEpsilon('pld', 0, 0.1, 20, 1e-6)).toBe(Infinity);
    expect(runEpsilon('rdp', 0, 0.1, 20, 1e-6)).toBe(Infinity);
    expect(runEpsilon('pld', 1, 0.1, 0, 1e-6)).toBe(0);
    expect(runEpsilon('rdp', 1.6244, 0.1, 20, 1e-6)).toBeCloseTo(2, 3);
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
