/**
 * Mini-batch training of a SessionModel: every prefix of every session predicts its next item in one
 * pass over the batch, full-catalogue or sampled softmax cross-entropy, Adam, seeded shuffling,
 * optional early stopping on a validation score, and exact checkpoint/resume. Used by the Node
 * trainer (global model) and by the worker (on-device fine-tuning with a proximal pull).
 */
import * as tf from '@tensorflow/tfjs-core';
import { HearthError } from '../protocol/errors.js';
import { splitFlat, tensorLayout } from '../protocol/manifest.js';
import { batchesPerEpoch, packBatch, planBatches, toWindows, type Batch } from './batches.js';
import { itemMeansAt, lstmStates, project } from './forward.js';
import { gatherRows } from './gather-rows.js';
import { ensureGradients } from './gradients.js';
import { Adam, type AdamState } from './adam.js';
import { fullSoftmaxLoss, PADDING_LOGIT, type OutputLoss } from './loss.js';
import { mulberry32, seededRng } from '../protocol/prng.js';
import {
  DEFAULT_SAMPLED_SOFTMAX,
  NegativeSampler,
  sampledSoftmaxLoss,
  type SampledSoftmaxConfig,
} from './sampled-softmax.js';
import type { SessionModel } from './session-model.js';

/** One training session: model indices 1..N-1 in click order, optionally a sample weight per item. */
export interface TrainSession {
  readonly items: readonly number[];
  /** Per-item sample weight (default 1); the example predicting item t uses weights[t]. */
  readonly weights?: readonly number[];
}

/** Which output loss trains the model; 'auto' picks sampled softmax above SAMPLED_SOFTMAX_MIN_ITEMS. */
export type LossKind = 'auto' | 'full' | 'sampled';

/**
 * Catalogue size above which 'auto' switches to sampled softmax: below it the full [M, N] softmax is
 * exact and still cheap (YOOCHOOSE 100k, N = 2,934); above it (Diginetica, N = 43,098) it dominates the
 * step time.
 */
export const SAMPLED_SOFTMAX_MIN_ITEMS = 20_000;

/** What trainSessions does and reports. */
export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Stop after this many optimiser steps (counted from the start of the run, resumed steps included). */
  maxSteps?: number;
  /** Adds (mu/2) * ||w - anchor||^2: keeps on-device fine-tuning near the global model. */
  proximal?: { anchor: Float32Array; mu: number };
  /** Called after every step; `loss` is that step's objective (proximal term included). */
  onStep?: (info: { step: number; epoch: number; loss: number; examples: number }) => void;
  /** Output loss (default 'auto'); ignored when an explicit OutputLoss is passed to trainSessions. */
  loss?: LossKind;
  /** Sampled-softmax settings (defaults: DEFAULT_SAMPLED_SOFTMAX). */
  sampled?: Partial<SampledSoftmaxConfig>;
  /** Item counts [N] for negative sampling (default: counted from `sessions`). */
  popularity?: ArrayLike<number>;
  /**
   * Early stopping: scores the model after every epoch (higher is better, e.g. HR@20 + MRR@20 on a
   * validation split carved from the training data). Training stops after `patience` epochs without
   * improvement, and the model ends holding the best-scoring weights.
   */
  validate?: (model: SessionModel) => Promise<number>;
  /** Epochs without improvement before stopping (default 2). */
  patience?: number;
  /** Emits a checkpoint every this many steps, besides the one at the end of every epoch. */
  checkpointEvery?: number;
  /** Receives checkpoints (end of every epoch, every checkpointEvery steps, and when maxSteps stops). */
  onCheckpoint?: (checkpoint: TrainCheckpoint) => void | Promise<void>;
  /** Continues a run from one of its checkpoints; the model must already hold checkpoint.weights. */
  resume?: TrainCheckpoint;
  /**
   * Dropout rate on the input embeddings and the final LSTM states during training (default 0).
   * Training only: inference is unchanged.
   */
  dropout?: number;
  /** Learning-rate schedule over the planned steps (default 'constant'). */
  schedule?: 'constant' | 'linear';
  /** Called after every epoch with its mean loss and validation score. */
  onEpoch?: (info: { epoch: number; meanLoss: number; validation?: number; best: boolean }) => void;
}

