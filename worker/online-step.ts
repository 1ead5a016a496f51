/**
 * The optimiser behind online learning: updates that touch only what a visitor's sessions touch.
 *
 * A dense step (model/train.ts) updates every parameter, and on a 43k-item catalogue the item table
 * is 96% of them: its proximal term and Adam moments alone cost tens of milliseconds per step on
 * wasm. Here an update gathers the rows of the items in the sessions (trainable) and of a uniform
 * sample of other items (fixed negatives: a sampled softmax over the sessions' items plus the
 * sample; the whole catalogue when it is small), differentiates those small tensors and the
 * projection only (by default the LSTM is held fixed, its states computed once per update, so
 * nothing backpropagates through time), and applies Adam, restarted per update, plus the proximal
 * pull toward the global weights in plain JS on the flat weights. Items the visitor did not touch
 * keep their weights exactly; with `items: false` (the engine's default) every item does, and only
 * the projection learns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NORM_EPSILON, scoringOf, type ModelDims, type TensorName } from '../protocol/manifest.js';
import { blocksOf, diffLocal, type LocalCopy } from './local-copy.js';
import { packBatch, toWindows, type Batch } from '../model/batches.js';
import { FlatAdam } from '../model/flat-adam.js';
import { flatOffsets, flatTensor, type FlatOffsets } from '../model/flat-weights.js';
import {
  itemMeansAt,
  l2NormalizeRows,
  lstmStates,
  outputRows,
  project,
  type ModelParams,
} from '../model/forward.js';
import { gatherRows } from '../model/gather-rows.js';
import { lstmStatesAt } from '../model/lstm-cells.js';
import { ensureGradients } from '../model/gradients.js';
import { matMul2d, matMulConstant } from '../model/mat-mul.js';
import { occurrences } from '../model/repeat.js';
import { maskedCrossEntropy } from '../model/sampled-softmax.js';
import type { TrainSession } from '../model/train.js';

/** Settings of one sparse step. */
export interface SparseStepOptions {
  readonly learningRate: number;
  /** Proximal strength: adds (mu / 2) * ||w - global||^2 over the parameters the step updates. */
  readonly mu: number;
  /** Negatives sampled uniformly per step (all other items when the catalogue is not bigger). */
  readonly negatives: number;
  /** Uniform [0, 1) stream for the negatives. */
  readonly random: () => number;
  /** Trains the LSTM too (backpropagation through time); else only the projection and item rows. */
  readonly lstm: boolean;
  /**
   * Trains the output projection (shared by every session, default true); false holds it as the
   * starting weights have it, so only the session items' rows (and the LSTM with `lstm`) move.
   */
  readonly projection?: boolean;
  /**
   * Learns only from clicks on items new to their session (default false): the engine never shows
   * a session's own items, so a return to one teaches nothing the visitor will see.
   */
  readonly newTargetsOnly?: boolean;
  /**
   * Adds log(pool / F) to the F sampled negatives' scores (pool: the items they were drawn from), so
   * the softmax over the sample estimates the one over the whole catalogue (default false: the
   * sample stands for itself, and the session's own items weigh as much as the rest together).
   */
  readonly correctNegatives?: boolean;
  /**
   * Trains the session items' own rows (default true); false holds every item row, so what an
   * update learns moves the shared tensors only and reaches similar items as much as the visitor's.
   */
  readonly items?: boolean;
}

/** The LSTM's tensors: trained with `lstm`, else constants of an update. */
const LSTM: readonly TensorName[] = ['lstm_kernel', 'lstm_recurrent', 'lstm_bias'];
/** The output projection, trained unless a step's options hold it. */
const PROJECTION: readonly TensorName[] = ['projection_kernel', 'projection_bias'];

