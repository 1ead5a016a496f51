import { describe, expect, it } from 'vitest';
import { quantile } from './stats.js';

describe('quantile', () => {
  it('is the nearest rank: always a measured value', () => {
    const sorted = [1, 2, 3, 4, 10];
    expect(quantile(sorted, 0.5)).toBe(3);
    expect(quantile(sorted, 0.9)).toBe(10);
    expect(quantile(sorted, 0)).toBe(1);
    expect(quantile(sorted, 1)).toBe(10);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([7], 0.99)).toBe(7);
  });
});
