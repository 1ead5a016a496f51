import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { devicePool } from './device-pool.js';
import { participants, populationOf } from './population.js';
import type { FederateRow } from './report.js';
import { plantedDims, plantedLoaded, plantedSettings } from './planted.js';
import { layoutFor, runFederation, serverConfig, windowGate } from './run.js';
import { DEVICE_BATCH, runRound, type StaleGroup } from './rounds.js';
import { runDeviceJob } from './device-worker.js';
import { worstDifference } from '../../server/test-helpers.js';
import { fitUpdate, rowOffsets, type UpdateLayout } from '../../protocol/update-layout.js';
import { initialWeights } from '../../model/init.js';
import { sentDense } from '../../protocol/item-sketch.js';
import { ledgerEpsilon, pldEpsilon } from '../../protocol/privacy/index.js';
import { mulberry32, normal } from '../../protocol/prng.js';
import { initialFedAdamState } from '../../server/fedadam.js';
import { currentSettings } from '../../server/privacy.js';
import { quantizedBytes } from '../../protocol/update-quant.js';
import { encodeMasked, wordBytes } from '../../protocol/secagg/wire.js';
import { standInEncoding } from '../../server/secure-sum.js';

const loaded = plantedLoaded;
const dims = plantedDims;
const settings = plantedSettings;

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

const metricAt = (rows: readonly FederateRow[], metric: 'hr' | 'mrr', round: number) =>
  rows.find((r) => r.metric === metric && r.round === round)!.value!;

/** Expects two runs' HR@20 and MRR@20 at `round` to agree within `within`. */
function expectAgree(
  a: readonly FederateRow[],
  b: readonly FederateRow[],
  round: number,
  within = 0.01,
): void {
  for (const metric of ['hr', 'mrr'] as const) {
    expect(Math.abs(metricAt(a, metric, round) - metricAt(b, metric, round))).toBeLessThan(within);
  }
}

/** A run summed, and the same run with every device's body (perDevice), on `population`. */
async function summedAndEachBody(
  population: Parameters<typeof runFederation>[1],
  run: Parameters<typeof runFederation>[4],
) {
  const summed = await runFederation(loaded, population, dims, null, run, null);
  const eachBody = await runFederation(
    loaded,
    population,
    dims,
    null,
    { ...run, perDevice: true },
    null,
  );
  return { summed, eachBody };
}

