import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { roundSketch, sketchLength, sketchUpdate } from '../../protocol/item-sketch.js';
import type { ModelDims } from '../../protocol/manifest.js';
import { mulberry32, normal } from '../../protocol/prng.js';
import { updateLength } from '../../protocol/update-layout.js';
import { sketchCoordinates } from '../../server/layout-round.js';
import { countMinCounts, countMinGate, gatedReading, heldCounts, mostHeldRows } from './held.js';
import { plantedDims, plantedLoaded, plantedSettings } from './planted.js';
import { populationOf } from './population.js';
import type { FederateRow } from './report.js';
import { runRound } from './rounds.js';
import { roundLayout, runFederation, serverConfig, type RunSettings } from './run.js';
import { ledgerEpsilon, windowNoiseMultiplier } from '../../protocol/privacy/index.js';
import { initialWeights } from '../../model/init.js';
import { initialFedAdamState } from '../../server/fedadam.js';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

const mrrAt = (rows: readonly FederateRow[], round: number) =>
  rows.find((r) => r.metric === 'mrr' && r.round === round)!.value!;

describe('heldCounts', () => {
  it('counts devices, not clicks, and skips padding and rows outside the catalogue', () => {
    const counts = heldCounts(
      [
        [3, 3, 3, 1],
        [3, 2, 0],
        [9, 2],
      ],
      5,
    );
    expect([...counts]).toEqual([0, 1, 2, 2, 0]);
  });

  it('with a cap, counts only the last distinct items of each device', () => {
    const counts = heldCounts(
      [
        [1, 2, 3, 2, 4],
        [4, 4, 1],
      ],
      5,
      2,
    );
    expect([...counts]).toEqual([0, 1, 1, 0, 2]);
  });
});

describe('countMinGate', () => {
  it('keeps the rows many devices hold through its noise, and few that nobody holds', () => {
    const counts = new Uint32Array(20_001);
    for (let row = 1; row <= 200; row++) counts[row] = 60;
    for (let row = 201; row <= 400; row++) counts[row] = 1;
    for (let row = 401; row <= 600; row++) counts[row] = 20;
    const rng = mulberry32(3);
    const gate = { buckets: 16_384, depth: 2, noise: 10, threshold: 20 };
    const kept = countMinGate(counts, gate, 7, () => normal(rng));
    const keptIn = (from: number, to: number) =>
      kept.subarray(from, to + 1).reduce((a, k) => a + k, 0);
    // Count 60 is 4 standard deviations above the threshold in both buckets.
    expect(keptIn(1, 200)).toBeGreaterThan(195);
    // Count 1 is 1.9 below it: about 3% a bucket, 0.1% both.
    expect(keptIn(201, 400)).toBeLessThan(5);
    // A row nobody holds passes a table with probability about 0.04 (noise alone 0.0228, a heavy
    // mate 0.018), so both about 0.0016: some 32 of these 19,400.
    expect(keptIn(601, 20_000)).toBeLessThan(70);
    expect(keptIn(601, 20_000)).toBeGreaterThan(8);
    // Count 20 is at the threshold: each bucket passes half the time (a little more with mates).
    expect(keptIn(401, 600)).toBeGreaterThan(25);
    expect(keptIn(401, 600)).toBeLessThan(90);
    expect(kept[0]).toBe(0);
    // Without noise, a row is kept when its buckets are filled at all.
    const plain = countMinGate(counts, { ...gate, noise: 0 }, 7, () => normal(rng));
    expect(plain.subarray(1, 601).every((k) => k === 1)).toBe(true);
  });
});

describe('countMinCounts', () => {
  it('never reads a row below its count, is exact without collisions, and keeps few rows nobody holds', () => {
    const rng = mulberry32(11);
    const counts = new Uint32Array(20_000);
    for (let k = 0; k < 2_000; k++) counts[1 + Math.floor(rng() * 19_999)]! += 1 + (k % 3);
    const estimate = countMinCounts(counts, 16_384, 2, 4);
    let falseKept = 0;
    for (let row = 0; row < counts.length; row++) {
      expect(estimate[row]).toBeGreaterThanOrEqual(counts[row]!);
      if (counts[row] === 0 && estimate[row]! > 0) falseKept++;
    }
    expect(estimate[0]).toBe(0);
    // Each of the 18,000 rows nobody holds is kept with probability about (1 - e^(-1/8))^2 = 1.4%.
    expect(falseKept).toBeGreaterThan(100);
    expect(falseKept).toBeLessThan(500);
    const sparse = new Uint32Array(100);
    sparse[7] = 3;
    sparse[40] = 1;
    expect([...countMinCounts(sparse, 1 << 20, 3, 0)].filter((c) => c > 0)).toEqual([3, 1]);
    expect(countMinCounts(sparse, 1 << 20, 3, 0)[7]).toBe(3);
  });

  it('draws new buckets every round', () => {
    const counts = new Uint32Array(2_000).fill(0);
    for (let row = 1; row < 2_000; row += 2) counts[row] = 1;
    const kept = (round: number) =>
      [...countMinCounts(counts, 512, 1, round)].flatMap((c, row) =>
        c > 0 && counts[row] === 0 ? [row] : [],
      );
    expect(kept(1)).not.toEqual(kept(2));
  });
});

