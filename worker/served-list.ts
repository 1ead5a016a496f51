/**
 * Turning scores into the list a page shows: restricting to the items a page allows, the
 * exploration slot, and the "because you viewed X" reason. Pure functions over model indices, so
 * they are tested without a server; the engine maps indices to the site's ids.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Recommendation } from '../protocol/api.js';
import type { TopK } from '../model/top-k.js';

/**
 * Candidates the exploration slot samples from: the items ranked just below the list. Close enough
 * to the top to be plausible, far enough that the model would otherwise never show them and so
 * never learn whether it was wrong about them.
 */
export const EXPLORE_POOL = 50;

/** Items ranked best first with their scores (a warm list is model/top-k.ts' topK). */
export type Ranked = TopK;

/** Share of the cold-start blend given to recency (the manifest's `recent`) over popularity. */
export const RECENCY_WEIGHT = 0.5;

/**
 * Rank fusion constant: a list's item at 0-based rank r adds weight / (RRF_K + r + 1). 60 is the
 * value of Cormack, Clarke & Buettcher (SIGIR 2009); it keeps one list's top item from drowning
 * out items that rank well in both.
 */
export const RRF_K = 60;

/**
 * The cold-start order: `popular` alone, or blended with `recent` (what is trending in the newest
 * data) by weighted reciprocal rank fusion; ties keep popularity order. Items in neither list come
 * last, in index order.
 */
export function coldStartOrder(
  popular: readonly number[],
  recent: readonly number[] = [],
  recencyWeight = RECENCY_WEIGHT,
): number[] {
  if (recent.length === 0 || recencyWeight <= 0) return [...new Set(popular)];
  const score = new Map<number, number>();
  const add = (list: readonly number[], weight: number) =>
    [...new Set(list)].forEach((item, rank) =>
      score.set(item, (score.get(item) ?? 0) + weight / (RRF_K + rank + 1)),
    );
  add(popular, 1 - recencyWeight);
  add(recent, recencyWeight);
  // Map order is insertion order: popular first, then the recent items popularity does not list.
  const order = [...score.keys()];
  const at = new Map(order.map((item, i) => [item, i]));
  return order.sort((a, b) => score.get(b)! - score.get(a)! || at.get(a)! - at.get(b)!);
}

/**
 * Cold start (no session yet): popularity blended with recency (coldStartOrder), then allowed
 * items neither lists, scored 1 / (rank + 1) so callers can still sort.
 */
export function rankPopular(
  popular: readonly number[],
  n: number,
  excluded: ReadonlySet<number>,
  allowed: readonly number[] | null,
  recent: readonly number[] = [],
): Ranked {
  const blended = coldStartOrder(popular, recent);
  let order: number[];
  if (allowed) {
    const allowSet = new Set(allowed);
    const listed = blended.filter((i) => allowSet.has(i));
    const listedSet = new Set(listed);
    order = [...listed, ...[...allowSet].filter((i) => !listedSet.has(i))];
  } else {
    order = blended;
  }
  const items = order.filter((i) => i > 0 && !excluded.has(i)).slice(0, n);
  return { items, scores: items.map((_, rank) => 1 / (rank + 1)) };
}

/**
 * Every item a list may fall back on, best first: the cold-start order (popularity blended with
 * recency), then the rest of the catalogue by index (the trainer numbers items by popularity), each
 * once; only `allowed` items when given. Lazy: a list is usually topped up by a few items.
 */
export function* fallbackOrder(
  items: number,
  popular: readonly number[],
  recent: readonly number[],
  allowed: readonly number[] | null,
): Generator<number> {
  const allowSet = allowed && new Set(allowed);
  const seen = new Set<number>();
  const order = function* (): Generator<number> {
    yield* coldStartOrder(popular, recent);
    for (let i = 1; i < items; i++) yield i;
  };
  for (const item of order()) {
    if (!Number.isInteger(item) || item < 1 || item >= items || seen.has(item)) continue;
    if (allowSet && !allowSet.has(item)) continue;
    seen.add(item);
    yield item;
  }
}

