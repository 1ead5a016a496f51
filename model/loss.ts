/**
 * Output losses. Full-catalogue softmax is exact and cheap while N is a few thousand; the seam below
 * (`OutputLoss`) is where a sampled softmax (in-batch plus popularity-sampled negatives, as in GRU4Rec)
 * plugs in for catalogues of tens of thousands of items.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from './batches.js';
import { scoreAll, type ModelParams } from './forward.js';
import { addRepeatBonus, occurrences } from './repeat.js';

/**
 * What a loss may need of its batch besides the tensors: the targets as a JS array, and the inputs
 * and positions (time-major, `size` sessions) behind the scored rows, for the repeat bonus.
 */
export type LossBatch = Pick<Batch, 'targets' | 'inputs' | 'positions' | 'size'>;

/**
 * Maps session representations `out` [M, d] and their targets [M] to per-example losses [M].
 * `paddingMask` is [N]: a large negative number at index 0 and 0 elsewhere. `batch.targets` holds the
 * same targets as a JS array, for losses that build their candidate set on the CPU (sampled softmax)
 * without reading the tensor back.
 */
export type OutputLoss = (
  params: ModelParams,
  out: tf.Tensor2D,
  targets: tf.Tensor1D,
  paddingMask: tf.Tensor1D,
  batch?: LossBatch,
) => tf.Tensor1D;

/**
 * Softmax cross-entropy over every item but the padding one. The padding column gets a large finite
 * negative logit, not -Infinity: one-hot(0) * log p = 0 * -Infinity would be NaN.
 */
export const fullSoftmaxLoss: OutputLoss = (params, out, targets, paddingMask, batch) => {
  let logits = tf.add(scoreAll(params, out), paddingMask) as tf.Tensor2D;
  if (params.repeatBonus) {
    if (!batch) throw new Error('fullSoftmaxLoss: the repeat bonus needs the batch');
    const occ = occurrences(batch.inputs, batch.positions, batch.size);
    logits = addRepeatBonus(logits, params.repeatBonus, occ);
  }
  const logProbs = tf.logSoftmax(logits);
  const oneHot = tf.oneHot(targets, logits.shape[1]!);
  return tf.neg(tf.sum(tf.mul(oneHot, logProbs), 1)) as tf.Tensor1D;
};

/** Logit given to the padding item during training (see fullSoftmaxLoss). */
export const PADDING_LOGIT = -1e9;
