/**
 * One round's aggregation as a pure function, so it can be tested alone and run inside the store's
 * transaction. The default ('mean') weighs every update the same:
 *
 *   new = global + lr * sum_i clip_S(delta_i) / n
 *
 * An update's example count is the device's own claim, so by default it never scales influence.
 * 'weighted-mean' is FedAvg's weighting (McMahan et al. 2017, https://arxiv.org/abs/1602.05629) for
 * operators who trust their clients: w_i = clamp(examples_i, 1, maxExamples) over sum_i w_i.
 *
 * Every delta is re-clipped to S here, whatever the device claimed: the server's validation allows a
 * little float16 slack, and the DP guarantee rests on each user's contribution being bounded by S.
 *
 * With central DP on, the mean instead uses equal weights and a fixed denominator m (the minimum
 * cohort): sum_i clip_S(delta_i) / m. Then adding or removing one device changes the result by at most
 * S / m in L2 whatever the others sent, which is the sensitivity that noise of std z * S / m is
 * calibrated to (the fixed-denominator estimator of McMahan et al. 2018, "Learning Differentially
 * Private Recurrent Language Models", https://arxiv.org/abs/1710.06963). The weighted mean divides by
 * the realised sum of weights instead, and one device claiming maxExamples could then move it by
 * nearly S: example counts are the device's own claim and cannot be trusted for privacy.
 */
import { clipFactor, l2Norm } from '../protocol/clip.js';
import type { Aggregator } from './config.js';
import { coordinateMedian, trimmedMean } from './robust.js';
import { stepSizeAt, type StepSizes } from './fedadam.js';

/** One accepted update, as the aggregator sees it. */
export interface AggregateUpdate {
  readonly delta: Float32Array;
  readonly examples: number;
}

/**
 * Coordinates the devices sent other than the model's (an item sketch, protocol/item-sketch.ts):
 * how many values an update holds, and how a mean in them is read into the model's.
 */
export interface SentCoordinates {
  readonly length: number;
  readonly decode: (mean: Float64Array) => Float64Array;
}

/** Parameters of one aggregation. */
export interface AggregateOptions {
  /** L2 bound S each delta is clipped to. */
  readonly clipNorm: number;
  /** Cap on an update's weight, so one device cannot dominate by claiming many examples. */
  readonly maxExamples: number;
  /** Server step size applied to the averaged delta (1 = plain FedAvg). */
  readonly serverLearningRate: number;
  /** Another step size on the item rows' coordinates (fedadam.ts StepSizes); none: the same. */
  readonly itemStep?: StepSizes['items'];
  /** Coordinate-wise statistic of the clipped deltas; 'mean' (the default) weighs all alike. */
  readonly aggregator?: Aggregator;
  /** Share of values the trimmed mean cuts from each end of every coordinate (default 0.1). */
  readonly trimFraction?: number;
  /**
   * When set (central DP), the mean uses equal weights and divides by this fixed count instead of
   * the realised sum of weights, bounding one device's influence by S / fixedDenominator.
   */
  readonly fixedDenominator?: number;
  /**
   * Seam for central DP noise: gets the aggregated delta in float64 and may change it in place before
   * it is applied. Called exactly once per aggregation.
   */
  readonly adjustMeanDelta?: (mean: Float64Array, round: { readonly cohort: number }) => void;
  /**
   * The updates (or the sum) are in these coordinates: the clipped mean is formed and noised in
   * them, then read into the model's before the step. Without it they are in the model's.
   */
  readonly sent?: SentCoordinates;
  /**
   * Seam for a server optimiser (FedAdam): turns the aggregated delta into new weights. Without it,
   * new = global + serverLearningRate * delta.
   */
  readonly applyDelta?: (global: Float32Array, delta: Float64Array) => Float32Array;
}

/** The weight FedAvg gives an update claiming `examples` local examples. */
export function updateWeight(examples: number, maxExamples: number): number {
  return Math.max(1, Math.min(examples, maxExamples));
}

/** A copy of `update`'s delta clipped to S (for the aggregators that hold every delta). */
function checkedClip(update: AggregateUpdate, length: number, clipNorm: number): Float32Array {
  const scale = clipScale(update, length, clipNorm);
  return Float32Array.from(update.delta, (x) => x * scale);
}

/**
 * The factor that clips `update` to S (protocol/clip.ts clipFactor, so a delta is clipped
 * identically wherever it is clipped). Checks the length, and refuses NaN or Infinity: validation
 * rejects them before storage, but one would poison the model.
 */
function clipScale(update: AggregateUpdate, length: number, clipNorm: number): number {
  if (update.delta.length !== length) {
    throw new RangeError(`delta has ${update.delta.length} values, model has ${length}`);
  }
  // A NaN or Infinity anywhere makes the norm non-finite (float32 squares cannot overflow float64).
  const norm = l2Norm(update.delta);
  if (!Number.isFinite(norm)) throw new RangeError('delta contains NaN or Infinity');
  return clipFactor(norm, clipNorm);
}

/**
 * Adds each update clipped to `clipNorm` into `sum` (a new one, of the first update's length, when
 * absent), one at a time; returns the sum and how many updates it took. What a round window folds
 * as its updates arrive (round-windows.ts), so that closing it does not fold them all at once.
 */
