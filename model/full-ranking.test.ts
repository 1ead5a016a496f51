import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../protocol/prng.js';
import {
  popularityPercentiles,
  rankCandidates,
  rankDense,
  RankingAccumulator,
  topKCandidates,
  type CandidateScores,
} from './full-ranking.js';
import { topK } from './top-k.js';

const candidates = (entries: [number, number][]): CandidateScores => ({
  items: Int32Array.from(entries, ([item]) => item),
  scores: Float64Array.from(entries, ([, score]) => score),
  count: entries.length,
});

describe('dense ranking', () => {
  // index:          0     1    2    3    4    5
  const scores = [1000, 0.2, 0.9, 0.5, 0.9, 0.1];

  it('counts strictly higher items only, ignoring padding, so ties favour the target', () => {
    expect(rankDense(scores, 2)).toBe(1); // ties with 4
    expect(rankDense(scores, 4)).toBe(1);
    expect(rankDense(scores, 3)).toBe(3);
    expect(rankDense(scores, 1)).toBe(4);
    expect(rankDense(scores, 5)).toBe(5);
  });

  it('ranks a NaN target last', () => {
    expect(rankDense([0, 1, NaN, 3], 2)).toBe(3);
  });
});

describe('candidate ranking (listed items first, then by index)', () => {
  // Catalogue 1..6. Listed: 5 (2.0), 3 (1.0), 6 (1.0). Order: 5, 3, 6, then 1, 2, 4.
  const c = candidates([
    [6, 1],
    [5, 2],
    [3, 1],
  ]);
  const order = [5, 3, 6, 1, 2, 4];

  it('gives every item its exact full-catalogue rank', () => {
    order.forEach((item, i) => expect(rankCandidates(c, item)).toBe(i + 1));
  });

  it('lists the top k, filling with unlisted items by index', () => {
    const out = new Int32Array(6);
    expect(topKCandidates(c, 6, 7, out)).toBe(6);
    expect([...out]).toEqual(order);
    const two = new Int32Array(2);
    expect(topKCandidates(c, 2, 7, two)).toBe(2);
    expect([...two]).toEqual([5, 3]);
    const empty = candidates([]);
    expect(rankCandidates(empty, 4)).toBe(4);
    expect(topKCandidates(empty, 3, 3, out)).toBe(2); // only items 1 and 2 exist
  });

  it('agrees with dense ranking of an equivalent tie-free score vector (random cases)', () => {
    const rng = mulberry32(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 2 + Math.floor(rng() * 30);
      const entries: [number, number][] = [];
      for (let i = 1; i < n; i++) if (rng() < 0.4) entries.push([i, Math.floor(rng() * 4)]);
      const c = candidates(entries);
      // Dense equivalent: listed items above everything unlisted, index breaks ties.
      const dense = Array.from({ length: n }, (_, i) => {
        const e = entries.find(([item]) => item === i);
        return (e ? 10 + e[1] : 0) - i / n;
      });
      const top = new Int32Array(5);
      const denseTop = topK(dense, 5).items;
      expect(topKCandidates(c, 5, n, top)).toBe(denseTop.length);
      expect([...top.slice(0, denseTop.length)]).toEqual(denseTop);
      for (let t = 1; t < n; t++) expect(rankCandidates(c, t)).toBe(rankDense(dense, t));
    }
  });
});

describe('popularity percentiles', () => {
  it('uses mid-ranks over the other items', () => {
    expect([...popularityPercentiles([0, 10, 5, 5, 1])]).toEqual([0, 1, 0.5, 0.5, 0]);
    expect([...popularityPercentiles([0, 3, 3, 3])]).toEqual([0, 0.5, 0.5, 0.5]);
  });
});

describe('RankingAccumulator', () => {
  it('computes HR, MRR, NDCG, coverage and popularity by hand', () => {
    const pct = popularityPercentiles([0, 10, 5, 5, 1]); // [0, 1, .5, .5, 0]
    const acc = new RankingAccumulator(pct, [1, 2, 3], 2);
    acc.add(1, [1, 2], 2);
    acc.add(3, [1, 3], 2);
    acc.add(2, [4, 1, 2], 3); // only the first listK = 2 count
    acc.add(10, [1, 2], 2);
    const m = acc.result();
    expect(m.count).toBe(4);
    expect(m.hr).toEqual({ 1: 0.25, 2: 0.5, 3: 0.75 });
    expect(m.mrr[2]).toBeCloseTo((1 + 1 / 2) / 4);
    expect(m.mrr[3]).toBeCloseTo((1 + 1 / 3 + 1 / 2) / 4);
    expect(m.ndcg[1]).toBeCloseTo(1 / 4);
    expect(m.ndcg[3]).toBeCloseTo((1 + 1 / Math.log2(4) + 1 / Math.log2(3)) / 4);
    expect(m.coverage).toBe(1); // items 1, 2, 3, 4 all listed
    // Listed: 1,2 | 1,3 | 4,1 | 1,2 -> percentiles 1,.5,1,.5,0,1,1,.5 over 8 entries.
    expect(m.popularity).toBeCloseTo(5.5 / 8);
  });

  it('is all zeros before the first pair', () => {
    const m = new RankingAccumulator(popularityPercentiles([0, 1, 2])).result();
    expect(m).toMatchObject({ count: 0, coverage: 0, popularity: 0, hr: { 20: 0 } });
  });
});
