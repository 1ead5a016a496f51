/**
 * The loss and gradients of an online step through tfjs' autodiff: the model's own forward pass
 * (model/forward.ts) on the update's local table of session items, scored against them and the
 * sampled negatives (online-step-softmax.ts). Steps that train the LSTM take this path
 * (backpropagation through time); with the LSTM held it is the reference the step by hand is
 * tested against.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scoringOf } from '../protocol/manifest.js';
import {
  itemMeansAt,
  lstmStates,
  outputRows,
  project,
  type ModelParams,
} from '../model/forward.js';
import { gatherRows } from '../model/gather-rows.js';
import { matMul2d } from '../model/mat-mul.js';
import type { UpdateInputs } from './online-step-inputs.js';
import type { StepResult } from './online-step-optimiser.js';
import type { SparseStepOptions } from './online-step-options.js';
import { softmaxLoss } from './online-step-softmax.js';
import { trainedTensors, type StepWeights } from './online-step-weights.js';

/**
 * One step's loss and gradients through tfjs' autodiff: the session items' rows and biases, then
 * trainedTensors' in order.
 */
export async function autodiffGradients(
  flat: StepWeights,
  sessionItems: readonly number[],
  update: UpdateInputs,
  options: SparseStepOptions,
): Promise<StepResult> {
  const dense = trainedTensors(options).map((name) => flat.tensor(name));
  const rows = tf.tensor2d(flat.rows(sessionItems), [sessionItems.length, flat.dims.embedding]);
  const biases = tf.tensor1d(flat.biases(sessionItems));
  try {
    const loss = stepLoss(flat, update, options) as (...x: tf.Tensor[]) => tf.Scalar;
    const { value, grads } = tf.valueAndGrads(loss)([rows, biases, ...dense]);
    const [lossValue, ...gradValues] = await Promise.all([
      value.data(),
      ...grads.map((g) => g.data()),
    ]);
    value.dispose();
    grads.forEach((g) => g.dispose());
    const [gRows, gBias, ...gDense] = gradValues as Float32Array[];
    return { loss: lossValue![0]!, gradients: { rows: gRows!, bias: gBias!, dense: gDense } };
  } finally {
    [...dense, rows, biases].forEach((x) => x.dispose());
  }
}

/**
 * The step's loss as a function of the session items' rows [T, d] and biases [T], then the
 * trained dense tensors (trainedTensors' order); the held ones are the update's.
 */
function stepLoss(flat: StepWeights, update: UpdateInputs, options: SparseStepOptions) {
  const { batch, inputs, positions, lastItems } = update;
  return (table: tf.Tensor2D, bias: tf.Tensor1D, ...rest: tf.Tensor[]): tf.Scalar => {
    const lstm = options.trainLstm ? rest.slice(0, 3) : update.lstm;
    const projection =
      options.trainProjection === false ? update.projection : rest.slice(options.trainLstm ? 3 : 0);
    const p = params(flat, table, bias, lstm, projection);
    const states =
      update.lstmStates ??
      (gatherRows(lstmStates(p, inputs, batch.steps, batch.size), positions) as tf.Tensor2D);
    const means = itemMeansAt(p, inputs, batch.steps, batch.size, positions);
    const out = project(p, states, lastItems, means);
    const own: tf.Tensor2D = matMul2d(out, tf.transpose(outputRows(p, table)));
    const data = softmaxLoss(update, out, own, bias);
    // One-step windows never use the recurrent matrix; a zero term keeps its gradient defined.
    return options.trainLstm
      ? (tf.add(data, tf.mul(tf.sum(p.lstmRecurrent), 0)) as tf.Scalar)
      : (data as tf.Scalar);
  };
}

/** The model as one step sees it: the local table with the padding row first. */
function params(
  flat: StepWeights,
  table: tf.Tensor2D,
  bias: tf.Tensor1D,
  lstm: readonly tf.Tensor[],
  projection: readonly tf.Tensor[],
): ModelParams {
  const d = flat.dims.embedding;
  return {
    itemEmbedding: tf.concat([tf.zeros([1, d]), table]),
    itemBias: tf.concat([tf.zeros([1]), bias]),
    lstmKernel: lstm[0] as tf.Tensor2D,
    lstmRecurrent: lstm[1] as tf.Tensor2D,
    lstmBias: lstm[2] as tf.Tensor1D,
    projectionKernel: projection[0] as tf.Tensor2D,
    projectionBias: projection[1] as tf.Tensor1D,
    scoring: scoringOf(flat.dims),
  };
}
