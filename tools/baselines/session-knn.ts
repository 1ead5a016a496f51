/**
 * Session-based kNN, the strongest simple baselines on e-commerce session data:
 *
 * - SKNN (Jannach & Ludewig, RecSys 2017, "When recurrent neural networks meet the neighborhood for
 *   session-based recommendation"): the current session and each past session are item sets; the
 *   `sample` most recent past sessions sharing an item with the current one are candidates; the k
 *   most cosine-similar become neighbours; an item scores the summed similarity of the neighbours
 *   that contain it.
 * - V-SKNN (Ludewig & Jannach, UMUAI 2018, "Evaluation of session-based recommendation algorithms"):
 *   the same, but the current session is a weighted vector whose weights decay linearly towards the
 *   older clicks, and each neighbour's contribution is divided by how far back (in the current
 *   session) the most recent shared item lies. Optional IDF boost of rare items.
 *
 * Details follow session-rec's `sknn.py` / `vsknn.py` (rn5l/session-rec), whose defaults produced the
 * published numbers: k = 100; sample 500 (SKNN) / 1000 (V-SKNN); V-SKNN weighting 'div' (weight of the
 * click at position p of L is p/L, a later repeat overwrites an earlier one), similarity = sum of the
 * shared items' weights / number of distinct current items, score decay 'div' (1/step). session-rec's
 * "cosine" is written `li / sqrt(la) * sqrt(lb)`; for a fixed current session that is a constant
 * multiple of the true cosine, so neighbour choice and item ranking are the same as here.
 */
import type { CandidateScores } from '../../model/full-ranking.js';
import { ScoreBuffer, SessionIndex, notFitted, type Recommender } from './session-index.js';

/** Options shared by SKNN and V-SKNN. */
export interface SessionKnnOptions {
  /** Neighbours kept (default 100). */
  k?: number;
  /** Most recent candidate sessions considered; 0 = all (default 500 SKNN, 1000 V-SKNN). */
  sample?: number;
}

/** V-SKNN's extra option. */
export interface VSessionKnnOptions extends SessionKnnOptions {
  /**
   * IDF boost: a neighbour adds sim * decay * (1 + idfWeight * ln(sessions / clicks of item)) to an
   * item (session-rec's `idf_weighting`; 0 = off, the default).
   */
  idfWeight?: number;
}

/** Per-query work buffers of the kNN methods (sized once in fit). */
interface Scratch {
  index: SessionIndex;
  buffer: ScoreBuffer;
  /** Query stamp per item, so per-item state needs no clearing between queries. */
  stamp: Int32Array;
  /** Last 0-based position of the item in the current prefix (valid where stamp matches). */
  lastPos: Int32Array;
  /** Candidate sessions (most recent first), their similarity, and V-SKNN's 1/step decay. */
  sampled: Int32Array;
  sims: Float64Array;
  decay: Float64Array;
  order: Int32Array;
  /** Merge cursors into the posting lists of the current items. */
  cursor: Int32Array;
  floor: Int32Array;
  query: number;
}

/** The common candidate search; subclasses define the similarity and the neighbour weight. */
abstract class KnnBase implements Recommender {
  abstract readonly name: string;
  protected readonly k: number;
  protected readonly sample: number;
  protected scratch: Scratch | null = null;

  constructor(options: SessionKnnOptions, defaultSample: number) {
    this.k = options.k ?? 100;
    this.sample = options.sample ?? defaultSample;
  }

  /** Builds the item -> sessions index and the per-query buffers. */
  fit(train: readonly (readonly number[])[], items: number): void {
    const index = new SessionIndex(train, items);
    const room = this.sample > 0 ? Math.min(this.sample, index.sessions) : index.sessions;
    this.scratch = {
      index,
      buffer: new ScoreBuffer(items),
      stamp: new Int32Array(items),
      lastPos: new Int32Array(items),
      sampled: new Int32Array(room),
      sims: new Float64Array(room),
      decay: new Float64Array(room),
      order: new Int32Array(room),
      cursor: new Int32Array(0),
      floor: new Int32Array(0),
      query: 0,
    };
  }

  /** Neighbours of the prefix, then their items scored by weight(neighbour). */
  score(prefix: readonly number[]): CandidateScores {
    const x = this.scratch;
    if (!x) throw notFitted(this.name);
    const q = ++x.query;
    const distinct: number[] = [];
    prefix.forEach((item, p) => {
      if (x.stamp[item] !== q) {
        x.stamp[item] = q;
        distinct.push(item);
      }
      x.lastPos[item] = p;
    });
    const found = this.recentSessions(x, distinct);
    for (let j = 0; j < found; j++) this.similarity(x, x.sampled[j]!, j, prefix.length, distinct);
    // Best similarity first; equal similarity: more recent first (lower j, as sampled is newest first).
    for (let j = 0; j < found; j++) x.order[j] = j;
    const order = x.order.subarray(0, found);
    if (found > this.k) order.sort((a, b) => x.sims[b]! - x.sims[a]! || a - b);
    const kept = Math.min(found, this.k);
    for (let n = 0; n < kept; n++) {
      const j = order[n]!;
      const s = x.sampled[j]!;
      const weight = x.sims[j]! * x.decay[j]!;
      for (let p = x.index.setStart[s]!; p < x.index.setStart[s + 1]!; p++) {
        const item = x.index.setItems[p]!;
        x.buffer.add(item, weight * this.itemBoost(item));
      }
    }
    return x.buffer.flush();
  }