/**
 * Everything needed to continue a run bit-exactly: weights, Adam moments, the position in the data
 * (epoch, batch within it, the shuffle RNG state the epoch's batch plan was drawn from), the negative
 * sampler's RNG state, the loss accumulators and the early-stopping record.
 */
export interface TrainCheckpoint {
  /** Optimiser steps done. */
  readonly step: number;
  /** The epoch to continue (0-based) and how many of its batches are done. */
  readonly epoch: number;
  readonly batchInEpoch: number;
  /** Shuffle RNG state before `epoch`'s batch plan was drawn. */
  readonly epochRngState: number;
  /** Negative sampler RNG state (0 when the loss samples nothing). */
  readonly samplerRngState: number;
  readonly weights: Float32Array;
  readonly adam: AdamState;
  readonly examples: number;
  readonly weightedLoss: number;
  readonly epochExamples: number;
  readonly epochWeightedLoss: number;
  readonly lastLoss: number;
  /** Validation score after each finished epoch. */
  readonly validation: readonly number[];
  /** Best-scoring weights so far and their epoch (null without validation). */
  readonly bestWeights: Float32Array | null;
  readonly bestEpoch: number;
  readonly badEpochs: number;
}

/** What a training run did. `meanLoss` averages step losses weighted by their example counts. */
export interface TrainResult {
  steps: number;
  examples: number;
  lastLoss: number;
  meanLoss: number;
  /** Epochs finished (an epoch cut by maxSteps does not count). */
  epochsDone: number;
  /** Validation score after each finished epoch (empty without `validate`). */
  validation: number[];
  /** 0-based epoch whose weights the model holds at the end (-1 without validation). */
  bestEpoch: number;
  /** True when early stopping ended the run. */
  stoppedEarly: boolean;
}

/** How long the loop may hold the thread before it yields (ms): lets a worker answer messages. */
const YIELD_EVERY_MS = 50;

/** Picks the output loss an options object asks for. */
export function chooseOutputLoss(
  items: number,
  sessions: readonly TrainSession[],
  options: Pick<TrainOptions, 'loss' | 'sampled' | 'popularity' | 'seed'>,
): { loss: OutputLoss; sampler: NegativeSampler | null } {
  const kind = options.loss ?? 'auto';
  const sampled = kind === 'sampled' || (kind === 'auto' && items > SAMPLED_SOFTMAX_MIN_ITEMS);
  if (!sampled) return { loss: fullSoftmaxLoss, sampler: null };
  const config = { ...DEFAULT_SAMPLED_SOFTMAX, ...options.sampled };
  let counts = options.popularity;
  if (!counts) {
    const c = new Float64Array(items);
    for (const s of sessions) for (const item of s.items) c[item]!++;
    counts = c;
  }
  // A seed stream of its own, so switching the loss does not change the batch order.
  const sampler = new NegativeSampler(counts, config.alpha, (options.seed ^ 0x5bd1e995) >>> 0);
  return { loss: sampledSoftmaxLoss(sampler, config), sampler };
}

/**
 * Trains `model` in place. Sessions longer than maxSessionLength are split into windows; each batch is
 * right-padded only to its longest window and padded positions are never targets. The loss is
 * sum(weight * cross-entropy) / examples, so lightly weighted interactions (views) pull less.
 * `outputLoss`, when given, overrides options.loss.
 */