describe('runFederation', () => {
  it('learns the planted transitions; the same run with the aggregate negated does not', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const rows = await runFederation(loaded, population, dims, null, settings, null);
    const before = metricAt(rows, 'mrr', 0);
    // Measured: MRR@20 0.035 -> 0.35, HR@20 0.26 -> 0.78 (64 items).
    expect(metricAt(rows, 'mrr', 30) - before).toBeGreaterThan(0.2);
    expect(metricAt(rows, 'hr', 30) - metricAt(rows, 'hr', 0)).toBeGreaterThan(0.3);
    // A server that steps against the devices' updates (FedAvg with a negative step).
    const flipped = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...settings, serverOptimizer: 'fedavg', serverLearningRate: -1 },
      null,
    );
    expect(metricAt(flipped, 'mrr', 30) - before).toBeLessThan(0.05);
    const bytes = rows.find((r) => r.metric === 'upload_bytes' && r.round === 30)!.value!;
    // float16 values plus the 44-byte header, one value per parameter (the full layout).
    expect(bytes).toBe(44 + 2 * (dims.items * 9 + 8 * 32 + 8 * 32 + 32 + 8 * 8 + 8));
  }, 60_000);

  it('learns the planted transitions from item rows sent as a count sketch, 4 items a bucket', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const buckets = Math.ceil((dims.items - 1) / 4);
    const rows = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...settings, itemSketch: buckets },
      null,
    );
    // Measured: MRR@20 0.035 -> 0.28, HR@20 0.26 -> 0.77; with the signs read back wrong, 0.028.
    const before = metricAt(rows, 'mrr', 0);
    expect(metricAt(rows, 'mrr', 30) - before).toBeGreaterThan(0.1);
    const bytes = rows.find((r) => r.metric === 'upload_bytes' && r.round === 30)!.value!;
    // The dense tensors and a bucket of 9 values (embedding 8, bias), in float16, with the header.
    expect(bytes).toBe(44 + 2 * (buckets * 9 + 8 * 32 + 8 * 32 + 32 + 8 * 8 + 8));
  }, 60_000);

  it('resumes from a checkpoint to the very rows of an uninterrupted run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-federate-'));
    try {
      const population = populationOf(loaded, 'new', 'test');
      const short = { ...settings, rounds: 6, evalEvery: 3, rowsPerRound: 5, noise: 1, clip: 5 };
      const whole = await runFederation(loaded, population, dims, null, short, null);
      await runFederation(loaded, population, dims, null, { ...short, rounds: 3 }, dir);
      const resumed = await runFederation(loaded, population, dims, null, short, dir);
      const numbers = (rows: readonly FederateRow[]) =>
        rows.filter((r) => r.metric !== 'wall_s').map((r) => [r.metric, r.round, r.value]);
      expect(numbers(resumed)).toEqual(numbers(whole));
      // With noise on, epsilon is finite and grows with the rounds.
      const eps = whole.filter((r) => r.metric === 'epsilon').map((r) => r.value!);
      expect(eps[0]).toBe(0);
      expect(eps[1]! > 0 && eps[2]! > eps[1]!).toBe(true);
      // Priced by the PLD: the same models, the rounds' PLD epsilon, below the server's RDP one.
      const pld = await runFederation(
        loaded,
        population,
        dims,
        null,
        { ...short, accountant: 'pld' },
        null,
      );
      const models = (rows: readonly FederateRow[]) =>
        numbers(rows).filter(([metric]) => metric === 'hr' || metric === 'mrr');
      expect(models(pld)).toEqual(models(whole));
      const pldEps = pld.filter((r) => r.metric === 'epsilon').map((r) => r.value!);
      for (const [i, round] of [0, 3, 6].entries()) {
        const priced = [{ noise: 1, sampleRate: short.sampleRate, steps: round }];
        expect(pldEps[i]).toBe(pldEpsilon(priced, 1e-6));
        if (round > 0) expect(pldEps[i]).toBeLessThan(eps[i]!);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the device pool', () => {
  for (const perDevice of [false, true]) {
    it(`gives the rows the devices give on this thread (${perDevice ? 'each body' : 'summed'})`, async () => {
      const population = populationOf(loaded, 'new', 'test');
      const short = { ...settings, rounds: 2, evalEvery: 2, rowsPerRound: 7, perDevice };
      const here = await runFederation(loaded, population, dims, null, short, null);
      const pool = devicePool(2);
      try {
        const threads = await runFederation(loaded, population, dims, null, short, null, {
          runner: (job, devices) => pool.run(job, devices),
        });
        const numbers = (rows: readonly FederateRow[]) =>
          rows.filter((r) => r.metric !== 'wall_s').map((r) => [r.metric, r.round, r.value]);
        expect(numbers(threads)).toEqual(numbers(here));
        expect(numbers(here).find(([m, r]) => m === 'mrr' && r === 2)![2]).not.toBe(
          numbers(here).find(([m, r]) => m === 'mrr' && r === 0)![2],
        );
      } finally {
        await pool.close();
      }
    }, 60_000);
  }
});

describe('summed rounds', () => {
  it("publish the models that every device's decoded body publishes, to float16 rounding", async () => {
    const population = populationOf(loaded, 'new', 'test');
    // Clipping on (S near the median norm), noise on, FedAdam, a rows layout.
    const noisy = { ...settings, rounds: 4, evalEvery: 4, rowsPerRound: 20, clip: 0.5, noise: 0.3 };
    const { summed, eachBody } = await summedAndEachBody(population, noisy);
    expectAgree(summed, eachBody, 4);
    // Not equal by construction: a run without clipping lands elsewhere.
    const unclipped = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...noisy, clip: 1e9 },
      null,
    );
    expect(Math.abs(metricAt(unclipped, 'mrr', 4) - metricAt(summed, 'mrr', 4))).toBeGreaterThan(
      0.01,
    );
  }, 60_000);
});

