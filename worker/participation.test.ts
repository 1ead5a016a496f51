import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../protocol/prng.js';
import { roundWindowAt } from '../protocol/manifest.js';
import { META_DEFAULTS } from './store-schema.js';
import { cryptoCoin, drawForVersion, drawForWindow, type WindowCoin } from './participation.js';

const fresh = { coinVersion: 0, coinJoins: false };
const freshWindow: WindowCoin = { coinWindow: META_DEFAULTS.coinWindow, coinWindowJoins: false };

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

  it('flips once per round window: the kept outcome is reused, a new window flips again', () => {
    let flips = 0;
    const coin = (): number => (flips++, 0.2);
    const first = drawForWindow(freshWindow, 100, 0.5, coin);
    expect(first).toEqual({ joins: true, patch: { coinWindow: 100, coinWindowJoins: true } });
    expect(drawForWindow(first.patch!, 100, 0.5, coin)).toEqual({ joins: true });
    expect(drawForWindow({ coinWindow: 100, coinWindowJoins: false }, 100, 1, coin)).toEqual({
      joins: false,
    });
    expect(flips).toBe(1);
    expect(drawForWindow(first.patch!, 101, 0.1, coin).joins).toBe(false);
    expect(flips).toBe(2);
    // Window 0 is a window like any other: a fresh device has flipped for none.
    expect(drawForWindow(freshWindow, 0, 0.5, coin).patch).toEqual({
      coinWindow: 0,
      coinWindowJoins: true,
    });
    expect(flips).toBe(3);
  });

  it('joins a fraction q of the round windows over time, flipping once in each', () => {
    const windowSeconds = 3600;
    const windows = 20_000;
    const syncsPerWindow = 3;
    for (const q of [0.01, 0.1, 0.5]) {
      const random = mulberry32(Math.round(q * 1000) + 1);
      let flips = 0;
      const coin = (): number => (flips++, random());
      let meta: WindowCoin = freshWindow;
      let joined = 0;
      let disagreed = 0;
      const start = Date.UTC(2026, 0, 1);
      for (let w = 0; w < windows; w++) {
        // A device syncing several times in each window, at times spread across it.
        let joinedThisWindow: boolean | undefined;
        for (let s = 0; s < syncsPerWindow; s++) {
          const at = start + (w + s / syncsPerWindow) * windowSeconds * 1000;
          const draw = drawForWindow(meta, roundWindowAt(at, windowSeconds), q, coin);
          if (draw.patch) meta = draw.patch;
          joinedThisWindow ??= draw.joins;
          if (draw.joins !== joinedThisWindow) disagreed++;
        }
        if (joinedThisWindow) joined++;
      }
      // One flip per window, and every sync in a window got its answer.
      expect(flips).toBe(windows);
      expect(disagreed).toBe(0);
      const mean = windows * q;
      const sd = Math.sqrt(windows * q * (1 - q));
      // 4.5 standard deviations, as above.
      expect(Math.abs(joined - mean)).toBeLessThan(4.5 * sd);
    }
  });

  it('draws the coin uniformly in [0, 1) from the cryptographic generator', () => {
    const draws = Array.from({ length: 4000 }, cryptoCoin);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const below = draws.filter((d) => d < 0.25).length;
    expect(Math.abs(below - 1000)).toBeLessThan(4.5 * Math.sqrt(4000 * 0.25 * 0.75));
  });
});
