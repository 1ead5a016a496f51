import { describe, expect, it } from 'vitest';
import { rankCandidates, topKCandidates, type CandidateScores } from '../../model/full-ranking.js';
import {
  allBaselines,
  ItemKnn,
  MarkovChain,
  Pop,
  SessionKnn,
  SessionPop,
  VSessionKnn,
  type Recommender,
} from './index.js';
import { SessionIndex } from './session-index.js';

// Toy catalogue 1..5 (N = 6). Sessions in time order (s0 oldest). Clicks: 1:4, 2:5, 3:2, 4:1, 5:2.
const TRAIN = [
  [1, 2, 3], // s0
  [1, 2], // s1
  [2, 4, 1], // s2
  [1, 3, 5], // s3
  [2, 2, 5], // s4
];
const N = 6;

function fitted<T extends Recommender>(r: T): T {
  r.fit(TRAIN, N);
  return r;
}

/** The whole ranking implied by the scores, checked against rankCandidates for every item. */
function order(c: CandidateScores): number[] {
  const out = new Int32Array(N - 1);
  topKCandidates(c, N - 1, N, out);
  out.forEach((item, i) => expect(rankCandidates(c, item)).toBe(i + 1));
  return [...out];
}

/** Candidate scores as an item -> score map. */
function scoreMap(c: CandidateScores): Map<number, number> {
  return new Map(Array.from({ length: c.count }, (_, j) => [c.items[j]!, c.scores[j]!]));
}

describe('SessionIndex', () => {
  it('builds sorted posting lists, distinct session sets and click supports', () => {
    const x = new SessionIndex(TRAIN, N);
    const sessionsOf = (i: number) => [...x.itemSessions.slice(x.itemStart[i], x.itemStart[i + 1])];
    expect(sessionsOf(2)).toEqual([0, 1, 2, 4]);
    expect(sessionsOf(5)).toEqual([3, 4]);
    expect([...x.setItems.slice(x.setStart[4], x.setStart[5])]).toEqual([2, 5]);
    expect([...x.support]).toEqual([0, 4, 5, 2, 1, 2]);
    expect(() => new SessionIndex([[1, 6]], N)).toThrow(RangeError);
  });
});

describe('POP and S-POP', () => {
  it('POP ranks by index (= training popularity)', () => {
    expect(order(fitted(new Pop()).score([3]))).toEqual([1, 2, 3, 4, 5]);
  });

  it('S-POP ranks session items by in-session count, popularity breaking ties', () => {
    const spop = fitted(new SessionPop());
    expect(order(spop.score([3, 5, 3]))).toEqual([3, 5, 1, 2, 4]);
    expect(order(spop.score([4, 2]))).toEqual([2, 4, 1, 3, 5]);
  });
});

