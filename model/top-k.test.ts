import { describe, expect, it } from 'vitest';
import { topK } from './top-k.js';

describe('topK', () => {
  it('keeps the k largest, ties to the lower index, skipping 0 and exclusions', () => {
    const values = new Float32Array([9, 1, 5, 5, 7, -Infinity, 3]);
    expect(topK(values, 3)).toEqual({ items: [4, 2, 3], scores: [7, 5, 5] });
    expect(topK(values, 2, new Set([4]))).toEqual({ items: [2, 3], scores: [5, 5] });
    expect(topK(values, 10).items).toEqual([4, 2, 3, 6, 1]);
  });

  it('lists the top k without padding, equal scores by lower index', () => {
    const scores = [1000, 0.2, 0.9, 0.5, 0.9, 0.1];
    expect(topK(scores, 3).items).toEqual([2, 4, 3]);
    expect(topK([5, 1, NaN, 2], 10).items).toEqual([3, 1]);
  });

  it('ranks only the allowed items when given, with the same rules', () => {
    const values = new Float32Array([-Infinity, 0.1, 0.9, 0.5, 0.9, 0.3]);
    expect(topK(values, 3, new Set([4]), null).items).toEqual([2, 3, 5]);
    expect(topK(values, 3, new Set(), [5, 1, 4, 2, 0, 4])).toEqual({
      items: [2, 4, 5],
      scores: [values[2], values[4], values[5]],
    });
    expect(topK(values, 5, new Set([2]), [1, 2]).items).toEqual([1]);
    expect(topK(values, 0, new Set(), [1, 2]).items).toEqual([]);
  });

  it('never lists NaN or -Infinity, over the catalogue and over an allow list alike', () => {
    const values = [0, -Infinity, NaN, 2, -Infinity, 1];
    const all = [1, 2, 3, 4, 5];
    expect(topK(values, 5).items).toEqual([3, 5]);
    expect(topK(values, 5, undefined, all).items).toEqual([3, 5]);
    // An allow list naming an index past the catalogue or a non-integer lists nothing for it.
    expect(topK(values, 5, undefined, [9, 2.5, 5]).items).toEqual([5]);
  });
});
