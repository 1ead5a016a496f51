/**
 * Next-item ranking metrics over the full catalogue, as in the session-based recommendation literature
 * (SR-GNN, NARM, GRU4Rec): HR@K (= Recall@K with one target) and MRR@K.
 */
import { rankDense } from './full-ranking.js';
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
 * excluded: scoreNext gives it -Infinity), so ties count in the target's favour for every method alike;
 * a NaN target score ranks last (rankDense).
 *
 * Pairs are scored in batches of similar prefix length (each batch runs the LSTM only as many steps as
 * its longest prefix), and ranks are counted in JS on the read-back scores: on the wasm backend a
 * broadcast `greater` + `sum` over [256, 43k] took ~2.4 s per batch, the JS loop ~30 ms.
 */
export async function evaluateNext(
  model: SessionModel,
  pairs: readonly NextItemPair[],
  ks: readonly number[] = [5, 10, 20],
  batchSize = 256,
): Promise<RankingMetrics> {
  const window = model.dims.maxSessionLength;
  const order = pairs.map((_, i) => i);
  const length = (i: number) => Math.min(pairs[i]!.prefix.length, window);
  order.sort((a, b) => length(a) - length(b) || a - b);
  const ranks = new Int32Array(pairs.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const part = order.slice(start, start + batchSize);
    const scores = model.scoreNext(part.map((i) => pairs[i]!.prefix));
    const n = scores.shape[1];
    const values = (await scores.data()) as Float32Array;
    scores.dispose();
    part.forEach((i, b) => {
      ranks[i] = rankDense(values.subarray(b * n, (b + 1) * n), pairs[i]!.target);
    });
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
