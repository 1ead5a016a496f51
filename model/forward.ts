/**
 * The forward pass, shared by training and inference: item embedding -> LSTM -> projection -> scores
 * against the same (tied) item table. Functions here create tensors freely; callers wrap them in
 * `tf.tidy` (inference) or an optimiser's `minimize` (training).
 */
import * as tf from '@tensorflow/tfjs-core';
import { NORM_EPSILON, type ScoringSpec } from '../protocol/manifest.js';
import { gatherRows } from './gather-rows.js';
import { matMul2d } from './mat-mul.js';

/** The model tensors, named as in the manifest. */
export interface ModelParams {
  readonly itemEmbedding: tf.Tensor2D; // [N, d]
  readonly itemBias: tf.Tensor1D; // [N]
  readonly lstmKernel: tf.Tensor2D; // [d, 4h]
  readonly lstmRecurrent: tf.Tensor2D; // [h, 4h]
  readonly lstmBias: tf.Tensor1D; // [4h]
  readonly projectionKernel: tf.Tensor2D; // [h, d]
  readonly projectionBias: tf.Tensor1D; // [d]
  /** [maxSessionLength], only with scoring.repeat (repeat.ts). */
  readonly repeatBonus?: tf.Tensor1D;
  /** How session vectors are scored (manifest dims.scoring, defaulted). */
  readonly scoring: ScoringSpec;
}

/** Rows (the last axis) of `x` divided by their L2 norms (sqrt(sum x^2 + NORM_EPSILON)). */
export function l2NormalizeRows<T extends tf.Tensor>(x: T): T {
  return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), -1, true), NORM_EPSILON)));
}

/**
 * Runs the LSTM over a time-major batch and returns every hidden state, flattened to [T*B, h] with row
 * t*B + b holding session b after step t.
 *
 * `inputs` holds T*B item indices, time-major (index 0 = padding). Sessions are right-padded, so padded
 * steps come after a session's real items and never change its real hidden states: no masking needed,
 * callers simply pick the rows they want.
 *
 * The input half of the gate pre-activation, x_t . W + b, does not depend on the recurrence, so it is
 * computed for all steps in one large matmul (as cuDNN does); each step then does one fused recurrent
 * matmul h_{t-1} . U for all four gates and slices it, instead of four small ones.
 *
 * `inputMask` [T*B, d] (training only) multiplies the embedded inputs: dropout. Inference passes none.
 */
export function lstmStates(
  p: ModelParams,
  inputs: tf.Tensor1D,
  steps: number,
  batch: number,
  inputMask?: tf.Tensor2D,
): tf.Tensor2D {
  const hidden = p.lstmRecurrent.shape[0];
  const embedded = gatherRows(p.itemEmbedding, inputs) as tf.Tensor2D; // [T*B, d]
  const x: tf.Tensor2D = inputMask ? tf.mul(embedded, inputMask) : embedded;
  const xz = tf.add(matMul2d(x, p.lstmKernel), p.lstmBias); // [T*B, 4h]
  // unstack's gradient is one stack; per-step slices of a 2-D tensor would each pad back to full size.
  // A one-step unstack has a single output, and tfjs 4.22 then hands its Unpack gradient a bare tensor
  // instead of an array (stack() throws), so that case skips the unstack.
  const perStep =
    steps === 1
      ? [xz as tf.Tensor2D]
      : (tf.unstack(tf.reshape(xz, [steps, batch, 4 * hidden])) as tf.Tensor2D[]);
  const states: tf.Tensor2D[] = [];
  let h: tf.Tensor2D | null = null;
  let c: tf.Tensor2D | null = null;
  for (const xzt of perStep) {
    // Step 0 starts from h = c = 0, so its recurrent term and forget path vanish.
    const z: tf.Tensor2D = h === null ? xzt : tf.add(xzt, matMul2d(h, p.lstmRecurrent));
    const [zi, zf, zg, zo] = tf.split(z, 4, 1) as [
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
    ];
    const ig: tf.Tensor2D = tf.mul(tf.sigmoid(zi), tf.tanh(zg));
    const cNext: tf.Tensor2D = c === null ? ig : tf.add(tf.mul(tf.sigmoid(zf), c), ig);
    const hNext: tf.Tensor2D = tf.mul(tf.sigmoid(zo), tf.tanh(cNext));
    c = cNext;
    h = hNext;
    states.push(hNext);
  }
  return tf.reshape(tf.stack(states), [steps * batch, hidden]);
}

