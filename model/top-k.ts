/**
 * Hearth's one top-k: the list the worker serves, the model's `recommend` and the offline metrics'
 * top-K lists all pick their items here, so they agree on what may be listed and on ties.
 *
 * Rules: index 0 (padding) is never listed; neither is a score that is NaN or -Infinity (-Infinity
 * is how a score says "not recommendable": the padding column, a masked item); equal scores go to
 * the lower index; the result is best first and holds fewer than k items only when fewer qualify.
 */

/** Items best first with their scores. */
export interface TopK {
  readonly items: number[];
  readonly scores: number[];
}

/** True when `score` may be listed at all: a number above -Infinity (NaN is not). */
export function listable(score: number | undefined): score is number {
  return score !== undefined && score > -Infinity;
}

/**
 * The k best indices of `values`, skipping `exclude`, and restricted to `allowed` when given.
 * Over the whole catalogue a k-sized sorted buffer: O(N k) worst case, O(N) in practice for k ~ 20.
 * With an allow list only its items are looked at.
 */
export function topK(
  values: ArrayLike<number>,
  k: number,
  exclude?: ReadonlySet<number>,
  allowed?: readonly number[] | null,
): TopK {
  if (allowed) return topKOf(values, k, allowed, exclude);
  const items: number[] = [];
  const scores: number[] = [];
  if (k <= 0) return { items, scores };
  // The k-th best so far: most of a catalogue falls below it, so that test comes first (it also
  // rejects NaN and -Infinity) and the exclusion set is consulted only for the few that pass.
  let threshold = -Infinity;
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!;
    if (!(v > threshold) || exclude?.has(i)) continue;
    let at = items.length === k ? k - 1 : items.length;
    while (at > 0 && scores[at - 1]! < v) at--;
    items.splice(at, 0, i);
    scores.splice(at, 0, v);
    if (items.length > k) {
      items.pop();
      scores.pop();
    }
    if (items.length === k) threshold = scores[k - 1]!;
  }
  return { items, scores };
}

/** `topK` over the distinct indices of `allowed` (a small list: sorting it beats a catalogue pass). */
function topKOf(
  values: ArrayLike<number>,
  k: number,
  allowed: readonly number[],
  exclude?: ReadonlySet<number>,
): TopK {
  const candidates = [...new Set(allowed)].filter(
    (i) => Number.isInteger(i) && i > 0 && !exclude?.has(i) && listable(values[i]),
  );
  candidates.sort((a, b) => values[b]! - values[a]! || a - b);
  const items = candidates.slice(0, Math.max(k, 0));
  return { items, scores: items.map((i) => values[i]!) };
}
