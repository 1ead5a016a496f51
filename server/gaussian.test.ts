import { describe, expect, it } from 'vitest';
import { addGaussianNoise, cryptoGaussian } from './gaussian.js';

describe('Gaussian noise', () => {
  it('draws standard normals from node:crypto', () => {
    const rng = cryptoGaussian();
    const n = 40_000;
    let sum = 0;
    let squares = 0;
    let beyond3 = 0;
    let nonFinite = 0;
    for (let i = 0; i < n; i++) {
      const x = rng();
      if (!Number.isFinite(x)) nonFinite++;
      sum += x;
      squares += x * x;
      if (Math.abs(x) > 3) beyond3++;
    }
    expect(nonFinite).toBe(0);
    // Bounds at ~8 standard errors: a correct generator fails them with probability < 1e-14.
    expect(Math.abs(sum / n)).toBeLessThan(0.04);
    expect(Math.abs(squares / n - 1)).toBeLessThan(0.06);
    // P(|X| > 3) = 0.0027: about 108 of 40000.
    expect(beyond3).toBeGreaterThan(40);
    expect(beyond3).toBeLessThan(200);
    // Two generators do not repeat each other (seeded from the CSPRNG, not a fixed seed).
    expect(cryptoGaussian()()).not.toBe(cryptoGaussian()());
  });

  it('adds exactly one scaled draw per coordinate', () => {
    const values = Float64Array.of(1, 2, 3);
    let calls = 0;
    addGaussianNoise(values, 0.5, () => ++calls);
    expect(calls).toBe(3);
    expect(Array.from(values)).toEqual([1.5, 3, 4.5]);
    expect(() => addGaussianNoise(values, -1, () => 0)).toThrow(RangeError);
  });
});
