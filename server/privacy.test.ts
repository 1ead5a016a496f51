import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorReply } from '../protocol/api.js';
import { l2Norm } from '../protocol/clip.js';
import { computeEpsilon, ledgerEpsilon } from '../protocol/privacy/index.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { noiseStd, roundPolicy } from './ingest.js';
import { effectiveSampleRate, trafficEpsilon } from './privacy.js';
import type { RoundContext } from './store.js';
import { PARAMS, PRIVATE, makeApp, makeDelta, runRound, seedWeights } from './test-helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function app(
  overrides: Partial<ServerConfig>,
  rng?: () => number,
): Promise<Awaited<ReturnType<typeof makeApp>>> {
  const made = await makeApp(overrides, rng ? { rng } : {});
  cleanups.push(made.close);
  return made;
}

describe('central DP noise', () => {
  it('adds one Gaussian draw per coordinate per round, std z S / m, to the fixed-denominator mean', async () => {
    const draws: number[] = [];
    // A recording "Gaussian": deterministic values so the expected weights can be computed.
    const rng = (): number => {
      const value = ((draws.length % 7) - 3) / 3;
      draws.push(value);
      return value;
    };
    const { app: server, config } = await app(PRIVATE, rng);
    const weights = await runRound(server, 3, 1);
    expect(draws.length).toBe(PARAMS);
    const sigma = noiseStd(config);
    expect(sigma).toBeCloseTo((1.2 * 1) / 3, 15);
    // Equal weights (the claimed example counts 10, 20, 30 are ignored) over the fixed denominator m.
    const global = seedWeights();
    const deltas = [0, 1, 2].map((k) => makeDelta(0.6, k));
    for (let i = 0; i < PARAMS; i++) {
      const mean = (deltas[0]![i]! + deltas[1]![i]! + deltas[2]![i]!) / 3;
      expect(weights[i]).toBeCloseTo(global[i]! + mean + sigma * draws[i]!, 6);
    }
    // A second round draws again, exactly once per coordinate.
    await runRound(server, 3, 2, 10);
    expect(draws.length).toBe(2 * PARAMS);
  });

  it('draws nothing with noise off', async () => {
    let calls = 0;
    const { app: server } = await app({ minCohort: 2 }, () => {
      calls++;
      return 0;
    });
    await runRound(server, 2, 1);
    expect(calls).toBe(0);
  });
});

describe('GET /v1/privacy', () => {
  it('reports epsilon after 2 rounds as the accountant computes it for 2 steps', async () => {
    const { app: server } = await app(PRIVATE, () => 0);
    const initial = (await server.inject({ method: 'GET', url: '/v1/privacy' })).json();
    expect(initial).toMatchObject({ rounds: 0, epsilon: 0, noise: 'on', exhausted: false });
    await runRound(server, 3, 1);
    await runRound(server, 3, 2);
    const res = await server.inject({ method: 'GET', url: '/v1/privacy' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const expected = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 2, delta: 1e-6 });
    expect(res.json()).toEqual({
      noise: 'on',
      noiseMultiplier: 1.2,
      sampleRate: 0.05,
      maxStaleness: 0,
      effectiveSampleRate: 0.05,
      roundWindowSeconds: 0,
      countNoise: 10,
      chargedNoiseMultiplier: 1.2,
      delta: 1e-6,
      clipNorm: 1,
      minCohort: 3,
      rounds: 2,
      epsilon: expected.epsilon,
      bestOrder: expected.order,
      epsilonBudget: null,
      exhausted: false,
    });
    expect(expected.epsilon).toBeGreaterThan(0);
  });

  it('charges each round at q_eff = (s + 1) q under a staleness bound s, and reports q, s and q_eff', async () => {
    const { app: server, store } = await app({ ...PRIVATE, maxStaleness: 2 }, () => 0);
    await runRound(server, 3, 1);
    const qEff = 0.15;
    const charged = computeEpsilon({ noise: 1.2, sampleRate: qEff, steps: 1, delta: 1e-6 });
    const ignoringS = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 1, delta: 1e-6 });
    const report = (await server.inject({ method: 'GET', url: '/v1/privacy' })).json();
    expect(report).toMatchObject({
      sampleRate: 0.05,
      maxStaleness: 2,
      effectiveSampleRate: expect.closeTo(qEff, 15),
      rounds: 1,
    });
    expect(report.epsilon).toBeCloseTo(charged.epsilon, 10);
    expect(charged.epsilon).toBeGreaterThan(ignoringS.epsilon * 1.5);
    // The ledger keeps the rate the round was charged at, so a later --max-staleness 0 cannot
    // lower what was already spent.
    expect((await store.privacyLedger()).map((r) => r.sampleRate)).toEqual([
      expect.closeTo(qEff, 15),
    ]);
    const later = resolveConfig({ ...PRIVATE, maxStaleness: 0 });
    expect(ledgerEpsilon(await store.privacyLedger(), later.delta).epsilon).toBeCloseTo(
      charged.epsilon,
      10,
    );
  });

  it('caps q_eff at 1', () => {
    expect(effectiveSampleRate(0.05, 0)).toBe(0.05);
    expect(effectiveSampleRate(0.25, 3)).toBe(1);
    expect(effectiveSampleRate(0.3, 9)).toBe(1);
    expect(effectiveSampleRate(0, 5)).toBe(0);
  });

  it('reports no epsilon with noise off, and a finite budget then refuses every round', async () => {
    const { app: server } = await app({ minCohort: 2 });
    const report = (await server.inject({ method: 'GET', url: '/v1/privacy' })).json();
    expect(report).toMatchObject({
      noise: 'off',
      epsilon: null,
      bestOrder: null,
      exhausted: false,
    });
    const budgeted = await app({ minCohort: 2, epsilonBudget: 10 });
    const join = await budgeted.app.inject({ method: 'POST', url: '/v1/rounds/join' });
    expect(join.statusCode).toBe(403);
    expect(join.json<ErrorReply>().error.code).toBe('HEARTH_E_PRIVACY_BUDGET');
  });
});

