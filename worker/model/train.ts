/**
 * Mini-batch training of a SessionModel: every prefix of every session predicts its next item in one
 * pass over the batch, full-catalogue softmax cross-entropy, Adam, seeded shuffling. Used by the Node
 * trainer (global model) and by the worker (on-device fine-tuning with a proximal pull).
 */
import * as tf from '@tensorflow/tfjs-core';
import { HearthError } from '../../protocol/errors.js';
import { splitFlat, tensorLayout, TENSOR_NAMES } from '../../protocol/manifest.js';
import { packBatch, planBatches, toWindows, type Batch } from './batches.js';
import { lstmStates, project } from './forward.js';
import { gatherRows } from './gather-rows.js';
import { ensureGradients } from './gradients.js';
import { fullSoftmaxLoss, PADDING_LOGIT, type OutputLoss } from './loss.js';
import { mulberry32 } from './prng.js';
import type { SessionModel } from './session-model.js';

/** One training session: model indices 1..N-1 in click order, optionally a sample weight per item. */
export interface TrainSession {
  readonly items: readonly number[];
  /** Per-item sample weight (default 1); the example predicting item t uses weights[t]. */
  readonly weights?: readonly number[];
}

/** What trainSessions does and reports. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Stop after this many optimiser steps. */
  maxSteps?: number;
  /** Adds (mu/2) * ||w - anchor||^2: keeps on-device fine-tuning near the global model. */
  proximal?: { anchor: Float32Array; mu: number };
  /** Called after every step; `loss` is that step's objective (proximal term included). */
  onStep?: (info: { step: number; epoch: number; loss: number; examples: number }) => void;
}

/** What a training run did. `meanLoss` averages step losses weighted by their example counts. */
export interface TrainResult {
  steps: number;
  examples: number;
  lastLoss: number;
  meanLoss: number;
}

/** How long the loop may hold the thread before it yields (ms): lets a worker answer messages. */
const YIELD_EVERY_MS = 50;

/**
 * Trains `model` in place. Sessions longer than maxSessionLength are split into windows; each batch is
 * right-padded only to its longest window and padded positions are never targets. The loss is
 * sum(weight * cross-entropy) / examples, so lightly weighted interactions (views) pull less.
 */
export async function trainSessions(
  model: SessionModel,
  sessions: readonly TrainSession[],
  options: TrainOptions,
  outputLoss: OutputLoss = fullSoftmaxLoss,
): Promise<TrainResult> {
  const { epochs, batchSize, learningRate, seed, maxSteps, proximal, onStep } = options;
  if (!(batchSize >= 1) || !(learningRate > 0) || !(epochs >= 0)) {
    throw new RangeError('trainSessions: batchSize >= 1, learningRate > 0 and epochs >= 0 needed');
  }
  await ensureGradients();
  const windows = toWindows(sessions, model.dims.maxSessionLength);
  const rng = mulberry32(seed);
  const variables = model.variables;
  const optimizer = tf.train.adam(learningRate);
  const mask = new Float32Array(model.dims.items);
  mask[0] = PADDING_LOGIT;
  const paddingMask = tf.tensor1d(mask);
  const anchors = proximal ? anchorTensors(model, proximal.anchor) : null;

  let steps = 0;
  let examples = 0;
  let lastLoss = NaN;
  let weightedLoss = 0;
  let lastYield = Date.now();
  try {
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      for (const windowsOfBatch of planBatches(windows, batchSize, rng)) {
        if (maxSteps !== undefined && steps >= maxSteps) break outer;
        const batch = packBatch(windowsOfBatch);
        const cost = optimizer.minimize(
          () => {
            const data = batchLoss(model, batch, paddingMask, outputLoss);
            if (!anchors || !proximal) return data;
            const terms = variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]!)));
            return tf.add(data, tf.mul(proximal.mu / 2, tf.addN(terms))) as tf.Scalar;
          },
          true,
          variables,
        );
        lastLoss = (await cost!.data())[0]!;
        cost!.dispose();
        steps++;
        examples += batch.targets.length;
        weightedLoss += lastLoss * batch.targets.length;
        onStep?.({ step: steps, epoch, loss: lastLoss, examples: batch.targets.length });
        if (Date.now() - lastYield > YIELD_EVERY_MS) {
          // wasm and cpu kernels run synchronously: without a macrotask break a worker could not
          // answer recommendation requests, nor Node redraw its progress bar, until training ends.
          await new Promise((resolve) => setTimeout(resolve, 0));
          lastYield = Date.now();
        }
      }
    }
  } finally {
    optimizer.dispose();
    paddingMask.dispose();
    anchors?.forEach((t) => t.dispose());
  }
  return { steps, examples, lastLoss, meanLoss: examples > 0 ? weightedLoss / examples : NaN };
}

/**
 * The weighted data loss of one batch (a scalar); creates tensors, so call it inside a tidy.
 * `paddingMask` is [N] with PADDING_LOGIT at index 0. Exported for gradient checks.
 */
export function batchLoss(
  model: SessionModel,
  batch: Batch,
  paddingMask: tf.Tensor1D,
  outputLoss: OutputLoss = fullSoftmaxLoss,
): tf.Scalar {
  const p = model.params;
  const inputs = tf.tensor1d(batch.inputs, 'int32');
  const states = lstmStates(p, inputs, batch.steps, batch.size);
  // Only rows with a real target go through the output layer: padding costs no softmax.
  const picked = gatherRows(states, tf.tensor1d(batch.positions, 'int32')) as tf.Tensor2D;
  const perExample = outputLoss(
    p,
    project(p, picked),
    tf.tensor1d(batch.targets, 'int32'),
    paddingMask,
  );
  const weighted = tf.sum(tf.mul(perExample, tf.tensor1d(batch.weights)));
  return tf.div(weighted, batch.targets.length);
}

function anchorTensors(model: SessionModel, anchor: Float32Array): tf.Tensor[] {
  let parts;
  try {
    parts = splitFlat(anchor, tensorLayout(model.dims));
  } catch {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      'proximal anchor does not match the model layout',
    );
  }
  // slice(): the cpu backend would otherwise keep a view of the caller's array.
  return TENSOR_NAMES.map((name, i) =>
    tf.tensor(parts.get(name)!.slice(), model.variables[i]!.shape),
  );
}
