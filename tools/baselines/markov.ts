/**
 * First-order Markov chain baseline: the next item is scored by how often it followed the current
 * (last) item in training. This is the "MC" / transition-count baseline of the session-based
 * literature (e.g. Ludewig & Jannach 2018; FPMC's Markov part without factorisation, Rendle et al. 2010).
 */
import type { CandidateScores } from '../../model/full-ranking.js';
import { ScoreBuffer, notFitted, type Recommender } from './session-index.js';

/** Transition counts last item -> next item, stored per source item (CSR). */
export class MarkovChain implements Recommender {
  readonly name = 'Markov';
  private start: Int32Array | null = null;
  private next: Int32Array = new Int32Array(0);
  private counts: Float64Array = new Float64Array(0);
  private buffer: ScoreBuffer | null = null;

  /** Counts every consecutive pair (a, b) of every training session (repeats a -> a included). */
  fit(train: readonly (readonly number[])[], items: number): void {
    // Key a * items + b stays below 2^53 for any realistic catalogue.
    const pairs = new Map<number, number>();
    const outDegree = new Int32Array(items + 1);
    for (const s of train) {
      for (let t = 1; t < s.length; t++) {
        const key = s[t - 1]! * items + s[t]!;
        const seen = pairs.get(key);
        if (seen === undefined) outDegree[s[t - 1]! + 1]!++;
        pairs.set(key, (seen ?? 0) + 1);
      }
    }
    for (let i = 0; i < items; i++) outDegree[i + 1]! += outDegree[i]!;
    const fill = outDegree.slice(0, items);
    this.next = new Int32Array(pairs.size);
    this.counts = new Float64Array(pairs.size);
    for (const [key, count] of pairs) {
      const from = Math.floor(key / items);
      const at = fill[from]!++;
      this.next[at] = key - from * items;
      this.counts[at] = count;
    }
    this.start = outDegree;
    this.buffer = new ScoreBuffer(items);
  }

  /** Successors of the last prefix item, scored by transition count. */
  score(prefix: readonly number[]): CandidateScores {
    const start = this.start;
    const buffer = this.buffer;
    if (!start || !buffer) throw notFitted(this.name);
    const last = prefix[prefix.length - 1]!;
    for (let j = start[last]!; j < start[last + 1]!; j++)
      buffer.add(this.next[j]!, this.counts[j]!);
    return buffer.flush();
  }
}
