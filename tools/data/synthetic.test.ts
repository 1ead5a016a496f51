import { describe, expect, it } from 'vitest';
import { evaluatePopularity, prefixPairs } from '../../model/metrics.js';
import { syntheticDataset } from './synthetic.js';

describe('syntheticDataset', () => {
  it('is seeded and has a weak popularity baseline', () => {
    const a = syntheticDataset({ seed: 3 });
    expect(syntheticDataset({ seed: 3 })).toEqual(a);
    expect(syntheticDataset({ seed: 4 }).train).not.toEqual(a.train);
    expect(a.itemIds).toHaveLength(121);
    const pop = evaluatePopularity(a.popularity, prefixPairs(a.test), [5]);
    expect(pop.hr[5]).toBeLessThan(0.3);
  });
});