describe('mostHeldRows', () => {
  it('names the rows held most, ties to the lower row, ascending', () => {
    const counts = Uint32Array.from([0, 1, 5, 0, 5, 2, 1]);
    expect(mostHeldRows(counts, 3)).toEqual([2, 4, 5]);
    expect(mostHeldRows(counts, 4)).toEqual([1, 2, 4, 5]);
  });
});

describe('gatedReading', () => {
  const dims: ModelDims = { items: 40, embedding: 4, hidden: 4, maxSessionLength: 5 };
  const sketch = { kind: 'sketch', sketch: roundSketch(8, 7) } as const;

  it('reads a sketch as before on the rows held or named as negatives, zero elsewhere', () => {
    const rng = mulberry32(5);
    const whole = Float64Array.from({ length: updateLength(dims, { kind: 'full' }) }, () =>
      normal(rng),
    );
    const mean = sketchUpdate(
      whole,
      dims,
      sketch.sketch,
      new Float64Array(sketchLength(dims, sketch.sketch)),
    );
    const plain = sketchCoordinates(dims, sketch);
    const counts = new Uint32Array(dims.items);
    counts[3] = 2;
    counts[17] = 1;
    const gated = gatedReading(plain, dims, counts, Int32Array.from([30]));
    expect(gated.length).toBe(plain.length);
    const before = plain.decode(mean);
    const after = gated.decode(mean);
    const d = dims.embedding;
    const n = dims.items;
    const row = (v: Float64Array, r: number) => [...v.subarray(r * d, r * d + d), v[n * d + r]];
    for (let r = 1; r < n; r++) {
      if (r === 3 || r === 17 || r === 30) {
        expect(row(after, r)).toEqual(row(before, r));
        expect(row(after, r).some((x) => x !== 0)).toBe(true);
      } else {
        expect(row(after, r)).toEqual(new Array(d + 1).fill(0));
      }
    }
    // The dense tensors are read as they are.
    expect([...after.subarray(n * d + n)]).toEqual([...before.subarray(n * d + n)]);
  });
});