/** What every step of one update shares: the batch and the tensors that do not change. */
interface UpdateConstants {
  readonly batch: Batch;
  /** Score column of each target: its trained row (local index - 1). */
  readonly columns: Int32Array;
  /**
   * The repeat bonus (held, as the global model has it) on the trained columns, [M, U], for a
   * model with dims.scoring.repeat; null without.
   */
  readonly repeat: Float32Array | null;
  /** What the sampled negatives' scores get added (correctNegatives), else 0. */
  readonly negativeShift: number;
  /** The negatives' rows as scored [F, d], transposed [d, F], and their biases [F]. */
  readonly fixedRows: tf.Tensor2D;
  readonly fixedT: tf.Tensor2D;
  readonly fixedBias: tf.Tensor1D;
  readonly inputs: tf.Tensor1D;
  readonly positions: tf.Tensor1D;
  readonly lastItems: tf.Tensor1D;
  readonly weights: tf.Tensor1D;
  /** The LSTM tensors as the update starts (used as they are when the LSTM is held). */
  readonly lstm: tf.Tensor[];
  /** The projection's tensors as the update starts (used as they are when it is held). */
  readonly projection: tf.Tensor[];
  /** The LSTM states at the scored positions when the LSTM is held (computed once). */
  frozen: tf.Tensor2D | null;
  /** With the LSTM held: what the JS step reads (frozenStep). */
  held: HeldConstants | null;
}

/**
 * What a step with the LSTM held needs besides UpdateConstants, in JS: everything before the
 * projection is then a constant of the update.
 */
interface HeldConstants {
  /** The negatives' biases [F]. */
  readonly fixedBias: Float32Array;
  /** Local row (0 = padding) of the item each scored state consumed last [M]. */
  readonly lastRows: Int32Array;
  /**
   * The decayed item mean of each scored prefix as (local row, weight) pairs: row m's pairs are
   * meanRows/meanWeights[meanStart[m], meanStart[m + 1]). Empty without dims.scoring.itemMean.
   */
  readonly meanStart: Int32Array;
  readonly meanRows: Int32Array;
  readonly meanWeights: Float64Array;
}

/** One step's gradients: the trained rows [T, d] and biases [T], then trainedTensors' in order. */
export interface StepGradients {
  readonly rows: Float32Array;
  readonly bias: Float32Array;
  readonly dense: Float32Array[];
}

/** A tensor's values, the tensor freed. */
async function download(tensor: tf.Tensor): Promise<Float32Array> {
  const values = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return values;
}

/** Frees an update's tensors. */
function release(update: UpdateConstants): void {
  update.frozen?.dispose();
  const { fixedRows, fixedT, fixedBias, inputs, positions, lastItems, weights } = update;
  [fixedRows, fixedT, fixedBias, inputs, positions, lastItems, weights].forEach((x) => x.dispose());
  [...update.lstm, ...update.projection].forEach((x) => x.dispose());
}

/** `batch` with a weight of 0 on every target its row's session already held. */
function withoutReturns(batch: Batch): Batch {
  const weights = batch.weights.slice();
  const occ = occurrences(batch.inputs, batch.positions, batch.size);
  occ.rows.forEach((m, e) => {
    if (occ.items[e] === batch.targets[m]) weights[m] = 0;
  });
  return { ...batch, weights };
}

/** The dense tensors a step with `options` trains (besides the session items' rows). */
function trainedTensors(options: SparseStepOptions): TensorName[] {
  return [...(options.lstm ? LSTM : []), ...(options.projection === false ? [] : PROJECTION)];
}

/** A local copy under sparse fine-tuning, anchored at the global weights it started from. */
export class SparseLearner {
  /** The fine-tuned flat weights (updated in place by every step). */
  readonly weights: Float32Array;
  private readonly adam: FlatAdam;
  private readonly offset: FlatOffsets;
  /** Blocks (local-copy.ts) where `weights` may differ from `anchor`: what the steps wrote. */
  private readonly touched: Set<number>;

  /** Starts from `start` (the local copy, or the global weights), pulled toward `anchor`. */
  constructor(
    readonly dims: ModelDims,
    readonly anchor: Float32Array,
    start: Float32Array,
  ) {
    this.weights = start.slice();
    this.adam = new FlatAdam(start.length);
    this.offset = flatOffsets(dims);
    this.touched = start === anchor ? new Set() : new Set(diffLocal(0, anchor, start).blocks);
  }

  /** The weights as a LocalCopy of global `version` (comparing only the blocks steps wrote). */
  localCopy(version: number): LocalCopy {
    return diffLocal(version, this.anchor, this.weights, this.touched);
  }

