/**
 * Full-catalogue ranking metrics for next-item recommendation: HR@K (= Recall@K with one target),
 * MRR@K and NDCG@K, plus catalogue coverage and popularity bias of the top-K lists. Pure and
 * tfjs-free, so the model evaluation and the classic baselines (tools/baselines/) share one code
 * path. The target is always ranked against every item, never against sampled negatives: sampled
 * metrics overstate quality and can even flip model orderings (Krichene & Rendle, KDD 2020).
 */

/**
 * Sparse scores over the catalogue, as the baselines produce them. Every listed item ranks above
 * every unlisted one; listed items are ordered by score, higher first; equal scores and all unlisted
 * items are ordered by index, lower first. Item indices are assigned by descending training
 * popularity (tools/data/yoochoose.ts), so "by index" means "by global popularity": the back-off
 * every baseline uses once its own evidence runs out. This is a total order, so there are no ties.
 */
export interface CandidateScores {
  /** Distinct item indices in 1..N-1; only the first `count` entries are meaningful. */
  readonly items: Int32Array;
  /** Score of `items[j]`; only the first `count` entries are meaningful. */
  readonly scores: Float64Array;
  readonly count: number;
}

/**
 * Rank of `target` (1-based) in dense scores over the whole catalogue: 1 + the number of items that
 * score strictly higher. Index 0 (padding) never counts. Ties therefore favour the target (the
 * optimistic convention of the GRU4Rec and SR-GNN evaluation code); that is harmless for models with
 * continuous scores, which is why the tie-prone baselines use CandidateScores instead. A NaN target
 * score ranks last.
 */
export function rankDense(scores: ArrayLike<number>, target: number): number {
  const own = scores[target]!;
  if (Number.isNaN(own)) return Math.max(scores.length - 1, 1);
  let above = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > own) above++;
  return above + 1;
}

