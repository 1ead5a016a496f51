import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../protocol/prng.js';
import { resolveConfig } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import {
  atBoundFloor,
  beyondWindow,
  coherenceOf,
  MIN_WINDOW,
  RoundGuard,
  SPREAD_FLOOR,
} from './round-guard.js';
import { joinRound, makeApp, PARAMS, postUpdate, updateBody } from './test-helpers.js';

/** A random direction of `length` values with L2 norm `norm`. */
function randomDelta(length: number, norm: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  const raw = Float64Array.from({ length }, () => next() - 0.5);
  const n = Math.sqrt(raw.reduce((s, v) => s + v * v, 0));
  return Float32Array.from(raw, (v) => (v / n) * norm);
}

function normOf(delta: Float32Array): number {
  return Math.sqrt(delta.reduce((s, v) => s + v * v, 0));
}

describe('round statistics', () => {
  it('coherence is the mean pairwise cosine', () => {
    const sum = (vectors: number[][]) =>
      Float64Array.from(vectors[0]!, (_, i) => vectors.reduce((s, v) => s + v[i]!, 0));
    expect(
      coherenceOf(
        sum([
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ]),
        3,
      ),
    ).toBeCloseTo(0, 12);
    expect(
      coherenceOf(
        sum([
          [1, 0],
          [1, 0],
          [1, 0],
          [1, 0],
        ]),
        4,
      ),
    ).toBeCloseTo(1, 12);
    expect(
      coherenceOf(
        sum([
          [1, 0],
          [-1, 0],
        ]),
        2,
      ),
    ).toBeCloseTo(-1, 12);
    // Two of three alike, the third orthogonal: pairs (1, 0, 0) average 1/3.
    expect(
      coherenceOf(
        sum([
          [1, 0],
          [1, 0],
          [0, 1],
        ]),
        3,
      ),
    ).toBeCloseTo(1 / 3, 12);
    expect(coherenceOf(new Float64Array(2), 1)).toBe(0);
  });

  it('judges against the median and a robust spread, once the window holds enough rounds', () => {
    const window = [0.03, 0.031, 0.029, 0.03, 0.032];
    expect(beyondWindow(0.9, window.slice(0, MIN_WINDOW - 1), 3)).toBeUndefined();
    // MAD 0.001 * 1.4826 is under the floor: the spread is the floor.
    expect(beyondWindow(0.03 + 3 * SPREAD_FLOOR - 1e-4, window, 3)).toBeUndefined();
    expect(beyondWindow(0.03 + 3 * SPREAD_FLOOR + 1e-4, window, 3)).toEqual({
      median: 0.03,
      spread: SPREAD_FLOOR,
    });
    const wide = [0, 0.1, 0.2, 0.3, 0.4];
    // Median 0.2, MAD 0.1.
    expect(beyondWindow(0.49, wide, 2)).toBeUndefined();
    expect(beyondWindow(0.51, wide, 2)?.spread).toBeCloseTo(0.1 * 1.4826, 12);
    expect(beyondWindow(0.51, wide, 2, () => 0.2)).toBeUndefined();
    // At the bound: the binomial spread of the median share (at least one update's).
    expect(atBoundFloor(0, 40)).toBeCloseTo(Math.sqrt(((1 / 40) * (39 / 40)) / 40), 12);
    expect(atBoundFloor(0.5, 100)).toBeCloseTo(0.05, 12);
    expect(atBoundFloor(1, 10_000)).toBe(SPREAD_FLOOR);
  });

  it('flags a round whose updates point alike, and keeps it out of the window', () => {
    const guard = new RoundGuard({ window: 10, threshold: 3, clipNorm: 1 });
    const P = 2000;
    let seed = 1;
    const honestRound = (round: number, fake = 0, direction?: Float32Array) => {
      for (let i = 0; i < 40; i++) {
        const delta = i < fake ? direction! : randomDelta(P, 0.5, seed++);
        guard.observe(round, delta, normOf(delta));
      }
      return guard.close(round)!;
    };
    for (let round = 1; round <= MIN_WINDOW; round++) {
      const { statistics, anomalies } = honestRound(round);
      expect(statistics.updates).toBe(40);
      expect(Math.abs(statistics.coherence!)).toBeLessThan(0.01);
      expect(statistics.atBound).toBe(0);
      expect(anomalies).toEqual([]);
    }
    const push = randomDelta(P, 1, 999);
    // 5 of 40 alike: 10 pairs of 780 with cosine 1, about 0.013, under 3 floors; but 5 of 40 at the
    // bound where no honest update is: 0.125 against a spread of 0.025.
    const five = honestRound(6, 5, push);
    expect(five.statistics.coherence).toBeLessThan(0.03);
    expect(five.anomalies.map((a) => a.statistic)).toEqual(['atBound']);
    // Below the bound, the same five alike are not flagged.
    const below = randomDelta(P, 0.5, 998);
    expect(honestRound(7, 5, below).anomalies).toEqual([]);
    // 16 of 40 alike: 120 pairs of 780, about 0.15; and 16 of 40 at the bound.
    const judged = honestRound(8, 16, push);
    expect(judged.statistics.coherence).toBeGreaterThan(0.14);
    expect(judged.statistics.atBound).toBeCloseTo(0.4, 12);
    expect(judged.anomalies.map((a) => a.statistic).sort()).toEqual(['atBound', 'coherence']);
    expect(guard.window().map((s) => s.round)).toEqual([1, 2, 3, 4, 5, 7]);
    expect(guard.summary().anomalies).toEqual(
      new Map([
        ['atBound', 2],
        ['coherence', 1],
      ]),
    );
    // A late update of a closed round is not counted anywhere.
    guard.observe(8, push, 1);
    expect(guard.close(8)).toBeUndefined();
  });
});