  /**
   * `steps` steps on `sessions` (model indices), with one negative sample for all of them; returns
   * the data loss before the last step (NaN when there is nothing to learn from).
   */
  async update(
    sessions: readonly TrainSession[],
    steps: number,
    options: SparseStepOptions,
  ): Promise<number> {
    if (steps < 1) return NaN;
    const prepared = await this.prepare(sessions, options);
    if (!prepared) return NaN;
    const { trained, update } = prepared;
    // The item rows the steps write: the sessions' items, or none when the rows are held.
    const rows = options.items === false ? [] : trained;
    // What this update writes: Adam starts afresh there, and the stored copy compares it.
    const written = this.ranges(rows, trainedTensors(options));
    this.adam.restart(written);
    for (const [at, length] of written) blocksOf(at, length, this.touched);
    let loss = NaN;
    try {
      for (let step = 0; step < steps; step++) {
        const { loss: value, gradients } = update.held
          ? await this.heldGradients(trained, update, update.held)
          : await this.gradients(trained, update, options);
        this.apply(rows, gradients, options);
        loss = value;
      }
    } finally {
      release(update);
    }
    return loss;
  }

  /**
   * The first step's loss and gradients of an update over `sessions` (the LSTM held), both through
   * tfjs' autodiff and by hand as steps compute them; changes nothing. For tests.
   */
  async heldGradientsBothWays(
    sessions: readonly TrainSession[],
    options: SparseStepOptions,
  ): Promise<{ loss: number; gradients: StepGradients }[] | null> {
    const prepared = await this.prepare(sessions, { ...options, lstm: false });
    if (!prepared) return null;
    const { trained, update } = prepared;
    try {
      return [
        await this.gradients(trained, update, { ...options, lstm: false }),
        await this.heldGradients(trained, update, update.held!),
      ];
    } finally {
      release(update);
    }
  }

  /** An update's trained items and constants; null when the sessions have nothing to learn. */
  private async prepare(
    sessions: readonly TrainSession[],
    options: SparseStepOptions,
  ): Promise<{ trained: number[]; update: UpdateConstants } | null> {
    const windows = toWindows(sessions, this.dims.maxSessionLength);
    if (windows.length === 0) return null;
    await ensureGradients();
    const packed = packBatch(windows);
    const batch = options.newTargetsOnly ? withoutReturns(packed) : packed;
    if (!batch.weights.some((w) => w > 0)) return null;
    // Local table: 0 = padding, then the trainable session items. The negatives are scored apart.
    const trained = [...new Set([...batch.inputs, ...batch.targets])].filter((i) => i > 0);
    const local = new Map(trained.map((item, i) => [item, i + 1]));
    const fixed = this.sampleNegatives(local, options);
    const toLocal = (items: Int32Array) =>
      Int32Array.from(items, (i) => (i === 0 ? 0 : local.get(i)!));
    const d = this.dims.embedding;
    const scoring = scoringOf(this.dims);
    const localInputs = toLocal(batch.inputs);
    // The item each scored state consumed last (the model's last-item skip, when it has one).
    const lastRows = toLocal(Int32Array.from(batch.positions, (at) => batch.inputs[at]!));
    const fixedBias = this.biases(fixed);
    const update: UpdateConstants = {
      batch,
      // Score columns: the trained rows (local index - 1), then the negatives.
      columns: Int32Array.from(toLocal(batch.targets), (i) => i - 1),
      repeat: this.repeatAddend(batch, local),
      negativeShift:
        options.correctNegatives && fixed.length > 0
          ? Math.log((this.dims.items - 1 - trained.length) / fixed.length)
          : 0,
      ...tf.tidy(() => {
        const raw = tf.tensor2d(this.rows(fixed, d), [fixed.length, d]);
        // The negatives never change within an update: normalised and transposed once.
        const fixedRows = scoring.normalize ? l2NormalizeRows(raw) : raw;
        return {
          fixedRows,
          fixedT: tf.transpose(fixedRows),
          fixedBias: tf.tensor1d(fixedBias),
          inputs: tf.tensor1d(localInputs, 'int32'),
          positions: tf.tensor1d(batch.positions, 'int32'),
          lastItems: tf.tensor1d(lastRows, 'int32'),
          weights: tf.tensor1d(batch.weights),
          lstm: LSTM.map((name) => this.tensor(name)),
          projection: PROJECTION.map((name) => this.tensor(name)),
        };
      }),
      frozen: null,
      held: null,
    };
    if (!options.lstm) {
      // A frozen LSTM: its states are constants of the update (computed once, from the weights it
      // starts with), so nothing backpropagates through time and a step is a few small products.
      // Without a gradient to keep, the recurrence runs as one product per time step and the gates
      // in JS (lstm-cells.ts): through tfjs ops it was about a third of a 4-step update at 10k items.
      const table = this.rows(trained, d);
      const embedded = new Float32Array(batch.inputs.length * d);
      localInputs.forEach((row, k) => {
        // Local row 0 is the padding, whose embedding is zero.
        if (row > 0) embedded.set(table.subarray((row - 1) * d, row * d), k * d);
      });
      const bias = this.offset.get('lstm_bias')!;
      const [kernel, recurrent] = update.lstm as [tf.Tensor2D, tf.Tensor2D];
      const states = await lstmStatesAt(
        { kernel, recurrent, bias: this.weights.subarray(bias.at, bias.at + bias.shape[0]!) },
        embedded,
        batch.steps,
        batch.size,
        batch.positions,
      );
      update.frozen = tf.tensor2d(states, [batch.positions.length, recurrent.shape[0]]);
      update.held = { fixedBias, lastRows, ...this.meanPairs(batch, localInputs) };
    }
    return { trained, update };
  }