export async function trainSessions(
  model: SessionModel,
  sessions: readonly TrainSession[],
  options: TrainOptions,
  outputLoss?: OutputLoss,
): Promise<TrainResult> {
  const { epochs, batchSize, learningRate, seed, maxSteps, proximal, onStep, resume } = options;
  if (!(batchSize >= 1) || !(learningRate > 0) || !(epochs >= 0)) {
    throw new RangeError('trainSessions: batchSize >= 1, learningRate > 0 and epochs >= 0 needed');
  }
  await ensureGradients();
  const windows = toWindows(sessions, model.dims.maxSessionLength);
  const chosen = outputLoss
    ? { loss: outputLoss, sampler: null }
    : chooseOutputLoss(model.dims.items, sessions, options);
  const rng = seededRng(resume ? resume.epochRngState : seed);
  if (resume && chosen.sampler) chosen.sampler.state = resume.samplerRngState;
  const variables = model.variables;
  const optimizer = new Adam(variables, learningRate);
  if (resume) optimizer.setState(resume.adam);
  const mask = new Float32Array(model.dims.items);
  mask[0] = PADDING_LOGIT;
  const paddingMask = tf.tensor1d(mask);
  const anchors = proximal ? anchorTensors(model, proximal.anchor) : null;
  const patience = options.patience ?? 2;

  let steps = resume?.step ?? 0;
  let examples = resume?.examples ?? 0;
  let lastLoss = resume?.lastLoss ?? NaN;
  let weightedLoss = resume?.weightedLoss ?? 0;
  let epochExamples = resume?.epochExamples ?? 0;
  let epochWeightedLoss = resume?.epochWeightedLoss ?? 0;
  const validation = [...(resume?.validation ?? [])];
  let bestWeights = resume?.bestWeights ?? null;
  let bestEpoch = resume?.bestEpoch ?? -1;
  let badEpochs = resume?.badEpochs ?? 0;
  let stoppedEarly = false;
  // True while the model's weights are the best-validated ones (after a best epoch, before any step).
  let holdsBest = false;
  let lastYield = Date.now();
  const checkpoint = async (epoch: number, batchInEpoch: number, epochRngState: number) => {
    if (!options.onCheckpoint) return; // reading weights and moments back costs a sync per tensor
    await options.onCheckpoint({
      step: steps,
      epoch,
      batchInEpoch,
      epochRngState,
      samplerRngState: chosen.sampler?.state ?? 0,
      weights: model.toFlat(),
      adam: optimizer.getState(),
      examples,
      weightedLoss,
      epochExamples,
      epochWeightedLoss,
      lastLoss,
      validation: [...validation],
      bestWeights: bestWeights ? bestWeights.slice() : null,
      bestEpoch,
      badEpochs,
    });
  };
  const objective = (batch: Batch) => (): tf.Scalar => {
    // The dropout stream is a pure function of (seed, step), so a resumed run draws the same masks.
    const dropout = options.dropout
      ? { rate: options.dropout, seed: (Math.imul(seed ^ 0x27d4eb2f, 0x9e3779b1) + steps) >>> 0 }
      : undefined;
    const data = batchLoss(model, batch, paddingMask, chosen.loss, dropout);
    if (!anchors || !proximal) return data;
    const terms = variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]!)));
    return tf.add(data, tf.mul(proximal.mu / 2, tf.addN(terms))) as tf.Scalar;
  };

  // The schedule spans the planned epochs, not maxSteps: an interrupted run (maxSteps) and its resumed
  // continuation must see the same learning rate at every step.
  const totalSteps = batchesPerEpoch(windows.length, batchSize) * epochs;
  let epoch = resume?.epoch ?? 0;
  try {
    outer: for (; epoch < epochs; epoch++) {
      if (options.validate && badEpochs >= patience) {
        stoppedEarly = true;
        break;
      }
      const epochRngState = rng.state();
      const plan = planBatches(windows, batchSize, rng);
      const first = resume && epoch === resume.epoch ? resume.batchInEpoch : 0;
      for (let b = first; b < plan.length; b++) {
        if (maxSteps !== undefined && steps >= maxSteps) {
          if (steps > (resume?.step ?? 0)) await checkpoint(epoch, b, epochRngState);
          break outer;
        }
        const batch = packBatch(plan[b]!);
        const { value, grads } = tf.variableGrads(objective(batch), variables);
        optimizer.apply(
          variables.map((v) => grads[v.name]),
          learningRateFactor(options.schedule ?? 'constant', steps, totalSteps),
        );
        Object.values(grads).forEach((g) => g.dispose());
        lastLoss = (await value.data())[0]!;
        value.dispose();
        steps++;
        holdsBest = false;
        examples += batch.targets.length;
        weightedLoss += lastLoss * batch.targets.length;
        epochExamples += batch.targets.length;
        epochWeightedLoss += lastLoss * batch.targets.length;
        onStep?.({ step: steps, epoch, loss: lastLoss, examples: batch.targets.length });
        if (
          options.checkpointEvery &&
          steps % options.checkpointEvery === 0 &&
          b + 1 < plan.length
        ) {
          await checkpoint(epoch, b + 1, epochRngState);
        }
        if (Date.now() - lastYield > YIELD_EVERY_MS) {
          // wasm and cpu kernels run synchronously: without a macrotask break a worker could not
          // answer recommendation requests, nor Node redraw its progress bar, until training ends.
          await new Promise((resolve) => setTimeout(resolve, 0));
          lastYield = Date.now();
        }
      }
      let score: number | undefined;
      let best = false;
      if (options.validate) {
        score = await options.validate(model);
        validation.push(score);
        best = bestEpoch < 0 || score > validation[bestEpoch]!;
        if (best) {
          bestEpoch = epoch;
          bestWeights = model.toFlat();
          holdsBest = true;
          badEpochs = 0;
        } else {
          badEpochs++;
        }
      }
      const meanLoss = epochExamples > 0 ? epochWeightedLoss / epochExamples : NaN;
      options.onEpoch?.({ epoch, meanLoss, validation: score, best });
      epochExamples = 0;
      epochWeightedLoss = 0;
      await checkpoint(epoch + 1, 0, rng.state());
    }
    if (bestWeights && !holdsBest) model.setFromFlat(bestWeights);
  } finally {
    optimizer.dispose();
    paddingMask.dispose();
    anchors?.forEach((t) => t.dispose());
  }
  return {
    steps,
    examples,
    lastLoss,
    meanLoss: examples > 0 ? weightedLoss / examples : NaN,
    epochsDone: validation.length > 0 ? validation.length : Math.min(epoch, epochs),
    validation,
    bestEpoch,
    stoppedEarly,
  };
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
  dropout?: { rate: number; seed: number },
): tf.Scalar {
  const p = model.params;
  const inputs = tf.tensor1d(batch.inputs, 'int32');
  const rate = dropout?.rate ?? 0;
  const rng = rate > 0 ? mulberry32(dropout!.seed) : null;
  const inputMask = rng
    ? dropoutMask(batch.inputs.length, p.itemEmbedding.shape[1], rate, rng)
    : undefined;
  const states = lstmStates(p, inputs, batch.steps, batch.size, inputMask);
  // Only rows with a real target go through the output layer: padding costs no softmax.
  const positions = tf.tensor1d(batch.positions, 'int32');
  let picked = gatherRows(states, positions) as tf.Tensor2D;
  if (rng) {
    picked = tf.mul(picked, dropoutMask(batch.positions.length, picked.shape[1], rate, rng));
  }
  const lastItems = p.scoring.lastItem
    ? tf.tensor1d(
        batch.positions.map((at) => batch.inputs[at]!),
        'int32',
      )
    : undefined;
  const perExample = outputLoss(
    p,
    project(p, picked, lastItems, itemMeansAt(p, inputs, batch.steps, batch.size, positions)),
    tf.tensor1d(batch.targets, 'int32'),
    paddingMask,
    batch,
  );
  const weighted = tf.sum(tf.mul(perExample, tf.tensor1d(batch.weights)));
  return tf.div(weighted, batch.targets.length);
}

