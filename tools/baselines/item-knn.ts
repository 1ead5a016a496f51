/**
 * Item-KNN as in GRU4Rec's baseline (Hidasi et al., ICLR 2016) and session-rec's `iknn.py`: the
 * candidates are the items that co-occur with the last item in training sessions, scored by
 *
 *   sim(i, j) = co(i, j) / ((supp_i + lambda)^alpha * (supp_j + lambda)^(1 - alpha))
 *
 * where co counts co-occurring click pairs within a session and supp counts clicks. alpha = 0.5 is
 * the cosine similarity; lambda = 20 (session-rec's default) discounts rare items, whose few
 * co-occurrences are mostly chance. session-rec keeps only the 100 most similar items per item; we
 * keep all co-occurring items, which changes no rank within the top 100.
 */
import type { CandidateScores } from '../../model/full-ranking.js';
import { ScoreBuffer, SessionIndex, notFitted, type Recommender } from './session-index.js';

/** Options of ItemKnn. */
export interface ItemKnnOptions {
  /** Support regularisation (default 20). */
  lambda?: number;
  /** Normalisation balance: 0.5 = cosine, 1 = confidence (default 0.5). */
  alpha?: number;
}

/** Item-to-item co-occurrence similarity to the last item of the prefix. */
export class ItemKnn implements Recommender {
  readonly name = 'Item-KNN';
  private readonly lambda: number;
  private readonly alpha: number;
  private index: SessionIndex | null = null;
  private buffer: ScoreBuffer | null = null;

  /** See ItemKnnOptions for the defaults. */
  constructor(options: ItemKnnOptions = {}) {
    this.lambda = options.lambda ?? 20;
    this.alpha = options.alpha ?? 0.5;
  }

  /** Builds the inverted index; similarities are computed per query from it. */
  fit(train: readonly (readonly number[])[], items: number): void {
    this.index = new SessionIndex(train, items);
    this.buffer = new ScoreBuffer(items);
  }

  /** sim(last, j) for every j co-occurring with the last item (the last item itself excluded). */
  score(prefix: readonly number[]): CandidateScores {
    const index = this.index;
    const buffer = this.buffer;
    if (!index || !buffer) throw notFitted(this.name);
    const last = prefix[prefix.length - 1]!;
    for (let p = index.itemStart[last]!; p < index.itemStart[last + 1]!; p++) {
      const s = index.itemSessions[p]!;
      const from = index.clickStart[s]!;
      const to = index.clickStart[s + 1]!;
      // Every click of `last` pairs with every other click in the session, as in session-rec.
      let own = 0;
      for (let c = from; c < to; c++) if (index.clicks[c] === last) own++;
      for (let c = from; c < to; c++) {
        const item = index.clicks[c]!;
        if (item !== last) buffer.add(item, own);
      }
    }
    const c = buffer.flush();
    const scores = c.scores as Float64Array;
    const left = Math.pow(index.support[last]! + this.lambda, this.alpha);
    for (let j = 0; j < c.count; j++) {
      const right = Math.pow(index.support[c.items[j]!]! + this.lambda, 1 - this.alpha);
      scores[j] = scores[j]! / (left * right);
    }
    return c;
  }
}