describe('secure sums', () => {
  it("judges a sum by its energy beyond the noise's, with the noise energy's spread as floor", () => {
    const guard = new RoundGuard({ window: 10, threshold: 3, clipNorm: 1 });
    const L = 1000;
    const n = 10;
    const sigma2 = 0.04;
    const gaussian = mulberry32(5);
    const noisy = (updates: Float32Array[]) =>
      Float32Array.from({ length: L }, (_, j) => {
        // Box-Muller: a standard normal from two uniforms.
        const z = Math.sqrt(-2 * Math.log(1 - gaussian())) * Math.cos(2 * Math.PI * gaussian());
        return updates.reduce((sum, u) => sum + u[j]!, 0) + z * Math.sqrt(sigma2);
      });
    const normed = (sum: Float32Array) => ({ norm: normOf(sum), length: sum.length });
    let seed = 1;
    const honest = () => Array.from({ length: n }, () => randomDelta(L, 0.9, seed++));
    // The noise's energy spread, sqrt(2 L) sigma^2 / (n S)^2 = 0.018, is the floor here.
    for (let r = 0; r < MIN_WINDOW; r++) {
      const { statistics, anomalies } = guard.closeSum(`r${r}`, normed(noisy(honest())), n, sigma2);
      // n updates of norm 0.9 pointing apart: about n 0.81 / n^2 = 0.081.
      expect(statistics.sumEnergy).toBeGreaterThan(0.081 - 0.06);
      expect(statistics.sumEnergy).toBeLessThan(0.081 + 0.06);
      expect(anomalies).toEqual([]);
    }
    const push = randomDelta(L, 0.9, 999);
    const pushed = [...honest().slice(0, 4), ...Array.from({ length: 6 }, () => push)];
    // Six alike: (6 0.9)^2 / 100 + 4 0.81 / 100, about 0.32.
    const judged = guard.closeSum('pushed', normed(noisy(pushed)), n, sigma2);
    expect(judged.anomalies.map((a) => a.statistic)).toEqual(['sumEnergy']);
    expect(judged.anomalies[0]!.spread).toBeGreaterThanOrEqual(
      (Math.sqrt(2 * L) * sigma2) / (n * n),
    );
    // Plaintext statistics keep a window of their own.
    expect(guard.window().every((s) => s.coherence === undefined)).toBe(true);
  });

  it('floors the spread at what noise gives a sum of the median energy, cross term included', () => {
    const guard = new RoundGuard({ window: 10, threshold: 3, clipNorm: 1 });
    const L = 100;
    const n = 4;
    const sigma2 = 0.04;
    // A sum whose energy beyond the noise's is `energy`, in units of (n S)^2.
    const at = (energy: number) => ({ norm: Math.sqrt(energy * n * n + L * sigma2), length: L });
    for (let r = 0; r < MIN_WINDOW; r++) {
      expect(guard.closeSum(`r${r}`, at(0.2025), n, sigma2).anomalies).toEqual([]);
    }
    // Every round of the window alike, so the floor is the spread. The noise's own energy alone
    // would allow sqrt(2 L) sigma^2 / (n S)^2 = 0.035 (up to 0.309 at 3 spreads); its cross term
    // with a sum of energy 0.2025 lifts that to 0.057 (0.374).
    expect(guard.closeSum('within', at(0.34), n, sigma2).anomalies).toEqual([]);
    const judged = guard.closeSum('beyond', at(0.4), n, sigma2);
    expect(judged.anomalies.map((a) => a.statistic)).toEqual(['sumEnergy']);
    expect(judged.anomalies[0]!.spread).toBeCloseTo(
      Math.sqrt(2 * L * sigma2 ** 2 + 4 * sigma2 * 0.2025 * n ** 2) / n ** 2,
      9,
    );
  });
});

