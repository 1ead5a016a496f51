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
import { packBatch, toWindows, type Batch } from './model/batches.js';
import { FlatAdam } from './model/flat-adam.js';
import { itemMeansAt, lstmStates, project, type ModelParams } from './model/forward.js';
import { gatherRows } from './model/gather-rows.js';
import { ensureGradients } from './model/gradients.js';
import { fullSoftmaxLoss, PADDING_LOGIT } from './model/loss.js';
import { flatOffsets, flatTensor, type FlatOffsets } from './model/flat-weights.js';
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
}

/** The dense tensors every step updates in full (a few hundred kilobytes together). */
const DENSE: readonly TensorName[] = [
  'lstm_kernel',
  'lstm_recurrent',
  'lstm_bias',
  'projection_kernel',
  'projection_bias',
];

/** A local copy under sparse fine-tuning, anchored at the global weights it started from. */
export class SparseLearner {
  /** The fine-tuned flat weights (updated in place by every step). */
  readonly weights: Float32Array;
  private readonly adam: FlatAdam;
  private readonly offset: FlatOffsets;

  /** Starts from `start` (the local copy, or the global weights), pulled toward `anchor`. */
  constructor(
    readonly dims: ModelDims,
    readonly anchor: Float32Array,
    start: Float32Array,
  ) {
    this.weights = start.slice();
    this.adam = new FlatAdam(start.length);
    this.offset = flatOffsets(dims);
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
    const batch = packBatch(windows);
    const d = this.dims.embedding;
    // Local vocabulary: 0 = padding, then the trainable session items, then the fixed negatives.
    const trained = [...new Set([...batch.inputs, ...batch.targets])].filter((i) => i > 0);
    const local = new Map(trained.map((item, i) => [item, i + 1]));
    const fixed = this.sampleNegatives(local, options);
    fixed.forEach((item, j) => local.set(item, trained.length + 1 + j));
    const toLocal = (items: Int32Array) =>
      Int32Array.from(items, (i) => (i === 0 ? 0 : local.get(i)!));
    const mask = new Float32Array(1 + trained.length + fixed.length);
    mask[0] = PADDING_LOGIT;
    const constants = {
      fixedRows: tf.tensor2d(this.rows([0, ...fixed], d), [1 + fixed.length, d]),
      fixedBiases: tf.tensor1d(this.biases([0, ...fixed])),
      paddingMask: tf.tensor1d(mask),
      inputs: tf.tensor1d(toLocal(batch.inputs), 'int32'),
      positions: tf.tensor1d(batch.positions, 'int32'),
      // The item each scored state consumed last (the model's last-item skip, when it has one).
      lastItems: tf.tensor1d(
        toLocal(Int32Array.from(batch.positions, (at) => batch.inputs[at]!)),
        'int32',
      ),
      targets: tf.tensor1d(toLocal(batch.targets), 'int32'),
      weights: tf.tensor1d(batch.weights),
    };
    const { fixedRows, fixedBiases, positions, inputs } = constants;
    const scoring = scoringOf(this.dims);
    // Padding row first, then the trainable rows, then the negatives: the local index order.
    const params = (table: tf.Tensor2D, bias: tf.Tensor1D, rest: tf.Tensor[]): ModelParams => ({
      itemEmbedding: tf.concat([
        tf.slice(fixedRows, [0, 0], [1, d]),
        table,
        tf.slice(fixedRows, [1, 0]),
      ]),
      itemBias: tf.concat([tf.slice(fixedBiases, 0, 1), bias, tf.slice(fixedBiases, 1)]),
      lstmKernel: rest[0] as tf.Tensor2D,
      lstmRecurrent: rest[1] as tf.Tensor2D,
      lstmBias: rest[2] as tf.Tensor1D,
      projectionKernel: rest[3] as tf.Tensor2D,
      projectionBias: rest[4] as tf.Tensor1D,
      scoring,
    });
    const statesOf = (p: ModelParams) =>
      gatherRows(lstmStates(p, inputs, batch.steps, batch.size), positions) as tf.Tensor2D;
    // A frozen LSTM: its states are constants of the update (computed once, from the weights it
    // starts with), so nothing backpropagates through time and a step is a few small products.
    let frozen: tf.Tensor2D | null = null;
    if (!options.lstm) {
      const dense = DENSE.map((name) => this.tensor(name));
      const rows = tf.tensor2d(this.rows(trained, d), [trained.length, d]);
      const biases = tf.tensor1d(this.biases(trained));
      frozen = tf.tidy(() => statesOf(params(rows, biases, dense)));
      [...dense, rows, biases].forEach((x) => x.dispose());
    }
    this.restart(trained, options.lstm ? DENSE : DENSE.slice(3));
    let loss = NaN;
    try {
      for (let step = 0; step < steps; step++) {
        loss = await this.step(trained, batch, constants, params, frozen ?? statesOf, options);
      }
    } finally {
      frozen?.dispose();
      Object.values(constants).forEach((x) => x.dispose());
    }
    return loss;
  }

