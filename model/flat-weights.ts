/**
 * Views of a model's weights as one flat Float32Array (manifest order): where each tensor starts,
 * and a tensor copied out of it. Used by code that keeps the weights in JS between steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { tensorLayout, type ModelDims, type TensorName } from '../protocol/manifest.js';

/** Where each tensor of the layout starts in the flat weights, and its shape. */
export type FlatOffsets = ReadonlyMap<
  TensorName,
  { readonly at: number; readonly shape: number[] }
>;

/** Offsets of every tensor of `dims`' layout in its flat vector. */
export function flatOffsets(dims: ModelDims): FlatOffsets {
  const out = new Map<TensorName, { at: number; shape: number[] }>();
  let at = 0;
  for (const spec of tensorLayout(dims)) {
    out.set(spec.name, { at, shape: [...spec.shape] });
    at += spec.shape.reduce((a, b) => a * b, 1);
  }
  return out;
}

/** A copy of one tensor of the flat weights as a tfjs tensor. */
export function flatTensor(
  weights: Float32Array,
  offsets: FlatOffsets,
  name: TensorName,
): tf.Tensor {
  const { at, shape } = offsets.get(name)!;
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(weights.slice(at, at + size), shape, 'float32');
}
