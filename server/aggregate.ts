/**
 * Weighted FedAvg of one round (McMahan et al. 2017, https://arxiv.org/abs/1602.05629), as a pure
 * function so it can be tested alone and run inside the store's transaction.
 *
 *   new = global + lr * sum_i(w_i * clip_S(delta_i)) / sum_i(w_i),  w_i = clamp(examples_i, 1, maxExamples)
 *
 * Every delta is re-clipped to S here, whatever the device claimed: the server's validation allows a
 * little float16 slack, and the DP guarantee rests on each user's contribution being bounded by S.
 */
import { allFinite, clipL2InPlace } from '../protocol/clip.js';

/** One accepted update, as the aggregator sees it. */
export interface AggregateUpdate {
  readonly delta: Float32Array;
  readonly examples: number;
}

/** Parameters of one aggregation. */
export interface AggregateOptions {
  /** L2 bound S each delta is clipped to. */
  readonly clipNorm: number;
  /** Cap on an update's weight, so one device cannot dominate by claiming many examples. */
  readonly maxExamples: number;
  /** Server step size applied to the averaged delta (1 = plain FedAvg). */
  readonly serverLearningRate: number;
  /**
   * Seam for what comes later (central DP noise sigma = z * S / m, a FedAdam server optimiser): gets
   * the weighted mean delta in float64 and may change it in place before it is applied.
   */
  readonly adjustMeanDelta?: (mean: Float64Array, round: { readonly cohort: number }) => void;
}

/** The weight FedAvg gives an update claiming `examples` local examples. */
export function updateWeight(examples: number, maxExamples: number): number {
  return Math.max(1, Math.min(examples, maxExamples));
}

/**
 * Folds a round's updates into the global weights; returns new weights, leaving inputs untouched.
 * `updates` is iterated once, so a database cursor can stream it without holding every delta at once.
 */
export function aggregate(
  global: Float32Array,
  updates: Iterable<AggregateUpdate>,
  options: AggregateOptions,
): Float32Array {
  // Float64 accumulation: summing thousands of float32 deltas in float32 loses the small ones.
  const sum = new Float64Array(global.length);
  const clipped = new Float32Array(global.length);
  let totalWeight = 0;
  let cohort = 0;
  for (const update of updates) {
    if (update.delta.length !== global.length) {
      throw new RangeError(`delta has ${update.delta.length} values, model has ${global.length}`);
    }
    // Validation rejects these before storage; checked again because one NaN would poison the model.
    if (!allFinite(update.delta)) throw new RangeError('delta contains NaN or Infinity');
    clipped.set(update.delta);
    clipL2InPlace(clipped, options.clipNorm);
    const w = updateWeight(update.examples, options.maxExamples);
    for (let i = 0; i < clipped.length; i++) sum[i] = sum[i]! + w * clipped[i]!;
    totalWeight += w;
    cohort++;
  }
  if (cohort === 0) throw new RangeError('cannot aggregate a round without updates');
  for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! / totalWeight;
  options.adjustMeanDelta?.(sum, { cohort });
  const next = new Float32Array(global.length);
  for (let i = 0; i < next.length; i++) {
    next[i] = global[i]! + options.serverLearningRate * sum[i]!;
  }
  return next;
}