  /** UpdateConstants.repeat for `batch` (`local`: item -> local index, trained rows from 1). */
  private repeatAddend(batch: Batch, local: ReadonlyMap<number, number>): Float32Array | null {
    if (!scoringOf(this.dims).repeat) return null;
    const at = this.offset.get('repeat_bonus')!.at;
    const occ = occurrences(batch.inputs, batch.positions, batch.size);
    const columns = local.size;
    const addend = new Float32Array(batch.targets.length * columns);
    occ.rows.forEach((m, e) => {
      addend[m * columns + local.get(occ.items[e]!)! - 1]! += this.weights[at + occ.ages[e]!]!;
    });
    return addend;
  }

  /** The model as one step sees it: the local table with the padding row first. */
  private params(
    table: tf.Tensor2D,
    bias: tf.Tensor1D,
    lstm: readonly tf.Tensor[],
    projection: readonly tf.Tensor[],
  ): ModelParams {
    const d = this.dims.embedding;
    return {
      itemEmbedding: tf.concat([tf.zeros([1, d]), table]),
      itemBias: tf.concat([tf.zeros([1]), bias]),
      lstmKernel: lstm[0] as tf.Tensor2D,
      lstmRecurrent: lstm[1] as tf.Tensor2D,
      lstmBias: lstm[2] as tf.Tensor1D,
      projectionKernel: projection[0] as tf.Tensor2D,
      projectionBias: projection[1] as tf.Tensor1D,
      scoring: scoringOf(this.dims),
    };
  }

  /** The LSTM state at every scored position of the update's batch. */
  private statesOf(p: ModelParams, { batch, inputs, positions }: UpdateConstants): tf.Tensor2D {
    return gatherRows(lstmStates(p, inputs, batch.steps, batch.size), positions) as tf.Tensor2D;
  }

