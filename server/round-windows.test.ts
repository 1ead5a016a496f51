/**
 * Round windows beside the store conformance suite (which runs the windows' rounds, charges and
 * budget on both stores): the settings they need, what the manifest and the accountant say of them,
 * and a real server on a SQLite file closing at start-up the window that ended while it was down.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeEpsilon } from '../protocol/privacy/index.js';
import { parseArgs, resolveConfig } from './config.js';
import { currentSettings, trafficEpsilon, windowNoiseMultiplier } from './privacy.js';
import { chargeableWindows, roundWindows } from './round-windows.js';
import { startServer } from './start.js';
import {
  joinRound,
  makeDelta,
  postUpdate,
  PRIVATE,
  servedModel,
  updateBody,
  writeSeedDir,
} from './test-helpers.js';

const WINDOWED = { ...PRIVATE, aggregation: 'plaintext' as const, roundWindowSeconds: 3600 };

describe('round window settings', () => {
  it('need plaintext rounds, no staleness and no round guard, and default to those', () => {
    const config = resolveConfig(WINDOWED);
    expect(config).toMatchObject({ maxStaleness: 0, roundGuard: 'off', countNoise: 10 });
    expect(() => resolveConfig({ ...WINDOWED, aggregation: 'secure' })).toThrow(/plaintext/);
    expect(() => resolveConfig({ ...WINDOWED, maxStaleness: 2 })).toThrow(/max-staleness 0/);
    expect(() => resolveConfig({ ...WINDOWED, roundGuard: 'flag' })).toThrow(/round-guard off/);
    expect(() => resolveConfig({ ...WINDOWED, roundWindowSeconds: 59 })).toThrow(/round-window/);
    expect(() => resolveConfig({ ...WINDOWED, countNoise: 0 })).toThrow(/count-noise/);
    expect(() => resolveConfig({ ...WINDOWED, noiseMultiplier: 0, aggregator: 'median' })).toThrow(
      /aggregator mean/,
    );
    const parsed = parseArgs([
      '--aggregation',
      'plaintext',
      '--round-window',
      '600',
      '--count-noise',
      '5',
    ]);
    expect(parsed).toMatchObject({ roundWindowSeconds: 600, countNoise: 5, maxStaleness: 0 });
    // Off by default: rounds close on their m-th update.
    expect(resolveConfig({}).roundWindowSeconds).toBe(0);
  });

  it('charge each window at q for its sum and count together: z 1.1915 for z = 1.2 and σ_c = 10', () => {
    expect(windowNoiseMultiplier(1.2, 10)).toBeCloseTo(1.1915, 4);
    expect(windowNoiseMultiplier(0, 10)).toBe(0);
    expect(currentSettings(resolveConfig(WINDOWED))).toEqual({
      noiseMultiplier: windowNoiseMultiplier(1.2, 10),
      sampleRate: 0.05,
    });
    // Without windows, the round's own z at q_eff = (s + 1) q.
    const counted = currentSettings(resolveConfig({ ...PRIVATE, maxStaleness: 2 }));
    expect(counted.noiseMultiplier).toBe(1.2);
    expect(counted.sampleRate).toBeCloseTo(0.15, 15);
  });

  it('spend with time, not traffic: 24 windows a day at hourly windows, at any number of visitors', () => {
    const config = resolveConfig({ ...WINDOWED, sampleRate: 0.01, minCohort: 100 });
    const hourly = windowNoiseMultiplier(1.2, 10);
    for (const visitors of [1_000, 100_000]) {
      const t = trafficEpsilon(config, visitors, [1, 30]);
      expect(t.roundsPerDay).toBe(24);
      expect(t.epsilon.map((e) => e.rounds)).toEqual([24, 720]);
      const day = computeEpsilon({ noise: hourly, sampleRate: 0.01, steps: 24, delta: 1e-6 });
      expect(t.epsilon[0]!.epsilon).toBeCloseTo(day.epsilon, 10);
    }
    // 1,000 updates a day over 24 windows is about 42 a window, short of m = 100.
    expect(trafficEpsilon(config, 100_000, [1]).roundsFill).toBe(false);
    expect(trafficEpsilon(config, 300_000, [1]).roundsFill).toBe(true);
  });

  it('gate a window on its noised count: publish at ĉ >= m over ĉ, else nothing', () => {
    const config = resolveConfig(WINDOWED);
    const draw = (value: number) => () => value;
    const at = Date.UTC(2030, 0, 1, 5, 30);
    expect(roundWindows(config, at, draw(0))?.current).toBe(at / 3_600_000 - 0.5);
    // 3 updates, m = 3: passes at noise 0, fails at -0.1 sd.
    expect(roundWindows(config, at, draw(0))!.decide(3)).toBeDefined();
    expect(roundWindows(config, at, draw(-0.01))!.decide(3)).toBeUndefined();
    // No update: with noise on the count's noise alone decides (the exact 0 must not).
    expect(roundWindows(config, at, draw(1))!.decide(0)).toBeDefined();
    expect(roundWindows({ ...config, noiseMultiplier: 0 }, at, draw(1))!.decide(0)).toBeUndefined();
    expect(roundWindows(resolveConfig(PRIVATE), at)).toBeUndefined();
  });

  it('charge only the empty windows the budget has room for', () => {
    const config = resolveConfig(WINDOWED);
    const z = windowNoiseMultiplier(1.2, 10);
    const eps = (steps: number) =>
      computeEpsilon({ noise: z, sampleRate: 0.05, steps, delta: 1e-6 }).epsilon;
    expect(chargeableWindows([], 50, config)).toBe(50);
    const budget = { ...config, epsilonBudget: (eps(7) + eps(8)) / 2 };
    expect(chargeableWindows([], 50, budget)).toBe(7);
    expect(chargeableWindows([], 5, budget)).toBe(5);
    const ledger = [{ round: 1, version: 1, noiseMultiplier: z, sampleRate: 0.05, steps: 3 }];
    expect(chargeableWindows(ledger, 50, budget)).toBe(4);
  });
});

describe('a windowed server', () => {
  let dir: string;
  let now = 0;
  const clock = (): number => now;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-windows-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names its window in the manifest, and closes at start-up the window that ended while it was down', async () => {
    const seed = await writeSeedDir();
    try {
      const config = resolveConfig({
        ...WINDOWED,
        noiseMultiplier: 0,
        // Count noise too small to move a count of 4 below m = 3.
        countNoise: 1e-6,
        port: 0,
        dbPath: join(dir, 'h.db'),
        modelDir: seed.dir,
        weightsDtype: 'float32',
      });
      now = Date.UTC(2030, 0, 1, 10, 5);
      const first = await startServer(config, { now: clock });
      expect((await servedModel(first.app)).federation.roundWindowSeconds).toBe(3600);
      for (let k = 0; k < 4; k++) {
        const { token } = await joinRound(first.app, Math.floor(now / 3_600_000));
        const body = updateBody({ token, delta: makeDelta(0.5, k) });
        expect((await postUpdate(first.app, body)).statusCode).toBe(202);
      }
      expect(await first.store.latestVersion()).toBe(1);
      await first.close();
      now = Date.UTC(2030, 0, 1, 13, 1);
      const second = await startServer(config, { now: clock });
      try {
        expect(await second.store.latestVersion()).toBe(2);
        // The 10:00 window published; 11:00 and 12:00 ended with no round: one row, two windows.
        const ledger = await second.store.privacyLedger();
        expect(ledger.map((r) => r.steps ?? 1)).toEqual([1, 2]);
        expect((await servedModel(second.app)).version).toBe(2);
      } finally {
        await second.close();
      }
    } finally {
      await seed.cleanup();
    }
  });
});