describe('runs led by the round histogram', () => {
  const population = populationOf(plantedLoaded, 'new', 'test');

  it('names the rows the devices hold most with --row-choice held, and learns from them', async () => {
    const settings = { ...plantedSettings, rowsPerRound: 16, rowChoice: 'held' as const };
    const config = serverConfig(settings, population.devices.length);
    const devices = population.devices.slice(0, 12);
    const local = { ...settings.local, seed: 11 };
    const weights = initialWeights(plantedDims, 5);
    const { layout, gate } = roundLayout(settings, config, plantedDims, 0, weights, devices, local);
    expect(gate).toBeUndefined();
    expect(layout).toEqual({
      kind: 'rows',
      rows: mostHeldRows(heldCounts(devices, plantedDims.items), 16),
    });
    // Not the window the server's version would name.
    const window = roundLayout(
      { ...settings, rowChoice: 'window' },
      config,
      plantedDims,
      0,
      weights,
      devices,
      local,
    );
    expect(window.layout).not.toEqual(layout);
    const rows = await runFederation(plantedLoaded, population, plantedDims, null, settings, null);
    // Measured: MRR@20 0.035 -> 0.329 (the public window of 16 rows: 0.194).
    expect(mrrAt(rows, 30) - mrrAt(rows, 0)).toBeGreaterThan(0.2);
  }, 60_000);

  it('move no row of a gated sketch that no device held and no negative named', async () => {
    // Few devices and negatives, so that most rows are neither held nor negatives in the round.
    const settings = {
      ...plantedSettings,
      itemSketch: 8,
      sketchGate: 'held' as const,
      local: { ...plantedSettings.local, negatives: 4 },
    };
    const config = serverConfig(settings, population.devices.length);
    const devices = population.devices.slice(0, 3);
    const local = { ...settings.local, seed: 11 };
    const start = initialWeights(plantedDims, 5);
    const once = async (gated: boolean) => {
      const state = {
        weights: start.slice(),
        optimizer: initialFedAdamState(start.length),
      };
      const round = roundLayout(
        gated ? settings : { ...settings, sketchGate: undefined },
        config,
        plantedDims,
        0,
        start,
        devices,
        local,
      );
      const rng = mulberry32(1);
      await runRound(
        state,
        plantedDims,
        devices,
        round.layout,
        1,
        local,
        config,
        () => normal(rng),
        undefined,
        true,
        round.gate,
      );
      return { weights: state.weights, gate: round.gate };
    };
    const gated = await once(true);
    const plain = await once(false);
    const d = plantedDims.embedding;
    const n = plantedDims.items;
    const moved = (w: Float32Array, row: number) =>
      [...w.subarray(row * d, row * d + d), w[n * d + row]!].some(
        (x, c) => x !== (c < d ? start[row * d + c]! : start[n * d + row]!),
      );
    expect(gated.gate!.held).toEqual(heldCounts(devices, n));
    expect(gated.gate!.negatives.length).toBe(4);
    const kept = new Set([...gated.gate!.negatives]);
    let untouched = 0;
    for (let row = 1; row < n; row++) {
      if (gated.gate!.held[row]! > 0 || kept.has(row)) {
        expect(moved(gated.weights, row)).toBe(true);
        continue;
      }
      untouched++;
      expect(moved(gated.weights, row)).toBe(false);
      // Without the gate the row takes its bucket mates' rows.
      expect(moved(plain.weights, row)).toBe(true);
    }
    expect(untouched).toBeGreaterThan(20);
  }, 60_000);

  it('gate a sketch by a count-min sketch of the histogram: every held row and a few more', () => {
    const settings = {
      ...plantedSettings,
      itemSketch: 8,
      sketchGate: { buckets: 16, depth: 2, noise: 0, threshold: 0, cap: Infinity },
      local: { ...plantedSettings.local, negatives: 4 },
    };
    const config = serverConfig(settings, population.devices.length);
    const devices = population.devices.slice(0, 3);
    const local = { ...settings.local, seed: 11 };
    const start = initialWeights(plantedDims, 5);
    const gate = (round: number) =>
      roundLayout(settings, config, plantedDims, round, start, devices, local).gate!;
    const exact = heldCounts(devices, plantedDims.items);
    const filled = countMinCounts(exact, 16, 2, 3);
    expect(gate(3).held).toEqual(Uint32Array.from(filled, (c) => (c > 0 ? 1 : 0)));
    const extra = (round: number) =>
      [...gate(round).held].flatMap((kept, row) => {
        if (exact[row]! > 0) expect(kept).toBe(1);
        return kept && exact[row] === 0 ? [row] : [];
      });
    expect(extra(3).length).toBeGreaterThan(0);
    expect(extra(3)).not.toEqual(extra(4));
  });

  it('charge a round with a noised gate as one Gaussian mechanism of both', async () => {
    const gate = { buckets: 64, depth: 2, noise: 6, threshold: 12, cap: 4 };
    const settings = {
      ...plantedSettings,
      rounds: 2,
      evalEvery: 2,
      evalCases: 50,
      noise: 1.5,
      itemSketch: 8,
      local: { ...plantedSettings.local, negatives: 4 },
    };
    const kept: (number | undefined)[] = [];
    const epsilonOf = async (s: RunSettings) =>
      (
        await runFederation(plantedLoaded, population, plantedDims, null, s, null, {
          onRound: (_, result) => kept.push(result.gateRows),
        })
      ).find((r) => r.metric === 'epsilon' && r.round === 2)!.value!;
    const gated = await epsilonOf({ ...settings, sketchGate: gate });
    // Each round reports the rows its gate kept: at least its 4 negatives, never all 120 rows.
    expect(kept).toHaveLength(2);
    for (const rows of kept) expect(rows! >= 4 && rows! < plantedDims.items - 1).toBe(true);
    // Multipliers 1.5 on the sum and 6 / √(2 · 4) on the gate's buckets.
    const combined = windowNoiseMultiplier(1.5, 6 / Math.sqrt(8));
    const expected = ledgerEpsilon(
      [0, 1].map(() => ({ noiseMultiplier: combined, sampleRate: 0.2 })),
      1e-6,
    ).epsilon;
    expect(gated).toBeCloseTo(expected, 9);
    expect(gated).toBeGreaterThan(await epsilonOf(settings));
  }, 60_000);
});