describe('Markov chain', () => {
  it('scores successors of the last item by transition count', () => {
    const mc = fitted(new MarkovChain());
    // From 1: 1->2 twice (s0, s1), 1->3 once (s3).
    expect(scoreMap(mc.score([5, 1]))).toEqual(
      new Map([
        [2, 2],
        [3, 1],
      ]),
    );
    expect(order(mc.score([5, 1]))).toEqual([2, 3, 1, 4, 5]);
    // From 2: 2->3, 2->4, 2->2, 2->5 once each: a tie broken by index.
    expect(order(mc.score([2]))).toEqual([2, 3, 4, 5, 1]);
    // Item 5 is never followed: pure popularity.
    expect(order(mc.score([5]))).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('Item-KNN', () => {
  it('is the co-occurrence cosine with lambda = 0', () => {
    const knn = fitted(new ItemKnn({ lambda: 0 }));
    // co(1, .): 2 -> 3 sessions, 3 -> 2, 4 -> 1, 5 -> 1; supports 1:4 2:5 3:2 4:1 5:2.
    const s = scoreMap(knn.score([4, 1]));
    expect(s.size).toBe(4);
    expect(s.get(2)).toBeCloseTo(3 / Math.sqrt(4 * 5));
    expect(s.get(3)).toBeCloseTo(2 / Math.sqrt(4 * 2));
    expect(s.get(4)).toBeCloseTo(1 / Math.sqrt(4 * 1));
    expect(s.get(5)).toBeCloseTo(1 / Math.sqrt(4 * 2));
    expect(order(knn.score([1]))).toEqual([3, 2, 4, 5, 1]);
  });

  it('counts click pairs, so a repeated last item weighs its session double', () => {
    const knn = fitted(new ItemKnn({ lambda: 0 }));
    // Last item 2 appears twice in s4 = [2, 2, 5]: co(2, 5) = 2.
    expect(scoreMap(knn.score([2])).get(5)).toBeCloseTo(2 / Math.sqrt(5 * 2));
  });

  it('lambda = 20 (the default) discounts rare items', () => {
    const s = scoreMap(fitted(new ItemKnn()).score([1]));
    expect(s.get(3)).toBeCloseTo(2 / Math.sqrt(24 * 22));
    expect(s.get(2)).toBeCloseTo(3 / Math.sqrt(24 * 25));
    expect(order(fitted(new ItemKnn()).score([1]))).toEqual([2, 3, 4, 5, 1]);
  });
});

describe('SKNN', () => {
  // Current {1, 3}: cos with s0 {1,2,3} = 2/sqrt(6), s1 {1,2} = 1/2, s2 {2,4,1} = 1/sqrt(6),
  // s3 {1,3,5} = 2/sqrt(6); s4 shares nothing.
  const a = 2 / Math.sqrt(6);
  const b = 1 / Math.sqrt(6);

  it('sums neighbour similarities per item', () => {
    const s = scoreMap(fitted(new SessionKnn({ sample: 0 })).score([1, 3]));
    expect(s.get(1)).toBeCloseTo(a + 0.5 + b + a);
    expect(s.get(2)).toBeCloseTo(a + 0.5 + b);
    expect(s.get(3)).toBeCloseTo(2 * a);
    expect(s.get(4)).toBeCloseTo(b);
    expect(s.get(5)).toBeCloseTo(a);
    expect(order(fitted(new SessionKnn()).score([1, 3]))).toEqual([1, 2, 3, 5, 4]);
  });

  it('keeps the k most similar sessions, the more recent on ties', () => {
    // k = 2: s0 and s3 (both 2/sqrt(6)).
    expect(order(fitted(new SessionKnn({ k: 2 })).score([1, 3]))).toEqual([1, 3, 2, 5, 4]);
    // k = 1: s3 wins the tie with s0 by being more recent.
    const one = scoreMap(fitted(new SessionKnn({ k: 1 })).score([1, 3]));
    expect([...one.keys()].sort()).toEqual([1, 3, 5]);
  });

  it('samples only the most recent sessions sharing an item', () => {
    // sample = 2: s3 and s2 are the newest sessions holding 1 or 3.
    const s = scoreMap(fitted(new SessionKnn({ sample: 2 })).score([1, 3]));
    expect(s.get(1)).toBeCloseTo(a + b);
    expect(s.get(2)).toBeCloseTo(b);
    expect(order(fitted(new SessionKnn({ sample: 2 })).score([1, 3]))).toEqual([1, 3, 5, 2, 4]);
  });
});

describe('V-SKNN', () => {
  // Prefix [1, 3]: weights 1 -> 1/2, 3 -> 2/2. Similarity = shared weight / 2 distinct items;
  // decay = 1 / (steps back to the newest shared click): s0 {1,2,3} 0.75 x 1, s1 {1,2} 0.25 x 1/2,
  // s2 {2,4,1} 0.25 x 1/2, s3 {1,3,5} 0.75 x 1.
  it('weights recent clicks more and decays neighbours matched only on older clicks', () => {
    const s = scoreMap(fitted(new VSessionKnn()).score([1, 3]));
    expect(s.get(1)).toBeCloseTo(0.75 + 0.125 + 0.125 + 0.75);
    expect(s.get(2)).toBeCloseTo(0.75 + 0.125 + 0.125);
    expect(s.get(3)).toBeCloseTo(1.5);
    expect(s.get(4)).toBeCloseTo(0.125);
    expect(s.get(5)).toBeCloseTo(0.75);
    // SKNN puts 2 before 3 on the same prefix; the position weights flip them.
    expect(order(fitted(new VSessionKnn()).score([1, 3]))).toEqual([1, 3, 2, 5, 4]);
  });

  it('lets a repeated click take its latest position', () => {
    // [3, 1, 3]: weights 1 -> 2/3, 3 -> 3/3; s1 = {1,2}: (2/3) / 2, newest shared click 1 step back.
    const s = scoreMap(fitted(new VSessionKnn({ k: 1, sample: 0 })).score([3, 1, 3]));
    // k = 1: s3 {1,3,5} (5/6) beats s0 (5/6) on recency.
    expect([...s.keys()].sort()).toEqual([1, 3, 5]);
    expect(s.get(5)).toBeCloseTo((2 / 3 + 1) / 2);
    const s1 = scoreMap(fitted(new VSessionKnn({ sample: 0 })).score([3, 1, 3]));
    expect(s1.get(4)).toBeCloseTo((2 / 3 / 2) * (1 / 2)); // only s2 holds 4
  });

  it('boosts rare items with IDF when asked', () => {
    const s = scoreMap(fitted(new VSessionKnn({ idfWeight: 1 })).score([1, 3]));
    // Item 4: one click in 5 sessions.
    expect(s.get(4)).toBeCloseTo(0.125 * (1 + Math.log(5 / 1)));
  });
});

describe('every baseline', () => {
  it('refuses to score before fit', () => {
    for (const r of allBaselines().filter((r) => r.name !== 'POP')) {
      expect(() => r.score([1])).toThrow(/fit/);
    }
  });

  it('gives a valid full ranking for every prefix of the toy data', () => {
    for (const r of allBaselines()) {
      r.fit(TRAIN, N);
      for (const s of TRAIN) {
        for (let t = 1; t <= s.length; t++) {
          const ranking = order(r.score(s.slice(0, t)));
          expect([...ranking].sort()).toEqual([1, 2, 3, 4, 5]);
        }
      }
    }
  });
});
