import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { prefixPairs } from '../../model/metrics.js';
import type { SessionDataset } from '../data/yoochoose.js';
import { evaluateRecommender } from '../eval/evaluate.js';
import { firstAppearance, Newest, newItemsPlan } from './new-items.js';
import { plantedData, plantedDims, plantedLoaded, plantedSettings } from './planted.js';
import { populationOf } from './population.js';
import { markdownReport, type FederateRow } from './report.js';
import { runFederation, type RunSettings } from './run.js';

const data = plantedData;
const loaded = plantedLoaded;
const dims = plantedDims;

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('newItemsPlan', () => {
  // Items 1..6; item 5 first appears in session 2, item 6 in session 3, item 4 in session 1.
  const tiny: SessionDataset = {
    name: 'tiny',
    itemIds: ['', 'a', 'b', 'c', 'd', 'e', 'f'],
    train: [
      [1, 2, 3],
      [2, 4],
      [5, 1, 3],
      [6, 5, 2],
    ],
    test: [
      [1, 6],
      [5, 2],
    ],
    popularity: [0, 2, 3, 2, 1, 2, 1],
  };
  const population = {
    devices: tiny.train.slice(1),
    central: tiny.train.slice(0, 1),
    pairs: prefixPairs(tiny.test),
  };

  it('holds out the newest items by first appearance and numbers them after the others', () => {
    expect(Array.from(firstAppearance(tiny))).toEqual([-1, 0, 0, 0, 1, 2, 3]);
    const plan = newItemsPlan(tiny, population, 2 / 6);
    expect(plan.known).toBe(5);
    // Known items keep their order; e then f follow, oldest first.
    expect(plan.modelIds).toEqual(['', 'a', 'b', 'c', 'd', 'e', 'f']);
    expect(plan.catalog.map((item) => item.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(plan.devicesBefore).toEqual([[2, 4], [1, 3], [2]]);
    expect(plan.devicesAfter).toEqual([
      [2, 4],
      [5, 1, 3],
      [6, 5, 2],
    ]);
    expect(plan.central).toEqual([[1, 2, 3]]);
    // The cases whose target is e or f (dataset indices).
    expect(plan.newPairs).toEqual([{ prefix: [1], target: 6 }]);
    expect(Array.from(plan.newestFirst)).toEqual([6, 5, 4, 3, 2, 1]);
    const days = plan.catalog.map((item) => Date.parse(item.published!));
    expect([...days].sort((a, b) => a - b)).toEqual(days);
    // Undated: the same items with no publication day (new rows then start at random).
    const undated = newItemsPlan(tiny, population, 2 / 6, false);
    expect(undated.catalog.map((item) => item.id)).toEqual(plan.catalog.map((item) => item.id));
    expect(undated.catalog.some((item) => 'published' in item)).toBe(false);
  });

  it('renumbers items when the newest are not the least popular', () => {
    // b first appears last: it moves behind the others, which keep their relative order.
    const late: SessionDataset = {
      ...tiny,
      itemIds: ['', 'a', 'b', 'c'],
      train: [
        [1, 3],
        [3, 1],
        [2, 1],
      ],
      test: [[1, 2]],
      popularity: [0, 3, 1, 2],
    };
    const plan = newItemsPlan(
      late,
      { devices: late.train, central: [], pairs: prefixPairs(late.test) },
      0.34,
    );
    expect(plan.modelIds).toEqual(['', 'a', 'c', 'b']);
    expect(plan.devicesAfter).toEqual([
      [1, 2],
      [2, 1],
      [3, 1],
    ]);
    expect(plan.devicesBefore).toEqual([[1, 2], [2, 1], [1]]);
    expect(plan.newPairs).toEqual([{ prefix: [1], target: 2 }]);
  });

  it('the newest-first baseline ranks by first appearance', () => {
    const plan = newItemsPlan(tiny, population, 2 / 6);
    const metrics = evaluateRecommender(new Newest(plan.newestFirst), tiny, [
      { prefix: [1], target: 6 },
      { prefix: [1], target: 1 },
    ]);
    // f is first, a is sixth: HR@5 counts one of two, MRR@20 is (1 + 1/6) / 2.
    expect(metrics.hr[5]).toBe(0.5);
    expect(metrics.mrr[20]).toBeCloseTo((1 + 1 / 6) / 2, 10);
  });
});

describe('a run with new items', () => {
  const settings: RunSettings = {
    ...plantedSettings,
    rounds: 24,
    evalEvery: 4,
    newItems: { fraction: 0.25, at: 8, dated: true },
  };
  const population = populationOf(loaded, 'new', 'test');
  const plan = newItemsPlan(data, population, 0.25);
  const start = { ...dims, items: plan.known };
  const at = (rows: readonly FederateRow[], metric: FederateRow['metric'], round: number) =>
    rows.find((r) => r.metric === metric && r.round === round)?.value;

  it('cannot name a new item before it arrives, and learns it after', async () => {
    expect(plan.known).toBe(49);
    expect(plan.newPairs.length).toBeGreaterThan(20);
    const rows = await runFederation(loaded, population, start, null, settings, null, {}, plan);
    expect(at(rows, 'hr_new', 4)).toBe(0);
    // Measured: HR@20 on the 39 new-item cases 0.33 when they arrive (16 of the 64 items are new;
    // a row starts from its day's peers), 0.54 at round 24; popularity 0.05 there.
    expect(at(rows, 'hr_new', 8)).toBeGreaterThan(0);
    expect(at(rows, 'hr_new', 24)).toBeGreaterThan(0.3);
    expect(at(rows, 'hr_new', 24)).toBeGreaterThan(3 * at(rows, 'hr_new_popular', 0)!);
    // The grown model is what the devices download from then on.
    expect(at(rows, 'download_bytes', 4)).toBeLessThan(at(rows, 'download_bytes', 8)!);
    // The same run whose items never arrive cannot recommend them.
    const never = await runFederation(
      loaded,
      population,
      start,
      null,
      { ...settings, newItems: { fraction: 0.25, at: 24, dated: true }, rounds: 20 },
      null,
      {},
      plan,
    );
    expect(at(never, 'hr_new', 20)).toBe(0);
    expect(at(rows, 'hr_new_newest', 0)).toBeGreaterThan(0);
    expect(markdownReport(rows)).toMatch(
      /HR@20 new items[\s\S]*newest first HR@20 \/ MRR@20 \d\.\d{4}/,
    );
  }, 120_000);

  it('resumes across the round the model grew in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-new-items-'));
    try {
      const short = {
        ...settings,
        rounds: 8,
        evalEvery: 2,
        newItems: { fraction: 0.25, at: 3, dated: true },
      };
      const whole = await runFederation(loaded, population, start, null, short, null, {}, plan);
      await runFederation(loaded, population, start, null, { ...short, rounds: 4 }, dir, {}, plan);
      const resumed = await runFederation(loaded, population, start, null, short, dir, {}, plan);
      const numbers = (rows: readonly FederateRow[]) =>
        rows.filter((r) => r.metric !== 'wall_s').map((r) => [r.metric, r.round, r.value]);
      expect(numbers(resumed)).toEqual(numbers(whole));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
