/**
 * The two popularity baselines of the session-based literature (Ludewig & Jannach 2018, "Evaluation
 * of session-based recommendation algorithms", UMUAI 28): POP ranks every item by training clicks;
 * S-POP ranks the items of the current session by how often they occur in it, then everything else
 * by training clicks.
 */
import type { CandidateScores } from '../../model/full-ranking.js';
import { ScoreBuffer, notFitted, type Recommender } from './session-index.js';

const EMPTY: CandidateScores = { items: new Int32Array(0), scores: new Float64Array(0), count: 0 };

/**
 * POP: the same list for every prefix. Model indices are already in descending training popularity
 * (tools/data/yoochoose.ts), so no candidate at all gives exactly that ranking.
 */
export class Pop implements Recommender {
  readonly name = 'POP';

  /** Nothing to learn: popularity is the index order. */
  fit(_train?: readonly (readonly number[])[], _items?: number): void {}

  /** Always empty: the index order (= popularity) ranks everything. */
  score(_prefix?: readonly number[]): CandidateScores {
    return EMPTY;
  }
}

/**
 * S-POP: in-session click count, global popularity as tie-break (equal counts are ordered by index,
 * i.e. by training clicks), then every other item by popularity.
 */
export class SessionPop implements Recommender {
  readonly name = 'S-POP';
  private buffer: ScoreBuffer | null = null;

  /** Only sizes the score buffer: the popularity part is the index order. */
  fit(_train: readonly (readonly number[])[], items: number): void {
    this.buffer = new ScoreBuffer(items);
  }

  /** Each prefix item scores its count in the prefix. */
  score(prefix: readonly number[]): CandidateScores {
    const buffer = this.buffer;
    if (!buffer) throw notFitted(this.name);
    for (const item of prefix) buffer.add(item, 1);
    return buffer.flush();
  }
}
