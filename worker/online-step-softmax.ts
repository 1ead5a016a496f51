/**
 * The softmax of an online step: every session vector scored against the sessions' own items
 * (their rows, biases and repeat bonus) and the update's sampled negatives, then the weighted mean
 * cross-entropy of each target. Two forms: tfjs ops for the autodiff step, and plain JS with its
 * gradient written out for the step by hand, with tfjs only for the products with the negatives.
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMulConstant } from '../model/mat-mul.js';
import { maskedCrossEntropy } from '../model/sampled-softmax.js';
import type { HandInputs } from './online-step-held-lstm.js';
import type { UpdateInputs } from './online-step-inputs.js';

/** A tensor's values, the tensor freed. */
export async function download(tensor: tf.Tensor): Promise<Float32Array> {
  const values = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return values;
}

/** The session items' side of a product with the negatives' side appended along `axis`. */
function withNegatives(own: tf.Tensor2D, negatives: tf.Tensor2D, axis: 0 | 1): tf.Tensor2D {
  return negatives.shape[axis] > 0 ? tf.concat([own, negatives], axis) : own;
}

/**
 * The weighted mean loss over the update's targets as tfjs ops (for autodiff): `out` [M, d] the
 * session vectors, `own` [M, T] their scores on the session items (repeat bonus not yet added),
 * `bias` [T] those items' biases. The softmax itself runs in JS (maskedCrossEntropy): wasm's exp
 * and log-softmax are scalar code, and they were a fifth of an update's kernel time.
 */
export function softmaxLoss(
  update: UpdateInputs,
  out: tf.Tensor2D,
  own: tf.Tensor2D,
  bias: tf.Tensor1D,
): tf.Tensor {
  const { columns, negativeRows, negativeRowsT, negativeBias, weights } = update;
  const t = bias.shape[0];
  const correction = new Float32Array(t + negativeRowsT.shape[1]);
  correction.fill(update.negativeShift, t);
  const noHits = Array.from({ length: columns.length }, () => []);
  const withBonus: tf.Tensor2D = update.repeat
    ? tf.add(own, tf.tensor2d(update.repeat, own.shape))
    : own;
  // A catalogue the sessions cover entirely leaves no negatives to score.
  const noNegatives = negativeRowsT.shape[1] === 0;
  const scores = noNegatives
    ? withBonus
    : tf.concat([withBonus, matMulConstant(out, negativeRowsT, negativeRows)], 1);
  const all = noNegatives ? bias : (tf.concat([bias, negativeBias]) as tf.Tensor1D);
  const perExample = maskedCrossEntropy(scores, all, correction, noHits, columns);
  return tf.div(tf.sum(tf.mul(perExample, weights)), columns.length);
}

/**
 * Logits [M, T + F] in JS: session vectors `out` [M, d] against the session items' rows as scored
 * (`scoredT` [d, T]) with their biases `bias` [T] and the repeat bonus, then the negatives.
 */
export async function handLogits(
  update: UpdateInputs,
  hand: HandInputs,
  out: Float32Array,
  scoredT: Float32Array,
  bias: Float32Array,
): Promise<Float64Array> {
  const m = update.columns.length;
  const t = bias.length;
  const d = out.length / m;
  const width = t + update.negativeRowsT.shape[1];
  const logits = Float64Array.from(
    await download(
      tf.tidy(() =>
        tf.matMul(
          tf.tensor2d(out, [m, d]),
          withNegatives(tf.tensor2d(scoredT, [d, t]), update.negativeRowsT, 1),
        ),
      ),
    ),
  );
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < width; c++) {
      logits[i * width + c]! +=
        c < t
          ? bias[c]! + (update.repeat ? update.repeat[i * t + c]! : 0)
          : hand.negativeBias[c - t]! + update.negativeShift;
    }
  }
  return logits;
}

/**
 * The weighted mean cross-entropy of `logits` [M, width] at the update's target columns, and its
 * gradient with respect to them: (softmax - onehot) * w / M.
 */
export function softmaxCrossEntropy(
  update: UpdateInputs,
  logits: Float64Array,
): { loss: number; g: Float32Array } {
  const { columns, batch } = update;
  const m = columns.length;
  const width = logits.length / m;
  let loss = 0;
  const g = new Float32Array(m * width);
  for (let i = 0; i < m; i++) {
    const at = i * width;
    let max = -Infinity;
    for (let c = 0; c < width; c++) if (logits[at + c]! > max) max = logits[at + c]!;
    const target = columns[i]!;
    let sum = 0;
    for (let c = 0; c < width; c++) sum += Math.exp(logits[at + c]! - max);
    const weight = batch.weights[i]! / m;
    loss += weight * (max + Math.log(sum) - logits[at + target]!);
    const scale = weight / sum;
    for (let c = 0; c < width; c++) g[at + c] = Math.exp(logits[at + c]! - max) * scale;
    g[at + target]! -= weight;
  }
  return { loss, g };
}

/**
 * The gradient of the loss with respect to the session vectors, [M, d]: d out = g . [rows;
 * negatives], from the logits' gradient `g` and the session items' rows as scored `scored` [T, d].
 */
export async function vectorGradient(
  update: UpdateInputs,
  g: Float32Array,
  scored: Float32Array,
  d: number,
): Promise<Float64Array> {
  const m = update.columns.length;
  const t = scored.length / d;
  return Float64Array.from(
    await download(
      tf.tidy(() =>
        tf.matMul(
          tf.tensor2d(g, [m, g.length / m]),
          withNegatives(tf.tensor2d(scored, [t, d]), update.negativeRows, 0),
        ),
      ),
    ),
  );
}