  /**
   * One step's loss and gradients through tfjs' autodiff (the LSTM trained: backpropagation through
   * time). The softmax runs over the trained rows and the fixed negatives, in JS
   * (maskedCrossEntropy): wasm's exp and log-softmax are scalar code, and they were a fifth of an
   * update's kernel time.
   */
  private async gradients(
    trained: readonly number[],
    update: UpdateConstants,
    options: SparseStepOptions,
  ): Promise<{ loss: number; gradients: StepGradients }> {
    const d = this.dims.embedding;
    const { batch, inputs, positions, lastItems, weights, fixedBias, columns } = update;
    const dense = trainedTensors(options).map((name) => this.tensor(name));
    const rows = tf.tensor2d(this.rows(trained, d), [trained.length, d]);
    const biases = tf.tensor1d(this.biases(trained));
    const noHits = Array.from({ length: columns.length }, () => []);
    const correction = new Float32Array(trained.length + update.fixedT.shape[1]);
    correction.fill(update.negativeShift, trained.length);
    const loss = (table: tf.Tensor2D, bias: tf.Tensor1D, ...rest: tf.Tensor[]): tf.Scalar => {
      const lstm = options.lstm ? rest.slice(0, 3) : update.lstm;
      const held = options.projection === false;
      const p = this.params(
        table,
        bias,
        lstm,
        held ? update.projection : rest.slice(options.lstm ? 3 : 0),
      );
      const states = update.frozen ?? this.statesOf(p, update);
      const means = itemMeansAt(p, inputs, batch.steps, batch.size, positions);
      const out = project(p, states, lastItems, means);
      let own: tf.Tensor2D = matMul2d(out, tf.transpose(outputRows(p, table)));
      if (update.repeat) own = tf.add(own, tf.tensor2d(update.repeat, own.shape));
      // A catalogue the sessions cover entirely leaves no negatives to score.
      const noNegatives = update.fixedT.shape[1] === 0;
      const scores = noNegatives
        ? own
        : tf.concat([own, matMulConstant(out, update.fixedT, update.fixedRows)], 1);
      const all = noNegatives ? bias : (tf.concat([bias, fixedBias]) as tf.Tensor1D);
      const perExample = maskedCrossEntropy(scores, all, correction, noHits, columns);
      const data = tf.div(tf.sum(tf.mul(perExample, weights)), columns.length);
      // One-step windows never use the recurrent matrix; a zero term keeps its gradient defined.
      return options.lstm
        ? (tf.add(data, tf.mul(tf.sum(p.lstmRecurrent), 0)) as tf.Scalar)
        : (data as tf.Scalar);
    };
    try {
      const { value, grads } = tf.valueAndGrads(loss as (...x: tf.Tensor[]) => tf.Scalar)([
        rows,
        biases,
        ...dense,
      ]);
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
   * The same loss and gradients as `gradients` with the LSTM held, by hand: the states are
   * constants, so what remains is the projection, the session's item mean or last item, cosine
   * normalisation, the scores of the trained rows and of the negatives, and the softmax. Small
   * dense algebra in JS, plus tfjs for the two products with the negatives ([M, d] x [d, F] and its
   * transpose): through autodiff the same step was some sixty kernels of fixed cost each.
   */
  private async heldGradients(
    trained: readonly number[],
    update: UpdateConstants,
    held: HeldConstants,
  ): Promise<{ loss: number; gradients: StepGradients }> {
    const { embedding: d, hidden } = this.dims;
    const scoring = scoringOf(this.dims);
    const { batch, columns, frozen } = update;
    const m = columns.length;
    const t = trained.length;
    const f = update.fixedT.shape[1];
    const width = t + f;
    const table = this.rows(trained, d);
    const bias = this.biases(trained);
    const kernel = this.slice('projection_kernel');
    const kernelBias = this.slice('projection_bias');
    const row = (local: number) => table.subarray((local - 1) * d, local * d);
    /** The trained rows' side of a product with the negatives' side appended along `axis`. */
    const withNegatives = (own: tf.Tensor2D, negatives: tf.Tensor2D, axis: 0 | 1) =>
      f > 0 ? tf.concat([own, negatives], axis) : own;

    // u = s . P + b_P (+ the last item's row) (+ the decayed mean of the prefix's rows).
    const u = Float64Array.from(
      await download(
        tf.tidy(() =>
          tf.add(tf.matMul(frozen!, tf.tensor2d(kernel, [hidden, d])), tf.tensor1d(kernelBias)),
        ),
      ),
    );
    for (let i = 0; i < m; i++) {
      const at = i * d;
      if (scoring.lastItem) {
        const e = row(held.lastRows[i]!);
        for (let j = 0; j < d; j++) u[at + j]! += e[j]!;
      }
      for (let k = held.meanStart[i]!; k < held.meanStart[i + 1]!; k++) {
        const e = row(held.meanRows[k]!);
        const w = held.meanWeights[k]!;
        for (let j = 0; j < d; j++) u[at + j]! += w * e[j]!;
      }
    }
    // Cosine scoring: out = scale * u / |u| against rows / |row|.
    const norm = (x: ArrayLike<number>, at: number) => {
      let sq = 0;
      for (let j = 0; j < d; j++) sq += x[at + j]! ** 2;
      return Math.sqrt(sq + NORM_EPSILON);
    };
    const uNorm = new Float64Array(m).fill(1);
    const rNorm = new Float64Array(t).fill(1);
    const out = new Float32Array(m * d);
    const scored = new Float32Array(t * d);
    const scoredT = new Float32Array(d * t);
    for (let i = 0; i < m; i++) {
      if (scoring.normalize) uNorm[i] = norm(u, i * d) / scoring.scale;
      for (let j = 0; j < d; j++) out[i * d + j] = u[i * d + j]! / uNorm[i]!;
    }
    for (let r = 0; r < t; r++) {
      if (scoring.normalize) rNorm[r] = norm(table, r * d);
      for (let j = 0; j < d; j++) {
        const value = table[r * d + j]! / rNorm[r]!;
        scored[r * d + j] = value;
        scoredT[j * t + r] = value;
      }
    }

    // Logits [M, T + F]: the trained rows (with biases and the repeat bonus), then the negatives.
    const logits = Float64Array.from(
      await download(
        tf.tidy(() => {
          return tf.matMul(
            tf.tensor2d(out, [m, d]),
            withNegatives(tf.tensor2d(scoredT, [d, t]), update.fixedT, 1),
          );
        }),
      ),
    );
    for (let i = 0; i < m; i++) {
      for (let c = 0; c < width; c++) {
        logits[i * width + c]! +=
          c < t
            ? bias[c]! + (update.repeat ? update.repeat[i * t + c]! : 0)
            : held.fixedBias[c - t]! + update.negativeShift;
      }
    }

    // Weighted mean cross-entropy; its gradient (softmax - onehot) * w / M.
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

    // d out = g . [rows; negatives]; d rows (as scored) = g_T^T . out; d bias = sum of g_T.
    const dOut = Float64Array.from(
      await download(
        tf.tidy(() => {
          return tf.matMul(
            tf.tensor2d(g, [m, width]),
            withNegatives(tf.tensor2d(scored, [t, d]), update.fixedRows, 0),
          );
        }),
      ),
    );
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

    // Through the normalisations: d x = (d x_hat - x_hat (x_hat . d x_hat)) / |x|.
    const unNormalise = (dx: Float64Array, x: ArrayLike<number>, at: number, n: number) => {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += dx[at + j]! * (x[at + j]! / n);
      for (let j = 0; j < d; j++) dx[at + j] = (dx[at + j]! - (x[at + j]! / n) * dot) / n;
    };
    const gRows = new Float32Array(t * d);
    for (let r = 0; r < t; r++) {
      if (scoring.normalize) unNormalise(dScored, table, r * d, rNorm[r]!);
      for (let j = 0; j < d; j++) gRows[r * d + j] = dScored[r * d + j]!;
    }
    const dU = new Float32Array(m * d);
    const gKernelBias = new Float32Array(d);
    for (let i = 0; i < m; i++) {
      const at = i * d;
      if (scoring.normalize) {
        // out = scale * u / |u|: d u = scale * (d out - u_hat (u_hat . d out)) / |u|.
        unNormalise(dOut, u, at, uNorm[i]! * scoring.scale);
        for (let j = 0; j < d; j++) dOut[at + j]! *= scoring.scale;
      }
      for (let j = 0; j < d; j++) {
        dU[at + j] = dOut[at + j]!;
        gKernelBias[j]! += dOut[at + j]!;
      }
      const into = (local: number, w: number) => {
        for (let j = 0; j < d; j++) gRows[(local - 1) * d + j]! += w * dOut[at + j]!;
      };
      if (scoring.lastItem) into(held.lastRows[i]!, 1);
      for (let k = held.meanStart[i]!; k < held.meanStart[i + 1]!; k++) {
        into(held.meanRows[k]!, held.meanWeights[k]!);
      }
    }
    // d P = s^T . d u.
    const gKernel = await download(
      tf.tidy(() => tf.matMul(tf.transpose(frozen!), tf.tensor2d(dU, [m, d]))),
    );
    return { loss, gradients: { rows: gRows, bias: gBias, dense: [gKernel, gKernelBias] } };
  }

  /**
   * Adam (restarted per update) plus the proximal pull, on the flat weights: the dense tensors
   * trained, and the item rows in `rows` (the update's trained items in their order, gradient row r
   * to rows[r]; none when the rows are held).
   */
  private apply(
    rows: readonly number[],
    gradients: StepGradients,
    options: SparseStepOptions,
  ): void {
    const d = this.dims.embedding;
    const step = this.adam.next(options.learningRate);
    const proximal = { anchor: this.anchor, mu: options.mu };
    const { weights: w, offset } = this;
    this.adam.rows(w, offset.get('item_embedding')!.at, d, rows, gradients.rows, step, proximal);
    this.adam.rows(w, offset.get('item_bias')!.at, 1, rows, gradients.bias, step, proximal);
    trainedTensors(options).forEach((name, n) => {
      this.adam.range(w, offset.get(name)!.at, gradients.dense[n]!, step, proximal);
    });
  }

  /**
   * HeldConstants' item-mean pairs: for each scored row t*B + b, the local rows of session b's items
   * up to step t with weights decay^age / sum (prefixItemMeans' weights).
   */
  private meanPairs(
    batch: Batch,
    localInputs: Int32Array,
  ): Pick<HeldConstants, 'meanStart' | 'meanRows' | 'meanWeights'> {
    const decay = scoringOf(this.dims).itemMean;
    const count = batch.positions.length;
    const meanStart = new Int32Array(count + 1);
    const rows: number[] = [];
    const weights: number[] = [];
    if (decay !== undefined) {
      for (let i = 0; i < count; i++) {
        const position = batch.positions[i]!;
        const step = Math.floor(position / batch.size);
        const session = position % batch.size;
        let total = 0;
        for (let s = 0; s <= step; s++) total += decay ** (step - s);
        for (let s = 0; s <= step; s++) {
          rows.push(localInputs[s * batch.size + session]!);
          weights.push(decay ** (step - s) / total);
        }
        meanStart[i + 1] = rows.length;
      }
    }
    return {
      meanStart,
      meanRows: Int32Array.from(rows),
      meanWeights: Float64Array.from(weights),
    };
  }

  /** One tensor of the flat weights, as a view. */
  private slice(name: TensorName): Float32Array {
    const { at, shape } = this.offset.get(name)!;
    return this.weights.subarray(at, at + shape.reduce((a, b) => a * b, 1));
  }

  /**
   * The [start, length] ranges of the flat weights an update that trains `rows` and the `dense`
   * tensors writes. Adam restarts on them (the only moments the update reads): each update is a
   * short run of its own, as kept moments from earlier updates, several clicks old, made later
   * steps smaller and the updates measurably weaker.
   */
  private ranges(rows: readonly number[], dense: readonly TensorName[]): [number, number][] {
    const d = this.dims.embedding;
    const embedding = this.offset.get('item_embedding')!.at;
    const bias = this.offset.get('item_bias')!.at;
    return [
      ...rows.flatMap((item): [number, number][] => [
        [embedding + item * d, d],
        [bias + item, 1],
      ]),
      ...dense.map((name): [number, number] => {
        const { at, shape } = this.offset.get(name)!;
        return [at, shape.reduce((a, b) => a * b, 1)];
      }),
    ];
  }

  /** Up to `negatives` distinct items outside `taken`, uniformly; every other item if few. */
  private sampleNegatives(
    taken: ReadonlyMap<number, number>,
    options: SparseStepOptions,
  ): number[] {
    const n = this.dims.items;
    if (n - 1 - taken.size <= options.negatives) {
      return Array.from({ length: n - 1 }, (_, i) => i + 1).filter((i) => !taken.has(i));
    }
    const picked = new Set<number>();
    // Rejection sampling: the sample is small against the catalogue here, so this ends fast.
    while (picked.size < options.negatives) {
      const item = 1 + Math.floor(options.random() * (n - 1));
      if (!taken.has(item)) picked.add(item);
    }
    return [...picked];
  }

  private tensor(name: TensorName): tf.Tensor {
    return flatTensor(this.weights, this.offset, name);
  }

  private rows(items: readonly number[], d: number): Float32Array {
    const at = this.offset.get('item_embedding')!.at;
    const out = new Float32Array(items.length * d);
    items.forEach((item, r) =>
      out.set(this.weights.subarray(at + item * d, at + (item + 1) * d), r * d),
    );
    return out;
  }

  private biases(items: readonly number[]): Float32Array {
    const at = this.offset.get('item_bias')!.at;
    return Float32Array.from(items, (item) => this.weights[at + item]!);
  }
}
