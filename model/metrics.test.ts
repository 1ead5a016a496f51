import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateNext, evaluatePopularity, metricsFromRanks, prefixPairs } from './metrics.js';
import { SessionModel } from './session-model.js';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('metrics', () => {
  it('expands sessions into prefix -> next pairs', () => {
    expect(prefixPairs([[1, 2, 3], [4]])).toEqual([
      { prefix: [1], target: 2 },
      { prefix: [1, 2], target: 3 },
    ]);
  });

  it('turns ranks into HR@K and MRR@K', () => {
    const m = metricsFromRanks([1, 2, 5, 30], [1, 5]);
    expect(m.count).toBe(4);
    expect(m.hr[1]).toBe(0.25);
    expect(m.hr[5]).toBe(0.75);
    expect(m.mrr[5]).toBeCloseTo((1 + 0.5 + 0.2) / 4);
  });

  it('ranks POP by strictly-more-popular items, ignoring padding', () => {
    const popularity = [1000, 9, 7, 7, 1];
    const pairs = [2, 3, 1, 4].map((target) => ({ prefix: [1], target }));
    const m = evaluatePopularity(popularity, pairs, [1, 2, 4]);
    // Ranks: item 2 -> 2, item 3 -> 2 (tie), item 1 -> 1, item 4 -> 4.
    expect(m.hr[1]).toBe(0.25);
    expect(m.hr[2]).toBe(0.75);
    expect(m.mrr[4]).toBeCloseTo((0.5 + 0.5 + 1 + 0.25) / 4);
  });

  it('matches ranks computed by hand from scoreNext, in batches', async () => {
    const dims = { items: 30, embedding: 4, hidden: 5, maxSessionLength: 5 };
    const model = SessionModel.random(dims, 9);
    const pairs = prefixPairs([
      [1, 2, 3, 4],
      [5, 9, 29],
      [7, 7, 8, 11, 2, 13],
    ]);
    const ranks: number[] = [];
    for (const p of pairs) {
      const scores = model.scoreNext([p.prefix]);
      const row = (await scores.data()) as Float32Array;
      scores.dispose();
      ranks.push(1 + row.filter((s) => s > row[p.target]!).length);
    }
    const expected = metricsFromRanks(ranks, [1, 3, 10]);
    expect(await evaluateNext(model, pairs, [1, 3, 10], 4)).toEqual(expected);
    // A random model must not look perfect (a NaN target score would rank every target first).
    expect(expected.hr[1]).toBeLessThan(0.5);
    model.dispose();
  });
});
