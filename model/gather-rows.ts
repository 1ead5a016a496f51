/**
 * Row gather with a scatter gradient. tfjs' stock GatherV2 gradient goes through `unsortedSegmentSum`
 * with one segment per table row: ~115 s per step on the cpu backend for a 10k-item table, and the wasm
 * backend has no UnsortedSegmentSum kernel at all (ENV.md pitfall 1). `scatterND` adds the rows of `dy`
 * into a zero table and sums duplicate indices, which is exactly the gradient of a gather, and it is
 * implemented on every backend. Wrapping the gather with `customGrad` (rather than re-registering the
 * global GatherV2 gradient) keeps other tfjs users in the same page untouched.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `table[indices]` along axis 0, differentiable with respect to `table` only.
 * `indices` is a 1-D int32 tensor; the result has shape [indices.length, ...table.shape.slice(1)].
 */
export function gatherRows(table: tf.Tensor, indices: tf.Tensor1D): tf.Tensor {
  // The indices are not a customGrad input (an input would need a float32 gradient of its own, only
  // to be thrown away) but they must be `save`d: tensors made inside the forward pass are disposed
  // before backprop runs, and saved ones are kept until the gradient is computed.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    save([indices]);
    const value = tf.gather(t, indices);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor =>
      tf.scatterND(tf.expandDims(saved[0]!, 1), dy, t.shape);
    return { value, gradFunc };
  });
  return op(table);
}
