/**
 * Turns training sessions into padded, time-major batches in which every prefix predicts its next item.
 * Pure JS (typed arrays only), so it is cheap to test and costs no tensors.
 */
import { shuffleInPlace } from '../protocol/prng.js';

/** A training sequence of at most maxSessionLength items with a sample weight per item. */
export interface Window {
  readonly items: readonly number[];
  readonly weights: readonly number[];
}

/** One batch, ready to upload: inputs are time-major (row t*B + b), right-padded with item 0. */
export interface Batch {
  readonly steps: number;
  readonly size: number;
  /** [steps * size] input items. */
  readonly inputs: Int32Array;
  /** [M] rows (t*B + b) whose state predicts a real next item. */
  readonly positions: Int32Array;
  /** [M] the next item at each of those rows. */
  readonly targets: Int32Array;
  /** [M] sample weight of each target (the weight of the target interaction). */
  readonly weights: Float32Array;
}

/**
 * Cuts sessions into windows of at most `maxLength` items. Consecutive windows overlap by one item, so
 * every transition a -> b of the session is a training target exactly once, and no window is longer
 * than the context the model sees at inference (scoreNext keeps the last maxLength items).
 * Sessions (or tails) shorter than 2 items carry no target and are dropped.
 */
export function toWindows(
  sessions: readonly { readonly items: readonly number[]; readonly weights?: readonly number[] }[],
  maxLength: number,
): Window[] {
  if (maxLength < 2) throw new RangeError('maxSessionLength must be at least 2 to train');
  const out: Window[] = [];
  for (const s of sessions) {
    const weights = s.weights ?? s.items.map(() => 1);
    if (weights.length !== s.items.length) {
      throw new RangeError('a training session needs exactly one weight per item');
    }
    for (let start = 0; start + 1 < s.items.length; start += maxLength - 1) {
      const end = Math.min(start + maxLength, s.items.length);
      out.push({ items: s.items.slice(start, end), weights: weights.slice(start, end) });
    }
  }
  return out;
}

/** How many consecutive batches are sorted by length together (see planBatches). */
export const LENGTH_BUCKET_BATCHES = 16;

/**
 * Seeded shuffle into batches of windows of similar length. Each batch is padded to its longest
 * window, and session lengths are long-tailed (YOOCHOOSE: mean 4, max 200), so random batches would
 * spend most LSTM steps on padding. Sorting within chunks of LENGTH_BUCKET_BATCHES batches removes most
 * padding while batch order (and membership across chunks) stays random.
 */
export function planBatches(
  windows: readonly Window[],
  batchSize: number,
  rng: () => number,
): Window[][] {
  const order = shuffleInPlace([...windows], rng);
  const chunk = batchSize * LENGTH_BUCKET_BATCHES;
  const batches: Window[][] = [];
  for (let start = 0; start < order.length; start += chunk) {
    const part = order.slice(start, start + chunk).sort((a, b) => a.items.length - b.items.length);
    for (let i = 0; i < part.length; i += batchSize) batches.push(part.slice(i, i + batchSize));
  }
  return shuffleInPlace(batches, rng);
}

/** Packs windows into a Batch: input at step t is item t, its target item t+1. */
export function packBatch(windows: readonly Window[]): Batch {
  const size = windows.length;
  const steps = Math.max(...windows.map((w) => w.items.length)) - 1;
  const count = windows.reduce((n, w) => n + w.items.length - 1, 0);
  const inputs = new Int32Array(steps * size);
  const positions = new Int32Array(count);
  const targets = new Int32Array(count);
  const weights = new Float32Array(count);
  let m = 0;
  windows.forEach((w, b) => {
    for (let t = 0; t + 1 < w.items.length; t++) {
      inputs[t * size + b] = w.items[t]!;
      positions[m] = t * size + b;
      targets[m] = w.items[t + 1]!;
      weights[m] = w.weights[t + 1]!;
      m++;
    }
  });
  return { steps, size, inputs, positions, targets, weights };
}

/** Number of batches planBatches makes from `windowCount` windows (for progress bars and ETAs). */
export function batchesPerEpoch(windowCount: number, batchSize: number): number {
  const chunk = batchSize * LENGTH_BUCKET_BATCHES;
  const full = Math.floor(windowCount / chunk);
  return full * LENGTH_BUCKET_BATCHES + Math.ceil((windowCount - full * chunk) / batchSize);
}
