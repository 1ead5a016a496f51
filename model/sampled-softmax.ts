/**
 * Sampled softmax for large catalogues (GRU4Rec-style; Hidasi & Karatzoglou 2018, "Recurrent Neural
 * Networks with Top-k Gains for Session-based Recommendations", section 3.1). Each example's target
 * competes with the other targets of the mini-batch (in-batch negatives, which follow the data's
 * popularity) plus one shared set of extra items drawn from popularity^alpha. With a 43k-item catalogue
 * this replaces an [M, N] logit matrix by [M, M + S] (S ~ 2048): ~15x fewer multiply-adds per step and
 * no N-wide softmax.
 *
 * The optional logQ correction subtracts log(expected count of item j among the candidates) from each
 * logit (Bengio & Senecal 2008; Jean et al. 2015; Yi et al. 2019, "Sampling-bias-corrected neural
 * modeling for large corpus item recommendations"): without it, popular items are over-represented as
 * negatives and the model learns to under-score them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { outputRows, type ModelParams } from './forward.js';
import { gatherRows } from './gather-rows.js';
import type { LossBatch, OutputLoss } from './loss.js';
import { matMul2d } from './mat-mul.js';
import { seededRng, type SeededRng } from '../protocol/prng.js';
import { occurrences, repeatColumns, repeatLogits } from './repeat.js';

/** One batch's candidate columns (see candidateColumns). */
interface Candidates {
  readonly candidates: Int32Array;
  readonly hits: number[][];
  readonly correction: Float32Array;
  /** Item -> the columns holding it. */
  readonly columns: ReadonlyMap<number, readonly number[]>;
}

/** How the sampled softmax draws its shared negatives. */
export interface SampledSoftmaxConfig {
  /** Extra negatives drawn per batch, shared by every example of the batch (GRU4Rec: 2048). */
  readonly negatives: number;
  /** Sampling probability ~ count^alpha (GRU4Rec's sample_alpha; 0 = uniform, 1 = popularity). */
  readonly alpha: number;
  /** Subtract log(expected candidate count) from every logit (sampling-bias correction). */
  readonly logQ: boolean;
}

/** Defaults measured on Diginetica (see tools/train/defaults.ts). */
export const DEFAULT_SAMPLED_SOFTMAX: SampledSoftmaxConfig = {
  negatives: 2048,
  alpha: 0.75,
  logQ: false,
};

/**
 * Seeded categorical sampler over item indices 1..N-1 with probability ~ (count + 1)^alpha. The +1 lets
 * every item be a negative even when `counts` come from a handful of local sessions (on-device tuning).
 * Its RNG state is exposed so a training checkpoint can resume the exact stream of samples.
 */
export class NegativeSampler {
  private readonly cdf: Float64Array;
  /** Probability of each index under the data distribution (in-batch targets), [0] = 0. */
  readonly dataProb: Float64Array;
  /** Probability of each index under the sampling distribution, [0] = 0. */
  readonly sampleProb: Float64Array;
  private rng: SeededRng;

  constructor(counts: ArrayLike<number>, alpha: number, seed: number) {
    const n = counts.length;
    this.cdf = new Float64Array(n);
    this.dataProb = new Float64Array(n);
    this.sampleProb = new Float64Array(n);
    let total = 0;
    let totalAlpha = 0;
    for (let i = 1; i < n; i++) {
      const c = Math.max(0, counts[i]!) + 1;
      total += c;
      totalAlpha += c ** alpha;
      this.cdf[i] = totalAlpha;
    }
    for (let i = 1; i < n; i++) {
      const c = Math.max(0, counts[i]!) + 1;
      this.dataProb[i] = c / total;
      this.sampleProb[i] = c ** alpha / totalAlpha;
      this.cdf[i] = this.cdf[i]! / totalAlpha;
    }
    this.rng = seededRng(seed);
  }

  /** The RNG state, for checkpoints. */
  get state(): number {
    return this.rng.state();
  }

