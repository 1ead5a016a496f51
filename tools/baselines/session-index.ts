/**
 * Shared plumbing of the classic session-based baselines: the Recommender contract, flat (CSR) views
 * of the training sessions with an item -> sessions inverted index, and a reusable sparse score
 * accumulator. Typed arrays and reuse keep a Diginetica run (43k items, 187k sessions, 61k test
 * prefixes) allocation-free per query on a 2-core machine.
 */
import type { CandidateScores } from '../../model/full-ranking.js';

/**
 * A next-item recommender over model indices 1..N-1. `score` returns sparse scores whose order is
 * defined by CandidateScores (listed items first, then by index = training popularity), so the rank
 * of any target over the full catalogue is exact.
 */
export interface Recommender {
  /** Short display name (table rows, JSON `model` field). */
  readonly name: string;
  /** Learns from training sessions (model indices, click order); `items` = N including padding. */
  fit(train: readonly (readonly number[])[], items: number): void;
  /** Scores for the item after `prefix` (non-empty). The result is valid until the next call. */
  score(prefix: readonly number[]): CandidateScores;
}

/**
 * Training sessions as flat arrays. Session ids are positions in the training list, which is time
 * order for Diginetica (SR-GNN's `all_train_seq`) and session-id order for YOOCHOOSE (ids grow with
 * time in RSC15): "most recent" sampling in the kNN methods relies on that.
 */
export class SessionIndex {
  /** Catalogue size N (padding included). */
  readonly items: number;
  /** Number of training sessions. */
  readonly sessions: number;
  /** Clicks of session s: clicks[clickStart[s] .. clickStart[s+1]), in order, repeats kept. */
  readonly clickStart: Int32Array;
  readonly clicks: Int32Array;
  /** Distinct items of session s (first-occurrence order): setItems[setStart[s] .. setStart[s+1]). */
  readonly setStart: Int32Array;
  readonly setItems: Int32Array;
  /** Sessions containing item i, ascending (= oldest first): itemSessions[itemStart[i] .. itemStart[i+1]). */
  readonly itemStart: Int32Array;
  readonly itemSessions: Int32Array;
  /** Click count of every item in training. */
  readonly support: Float64Array;

  /** Builds the index; throws RangeError on an item outside 1..items-1. */
  constructor(train: readonly (readonly number[])[], items: number) {
    this.items = items;
    this.sessions = train.length;
    let total = 0;
    for (const s of train) total += s.length;
    this.clickStart = new Int32Array(train.length + 1);
    this.clicks = new Int32Array(total);
    this.setStart = new Int32Array(train.length + 1);
    const setItems = new Int32Array(total);
    this.support = new Float64Array(items);
    const stamp = new Int32Array(items).fill(-1);
    const perItem = new Int32Array(items + 1);
    let c = 0;
    let d = 0;
    train.forEach((session, s) => {
      for (const item of session) {
        if (!Number.isInteger(item) || item < 1 || item >= items) {
          throw new RangeError(`training item ${item} is outside 1..${items - 1}`);
        }
        this.clicks[c++] = item;
        this.support[item]!++;
        if (stamp[item] !== s) {
          stamp[item] = s;
          setItems[d++] = item;
          perItem[item + 1]!++;
        }
      }
      this.clickStart[s + 1] = c;
      this.setStart[s + 1] = d;
    });
    this.setItems = setItems.slice(0, d);
    for (let i = 0; i < items; i++) perItem[i + 1]! += perItem[i]!;
    this.itemStart = perItem;
    this.itemSessions = new Int32Array(d);
    const fill = perItem.slice(0, items);
    // Sessions are visited in ascending order, so every posting list comes out sorted.
    for (let s = 0; s < this.sessions; s++) {
      for (let j = this.setStart[s]!; j < this.setStart[s + 1]!; j++) {
        this.itemSessions[fill[this.setItems[j]!]!++] = s;
      }
    }
  }
}

/**
 * Sparse score accumulator over N items: `add` touches an item, `flush` hands the touched items and
 * their totals out as CandidateScores and clears only what was touched. One N-sized buffer per
 * recommender, reused for every query.
 */
export class ScoreBuffer {
  private readonly dense: Float64Array;
  private readonly touched: Uint8Array;
  private readonly items: Int32Array;
  private readonly values: Float64Array;
  private count = 0;

  /** A buffer for a catalogue of `items` indices. */
  constructor(items: number) {
    this.dense = new Float64Array(items);
    this.touched = new Uint8Array(items);
    this.items = new Int32Array(items);
    this.values = new Float64Array(items);
  }

  /** Adds `delta` to the score of `item` and lists it as a candidate. */
  add(item: number, delta: number): void {
    if (!this.touched[item]) {
      this.touched[item] = 1;
      this.items[this.count++] = item;
    }
    this.dense[item]! += delta;
  }

  /** The candidates so far (valid until the next add/flush), and a cleared buffer. */
  flush(): CandidateScores {
    const count = this.count;
    for (let j = 0; j < count; j++) {
      const item = this.items[j]!;
      this.values[j] = this.dense[item]!;
      this.dense[item] = 0;
      this.touched[item] = 0;
    }
    this.count = 0;
    return { items: this.items, scores: this.values, count };
  }
}

/** A fitted-check helper: baselines throw this when `score` runs before `fit`. */
export function notFitted(name: string): Error {
  return new Error(`${name}: call fit() before score()`);
}