  /** One step: gradients of the small tensors, then Adam (or SGD) on the flat weights. */
  private async step(
    trained: readonly number[],
    batch: Batch,
    constants: {
      paddingMask: tf.Tensor1D;
      inputs: tf.Tensor1D;
      positions: tf.Tensor1D;
      targets: tf.Tensor1D;
      weights: tf.Tensor1D;
      lastItems: tf.Tensor1D;
    },
    params: (table: tf.Tensor2D, bias: tf.Tensor1D, rest: tf.Tensor[]) => ModelParams,
    states: tf.Tensor2D | ((p: ModelParams) => tf.Tensor2D),
    options: SparseStepOptions,
  ): Promise<number> {
    const d = this.dims.embedding;
    const { paddingMask, inputs, positions, targets, weights, lastItems } = constants;
    const dense = DENSE.map((name) => this.tensor(name));
    const rows = tf.tensor2d(this.rows(trained, d), [trained.length, d]);
    const biases = tf.tensor1d(this.biases(trained));
    const trainedDense = options.lstm ? DENSE : DENSE.slice(3);
    const loss = (table: tf.Tensor2D, bias: tf.Tensor1D, ...rest: tf.Tensor[]): tf.Scalar => {
      const p = params(table, bias, options.lstm ? rest : [...dense.slice(0, 3), ...rest]);
      const itemMeans = itemMeansAt(p, inputs, batch.steps, batch.size, positions);
      const out = project(
        p,
        typeof states === 'function' ? states(p) : states,
        lastItems,
        itemMeans,
      );
      const perExample = fullSoftmaxLoss(p, out, targets, paddingMask);
      const data = tf.div(tf.sum(tf.mul(perExample, weights)), targets.shape[0]);
      // One-step windows never use the recurrent matrix; a zero term keeps its gradient defined.
      return options.lstm
        ? (tf.add(data, tf.mul(tf.sum(p.lstmRecurrent), 0)) as tf.Scalar)
        : (data as tf.Scalar);
    };
    const inputsForGrad = [rows, biases, ...(options.lstm ? dense : dense.slice(3))];
    try {
      const { value, grads } = tf.valueAndGrads(loss as (...x: tf.Tensor[]) => tf.Scalar)(
        inputsForGrad,
      );
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
      trainedDense.forEach((name, n) => {
        this.adam.range(w, offset.get(name)!.at, gDense[n]!, step, proximal);
      });
      return lossValue![0]!;
    } finally {
      [...dense, rows, biases].forEach((x) => x.dispose());
    }
  }

  /**
   * Starts Adam afresh for an update that trains `rows` and the `dense` tensors (the only
   * moments it will read). Each update is a short run of its own: kept moments from earlier
   * updates, several clicks old, made later steps smaller and the updates measurably weaker.
   */
  private restart(rows: readonly number[], dense: readonly TensorName[]): void {
    const d = this.dims.embedding;
    const embedding = this.offset.get('item_embedding')!.at;
    const bias = this.offset.get('item_bias')!.at;
    this.adam.restart([
      ...rows.flatMap((item) => [[embedding + item * d, d] as const, [bias + item, 1] as const]),
      ...dense.map((name) => {
        const { at, shape } = this.offset.get(name)!;
        return [at, shape.reduce((a, b) => a * b, 1)] as const;
      }),
    ]);
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