/**
 * Inverted-dropout mask [rows, cols] (Srivastava et al. 2014): entries 0 with probability `rate`, else
 * 1 / (1 - rate), so inference needs no rescaling and the forward maths stay those of
 * reference-forward.ts. Drawn in JS from a seeded stream (not tf.dropout, whose randomness differs per
 * backend and cannot be checkpointed).
 */
function dropoutMask(rows: number, cols: number, rate: number, rng: () => number): tf.Tensor2D {
  const keep = 1 / (1 - rate);
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng() < rate ? 0 : keep;
  return tf.tensor2d(values, [rows, cols]);
}

/**
 * Learning-rate multiplier at `step` of `total`: constant, or linear decay to 10% (a decaying step size
 * is the usual cure for late-epoch overfitting on small session logs; Smith 2017 / Loshchilov & Hutter
 * 2017 show decayed schedules beating constant ones for Adam-trained nets).
 */
export function learningRateFactor(schedule: 'constant' | 'linear', step: number, total: number) {
  if (schedule === 'constant' || total <= 0) return 1;
  return Math.max(0.1, 1 - (0.9 * step) / total);
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
  return tensorLayout(model.dims).map((spec) =>
    tf.tensor(parts.get(spec.name)!.slice(), [...spec.shape]),
  );
}