/**
 * Session vector in item space, shape [M, d]: out = h . P + b_P, plus the last item's embedding with
 * scoring.lastItem, then L2-normalised and multiplied by scoring.scale with scoring.normalize (so
 * scoring against normalised item rows is a plain matmul). `lastItems` [M] are the items each state
 * consumed last; needed only with scoring.lastItem.
 */
export function project(
  p: ModelParams,
  states: tf.Tensor2D,
  lastItems?: tf.Tensor1D,
  itemMeans?: tf.Tensor2D,
): tf.Tensor2D {
  let out: tf.Tensor2D = tf.add(matMul2d(states, p.projectionKernel), p.projectionBias);
  if (p.scoring.lastItem) {
    if (!lastItems) throw new Error('project: scoring.lastItem needs the last items');
    out = tf.add(out, gatherRows(p.itemEmbedding, lastItems));
  }
  if (p.scoring.itemMean !== undefined) {
    if (!itemMeans) throw new Error('project: scoring.itemMean needs the item means');
    out = tf.add(out, itemMeans);
  }
  if (p.scoring.normalize) out = tf.mul(l2NormalizeRows(out), p.scoring.scale);
  return out;
}

/** Item rows as scored: the table itself, or its L2-normalised rows with scoring.normalize. */
export function outputRows(p: ModelParams, rows: tf.Tensor2D): tf.Tensor2D {
  return p.scoring.normalize ? l2NormalizeRows(rows) : rows;
}

/**
 * Full-catalogue scores out . E^T + item_bias, shape [M, N] (E row-normalised with
 * scoring.normalize). The output layer reuses the input table (tied embeddings): the table dominates
 * the model size, so it is stored and shipped once.
 */
export function scoreAll(p: ModelParams, out: tf.Tensor2D): tf.Tensor2D {
  // An explicit transpose, not matMul(..., transposeB): see mat-mul.ts.
  return tf.add(matMul2d(out, tf.transpose(outputRows(p, p.itemEmbedding))), p.itemBias);
}

/**
 * Decay-weighted mean of every prefix's item embeddings, [T*B, d] in the time-major row order of
 * lstmStates: row t*B + b = sum_{s<=t} decay^(t-s) e(x_{s,b}) / sum_{s<=t} decay^(t-s). One [T, T]
 * lower-triangular matrix times the embedded inputs viewed as [T, B*d].
 */
export function prefixItemMeans(
  table: tf.Tensor2D,
  inputs: tf.Tensor1D,
  steps: number,
  batch: number,
  decay: number,
): tf.Tensor2D {
  const d = table.shape[1];
  const embedded = gatherRows(table, inputs) as tf.Tensor2D;
  const mixed = matMul2d(prefixMeanWeights(steps, decay), tf.reshape(embedded, [steps, batch * d]));
  return tf.reshape(mixed, [steps * batch, d]);
}

/**
 * The lower-triangular [T, T] weights of the decay-weighted prefix mean: row t holds
 * decay^(t-s) / sum_{s'<=t} decay^(t-s') at column s <= t.
 */
export function prefixMeanWeights(steps: number, decay: number): tf.Tensor2D {
  const weights = new Float32Array(steps * steps);
  for (let t = 0; t < steps; t++) {
    let total = 0;
    for (let s = 0; s <= t; s++) total += decay ** (t - s);
    for (let s = 0; s <= t; s++) weights[t * steps + s] = decay ** (t - s) / total;
  }
  return tf.tensor2d(weights, [steps, steps]);
}

/**
 * project()'s item-mean term for chosen rows of a time-major batch (`rows` index the T*B rows of
 * lstmStates), or undefined when the model's scoring has none.
 */
export function itemMeansAt(
  p: ModelParams,
  inputs: tf.Tensor1D,
  steps: number,
  batch: number,
  rows: tf.Tensor1D,
): tf.Tensor2D | undefined {
  const decay = p.scoring.itemMean;
  if (decay === undefined) return undefined;
  const means = prefixItemMeans(p.itemEmbedding, inputs, steps, batch, decay);
  return gatherRows(means, rows) as tf.Tensor2D;
}
