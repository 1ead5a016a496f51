/**
 * The baseline registry used by `npm run eval -- --baselines`, in the order of the tables in
 * Ludewig & Jannach 2018 (simple -> neighbourhood methods).
 */
import { ItemKnn } from './item-knn.js';
import { MarkovChain } from './markov.js';
import { Pop, SessionPop } from './popularity.js';
import { SessionKnn, VSessionKnn } from './session-knn.js';
import type { Recommender } from './session-index.js';

export { ItemKnn, MarkovChain, Pop, SessionKnn, SessionPop, VSessionKnn };
export type { Recommender };

/** Fresh, unfitted instances of every baseline with its literature defaults. */
export function allBaselines(): Recommender[] {
  return [
    new Pop(),
    new SessionPop(),
    new MarkovChain(),
    new ItemKnn(),
    new SessionKnn(),
    new VSessionKnn(),
  ];
}