  /**
   * Writes the distinct sessions containing any current item, newest first, at most `sample` of them,
   * into x.sampled; returns the count. Posting lists are sorted ascending, so a merge from their tails
   * yields the newest sessions without visiting the (possibly huge) older parts.
   */
  private recentSessions(x: Scratch, distinct: readonly number[]): number {
    const m = distinct.length;
    if (x.cursor.length < m) {
      x.cursor = new Int32Array(m * 2);
      x.floor = new Int32Array(m * 2);
    }
    for (let t = 0; t < m; t++) {
      x.cursor[t] = x.index.itemStart[distinct[t]! + 1]!;
      x.floor[t] = x.index.itemStart[distinct[t]!]!;
    }
    const limit = x.sampled.length;
    let found = 0;
    while (found < limit) {
      let newest = -1;
      for (let t = 0; t < m; t++) {
        if (x.cursor[t]! > x.floor[t]!) {
          const s = x.index.itemSessions[x.cursor[t]! - 1]!;
          if (s > newest) newest = s;
        }
      }
      if (newest < 0) break;
      x.sampled[found++] = newest;
      for (let t = 0; t < m; t++) {
        if (x.cursor[t]! > x.floor[t]! && x.index.itemSessions[x.cursor[t]! - 1] === newest) {
          x.cursor[t]!--;
        }
      }
    }
    return found;
  }

  /** Sets x.sims[j] and x.decay[j] for candidate session s. */
  protected abstract similarity(
    x: Scratch,
    s: number,
    j: number,
    length: number,
    distinct: readonly number[],
  ): void;

  /** Multiplier of a neighbour's contribution to `item` (IDF in V-SKNN, 1 otherwise). */
  protected itemBoost(_item: number): number {
    return 1;
  }
}

/** SKNN: binary cosine between item sets, every neighbour item gets the neighbour's similarity. */
export class SessionKnn extends KnnBase {
  readonly name = 'SKNN';

  /** Defaults: k = 100, sample = 500 most recent sessions (session-rec's `sknn-100-500-cosine`). */
  constructor(options: SessionKnnOptions = {}) {
    super(options, 500);
  }

  protected similarity(
    x: Scratch,
    s: number,
    j: number,
    _length: number,
    distinct: readonly number[],
  ): void {
    const from = x.index.setStart[s]!;
    const to = x.index.setStart[s + 1]!;
    let shared = 0;
    for (let p = from; p < to; p++) if (x.stamp[x.index.setItems[p]!] === x.query) shared++;
    x.sims[j] = shared / Math.sqrt(distinct.length * (to - from));
    x.decay[j] = 1;
  }
}

/** V-SKNN: linearly decaying current-session weights, 1/step neighbour decay, optional IDF. */
export class VSessionKnn extends KnnBase {
  readonly name = 'V-SKNN';
  private readonly idfWeight: number;
  private idf: Float64Array = new Float64Array(0);

  /** Defaults: k = 100, sample = 1000, no IDF (session-rec's VMContextKNN defaults). */
  constructor(options: VSessionKnnOptions = {}) {
    super(options, 1000);
    this.idfWeight = options.idfWeight ?? 0;
  }

  override fit(train: readonly (readonly number[])[], items: number): void {
    super.fit(train, items);
    const index = this.scratch!.index;
    // session-rec: log(#sessions / #clicks of the item); items never clicked get no boost.
    this.idf = new Float64Array(items);
    for (let i = 1; i < items; i++) {
      const clicks = index.support[i]!;
      this.idf[i] = clicks > 0 ? Math.log(index.sessions / clicks) : 0;
    }
  }

  protected similarity(
    x: Scratch,
    s: number,
    j: number,
    length: number,
    distinct: readonly number[],
  ): void {
    let sum = 0;
    let latest = -1;
    for (let p = x.index.setStart[s]!; p < x.index.setStart[s + 1]!; p++) {
      const item = x.index.setItems[p]!;
      if (x.stamp[item] !== x.query) continue;
      const pos = x.lastPos[item]!;
      sum += (pos + 1) / length;
      if (pos > latest) latest = pos;
    }
    x.sims[j] = sum / distinct.length;
    // step = 1 when the neighbour holds the last click, 2 when its newest shared item is one back, ...
    x.decay[j] = 1 / (length - latest);
  }

  protected override itemBoost(item: number): number {
    return this.idfWeight ? 1 + this.idfWeight * this.idf[item]! : 1;
  }
}
