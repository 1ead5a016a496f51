import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../protocol/prng.js';
import { cryptoCoin, drawForVersion } from './participation.js';

const fresh = { coinVersion: 0, coinJoins: false };

describe('participation coin', () => {
  it('takes part with probability q over a population, within binomial bounds', () => {
    const devices = 20_000;
    for (const q of [0.01, 0.1, 0.5]) {
      const random = mulberry32(Math.round(q * 1000));
      let joined = 0;
      for (let d = 0; d < devices; d++) if (drawForVersion(fresh, 7, q, random).joins) joined++;
      const mean = devices * q;
      const sd = Math.sqrt(devices * q * (1 - q));
      // 4.5 standard deviations: a correct coin fails this about once in 150,000 runs.
      expect(Math.abs(joined - mean)).toBeLessThan(4.5 * sd);
    }
  });

  it('never takes part at q = 0 and always at q = 1', () => {
    expect(drawForVersion(fresh, 3, 0, () => 0).joins).toBe(false);
    expect(drawForVersion(fresh, 3, 1, () => 0.999999).joins).toBe(true);
  });

  it('flips once per version: the kept outcome is reused, a new version flips again', () => {
    let flips = 0;
    const coin = (): number => (flips++, 0.2);
    const first = drawForVersion(fresh, 5, 0.5, coin);
    expect(first).toEqual({ joins: true, patch: { coinVersion: 5, coinJoins: true } });
    expect(drawForVersion(first.patch!, 5, 0.5, coin)).toEqual({ joins: true });
    expect(drawForVersion({ coinVersion: 5, coinJoins: false }, 5, 1, coin)).toEqual({
      joins: false,
    });
    expect(flips).toBe(1);
    expect(drawForVersion(first.patch!, 6, 0.1, coin).joins).toBe(false);
    expect(flips).toBe(2);
  });

  it('draws the coin uniformly in [0, 1) from the cryptographic generator', () => {
    const draws = Array.from({ length: 4000 }, cryptoCoin);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const below = draws.filter((d) => d < 0.25).length;
    expect(Math.abs(below - 1000)).toBeLessThan(4.5 * Math.sqrt(4000 * 0.25 * 0.75));
  });
});
