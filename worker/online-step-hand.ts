/**
 * The loss and gradients of a step with the LSTM held, written out by hand: the states are
 * constants of the update, so what remains is the projection, the session's item mean or last
 * item, cosine normalisation, the scores of the session items and of the negatives, and the softmax
 * (online-step-softmax.ts). Small dense algebra in JS, plus tfjs for the products with the states
 * and the negatives: through autodiff the same step was some sixty kernels of fixed cost each.
 * Tested against tfjs' autodiff (online-step-autodiff.ts) for every scoring option.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NORM_EPSILON, scoringOf } from '../protocol/manifest.js';
import type { HandInputs } from './online-step-held-lstm.js';
import type { UpdateInputs } from './online-step-inputs.js';
import type { StepResult } from './online-step-optimiser.js';
import {
  download,
  handLogits,
  softmaxCrossEntropy,
  vectorGradient,
} from './online-step-softmax.js';
import type { StepWeights } from './online-step-weights.js';

/** A step's forward pass by hand, kept for its backward pass. */
interface HandForward {
  /** The session items' rows [T, d] and biases [T], as the step starts. */
  readonly table: Float32Array;
  readonly bias: Float32Array;
  /** The session vectors before normalisation [M, d], and their norms / scale (1 unnormalised). */
  readonly u: Float64Array;
  readonly uNorm: Float64Array;
  /** The session items' row norms (1 unnormalised). */
  readonly rNorm: Float64Array;
  /** The session vectors as scored [M, d]. */
  readonly out: Float32Array;
  /** The session items' rows as scored [T, d], and transposed [d, T]. */
  readonly scored: Float32Array;
  readonly scoredT: Float32Array;
}

/**
 * One step's loss and gradients by hand (the same as autodiff's with the LSTM held): the session
 * items' rows and biases, then the projection's kernel and bias.
 */
export async function handGradients(
  flat: StepWeights,
  sessionItems: readonly number[],
  update: UpdateInputs,
  hand: HandInputs,
): Promise<StepResult> {
  const d = flat.dims.embedding;
  const forward = await handForward(flat, sessionItems, update, hand);
  const logits = await handLogits(update, hand, forward.out, forward.scoredT, forward.bias);
  const { loss, g } = softmaxCrossEntropy(update, logits);
  const dOut = await vectorGradient(update, g, forward.scored, d);
  const { gRows, gBias } = scoredRowGradients(flat, forward, g);
  // Adds the rows' share through the session vectors (last item, item mean) to gRows.
  const { dU, gKernelBias } = sessionVectorGradients(flat, forward, hand, dOut, gRows);
  // d P = s^T . d u.
  const m = update.columns.length;
  const gKernel = await download(
    tf.tidy(() => tf.matMul(tf.transpose(update.lstmStates!), tf.tensor2d(dU, [m, d]))),
  );
  return { loss, gradients: { rows: gRows, bias: gBias, dense: [gKernel, gKernelBias] } };
}

/** The norm of x[at, at + d), kept off zero as the model's normalisation keeps it. */
function norm(x: ArrayLike<number>, at: number, d: number): number {
  let sq = 0;
  for (let j = 0; j < d; j++) sq += x[at + j]! ** 2;
  return Math.sqrt(sq + NORM_EPSILON);
}

/**
 * Back through a normalisation x_hat = x / n, in place on dx[at, at + d):
 * d x = (d x_hat - x_hat (x_hat . d x_hat)) / n.
 */
function unNormalise(dx: Float64Array, x: ArrayLike<number>, at: number, n: number, d: number) {
  let dot = 0;
  for (let j = 0; j < d; j++) dot += dx[at + j]! * (x[at + j]! / n);
  for (let j = 0; j < d; j++) dx[at + j] = (dx[at + j]! - (x[at + j]! / n) * dot) / n;
}

/** The session vectors u = s . P + b_P (+ the last item's row) (+ the decayed mean of the prefix). */
async function sessionVectors(
  flat: StepWeights,
  update: UpdateInputs,
  hand: HandInputs,
  table: Float32Array,
): Promise<Float64Array> {
  const { embedding: d, hidden } = flat.dims;
  const kernel = flat.slice('projection_kernel');
  const kernelBias = flat.slice('projection_bias');
  const u = Float64Array.from(
    await download(
      tf.tidy(() =>
        tf.add(
          tf.matMul(update.lstmStates!, tf.tensor2d(kernel, [hidden, d])),
          tf.tensor1d(kernelBias),
        ),
      ),
    ),
  );
  const row = (local: number) => table.subarray((local - 1) * d, local * d);
  for (let i = 0; i < update.columns.length; i++) {
    const at = i * d;
    if (scoringOf(flat.dims).lastItem) {
      const e = row(hand.lastRows[i]!);
      for (let j = 0; j < d; j++) u[at + j]! += e[j]!;
    }
    for (let k = hand.meanStart[i]!; k < hand.meanStart[i + 1]!; k++) {
      const e = row(hand.meanRows[k]!);
      const w = hand.meanWeights[k]!;
      for (let j = 0; j < d; j++) u[at + j]! += w * e[j]!;
    }
  }
  return u;
}