/** True when candidate a (score sa, index ia) ranks before candidate b under the CandidateScores order. */
function before(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/** Exact full-catalogue rank (1-based) of `target` under the CandidateScores total order, in O(count). */
export function rankCandidates(c: CandidateScores, target: number): number {
  let at = -1;
  for (let j = 0; j < c.count; j++) {
    if (c.items[j] === target) {
      at = j;
      break;
    }
  }
  if (at >= 0) {
    const own = c.scores[at]!;
    let above = 0;
    for (let j = 0; j < c.count; j++) if (before(c.scores[j]!, c.items[j]!, own, target)) above++;
    return above + 1;
  }
  // Unlisted: after all listed items, then after the unlisted items with a lower index.
  let listedBelow = 0;
  for (let j = 0; j < c.count; j++) if (c.items[j]! < target) listedBelow++;
  return c.count + (target - 1 - listedBelow) + 1;
}

/**
 * The k first items under the CandidateScores order over a catalogue of `items` indices (0 excluded),
 * written into `out`; returns how many were written. Unlisted items fill in by index once the
 * candidates run out.
 */
export function topKCandidates(
  c: CandidateScores,
  k: number,
  items: number,
  out: Int32Array,
): number {
  const best = new Float64Array(k);
  let count = 0;
  for (let j = 0; j < c.count; j++) {
    const s = c.scores[j]!;
    const item = c.items[j]!;
    if (count === k && !before(s, item, best[k - 1]!, out[k - 1]!)) continue;
    let p = count < k ? count++ : k - 1;
    while (p > 0 && before(s, item, best[p - 1]!, out[p - 1]!)) {
      best[p] = best[p - 1]!;
      out[p] = out[p - 1]!;
      p--;
    }
    best[p] = s;
    out[p] = item;
  }
  // Only reached with fewer than k candidates, so the membership scan stays tiny.
  for (let item = 1; count < k && item < items; item++) {
    let listed = false;
    for (let j = 0; j < c.count && !listed; j++) listed = c.items[j] === item;
    if (!listed) out[count++] = item;
  }
  return count;
}

/**
 * Popularity percentile of every index: the share of other catalogue items that are less popular,
 * counting equally popular ones as half (mid-rank). 1 = the single most popular item, 0 = the single
 * least popular, 0.5 when all are equal. [0] (padding) is 0. Averaged over recommendation lists it
 * measures popularity bias (Abdollahpouri et al. 2019 use the same kind of item-popularity average).
 */
export function popularityPercentiles(popularity: ArrayLike<number>): Float64Array {
  const n = popularity.length;
  const out = new Float64Array(n);
  const m = n - 1;
  if (m <= 1) {
    if (m === 1) out[1] = 0.5;
    return out;
  }
  const order = Array.from({ length: m }, (_, i) => i + 1).sort(
    (a, b) => popularity[a]! - popularity[b]!,
  );
  for (let start = 0; start < m;) {
    let end = start;
    const value = popularity[order[start]!]!;
    while (end < m && popularity[order[end]!]! === value) end++;
    // Items in [start, end) tie: `start` items are less popular, end - start - 1 others are equal.
    const pct = (start + 0.5 * (end - start - 1)) / (m - 1);
    for (let j = start; j < end; j++) out[order[j]!] = pct;
    start = end;
  }
  return out;
}

/** HR@K, MRR@K, NDCG@K per cut-off, plus coverage and popularity of the top-`listK` lists. */
export interface FullRankingMetrics {
  readonly count: number;
  readonly hr: Readonly<Record<number, number>>;
  readonly mrr: Readonly<Record<number, number>>;
  readonly ndcg: Readonly<Record<number, number>>;
  /** Length of the lists that coverage and popularity are measured on (20). */
  readonly listK: number;
  /** Distinct items appearing in any top-listK list / catalogue size (N-1). */
  readonly coverage: number;
  /** Mean popularity percentile of all recommended top-listK items (popularityPercentiles). */
  readonly popularity: number;
}

/**
 * Streams ranks and top lists into FullRankingMetrics without keeping them, so a 60k-pair run needs
 * O(N) memory. With one relevant item, NDCG@K = 1/log2(rank+1) if rank <= K (the ideal DCG is 1).
 */
export class RankingAccumulator {
  private readonly ks: readonly number[];
  private readonly hits: Float64Array;
  private readonly reciprocal: Float64Array;
  private readonly dcg: Float64Array;
  private readonly seen: Uint8Array;
  private distinct = 0;
  private popularitySum = 0;
  private listed = 0;
  private count = 0;

  /**
   * `percentiles` comes from popularityPercentiles and fixes the catalogue size (its length, padding
   * included); `listK` is the top-list length for coverage and popularity.
   */
  constructor(
    private readonly percentiles: Float64Array,
    ks: readonly number[] = [5, 10, 20],
    readonly listK = 20,
  ) {
    this.ks = [...ks];
    this.hits = new Float64Array(ks.length);
    this.reciprocal = new Float64Array(ks.length);
    this.dcg = new Float64Array(ks.length);
    this.seen = new Uint8Array(percentiles.length);
  }

  /** Adds one pair: the target's rank and the first `topCount` (<= listK) entries of `top`. */
  add(rank: number, top: ArrayLike<number>, topCount: number): void {
    this.count++;
    for (let i = 0; i < this.ks.length; i++) {
      if (rank <= this.ks[i]!) {
        this.hits[i]!++;
        this.reciprocal[i]! += 1 / rank;
        this.dcg[i]! += 1 / Math.log2(rank + 1);
      }
    }
    const n = Math.min(topCount, this.listK);
    for (let j = 0; j < n; j++) {
      const item = top[j]!;
      if (!this.seen[item]) {
        this.seen[item] = 1;
        this.distinct++;
      }
      this.popularitySum += this.percentiles[item]!;
    }
    this.listed += n;
  }

  /** The metrics so far (all 0 before the first add). */
  result(): FullRankingMetrics {
    const hr: Record<number, number> = {};
    const mrr: Record<number, number> = {};
    const ndcg: Record<number, number> = {};
    const per = (sum: number) => (this.count ? sum / this.count : 0);
    this.ks.forEach((k, i) => {
      hr[k] = per(this.hits[i]!);
      mrr[k] = per(this.reciprocal[i]!);
      ndcg[k] = per(this.dcg[i]!);
    });
    const catalogue = this.percentiles.length - 1;
    return {
      count: this.count,
      hr,
      mrr,
      ndcg,
      listK: this.listK,
      coverage: catalogue > 0 ? this.distinct / catalogue : 0,
      popularity: this.listed ? this.popularitySum / this.listed : 0,
    };
  }
}