describe('item sketches per device', () => {
  it('publish what the summed sketch publishes, without clipping and with clipping and noise', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const buckets = Math.ceil((dims.items - 1) / 4);
    const short = { ...settings, rounds: 4, evalEvery: 4, itemSketch: buckets, clip: 1e9 };
    const { summed, eachBody } = await summedAndEachBody(population, short);
    expectAgree(summed, eachBody, 4);
    const bytes = eachBody.find((r) => r.metric === 'upload_bytes' && r.round === 4)!.value!;
    expect(bytes).toBe(44 + 2 * (buckets * 9 + 8 * 32 + 8 * 32 + 32 + 8 * 8 + 8));
    // Each device clips its sketch; with noise on the run lands elsewhere and prices it. Summed,
    // each device is clipped by its sketch's norm too, so the two runs agree.
    const noisy = { ...short, clip: 0.5, noise: 0.5 };
    const { summed: noisySummed, eachBody: noisyEach } = await summedAndEachBody(population, noisy);
    expectAgree(noisySummed, noisyEach, 4);
    expect(metricAt(noisyEach, 'mrr', 4)).not.toBe(metricAt(eachBody, 'mrr', 4));
    const epsilon = noisyEach.find((r) => r.metric === 'epsilon' && r.round === 4)!.value!;
    expect(Number.isFinite(epsilon) && epsilon > 0).toBe(true);
  }, 60_000);
});

describe('item sketches with a dense stride', () => {
  it('publish per device what the summed sketch publishes, one in k dense values on the wire', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const buckets = Math.ceil((dims.items - 1) / 4);
    const short = {
      ...settings,
      rounds: 4,
      evalEvery: 2,
      itemSketch: buckets,
      sketchDenseStride: 3,
      clip: 1e9,
    };
    const { summed, eachBody } = await summedAndEachBody(population, short);
    expectAgree(summed, eachBody, 4);
    // The stride moves the run: it is not the sketch without one.
    const whole = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...short, sketchDenseStride: 1 },
      null,
    );
    expect(metricAt(whole, 'mrr', 4)).not.toBe(metricAt(summed, 'mrr', 4));
    // Each round's body: the dense values its sketch carries (206 of 616 in round 2, drawn at
    // offset 0; 205 in round 4), then the buckets.
    const dense = 8 * 32 + 8 * 32 + 32 + 8 * 8 + 8;
    for (const round of [2, 4]) {
      const layout = layoutFor(serverConfig(short, 100), dims, round - 1, new Float32Array(0), 1);
      if (layout.kind !== 'sketch') throw new Error('expected a sketch');
      const carried = sentDense(dense, layout.sketch).count;
      expect(carried).toBeLessThanOrEqual(Math.ceil(dense / 3));
      const bytes = eachBody.find((r) => r.metric === 'upload_bytes' && r.round === round)!.value!;
      expect(bytes).toBe(44 + 2 * (buckets * 9 + carried));
    }
  }, 60_000);
});

describe('int8 and int4 bodies', () => {
  it('learn the planted transitions as float16 bodies do, at their own size on the wire', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const eachBody = { ...settings, perDevice: true };
    const half = await runFederation(loaded, population, dims, null, eachBody, null);
    const count = dims.items * 9 + 8 * 32 + 8 * 32 + 32 + 8 * 8 + 8;
    for (const updateDtype of ['int8', 'int4'] as const) {
      const rows = await runFederation(
        loaded,
        population,
        dims,
        null,
        { ...eachBody, updateDtype },
        null,
      );
      // The same bars as the float16 run above, and within 0.05 of this one's MRR@20.
      expect(metricAt(rows, 'mrr', 30) - metricAt(rows, 'mrr', 0)).toBeGreaterThan(0.2);
      expect(metricAt(rows, 'hr', 30) - metricAt(rows, 'hr', 0)).toBeGreaterThan(0.3);
      expect(Math.abs(metricAt(rows, 'mrr', 30) - metricAt(half, 'mrr', 30))).toBeLessThan(0.05);
      // Rounded, not the float16 values: the models differ.
      expect(metricAt(rows, 'mrr', 30)).not.toBe(metricAt(half, 'mrr', 30));
      const bytes = rows.find((r) => r.metric === 'upload_bytes' && r.round === 30)!.value!;
      expect(bytes).toBe(44 + quantizedBytes(updateDtype, count));
    }
  }, 120_000);
});

