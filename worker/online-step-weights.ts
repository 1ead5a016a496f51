/**
 * The flat weights as an online step reads them: item rows and biases gathered by item, and whole
 * tensors by name. Which tensors a step trains, and which it holds, is decided here too.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelDims, TensorName } from '../protocol/manifest.js';
import { flatOffsets, flatTensor, type FlatOffsets } from '../model/flat-weights.js';
import type { SparseStepOptions } from './online-step-options.js';

/** The LSTM's tensors: trained with `trainLstm`, else held. */
export const LSTM: readonly TensorName[] = ['lstm_kernel', 'lstm_recurrent', 'lstm_bias'];
/** The output projection: trained unless `trainProjection` is false. */
export const PROJECTION: readonly TensorName[] = ['projection_kernel', 'projection_bias'];

/** The dense tensors a step trains (besides the session items' rows), in gradient order. */
export function trainedTensors(options: SparseStepOptions): TensorName[] {
  return [
    ...(options.trainLstm ? LSTM : []),
    ...(options.trainProjection === false ? [] : PROJECTION),
  ];
}

/** A model's flat weights (manifest order) read by tensor and by item. */
export class StepWeights {
  private readonly offset: FlatOffsets;

  constructor(
    readonly dims: ModelDims,
    readonly weights: Float32Array,
  ) {
    this.offset = flatOffsets(dims);
  }

  /** Where tensor `name` starts in the flat weights. */
  at(name: TensorName): number {
    return this.offset.get(name)!.at;
  }

  /** How many weights tensor `name` has. */
  size(name: TensorName): number {
    return this.offset.get(name)!.shape.reduce((a, b) => a * b, 1);
  }

  /** A copy of tensor `name` as a tfjs tensor (the caller frees it). */
  tensor(name: TensorName): tf.Tensor {
    return flatTensor(this.weights, this.offset, name);
  }

  /** Tensor `name` as a view of the flat weights. */
  slice(name: TensorName): Float32Array {
    const at = this.at(name);
    return this.weights.subarray(at, at + this.size(name));
  }

  /** The embedding rows of `items`, [items.length, d], copied. */
  rows(items: readonly number[]): Float32Array {
    const d = this.dims.embedding;
    const at = this.at('item_embedding');
    const out = new Float32Array(items.length * d);
    items.forEach((item, r) =>
      out.set(this.weights.subarray(at + item * d, at + (item + 1) * d), r * d),
    );
    return out;
  }

  /** The output biases of `items`, copied. */
  biases(items: readonly number[]): Float32Array {
    const at = this.at('item_bias');
    return Float32Array.from(items, (item) => this.weights[at + item]!);
  }
}
