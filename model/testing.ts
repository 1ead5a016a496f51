/** Fixtures for the device-training tests (imported only by `*.test.ts` files; never shipped). */
import type { ModelDims } from '../protocol/manifest.js';
import type { TrainSession } from './train.js';

/** A tiny model with every scoring option on: cosine, last item, item mean, repeat bonus. */
export const SCORED_DIMS: ModelDims = {
  items: 30,
  embedding: 8,
  hidden: 6,
  maxSessionLength: 5,
  scoring: { normalize: true, scale: 6, lastItem: true, itemMean: 0.8, repeat: true },
};

/** The same model with plain dot-product scoring. */
export const PLAIN_DIMS: ModelDims = { items: 30, embedding: 8, hidden: 6, maxSessionLength: 5 };

/**
 * Devices of different shapes: several sessions, a session longer than maxSessionLength (two
 * windows), repeated items, one device with nothing to learn from, weighted interactions.
 */
export const SAMPLE_DEVICES: readonly TrainSession[][] = [
  [{ items: [1, 2, 3, 2] }, { items: [4, 5] }],
  [{ items: [7, 8, 9, 10, 11, 12, 7, 13] }],
  [{ items: [3] }],
  [{ items: [20, 21, 20, 22, 23], weights: [1, 1, 0.5, 1, 2] }],
];