describe('secure rounds (the stand-in for secure aggregation)', () => {
  it('publish what the plaintext sum publishes without noise, and price their noise as Skellam', async () => {
    const population = populationOf(loaded, 'new', 'test');
    const base = { ...settings, rounds: 4, evalEvery: 4, rowsPerRound: 20, clip: 0.5 };
    const plain = await runFederation(loaded, population, dims, null, base, null);
    const secure = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...base, secure: true },
      null,
    );
    // The fixed-point rounding is all that differs.
    expectAgree(secure, plain, 4, 1e-3);
    // What a secure device sends is its masked input, not a float16 body: its round's ring's
    // bytes for each coordinate it sums (server/secure-rounds.ts secureEncoding, through the
    // stand-in's encoding for the round's n).
    const uploadBytes = (rows: readonly FederateRow[]) =>
      rows.find((r) => r.metric === 'upload_bytes' && r.round === 4)!.value!;
    const length = (uploadBytes(plain) - 44) / 2; // float16: 2 bytes a coordinate, after the header
    const config = serverConfig({ ...base, secure: true }, population.devices.length);
    const masked = new Set(
      population.devices.map((_, i) => {
        const encoding = standInEncoding(i + 1, length, config);
        return encodeMasked(
          { from: 0, masked: new Uint32Array(encoding.length) },
          wordBytes(encoding.bits),
        ).length;
      }),
    );
    expect(masked.has(uploadBytes(secure))).toBe(true);
    expect(uploadBytes(secure)).not.toBe(uploadBytes(plain));
    const noisy = { ...base, noise: 0.8 };
    const gaussian = await runFederation(loaded, population, dims, null, noisy, null);
    const skellam = await runFederation(
      loaded,
      population,
      dims,
      null,
      { ...noisy, secure: true },
      null,
    );
    const epsilon = (rows: readonly FederateRow[]) =>
      rows.find((r) => r.metric === 'epsilon' && r.round === 4)!.value!;
    // The Skellam accountant's bound is a little above the sampled Gaussian's at the same z.
    expect(epsilon(skellam)).toBeGreaterThan(epsilon(gaussian));
    expect(epsilon(skellam)).toBeLessThan(1.5 * epsilon(gaussian));
    // The devices' noise moved the model: not the noiseless secure run.
    expect(metricAt(skellam, 'mrr', 4)).not.toBe(metricAt(secure, 'mrr', 4));
  }, 120_000);
});

describe('participants', () => {
  it('samples each device with probability q, independently per round', () => {
    const devices = 20_000;
    for (const q of [0.01, 0.2]) {
      const counts = [0, 1, 2].map((round) => participants(7, round, devices, q).length);
      // Binomial(n, q): within 4.5 standard deviations.
      const sd = Math.sqrt(devices * q * (1 - q));
      for (const c of counts) expect(Math.abs(c - devices * q)).toBeLessThan(4.5 * sd);
      const a = new Set(participants(7, 0, devices, q));
      const overlap = [...participants(7, 1, devices, q)].filter((i) => a.has(i)).length;
      // Independent rounds overlap in about n q^2 devices.
      expect(Math.abs(overlap - devices * q * q)).toBeLessThan(
        4.5 * Math.sqrt(devices * q * q) + 1,
      );
    }
    expect(participants(7, 0, 1000, 0)).toHaveLength(0);
  });
});

