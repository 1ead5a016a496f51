import { describe, expect, it } from 'vitest';
import { hitAndNdcg, pairedChange, signTest } from './replay.js';

describe('paired comparison of learning on and off', () => {
  it('gives the exact two-sided sign test', () => {
    // 0 : 5 -> 2 * (1/32); 1 : 1 -> 1; 2 : 8 -> 2 * (1 + 10 + 45) / 1024.
    expect(signTest(0, 5)).toBeCloseTo(2 / 32, 12);
    expect(signTest(1, 1)).toBe(1);
    expect(signTest(8, 2)).toBeCloseTo((2 * 56) / 1024, 12);
    expect(signTest(0, 0)).toBe(1);
    // Large n stays finite: 600 : 400 is far beyond chance.
    expect(signTest(600, 400)).toBeLessThan(1e-9);
    expect(signTest(500, 500)).toBeGreaterThan(0.9);
  });

  it('counts hits only one mode has and the mean NDCG change per case', () => {
    const off = [1, 3, 20, Infinity, 2];
    const on = [1, 12, 4, 2, Infinity];
    const change = pairedChange(off, on, 10);
    // Case 3 and 4 are hits only with learning; case 2 and 5 only without.
    expect(change.onlyOn).toBe(2);
    expect(change.onlyOff).toBe(2);
    expect(change.p).toBe(1);
    const expected = hitAndNdcg(on, 10).ndcg - hitAndNdcg(off, 10).ndcg;
    expect(change.ndcgDelta).toBeCloseTo(expected, 12);
    expect(change.ndcgSe).toBeGreaterThan(0);
    expect(() => pairedChange([1], [1, 2], 10)).toThrow(RangeError);
  });
});