describe('--round-guard on a real round', () => {
  const OPERATOR = 'o'.repeat(40);
  const M = 8;

  /** Runs one round of M updates on `version`: random directions, or `alike` of them one way. */
  async function round(
    app: Awaited<ReturnType<typeof makeApp>>['app'],
    version: number,
    seed: number,
    alike = 0,
  ): Promise<void> {
    const push = randomDelta(PARAMS, 0.999, 7);
    for (let i = 0; i < M; i++) {
      const { token } = await joinRound(app);
      const delta = i < alike ? push : randomDelta(PARAMS, 0.5, seed * 100 + i);
      const res = await postUpdate(app, updateBody({ token, baseVersion: version, delta }));
      expect(res.statusCode).toBe(202);
    }
  }

  async function metric(app: Awaited<ReturnType<typeof makeApp>>['app'], line: RegExp) {
    const res = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    return Number(res.body.match(line)?.[1]);
  }

  it('rolls back a round whose updates point alike: the base weights are published again', async () => {
    const { app, store, close } = await makeApp({
      minCohort: M,
      noiseMultiplier: 0,
      roundGuard: 'rollback',
      roundGuardWindow: MIN_WINDOW,
      operatorToken: OPERATOR,
    });
    try {
      for (let v = 1; v <= MIN_WINDOW; v++) await round(app, v, v);
      const base = MIN_WINDOW + 1;
      expect(await store.latestVersion()).toBe(base);
      await round(app, base, 50, M / 2);
      // base + 1 is the pushed round, base + 2 the base's weights again.
      expect(await store.latestVersion()).toBe(base + 2);
      expect(bytesToFloat32((await store.getWeightBytes(base + 2))!)).toEqual(
        bytesToFloat32((await store.getWeightBytes(base))!),
      );
      expect(await metric(app, /hearth_round_anomalies_total\{statistic="coherence"\} (\d+)/)).toBe(
        1,
      );
      expect(await metric(app, /hearth_round_guard_rollbacks_total (\d+)/)).toBe(1);
      // Honest rounds after it go on.
      await round(app, base + 2, 60);
      expect(await store.latestVersion()).toBe(base + 3);
    } finally {
      await close();
    }
  });

  it('only counts it when flagging (the plaintext default)', async () => {
    expect(resolveConfig({ aggregation: 'plaintext' }).roundGuard).toBe('flag');
    expect(resolveConfig({}).roundGuard).toBe('rollback');
    const { app, store, close } = await makeApp({
      minCohort: M,
      noiseMultiplier: 0,
      roundGuardWindow: MIN_WINDOW,
      operatorToken: OPERATOR,
    });
    try {
      for (let v = 1; v <= MIN_WINDOW; v++) await round(app, v, v);
      await round(app, MIN_WINDOW + 1, 50, M / 2);
      expect(await store.latestVersion()).toBe(MIN_WINDOW + 2);
      expect(await metric(app, /hearth_round_anomalies_total\{statistic="coherence"\} (\d+)/)).toBe(
        1,
      );
      expect(await metric(app, /hearth_round_guard_rollbacks_total (\d+)/)).toBe(0);
    } finally {
      await close();
    }
  });

  it('refuses plaintext rollback with noise on: its decision reads the raw updates', () => {
    expect(() => resolveConfig({ aggregation: 'plaintext', roundGuard: 'rollback' })).toThrow(
      /accountant/,
    );
    expect(() =>
      resolveConfig({ aggregation: 'plaintext', roundGuard: 'rollback', noiseMultiplier: 0 }),
    ).not.toThrow();
    // A secure round's decision reads only the noisy sum (integration/secure-rounds.test.ts).
    expect(resolveConfig({ roundGuard: 'rollback' }).roundGuard).toBe('rollback');
    expect(() => resolveConfig({ roundGuardWindow: MIN_WINDOW - 1 })).toThrow();
  });
});