/**
 * `ranked` topped up to `n` items from `fallback` (skipping `excluded` and what is listed), so a
 * list is short only when the catalogue has fewer than `n` items left to offer: the model's scores
 * may leave items unrankable (NaN, -Infinity), and the cold-start lists name only the head of the
 * catalogue. Topped-up items score one below each other, under every ranked item.
 */
export function topUp(
  ranked: Ranked,
  n: number,
  fallback: Iterable<number>,
  excluded: ReadonlySet<number>,
): Ranked {
  if (ranked.items.length >= n) return ranked;
  const items = [...ranked.items];
  const scores = [...ranked.scores];
  const listed = new Set(items);
  let score = scores.at(-1) ?? 1;
  for (const item of fallback) {
    if (items.length >= n) break;
    if (excluded.has(item) || listed.has(item)) continue;
    listed.add(item);
    items.push(item);
    scores.push(--score);
  }
  return { items, scores };
}

/** Which position of a ranked list is shown, and whether it is the exploration slot. */
export interface Pick {
  readonly at: number;
  readonly explore: boolean;
}

/**
 * The positions of `ranked` to show for a list of `k`: the top k, or, with `explore`, the top k - 1
 * and one sampled uniformly from the next EXPLORE_POOL (uniform: the model's own scores are what is
 * in doubt there). Needs `ranked` to hold k - 1 + EXPLORE_POOL items when exploring; with fewer
 * candidates than k + 1 there is nothing to explore and the plain top k is shown.
 */
export function pickPositions(length: number, k: number, explore: boolean, random: () => number) {
  const plain = Array.from({ length: Math.min(k, length) }, (_, at): Pick => ({
    at,
    explore: false,
  }));
  if (!explore || k < 2 || length <= k) return plain;
  const pool = Math.min(EXPLORE_POOL, length - (k - 1));
  const at = k - 1 + Math.min(pool - 1, Math.floor(random() * pool));
  return [...plain.slice(0, k - 1), { at, explore: true }];
}

/**
 * The page's list: each picked position of `ranked` as the site's item id with its score, its
 * reason (the session item `reasons` names, when explained) and the exploration mark.
 */
export function toRecommendations(
  ranked: Ranked,
  picks: readonly Pick[],
  reasons: readonly (number | undefined)[],
  ids: readonly string[],
): Recommendation[] {
  return picks.map((p, n) => {
    const reason = reasons[n];
    return {
      item: ids[ranked.items[p.at]!]!,
      score: ranked.scores[p.at]!,
      ...(reason !== undefined ? { reason: { item: ids[reason]!, kind: 'viewed' as const } } : {}),
      ...(p.explore ? { explore: true as const } : {}),
    };
  });
}

/**
 * For each recommended item, the session item nearest to it by cosine similarity of their rows in
 * the item table (the table the model both reads sessions with and scores items against, so
 * "near" is what the model itself considers alike). Ties go to the most recent session item.
 */
export async function nearestSessionItems(
  table: tf.Tensor2D,
  recommended: readonly number[],
  session: readonly number[],
): Promise<number[]> {
  if (recommended.length === 0 || session.length === 0) return [];
  // Most recent first, so argMax's first-maximum rule prefers the latest click.
  const unique = [...new Set([...session].reverse())];
  const best = tf.tidy(() => {
    const unit = (rows: number[]): tf.Tensor2D => {
      const x = tf.gather(table, tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
      // The epsilon keeps an all-zero row (an untrained item) from dividing by zero.
      return tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-12));
    };
    return tf.argMax(tf.matMul(unit([...recommended]), tf.transpose(unit(unique))), 1);
  });
  const at = Array.from(await best.data());
  best.dispose();
  return at.map((i) => unique[i]!);
}