describe('privacy budget', () => {
  const one = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 1, delta: 1e-6 }).epsilon;
  const two = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 2, delta: 1e-6 }).epsilon;

  it('stops issuing tokens once another round would exceed the budget, and publishes nothing more', async () => {
    const budget = (one + two) / 2;
    const { app: server, store } = await app({ ...PRIVATE, epsilonBudget: budget }, () => 0);
    await runRound(server, 3, 1);
    const join = await server.inject({ method: 'POST', url: '/v1/rounds/join' });
    expect(join.statusCode).toBe(403);
    expect(join.json<ErrorReply>().error.code).toBe('HEARTH_E_PRIVACY_BUDGET');
    const report = (await server.inject({ method: 'GET', url: '/v1/privacy' })).json();
    expect(report).toMatchObject({ rounds: 1, epsilonBudget: budget, exhausted: true });
    expect(report.epsilon).toBeCloseTo(one, 12);
    expect(await store.counts()).toMatchObject({ versions: 2, rounds: 1 });
  });

  it('accounts rounds published under different settings, and none at all without noise', () => {
    const mixed = ledgerEpsilon(
      [
        { noiseMultiplier: 1.2, sampleRate: 0.05 },
        { noiseMultiplier: 2, sampleRate: 0.01 },
      ],
      1e-6,
    );
    expect(mixed.epsilon).toBeGreaterThan(one);
    expect(mixed.epsilon).toBeLessThan(two);
    expect(ledgerEpsilon([{ noiseMultiplier: 0, sampleRate: 0.05 }], 1e-6).epsilon).toBe(Infinity);
  });
});

describe('poisoning', () => {
  it('bounds a delta scaled by 1000 to S / m of influence with the plain mean and noise off', () => {
    const config = resolveConfig({ noiseMultiplier: 0, minCohort: 4, clipNorm: 1 });
    const global = seedWeights();
    const context: RoundContext = { optimizerState: undefined, ledger: [] };
    const honest = [1, 2, 3].map((k) => ({ delta: makeDelta(0.8, k), examples: 50 }));
    const attack = makeDelta(1, 9).map((v) => v * 1000);
    const run = (delta: Float32Array) =>
      roundPolicy(config).aggregate(global, [...honest, { delta, examples: 50 }], context).weights;
    const poisoned = run(attack);
    const without = run(new Float32Array(PARAMS));
    const influence = l2Norm(Float64Array.from(poisoned, (v, i) => v - without[i]!));
    expect(influence).toBeLessThanOrEqual((config.clipNorm / config.minCohort) * (1 + 1e-5));
    expect(influence).toBeGreaterThan(0.24);
    const moved = l2Norm(Float64Array.from(poisoned, (v, i) => v - global[i]!));
    expect(moved).toBeLessThanOrEqual(config.clipNorm * (1 + 1e-5));
  });
});

