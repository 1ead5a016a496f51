import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  coldStartOrder,
  EXPLORE_POOL,
  fallbackOrder,
  nearestSessionItems,
  pickPositions,
  rankPopular,
  topUp,
} from './served-list.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('ranking', () => {
  it('starts cold from popularity, then the allowed items popularity does not list', () => {
    expect(rankPopular([3, 1, 2], 2, new Set([1]), null)).toEqual({
      items: [3, 2],
      scores: [1, 0.5],
    });
    expect(rankPopular([3, 1, 2], 4, new Set(), [5, 2, 4]).items).toEqual([2, 5, 4]);
  });

  it('blends popularity with recency at cold start; without recency, popularity alone', () => {
    // Older manifests carry no recency list: the popularity order, unchanged.
    expect(coldStartOrder([3, 1, 2])).toEqual([3, 1, 2]);
    expect(coldStartOrder([3, 1, 2], [], 0.5)).toEqual([3, 1, 2]);
    // First in both leads; trending 4 overtakes the popular 2 and 3; 9 (trending only) ties 2
    // (popular only, same rank) and follows it: ties keep popularity order.
    expect(coldStartOrder([1, 2, 3, 4], [1, 9, 4])).toEqual([1, 4, 2, 9, 3]);
    // All weight on recency: the trending order, then the popular items it does not list.
    expect(coldStartOrder([1, 2, 3, 4], [1, 9, 4], 1)).toEqual([1, 9, 4, 2, 3]);
    expect(coldStartOrder([1, 2, 3, 4], [1, 9, 4], 0)).toEqual([1, 2, 3, 4]);
    // rankPopular applies the blend, then exclusions and the allow list.
    expect(rankPopular([1, 2, 3, 4], 3, new Set([1]), null, [1, 9, 4])).toEqual({
      items: [4, 2, 9],
      scores: [1, 0.5, 1 / 3],
    });
    expect(rankPopular([1, 2, 3, 4], 3, new Set(), [3, 9, 7], [1, 9, 4]).items).toEqual([9, 3, 7]);
  });

  it('fills the last slot with a sample from the next EXPLORE_POOL candidates', () => {
    const plain = pickPositions(100, 4, false, () => 0.5);
    expect(plain).toEqual([0, 1, 2, 3].map((at) => ({ at, explore: false })));
    expect(pickPositions(100, 4, true, () => 0).at(-1)).toEqual({ at: 3, explore: true });
    expect(pickPositions(100, 4, true, () => 0.9999).at(-1)).toEqual({
      at: 3 + EXPLORE_POOL - 1,
      explore: true,
    });
    // Too few candidates to explore, or a list of one: the plain top k.
    expect(pickPositions(4, 4, true, () => 0).some((p) => p.explore)).toBe(false);
    expect(pickPositions(100, 1, true, () => 0)).toEqual([{ at: 0, explore: false }]);
    // Exactly one exploration slot, always below the k - 1 shown.
    for (let i = 0; i < 50; i++) {
      const picks = pickPositions(60, 6, true, Math.random);
      expect(picks.filter((p) => p.explore)).toHaveLength(1);
      expect(picks.at(-1)!.at).toBeGreaterThanOrEqual(5);
      expect(picks.at(-1)!.at).toBeLessThan(60);
    }
  });

  it('explains each item by the session item nearest in embedding space', async () => {
    const table = tf.tensor2d([
      [0, 0],
      [1, 0],
      [0, 2],
      [3, 0.2],
      [0.1, 0.9],
      [-1, 0],
    ]);
    expect(await nearestSessionItems(table, [3, 4, 5], [1, 2])).toEqual([1, 2, 2]);
    // Ties (the same item twice, or equal directions) go to the most recent click.
    expect(await nearestSessionItems(table, [3], [1, 1])).toEqual([1]);
    expect(await nearestSessionItems(table, [], [1])).toEqual([]);
    table.dispose();
  });
});

describe('topping a list up', () => {
  it('falls back on the cold-start order, then the catalogue by index, each item once', () => {
    expect([...fallbackOrder(8, [3, 1], [5], null)]).toEqual([3, 5, 1, 2, 4, 6, 7]);
    // Only allowed items, and nothing outside the catalogue or the padding.
    expect([...fallbackOrder(8, [3, 1, 0, 9], [], [7, 1, 0, 12])]).toEqual([1, 7]);
  });

  it('fills a short list to n below its last score, skipping excluded and listed items', () => {
    const ranked = { items: [4], scores: [2.5] };
    expect(topUp(ranked, 3, fallbackOrder(8, [4, 2, 1], [], null), new Set([2]))).toEqual({
      items: [4, 1, 3],
      scores: [2.5, 1.5, 0.5],
    });
    // Already long enough: unchanged. Not enough items left: as many as there are.
    expect(topUp(ranked, 1, [1, 2], new Set())).toBe(ranked);
    expect(
      topUp({ items: [], scores: [] }, 5, fallbackOrder(3, [], [], null), new Set([1])),
    ).toEqual({
      items: [2],
      scores: [0],
    });
  });
});
