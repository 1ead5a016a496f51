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
 * keep their weights exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { scoringOf, type ModelDims, type TensorName } from '../protocol/manifest.js';
import { blocksOf, diffLocal, type LocalCopy } from './local-copy.js';
import { packBatch, toWindows, type Batch } from './model/batches.js';
import { FlatAdam } from './model/flat-adam.js';
import { flatOffsets, flatTensor, type FlatOffsets } from './model/flat-weights.js';
import {
  itemMeansAt,
  l2NormalizeRows,
  lstmStates,
  outputRows,
  project,
  type ModelParams,
} from './model/forward.js';
import { gatherRows } from './model/gather-rows.js';
import { lstmStatesAt } from './model/lstm-cells.js';
import { ensureGradients } from './model/gradients.js';
import { matMul2d, matMulConstant } from './model/mat-mul.js';
import { occurrences } from './model/repeat.js';
import { maskedCrossEntropy } from './model/sampled-softmax.js';
import type { TrainSession } from './model/train.js';

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
    const windows = toWindows(sessions, this.dims.maxSessionLength);
    if (windows.length === 0 || steps < 1) return NaN;
    await ensureGradients();
    const packed = packBatch(windows);
    const batch = options.newTargetsOnly ? withoutReturns(packed) : packed;
    if (!batch.weights.some((w) => w > 0)) return NaN;
    // Local table: 0 = padding, then the trainable session items. The negatives are scored apart.
    const trained = [...new Set([...batch.inputs, ...batch.targets])].filter((i) => i > 0);
    const local = new Map(trained.map((item, i) => [item, i + 1]));
    const fixed = this.sampleNegatives(local, options);
    const toLocal = (items: Int32Array) =>
      Int32Array.from(items, (i) => (i === 0 ? 0 : local.get(i)!));
    const d = this.dims.embedding;
    const scoring = scoringOf(this.dims);
    const update: UpdateConstants = {
      batch,
      // Score columns: the trained rows (local index - 1), then the negatives.
      columns: Int32Array.from(toLocal(batch.targets), (i) => i - 1),
      repeat: this.repeatAddend(batch, local),
      ...tf.tidy(() => {
        const raw = tf.tensor2d(this.rows(fixed, d), [fixed.length, d]);
        // The negatives never change within an update: normalised and transposed once.
        const fixedRows = scoring.normalize ? l2NormalizeRows(raw) : raw;
        return {
          fixedRows,
          fixedT: tf.transpose(fixedRows),
          fixedBias: tf.tensor1d(this.biases(fixed)),
          inputs: tf.tensor1d(toLocal(batch.inputs), 'int32'),
          positions: tf.tensor1d(batch.positions, 'int32'),
          // The item each scored state consumed last (the model's last-item skip, when it has one).
          lastItems: tf.tensor1d(
            toLocal(Int32Array.from(batch.positions, (at) => batch.inputs[at]!)),
            'int32',
          ),
          weights: tf.tensor1d(batch.weights),
          lstm: LSTM.map((name) => this.tensor(name)),
          projection: PROJECTION.map((name) => this.tensor(name)),
        };
      }),
      frozen: null,
    };
    if (!options.lstm) {
      // A frozen LSTM: its states are constants of the update (computed once, from the weights it
      // starts with), so nothing backpropagates through time and a step is a few small products.
      // Without a gradient to keep, the recurrence runs as one product per time step and the gates
      // in JS (lstm-cells.ts): through tfjs ops it was about a third of a 4-step update at 10k items.
      const table = this.rows(trained, d);
      const embedded = new Float32Array(batch.inputs.length * d);
      toLocal(batch.inputs).forEach((row, k) => {
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
    }
    // What this update writes: Adam starts afresh there, and the stored copy compares it.
    const written = this.ranges(trained, trainedTensors(options));
    this.adam.restart(written);
    for (const [at, length] of written) blocksOf(at, length, this.touched);
    let loss = NaN;
    try {
      for (let step = 0; step < steps; step++) loss = await this.step(trained, update, options);
    } finally {
      update.frozen?.dispose();
      const { fixedRows, fixedT, fixedBias, inputs, positions, lastItems, weights } = update;
      [fixedRows, fixedT, fixedBias, inputs, positions, lastItems, weights].forEach((x) =>
        x.dispose(),
      );
      [...update.lstm, ...update.projection].forEach((x) => x.dispose());
    }
    return loss;
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
   * One step: gradients of the small tensors, then Adam on the flat weights. The softmax runs over
   * the trained rows and the fixed negatives, in JS (maskedCrossEntropy): wasm's exp and
   * log-softmax are scalar code, and they were a fifth of an update's kernel time.
   */
  private async step(
    trained: readonly number[],
    update: UpdateConstants,
    options: SparseStepOptions,
  ): Promise<number> {
    const d = this.dims.embedding;
    const { batch, inputs, positions, lastItems, weights, fixedBias, columns } = update;
    const trainedNames = trainedTensors(options);
    const dense = trainedNames.map((name) => this.tensor(name));
    const rows = tf.tensor2d(this.rows(trained, d), [trained.length, d]);
    const biases = tf.tensor1d(this.biases(trained));
    const noHits = Array.from({ length: columns.length }, () => []);
    const noCorrection = new Float32Array(trained.length + update.fixedT.shape[1]);
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
      const perExample = maskedCrossEntropy(scores, all, noCorrection, noHits, columns);
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
      const step = this.adam.next(options.learningRate);
      const [gRows, gBias, ...gDense] = gradValues as Float32Array[];
      const proximal = { anchor: this.anchor, mu: options.mu };
      const { weights: w, offset } = this;
      this.adam.rows(w, offset.get('item_embedding')!.at, d, trained, gRows!, step, proximal);
      this.adam.rows(w, offset.get('item_bias')!.at, 1, trained, gBias!, step, proximal);
      trainedNames.forEach((name, n) => {
        this.adam.range(w, offset.get(name)!.at, gDense[n]!, step, proximal);
      });
      return lossValue![0]!;
    } finally {
      [...dense, rows, biases].forEach((x) => x.dispose());
    }
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