describe('round windows', () => {
  const population = populationOf(loaded, 'new', 'test');
  const windowed = {
    ...settings,
    rounds: 12,
    evalEvery: 12,
    noise: 0.8,
    // m at the expected count q n: the noised count falls short about half the time.
    roundWindow: { countNoise: 10, minCohort: 120 },
  };

  it('publish only the rounds whose noised count reaches m, and are charged every round', async () => {
    const published: boolean[] = [];
    const rows = await runFederation(loaded, population, dims, null, windowed, null, {
      onRound: (_, result) => published.push(result.published),
    });
    const count = published.filter(Boolean).length;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(12);
    const config = serverConfig(windowed, population.devices.length);
    const charged = ledgerEpsilon(new Array(12).fill(currentSettings(config)), windowed.delta);
    const epsilon = rows.find((r) => r.metric === 'epsilon' && r.round === 12)!.value!;
    expect(epsilon).toBeCloseTo(charged.epsilon, 10);
    // The combined multiplier is below the sum's own z: a window costs more than a counted round.
    const counted = { noiseMultiplier: windowed.noise, sampleRate: windowed.sampleRate };
    expect(epsilon).toBeGreaterThan(ledgerEpsilon(new Array(12).fill(counted), 1e-6).epsilon);
  }, 60_000);

  it('set m two standard deviations below the expected count unless told', () => {
    // 600 devices at q = 0.2: 120 expected, binomial std 9.80, with the count's noise 14.0.
    expect(windowGate(0.2, 600, { countNoise: 10 })).toBe(92);
    expect(windowGate(0.2, 600, { countNoise: 10, minCohort: 50 })).toBe(50);
    expect(serverConfig({ ...windowed, roundWindow: { countNoise: 10 } }, 600).minCohort).toBe(92);
    expect(serverConfig({ ...settings, noise: 0.8 }, 600).minCohort).toBe(120);
  });

  it('leave the model as it was when the window falls short, and fold it when it does not', async () => {
    const local = { ...windowed.local, seed: 7 };
    const start = initialWeights(dims, 5);
    const round = async (minCohort: number, devices = population.devices.slice(0, 40)) => {
      const config = { ...serverConfig(windowed, population.devices.length), minCohort };
      const state = { weights: start.slice(), optimizer: initialFedAdamState(start.length) };
      const layout = layoutFor(config, dims, 0, start, windowed.seed);
      const rng = mulberry32(3);
      const result = await runRound(
        state,
        dims,
        devices,
        layout,
        1,
        local,
        config,
        () => normal(rng),
        undefined,
        true,
      );
      return { result, changed: state.weights.some((w, i) => w !== start[i]) };
    };
    // 40 updates against m = 1,000 and m = 10: the noised count (std 10) decides.
    const short = await round(1_000);
    expect(short.result.published).toBe(false);
    expect(short.changed).toBe(false);
    const enough = await round(10);
    expect(enough.result.published).toBe(true);
    expect(enough.changed).toBe(true);
    // A window nobody sent to still draws its noised count; one that reaches m (here m = -1,000)
    // publishes its noise, as a server's would, and one that falls short (m = 1,000) does not.
    const noise = await round(-1_000, []);
    expect(noise.result).toMatchObject({ uploads: 0, published: true });
    expect(noise.changed).toBe(true);
    const none = await round(1_000, []);
    expect(none.result).toMatchObject({ uploads: 0, published: false });
    expect(none.changed).toBe(false);
  }, 60_000);
});

