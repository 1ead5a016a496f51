/**
 * Next-item ranking metrics over the full catalogue, as in the session-based recommendation literature
 * (SR-GNN, NARM, GRU4Rec): HR@K (= Recall@K with one target) and MRR@K.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SessionModel } from './session-model.js';

/** One evaluation case: a non-empty session prefix and the item that followed it. */
export interface NextItemPair {
  readonly prefix: readonly number[];
  readonly target: number;
}

/** HR@K and MRR@K per cut-off K, over `count` pairs. */
export interface RankingMetrics {
  readonly count: number;
  readonly hr: Readonly<Record<number, number>>;
  readonly mrr: Readonly<Record<number, number>>;
}

/** Every prefix -> next item pair of every session (the standard "evaluate each click" protocol). */
export function prefixPairs(sessions: readonly (readonly number[])[]): NextItemPair[] {
  const pairs: NextItemPair[] = [];
  for (const s of sessions) {
    for (let t = 1; t < s.length; t++) pairs.push({ prefix: s.slice(0, t), target: s[t]! });
  }
  return pairs;
}

/** Accumulates ranks into HR@K / MRR@K (a rank is 1-based). */
export function metricsFromRanks(ranks: ArrayLike<number>, ks: readonly number[]): RankingMetrics {
  const hr: Record<number, number> = {};
  const mrr: Record<number, number> = {};
  for (const k of ks) {
    let hits = 0;
    let reciprocal = 0;
    for (let i = 0; i < ranks.length; i++) {
      const r = ranks[i]!;
      if (r <= k) {
        hits++;
        reciprocal += 1 / r;
      }
    }
    hr[k] = ranks.length ? hits / ranks.length : 0;
    mrr[k] = ranks.length ? reciprocal / ranks.length : 0;
  }
  return { count: ranks.length, hr, mrr };
}

/**
 * Model HR@K and MRR@K. rank = 1 + number of items scoring strictly higher than the target (padding
 * excluded: scoreNext gives it -Infinity), so ties count in the target's favour for every method alike.
 */
export async function evaluateNext(
  model: SessionModel,
  pairs: readonly NextItemPair[],
  ks: readonly number[] = [5, 10, 20],
  batchSize = 256,
): Promise<RankingMetrics> {
  const ranks = new Int32Array(pairs.length);
  for (let start = 0; start < pairs.length; start += batchSize) {
    const part = pairs.slice(start, start + batchSize);
    const rankTensor = tf.tidy(() => {
      const scores = model.scoreNext(part.map((p) => p.prefix));
      const n = scores.shape[1];
      // Row-major flat positions b*N + target. Not sum(scores * oneHot): column 0 is -Infinity, and
      // -Infinity * 0 is NaN, which compares false with everything and would rank every target first.
      const flatIndex = tf.tensor1d(
        part.map((p, b) => b * n + p.target),
        'int32',
      );
      const targetScores = tf.reshape(tf.gather(tf.reshape(scores, [-1]), flatIndex), [-1, 1]);
      return tf.add(tf.sum(tf.cast(tf.greater(scores, targetScores), 'int32'), 1), 1);
    });
    ranks.set((await rankTensor.data()) as Int32Array, start);
    rankTensor.dispose();
  }
  return metricsFromRanks(ranks, ks);
}

/**
 * The POP baseline on the same pairs: every prefix gets the same ranking by training popularity
 * (`popularity[i]` = count of item i; index 0 ignored), rank = 1 + items strictly more popular.
 */
export function evaluatePopularity(
  popularity: ArrayLike<number>,
  pairs: readonly NextItemPair[],
  ks: readonly number[] = [5, 10, 20],
): RankingMetrics {
  const sorted = Array.from(popularity)
    .slice(1)
    .sort((a, b) => b - a);
  const ranks = pairs.map((p) => {
    const own = popularity[p.target] ?? 0;
    // Binary search for the number of counts strictly above `own` (sorted descending).
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! > own) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  });
  return metricsFromRanks(ranks, ks);
}
