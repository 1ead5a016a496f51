/**
 * The session-based next-item model (GRU4Rec family, with an LSTM) as tfjs variables, with inference.
 * Pure tfjs-core: the same file runs in the browser worker and in Node tools. Training lives in
 * train.ts; the maths of the forward pass in forward.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { HearthError } from '../protocol/errors.js';
import {
  parameterCount,
  scoringOf,
  splitFlat,
  tensorLayout,
  type ModelDims,
  type TensorName,
} from '../protocol/manifest.js';
import { itemMeansAt, lstmStates, project, scoreAll, type ModelParams } from './forward.js';
import { initialWeights } from './init.js';
import { addRepeatBonus, occurrences } from './repeat.js';
import { topK } from './top-k.js';

/** A next-item recommender over item indices 1..N-1 (0 is padding and is never recommended). */
export class SessionModel {
  /** The hyper-parameters that fix every tensor shape. */
  readonly dims: ModelDims;
  private readonly vars: Map<TensorName, tf.Variable>;
  /** [N] with -Infinity at the padding index and 0 elsewhere: added to scores so 0 never ranks. */
  private readonly paddingMask: tf.Tensor1D;
  private disposed = false;

  private constructor(dims: ModelDims, flat: Float32Array) {
    this.dims = dims;
    const layout = tensorLayout(dims);
    const parts = splitFlat(flat, layout);
    this.vars = new Map();
    for (const spec of layout) {
      // Unnamed variables get unique engine names, so several models can live side by side. The values
      // are copied (slice): the cpu backend keeps the very typed array it is given, so a view into the
      // caller's buffer would alias the model's weights.
      const value = tf.tensor(parts.get(spec.name)!.slice(), spec.shape as number[], 'float32');
      this.vars.set(spec.name, tf.variable(value, true));
      value.dispose();
    }
    const mask = new Float32Array(dims.items);
    mask[0] = -Infinity;
    this.paddingMask = tf.tensor1d(mask);
  }

  /** A freshly initialised model; the same dims and seed give bit-identical weights on every backend. */
  static random(dims: ModelDims, seed: number): SessionModel {
    return new SessionModel(dims, initialWeights(dims, seed));
  }

  /** A model holding a copy of `flat` (all tensors, manifest order, row-major). */
  static fromFlat(dims: ModelDims, flat: Float32Array): SessionModel {
    checkLength(dims, flat);
    return new SessionModel(dims, flat);
  }

  /** The tensors as tfjs variables, in manifest order (for optimisers). */
  get variables(): tf.Variable[] {
    return tensorLayout(this.dims).map((spec) => this.vars.get(spec.name)!);
  }

  /** Named views of the variables for forward.ts. */
  get params(): ModelParams {
    const v = (name: TensorName) => this.vars.get(name)!;
    return {
      itemEmbedding: v('item_embedding') as tf.Tensor as tf.Tensor2D,
      itemBias: v('item_bias') as tf.Tensor as tf.Tensor1D,
      lstmKernel: v('lstm_kernel') as tf.Tensor as tf.Tensor2D,
      lstmRecurrent: v('lstm_recurrent') as tf.Tensor as tf.Tensor2D,
      lstmBias: v('lstm_bias') as tf.Tensor as tf.Tensor1D,
      projectionKernel: v('projection_kernel') as tf.Tensor as tf.Tensor2D,
      projectionBias: v('projection_bias') as tf.Tensor as tf.Tensor1D,
      scoring: scoringOf(this.dims),
      ...(this.vars.has('repeat_bonus')
        ? { repeatBonus: v('repeat_bonus') as tf.Tensor as tf.Tensor1D }
        : {}),
    };
  }

  /** All tensors, manifest order (TENSOR_NAMES), row-major, in a new Float32Array. */
  toFlat(): Float32Array {
    this.checkAlive();
    const flat = new Float32Array(parameterCount(tensorLayout(this.dims)));
    let offset = 0;
    for (const variable of this.variables) {
      // dataSync keeps this API synchronous; it is called rarely (export, federated deltas).
      const values = variable.dataSync() as Float32Array;
      flat.set(values, offset);
      offset += values.length;
    }
    return flat;
  }

