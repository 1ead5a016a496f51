/**
 * The cold-start recency signal written into a manifest at export (`recent`): the items most
 * clicked in the newest part of the training log. Session logs here are in time order (YOOCHOOSE,
 * Diginetica), so "newest" is the tail of the session list; the worker blends this order with
 * overall popularity before a visitor's first interaction (worker/served-list.ts).
 */

/** Share of the newest training sessions that counts as recent (YOOCHOOSE 100k: about its last day). */
export const RECENT_SHARE = 0.15;

/** How many trending items a manifest lists, as for `popular`. */
export const RECENT_IN_MANIFEST = 100;

/**
 * Model indices by descending count over the newest `share` of `sessions` (time order, indices
 * 1..N-1), ties by index; at most `limit`. Empty when there is nothing to count.
 */
export function trendingItems(
  sessions: readonly (readonly number[])[],
  share = RECENT_SHARE,
  limit = RECENT_IN_MANIFEST,
): number[] {
  if (!(share > 0) || sessions.length === 0) return [];
  const from = sessions.length - Math.max(1, Math.round(sessions.length * Math.min(share, 1)));
  const counts = new Map<number, number>();
  for (const session of sessions.slice(from)) {
    for (const item of session) if (item > 0) counts.set(item, (counts.get(item) ?? 0) + 1);
  }
  return [...counts.keys()]
    .sort((a, b) => counts.get(b)! - counts.get(a)! || a - b)
    .slice(0, limit);
}