export function addClipped(
  sum: Float64Array | undefined,
  updates: Iterable<AggregateUpdate>,
  clipNorm: number,
): { sum: Float64Array | undefined; count: number } {
  let count = 0;
  for (const update of updates) {
    sum ??= new Float64Array(update.delta.length);
    const scale = clipScale(update, sum.length, clipNorm);
    const delta = update.delta;
    for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + scale * delta[i]!;
    count++;
  }
  return { sum, count };
}

/** The (equal, example-weighted or fixed-denominator) mean of the clipped deltas, one at a time. */
function streamedMean(
  length: number,
  updates: Iterable<AggregateUpdate>,
  options: AggregateOptions,
): { mean: Float64Array; cohort: number } {
  // Float64 accumulation: summing thousands of float32 deltas in float32 loses the small ones.
  const sum = new Float64Array(length);
  const fixed = options.fixedDenominator;
  let totalWeight = 0;
  let cohort = 0;
  for (const update of updates) {
    // Clipping folded into the sum (min(1, S / norm) times the delta): no copy of the delta, one
    // pass for its norm and one for the sum; the server streams thousands of updates a round.
    const scale = clipScale(update, length, options.clipNorm);
    const w =
      options.aggregator === 'weighted-mean' && fixed === undefined
        ? updateWeight(update.examples, options.maxExamples)
        : 1;
    const factor = w * scale;
    const delta = update.delta;
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + factor * delta[i]!;
    totalWeight += w;
    cohort++;
  }
  // With a fixed denominator (noise on) a round window whose noised count passed may hold none: its
  // mean is then the noise alone, published as a count's noise decided (round-windows.ts).
  if (cohort === 0 && fixed === undefined) {
    throw new RangeError('cannot aggregate a round without updates');
  }
  const denominator = fixed ?? totalWeight;
  for (let i = 0; i < length; i++) sum[i] = sum[i]! / denominator;
  return { mean: sum, cohort };
}

/**
 * Folds a round's updates into the global weights; returns new weights, leaving inputs untouched.
 * `updates` is iterated once, so a database cursor can stream it (the mean holds one delta at a
 * time; the robust aggregators must hold them all).
 */
export function aggregate(
  global: Float32Array,
  updates: Iterable<AggregateUpdate>,
  options: AggregateOptions,
): Float32Array {
  const kind = options.aggregator ?? 'mean';
  const length = options.sent?.length ?? global.length;
  let mean: Float64Array;
  let cohort: number;
  if (kind === 'mean' || kind === 'weighted-mean') {
    ({ mean, cohort } = streamedMean(length, updates, options));
  } else {
    const clipped: Float32Array[] = [];
    for (const update of updates) clipped.push(checkedClip(update, length, options.clipNorm));
    cohort = clipped.length;
    mean =
      kind === 'median'
        ? coordinateMedian(clipped, length)
        : trimmedMean(clipped, length, options.trimFraction ?? 0.1);
  }
  return applyMean(global, mean, cohort, options);
}

/**
 * Folds a round known only by the sum of its clipped updates (what secure aggregation reveals, and
 * what a simulation of many devices computes without any device's update: model/cohort-sum.ts)
 * into the global weights: equal weights only, the devices having clipped to S themselves. The
 * server cannot re-clip a sum; a device that lies about its norm is bounded by the encoding range
 * of the secure-aggregation protocol, not here.
 */
export function aggregateSum(
  global: Float32Array,
  total: { readonly sum: ArrayLike<number>; readonly count: number },
  options: AggregateOptions,
): Float32Array {
  if ((options.aggregator ?? 'mean') !== 'mean') {
    throw new RangeError(
      `a sum can only be averaged with equal weights, not '${options.aggregator}'`,
    );
  }
  const length = options.sent?.length ?? global.length;
  if (total.sum.length !== length) {
    throw new RangeError(`sum has ${total.sum.length} values, updates have ${length}`);
  }
  if (!(total.count > 0)) throw new RangeError('cannot aggregate a round without updates');
  const denominator = options.fixedDenominator ?? total.count;
  const mean = Float64Array.from(total.sum, (x) => x / denominator);
  return applyMean(global, mean, total.count, options);
}

/** The round's (noised) mean delta applied to the global weights: FedAdam, or a FedAvg step. */
function applyMean(
  global: Float32Array,
  mean: Float64Array,
  cohort: number,
  options: AggregateOptions,
): Float32Array {
  options.adjustMeanDelta?.(mean, { cohort });
  const decoded = options.sent ? options.sent.decode(mean) : mean;
  if (decoded.length !== global.length) {
    throw new RangeError(`mean has ${decoded.length} values, model has ${global.length}`);
  }
  return stepBy(global, decoded, options);
}

/** The global weights moved by a round's mean delta: FedAdam, or a FedAvg step. */
function stepBy(global: Float32Array, mean: Float64Array, options: AggregateOptions): Float32Array {
  if (options.applyDelta) return options.applyDelta(global, mean);
  const next = new Float32Array(global.length);
  const sizes: StepSizes = {
    rate: options.serverLearningRate,
    ...(options.itemStep ? { items: options.itemStep } : {}),
  };
  for (let i = 0; i < next.length; i++) {
    next[i] = global[i]! + stepSizeAt(sizes, i) * mean[i]!;
  }
  return next;
}