/** The forward pass; with cosine scoring out = scale * u / |u| against rows / |row|. */
async function handForward(
  flat: StepWeights,
  sessionItems: readonly number[],
  update: UpdateInputs,
  hand: HandInputs,
): Promise<HandForward> {
  const d = flat.dims.embedding;
  const scoring = scoringOf(flat.dims);
  const m = update.columns.length;
  const t = sessionItems.length;
  const table = flat.rows(sessionItems);
  const bias = flat.biases(sessionItems);
  const u = await sessionVectors(flat, update, hand, table);
  const uNorm = new Float64Array(m).fill(1);
  const rNorm = new Float64Array(t).fill(1);
  const out = new Float32Array(m * d);
  const scored = new Float32Array(t * d);
  const scoredT = new Float32Array(d * t);
  for (let i = 0; i < m; i++) {
    if (scoring.normalize) uNorm[i] = norm(u, i * d, d) / scoring.scale;
    for (let j = 0; j < d; j++) out[i * d + j] = u[i * d + j]! / uNorm[i]!;
  }
  for (let r = 0; r < t; r++) {
    if (scoring.normalize) rNorm[r] = norm(table, r * d, d);
    for (let j = 0; j < d; j++) {
      const value = table[r * d + j]! / rNorm[r]!;
      scored[r * d + j] = value;
      scoredT[j * t + r] = value;
    }
  }
  return { table, bias, u, uNorm, rNorm, out, scored, scoredT };
}

/**
 * The session items' share of the gradients through their scores: d rows (as scored) = g_T^T . out
 * back through the rows' normalisation, and d bias = the column sums of g_T.
 */
function scoredRowGradients(
  flat: StepWeights,
  forward: HandForward,
  g: Float32Array,
): { gRows: Float32Array; gBias: Float32Array } {
  const d = flat.dims.embedding;
  const { table, rNorm, out } = forward;
  const t = forward.bias.length;
  const m = out.length / d;
  const width = g.length / m;
  const dScored = new Float64Array(t * d);
  const gBias = new Float32Array(t);
  for (let i = 0; i < m; i++) {
    for (let r = 0; r < t; r++) {
      const gr = g[i * width + r]!;
      gBias[r]! += gr;
      const at = r * d;
      const from = i * d;
      for (let j = 0; j < d; j++) dScored[at + j]! += gr * out[from + j]!;
    }
  }
  const normalize = scoringOf(flat.dims).normalize;
  const gRows = new Float32Array(t * d);
  for (let r = 0; r < t; r++) {
    if (normalize) unNormalise(dScored, table, r * d, rNorm[r]!, d);
    for (let j = 0; j < d; j++) gRows[r * d + j] = dScored[r * d + j]!;
  }
  return { gRows, gBias };
}

/**
 * Back from the session vectors as scored (`dOut`, changed in place) to u: d u, the projection
 * bias' gradient, and the rows' share through the last item and the item mean, added to `gRows`.
 */
function sessionVectorGradients(
  flat: StepWeights,
  forward: HandForward,
  hand: HandInputs,
  dOut: Float64Array,
  gRows: Float32Array,
): { dU: Float32Array; gKernelBias: Float32Array } {
  const d = flat.dims.embedding;
  const scoring = scoringOf(flat.dims);
  const m = forward.out.length / d;
  const dU = new Float32Array(m * d);
  const gKernelBias = new Float32Array(d);
  for (let i = 0; i < m; i++) {
    const at = i * d;
    if (scoring.normalize) {
      // out = scale * u / |u|: d u = scale * (d out - u_hat (u_hat . d out)) / |u|.
      unNormalise(dOut, forward.u, at, forward.uNorm[i]! * scoring.scale, d);
      for (let j = 0; j < d; j++) dOut[at + j]! *= scoring.scale;
    }
    for (let j = 0; j < d; j++) {
      dU[at + j] = dOut[at + j]!;
      gKernelBias[j]! += dOut[at + j]!;
    }
    const into = (local: number, w: number) => {
      for (let j = 0; j < d; j++) gRows[(local - 1) * d + j]! += w * dOut[at + j]!;
    };
    if (scoring.lastItem) into(hand.lastRows[i]!, 1);
    for (let k = hand.meanStart[i]!; k < hand.meanStart[i + 1]!; k++) {
      into(hand.meanRows[k]!, hand.meanWeights[k]!);
    }
  }
  return { dU, gKernelBias };
}