  /** Overwrites every tensor from a flat vector (manifest order); the optimiser state is not touched. */
  setFromFlat(flat: Float32Array): void {
    this.checkAlive();
    checkLength(this.dims, flat);
    const parts = splitFlat(flat, tensorLayout(this.dims));
    for (const [name, variable] of this.vars) {
      // slice(): see the constructor (the cpu backend would alias the caller's buffer).
      tf.tidy(() =>
        variable.assign(tf.tensor(parts.get(name)!.slice(), variable.shape, 'float32')),
      );
    }
  }

  /**
   * Next-item scores [B, N] after each session's last item. Sessions are non-empty arrays of indices
   * 1..N-1, cut to their last `maxSessionLength` items. Column 0 (padding) is -Infinity.
   */
  scoreNext(sessions: readonly (readonly number[])[]): tf.Tensor2D {
    this.checkAlive();
    if (sessions.length === 0) throw new RangeError('scoreNext needs at least one session');
    const cut = sessions.map((s) => {
      if (s.length === 0) throw new RangeError('scoreNext: empty session (use popularity instead)');
      for (const item of s) this.checkItem(item);
      return s.length > this.dims.maxSessionLength ? s.slice(-this.dims.maxSessionLength) : s;
    });
    const batch = cut.length;
    const steps = Math.max(...cut.map((s) => s.length));
    const inputs = new Int32Array(steps * batch); // time-major, right-padded with 0
    const last = new Int32Array(batch);
    const lastItems = new Int32Array(batch);
    cut.forEach((s, b) => {
      s.forEach((item, t) => (inputs[t * batch + b] = item));
      last[b] = (s.length - 1) * batch + b;
      lastItems[b] = s[s.length - 1]!;
    });
    return tf.tidy(() => {
      const p = this.params;
      const inputTensor = tf.tensor1d(inputs, 'int32');
      const states = lstmStates(p, inputTensor, steps, batch);
      const lastRows = tf.tensor1d(last, 'int32');
      const finalStates = tf.gather(states, lastRows);
      const itemMeans = itemMeansAt(p, inputTensor, steps, batch, lastRows);
      const out = project(p, finalStates, tf.tensor1d(lastItems, 'int32'), itemMeans);
      const scores = tf.add(scoreAll(p, out), this.paddingMask) as tf.Tensor2D;
      return p.repeatBonus
        ? addRepeatBonus(scores, p.repeatBonus, occurrences(inputs, last, batch))
        : scores;
    });
  }

  /**
   * The k best next items for one session, best first, never index 0 nor any index in `exclude`.
   * An empty session gives an empty result: cold start is the caller's job (the manifest's `popular`).
   */
  async topK(
    session: readonly number[],
    k: number,
    exclude?: ReadonlySet<number>,
  ): Promise<{ items: number[]; scores: number[] }> {
    if (session.length === 0 || k <= 0) return { items: [], scores: [] };
    const scores = this.scoreNext([session]);
    // Selection happens in JS: N floats are cheap to read back, and this handles `exclude` and ties
    // (lower index first) the same way on every backend.
    const values = (await scores.data()) as Float32Array;
    scores.dispose();
    return topK(values, k, exclude);
  }

  /** Frees every tensor; the model is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const variable of this.vars.values()) variable.dispose();
    this.paddingMask.dispose();
  }

  private checkItem(item: number): void {
    if (!Number.isInteger(item) || item < 1 || item >= this.dims.items) {
      // Out-of-range gathers are not checked by every backend (wasm reads garbage), so check here.
      throw new RangeError(`item index ${item} is outside 1..${this.dims.items - 1}`);
    }
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('SessionModel was disposed');
  }
}

function checkLength(dims: ModelDims, flat: Float32Array): void {
  const expected = parameterCount(tensorLayout(dims));
  if (flat.length !== expected) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `expected ${expected} weights, got ${flat.length}`,
    );
  }
}