  set state(value: number) {
    this.rng = seededRng(value);
  }

  /** `count` indices in 1..N-1, with replacement (inverse CDF by binary search). */
  sample(count: number): Int32Array {
    const out = new Int32Array(count);
    const last = this.cdf.length - 1;
    for (let s = 0; s < count; s++) {
      const u = this.rng();
      let lo = 1;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.cdf[mid]! > u) hi = mid;
        else lo = mid + 1;
      }
      out[s] = lo;
    }
    return out;
  }
}

/**
 * Builds the candidate columns of one batch: the M targets, then `negatives`. Column i is example i's
 * positive; every other column holding the same item as example i's target (a duplicate target in the
 * batch, or a sampled copy of it) is an accidental hit, listed in `hits[i]` and left out of row i's
 * softmax, so an item is never pushed down as a negative of itself. `correction` [C] is -log(expected count of the item
 * among the candidates) = -log(M * p_data + S * p_sample), or zeros without logQ.
 */
export function candidateColumns(
  targets: Int32Array,
  negatives: Int32Array,
  sampler: NegativeSampler,
  logQ: boolean,
): Candidates {
  const m = targets.length;
  const c = m + negatives.length;
  const candidates = new Int32Array(c);
  candidates.set(targets, 0);
  candidates.set(negatives, m);
  const columns = new Map<number, number[]>();
  candidates.forEach((item, j) => {
    const list = columns.get(item);
    if (list) list.push(j);
    else columns.set(item, [j]);
  });
  const hits = Array.from({ length: m }, (_, i) =>
    columns.get(targets[i]!)!.filter((j) => j !== i),
  );
  const correction = new Float32Array(c);
  if (logQ) {
    for (let j = 0; j < c; j++) {
      const item = candidates[j]!;
      const expected = m * sampler.dataProb[item]! + negatives.length * sampler.sampleProb[item]!;
      correction[j] = -Math.log(expected);
    }
  }
  return { candidates, hits, correction, columns };
}

/**
 * Per-row softmax cross-entropy of `scores` [M, C] + `bias` [C] + `correction` [C] + the sparse
 * accidental-hit mask, with row i's positive in column i (or in column positives[i]). Computed in plain JS on the read-back
 * scores: the wasm backend's exp, broadcast add and log-softmax gradient are scalar code (measured
 * here, M = 1000, C = 3048: ~600 ms per step for the tensor version, dominated by exp and
 * log-softmax's backward pass), while a JS loop over the same 3M values takes tens of ms. The
 * gradient, softmax - onehot scaled by dy, is computed in the same pass and uploaded once.
 */
export function maskedCrossEntropy(
  scores: tf.Tensor2D,
  bias: tf.Tensor1D,
  correction: Float32Array,
  hits: readonly (readonly number[])[],
  positives?: Int32Array,
): tf.Tensor1D {
  const [m, c] = scores.shape;
  const column = (i: number) => (positives ? positives[i]! : i);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const s = args[0] as tf.Tensor2D;
    const b = args[1] as tf.Tensor1D;
    const values = s.dataSync() as Float32Array;
    const biasValues = b.dataSync() as Float32Array;
    const shift = new Float32Array(c);
    for (let j = 0; j < c; j++) shift[j] = biasValues[j]! + correction[j]!;
    // probs holds softmax(row) - onehot(i) per row, the gradient of the row's loss.
    const probs = new Float32Array(m * c);
    const loss = new Float32Array(m);
    for (let i = 0; i < m; i++) {
      const row = i * c;
      const masked = hits[i]!;
      for (let j = 0; j < c; j++) probs[row + j] = values[row + j]! + shift[j]!;
      for (const j of masked) probs[row + j] = -Infinity;
      let max = -Infinity;
      for (let j = 0; j < c; j++) if (probs[row + j]! > max) max = probs[row + j]!;
      const positive = probs[row + column(i)]!;
      let sum = 0;
      for (let j = 0; j < c; j++) {
        const e = Math.exp(probs[row + j]! - max);
        probs[row + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < c; j++) probs[row + j]! *= inv;
      probs[row + column(i)]! -= 1;
      loss[i] = max + Math.log(sum) - positive;
    }
    const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
      const scale = dy.dataSync() as Float32Array;
      const grad = new Float32Array(m * c);
      const biasGrad = new Float32Array(c);
      for (let i = 0; i < m; i++) {
        const row = i * c;
        const k = scale[i]!;
        if (k === 0) continue;
        for (let j = 0; j < c; j++) {
          const g = probs[row + j]! * k;
          grad[row + j] = g;
          biasGrad[j]! += g;
        }
      }
      return [tf.tensor2d(grad, [m, c]), tf.tensor1d(biasGrad)];
    };
    return { value: tf.tensor1d(loss), gradFunc };
  });
  return op(scores, bias) as tf.Tensor1D;
}

