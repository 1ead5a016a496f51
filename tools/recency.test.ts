import { describe, expect, it } from 'vitest';
import { trendingItems } from './recency.js';

describe('trendingItems', () => {
  it('counts only the newest share of the sessions, most clicked first, ties by index', () => {
    const sessions = [
      [1, 1, 1, 2],
      [1, 2, 3],
      [4, 3, 5],
      [3, 5, 5],
    ];
    // The newest half: [4, 3, 5] and [3, 5, 5]; item 1, the most clicked overall, is not trending.
    expect(trendingItems(sessions, 0.5)).toEqual([5, 3, 4]);
    expect(trendingItems(sessions, 0.5, 2)).toEqual([5, 3]);
    // At least the newest session counts; the whole log is plain popularity.
    expect(trendingItems(sessions, 0.01)).toEqual([5, 3]);
    expect(trendingItems(sessions, 1)).toEqual([1, 3, 5, 2, 4]);
    expect(trendingItems([], 0.5)).toEqual([]);
    expect(trendingItems(sessions, 0)).toEqual([]);
  });
});