describe('a round sent in other coordinates (an item sketch)', () => {
  it('noises the sum in the coordinates the devices sent, then reads the mean into the model', () => {
    const config = resolveConfig({
      noiseMultiplier: 1,
      minCohort: 2,
      clipNorm: 1,
      serverOptimizer: 'fedavg',
      serverLearningRate: 1,
    });
    const global = seedWeights();
    const context: RoundContext = { optimizerState: undefined, ledger: [] };
    // The devices sent 3 values; the model reads value i % 3 into its coordinate i.
    const sum = [0.4, -0.2, 0.6];
    let draws = 0;
    const rng = () => (++draws % 2 === 0 ? 1 : -1);
    const sent = {
      length: 3,
      decode: (mean: Float64Array) => Float64Array.from(global, (_, i) => mean[i % 3]!),
    };
    const out = roundPolicy(config, rng).aggregateSum(global, { sum, count: 2, sent }, context);
    // One draw per value sent, not per model coordinate: -1, +1, -1 times z S / m = 0.5.
    expect(draws).toBe(3);
    const noised = sum.map((x, i) => x / 2 + (i % 2 === 0 ? -0.5 : 0.5));
    for (let i = 0; i < global.length; i++) {
      expect(out.weights[i]).toBeCloseTo(global[i]! + noised[i % 3]!, 6);
    }
  });
});

describe('the private defaults at a steady traffic', () => {
  const defaults = resolveConfig();

  it('charge what the README states at 10k and 100k visitors a day, and nothing below a round a day', () => {
    const days = [1, 30, 365];
    const at = (visitors: number) => trafficEpsilon(defaults, visitors, days);
    // q N / m rounds a day: 10,000 visitors at q = 0.01 fill one round of 100 a day.
    expect(at(10_000).epsilon.map((e) => e.rounds)).toEqual([1, 30, 365]);
    expect(at(100_000).epsilon.map((e) => e.rounds)).toEqual([10, 300, 3650]);
    // The README's table (`npm run privacy -- --traffic 1000,10000,100000`), to two decimals.
    expect(at(10_000).epsilon.map((e) => e.epsilon.toFixed(2))).toEqual(['1.12', '1.53', '3.30']);
    expect(at(100_000).epsilon.map((e) => e.epsilon.toFixed(2))).toEqual(['1.30', '3.03', '10.80']);
    // Each round is charged at q_eff = 3q (s = 2), as the ledger charges it.
    expect(at(10_000).epsilon[1]!.epsilon).toBe(
      computeEpsilon({ noise: 1.2, sampleRate: 0.03, steps: 30, delta: 1e-6 }).epsilon,
    );
    // 1,000 visitors make 10 updates a day: a round of 100 would take 10 days, past the 24 h
    // deadline, so every round is abandoned unpublished.
    const small = at(1_000);
    expect(small.roundsFill).toBe(false);
    expect(small.epsilon.map((e) => e.epsilon)).toEqual([0, 0, 0]);
    expect(
      trafficEpsilon({ ...defaults, roundDeadlineSeconds: 864_000 }, 1_000, [30]).epsilon,
    ).toEqual([
      {
        days: 30,
        rounds: 3,
        epsilon: ledgerEpsilon(new Array(3).fill({ noiseMultiplier: 1.2, sampleRate: 0.03 }), 1e-6)
          .epsilon,
      },
    ]);
  });
});

describe('rounds noised by their devices (secure aggregation)', () => {
  it('are priced by the Skellam accountant, a little above the Gaussian at the same z', () => {
    const z = 1.2;
    const l2 = 1e7 + Math.sqrt(1000); // scale S = 1e7 integer units, L = 1000, plain rounding
    const skellam = { mu: (z * 1e7) ** 2, l1: l2 * Math.sqrt(1000), l2 };
    const gaussian = ledgerEpsilon(
      new Array(100).fill({ noiseMultiplier: z, sampleRate: 0.03 }),
      1e-6,
    );
    const secure = ledgerEpsilon(
      new Array(100).fill({ noiseMultiplier: z, sampleRate: 0.03, skellam }),
      1e-6,
    );
    expect(secure.epsilon).toBeGreaterThan(gaussian.epsilon);
    expect(secure.epsilon).toBeLessThan(1.4 * gaussian.epsilon);
    // A secure round among Gaussian ones: every round at the Skellam orders, still finite.
    const mixed = ledgerEpsilon(
      [
        { noiseMultiplier: z, sampleRate: 0.03 },
        { noiseMultiplier: z, sampleRate: 0.03, skellam },
      ],
      1e-6,
    );
    expect(Number.isInteger(mixed.order)).toBe(true);
    expect(mixed.epsilon).toBeLessThan(Infinity);
  });
});