describe('stale devices', () => {
  const population = populationOf(loaded, 'new', 'test');
  const local = { ...settings.local, seed: 11 };

  /** One round of `fresh` devices and `stale` groups from `start`; returns the weights it made. */
  async function oneRound(
    config: ReturnType<typeof serverConfig>,
    layout: UpdateLayout,
    fresh: readonly (readonly number[])[],
    stale: readonly StaleGroup[],
    sum: boolean,
    start: Float32Array,
  ): Promise<Float32Array> {
    const state = { weights: start.slice(), optimizer: initialFedAdamState(start.length) };
    const rng = mulberry32(3);
    await runRound(
      state,
      dims,
      fresh,
      layout,
      2,
      local,
      config,
      () => normal(rng),
      undefined,
      sum,
      undefined,
      stale,
    );
    return state.weights;
  }

  it("fold a group in the round's layout as the same devices fresh, summed and per device", async () => {
    const config = serverConfig({ ...settings, clip: 0.5, noise: 0.3 }, population.devices.length);
    const start = initialWeights(dims, 5);
    const layout = layoutFor(config, dims, 1, start, settings.seed);
    const devices = population.devices.slice(0, 60);
    for (const sum of [true, false]) {
      const together = await oneRound(config, layout, devices, [], sum, start);
      const group = { devices: devices.slice(20), weights: start, local, layout };
      const split = await oneRound(config, layout, devices.slice(0, 20), [group], sum, start);
      expect(worstDifference(split, together)).toBeLessThan(1e-5);
      expect(worstDifference(together, start)).toBeGreaterThan(1e-3);
      // Trained on other weights, the same group lands elsewhere.
      const older = { ...group, weights: initialWeights(dims, 6) };
      const onOlder = await oneRound(config, layout, devices.slice(0, 20), [older], sum, start);
      expect(worstDifference(onOlder, together)).toBeGreaterThan(1e-3);
    }
  }, 60_000);

  it("carry a group's bodies over from their version's rows to the round's, as the server does", async () => {
    const FULL = { kind: 'full' } as const;
    const fedAvg = { ...settings, serverOptimizer: 'fedavg' as const, serverLearningRate: 1 };
    const config = serverConfig(fedAvg, population.devices.length);
    const start = initialWeights(dims, 5);
    const range = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const old: UpdateLayout = { kind: 'rows', rows: range(1, 10) };
    const now: UpdateLayout = { kind: 'rows', rows: range(6, 15) };
    const devices = population.devices.slice(0, 30);
    const group = { devices, weights: start, local, layout: old };
    const after = await oneRound(config, now, [], [group], false, start);
    // What the devices posted, in their version's layout, spread over the whole model.
    const { received } = runDeviceJob({
      id: 0,
      share: 0,
      dims,
      version: 1,
      clipNorm: config.clipNorm,
      maxExamples: config.maxExamples,
      updateDtype: config.updateDtype,
      roundingSeed: (local.seed ^ 0x5bd1e995) >>> 0,
      weights: start,
      devices,
      layout: old,
      local,
      batch: DEVICE_BATCH,
      summed: false,
    });
    const bodies = received.flatMap((r) => (r ? [fitUpdate(r.delta, dims, old, FULL)] : []));
    expect(bodies.length).toBeGreaterThan(10);
    const mean = new Float32Array(start.length);
    for (const body of bodies) body.forEach((v, i) => (mean[i] = mean[i]! + v / bodies.length));
    const rows = rowOffsets(dims, FULL);
    const change = (row: number) =>
      range(0, dims.embedding - 1).map(
        (k) => after[rows.embedding(row) + k]! - start[rows.embedding(row) + k]!,
      );
    const meanOf = (row: number) =>
      range(0, dims.embedding - 1).map((k) => mean[rows.embedding(row) + k]!);
    // Rows both layouts name move by the bodies' mean; rows only one of them names stay.
    for (const row of range(6, 10)) {
      const moved = change(row);
      expect(Math.max(...moved.map(Math.abs))).toBeGreaterThan(1e-4);
      moved.forEach((v, k) => expect(v).toBeCloseTo(meanOf(row)[k]!, 5));
    }
    for (const row of [...range(1, 5), ...range(11, 15)]) {
      expect(change(row).every((v) => v === 0)).toBe(true);
    }
  }, 60_000);

  it('resume from a checkpoint to the very rows of an uninterrupted run, carried or newest', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-federate-'));
    try {
      const numbers = (rows: readonly FederateRow[]) =>
        rows.filter((r) => r.metric !== 'wall_s').map((r) => [r.metric, r.round, r.value]);
      const base = {
        ...settings,
        rounds: 6,
        evalEvery: 3,
        itemSketch: Math.ceil((dims.items - 1) / 4),
        clip: 0.5,
      };
      const runs: FederateRow[][] = [];
      for (const layout of ['newest', 'carried'] as const) {
        const stale = { ...base, stale: { share: 0.5, maxStaleness: 2, layout } };
        const whole = await runFederation(loaded, population, dims, null, stale, null);
        await rm(dir, { recursive: true, force: true });
        await runFederation(loaded, population, dims, null, { ...stale, rounds: 3 }, dir);
        const resumed = await runFederation(loaded, population, dims, null, stale, dir);
        expect(numbers(resumed)).toEqual(numbers(whole));
        runs.push(whole);
      }
      const fresh = await runFederation(loaded, population, dims, null, base, null);
      // Stale devices change the run, and the two layouts differ from each other.
      expect(metricAt(runs[0]!, 'mrr', 6)).not.toBe(metricAt(fresh, 'mrr', 6));
      expect(metricAt(runs[1]!, 'mrr', 6)).not.toBe(metricAt(runs[0]!, 'mrr', 6));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('price the rounds at (s + 1) q, as the server does', async () => {
    const noisy = { ...settings, rounds: 3, evalEvery: 3, noise: 1, clip: 0.5 };
    const stale = { ...noisy, stale: { share: 0.3, maxStaleness: 2, layout: 'newest' as const } };
    const rows = await runFederation(loaded, population, dims, null, stale, null);
    const epsilon = rows.find((r) => r.metric === 'epsilon' && r.round === 3)!.value!;
    const priced = { noiseMultiplier: 1, sampleRate: 3 * noisy.sampleRate };
    expect(epsilon).toBeCloseTo(ledgerEpsilon(new Array(3).fill(priced), 1e-6).epsilon, 10);
  }, 60_000);
});