/**
 * An OutputLoss computing softmax cross-entropy over [target, other in-batch targets, shared sampled
 * negatives] with accidental hits masked. Draws one fresh sample per call (= per optimiser step).
 */
export function sampledSoftmaxLoss(
  sampler: NegativeSampler,
  config: SampledSoftmaxConfig,
): OutputLoss {
  return (params, out, targetTensor, _paddingMask, batch) => {
    const targets = batch?.targets ?? (targetTensor.dataSync() as Int32Array);
    const negatives = sampler.sample(config.negatives);
    const shared = candidateColumns(targets, negatives, sampler, config.logQ);
    const { candidates, hits, correction } = shared;
    const ids = tf.tensor1d(candidates, 'int32');
    // [C, d], row-normalised with cosine scoring (out is then normalised and scaled already).
    const weights = outputRows(params, gatherRows(params.itemEmbedding, ids) as tf.Tensor2D);
    const bias = gatherRows(params.itemBias, ids) as tf.Tensor1D; // [C]
    // An explicit transpose, not matMul(..., transposeB): see mat-mul.ts.
    const scores = matMul2d(out, tf.transpose(weights));
    if (!params.repeatBonus) return maskedCrossEntropy(scores, bias, correction, hits);
    if (!batch) throw new Error('sampledSoftmaxLoss: the repeat bonus needs the batch');
    return withRepeatColumns(params, out, batch, { ...shared, scores, bias });
  };
}

/**
 * The sampled softmax with the repeat bonus: each row also scores the distinct items of its own
 * session (K extra columns with their bonus, repeat.ts), and shared columns holding one of those
 * items are masked for that row, so every item counts once. A target the session already holds is
 * the positive in its extra column. These columns are not sampled (each row sees its own items
 * with certainty), so they take no logQ correction.
 */
function withRepeatColumns(
  params: ModelParams,
  out: tf.Tensor2D,
  batch: LossBatch,
  shared: Candidates & { scores: tf.Tensor2D; bias: tf.Tensor1D },
): tf.Tensor1D {
  const m = batch.targets.length;
  const c = shared.candidates.length;
  const window = params.repeatBonus!.shape[0];
  const cols = repeatColumns(occurrences(batch.inputs, batch.positions, batch.size), m, window);
  const positives = new Int32Array(m);
  const hits = shared.hits.map((row, i) => {
    const slots = cols.slots[i]!;
    const masked = [...row];
    for (const item of slots.keys()) masked.push(...(shared.columns.get(item) ?? []));
    for (let k = slots.size; k < cols.k; k++) masked.push(c + k);
    const own = slots.get(batch.targets[i]!);
    positives[i] = own === undefined ? i : c + own;
    return masked;
  });
  const correction = new Float32Array(c + cols.k);
  correction.set(shared.correction);
  return maskedCrossEntropy(
    tf.concat([shared.scores, repeatLogits(params, out, cols)], 1),
    tf.concat([shared.bias, tf.zeros([cols.k])]) as tf.Tensor1D,
    correction,
    hits,
    positives,
  );
}
