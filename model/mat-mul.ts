/**
 * Matrix product whose gradient avoids transposed matmuls. On the wasm backend (XNNPACK) a matmul with
 * transposeA or transposeB is about 10x slower than a plain one (measured here: [142,64] x [2934,64]^T
 * 31 ms vs 3.4 ms after an explicit transpose), and tfjs' stock MatMul gradient uses exactly those
 * (dA = dY . B^T, dB = A^T . dY). Transposing explicitly first costs ~2 ms for the largest tensor here.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `x` with its last two axes swapped (a 2-D transpose, or one per matrix of a batch). */
function swapLast<T extends tf.Tensor>(x: T): T {
  return (x.rank === 2 ? tf.transpose(x) : tf.transpose(x, [0, 2, 1])) as T;
}

/** `a . b` for 2-D tensors or batches of them, with the explicit-transpose gradient. */
function product<T extends tf.Tensor2D | tf.Tensor3D>(a: T, b: T): T {
  const op = tf.customGrad<tf.Tensor>((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [T, T, tf.GradSaveFunc];
    save([x, y]);
    const value = tf.matMul(x, y);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [sx, sy] = saved as [T, T];
      return [tf.matMul(dy as T, swapLast(sy)), tf.matMul(swapLast(sx), dy as T)];
    };
    return { value, gradFunc };
  });
  return op(a, b) as T;
}

/** `a . b` for 2-D tensors, with a gradient made of explicit transposes and plain matmuls. */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return product(a, b);
}

/** `a . b` for batches [B, m, k] x [B, k, n] (one matrix per device), the same gradient. */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return product(a, b);
}

/**
 * `a . b` where `b` is a constant of the computation (its transpose `bT` given too): the gradient
 * flows to `a` only, dA = dY . bT, and the product for dB that matMul2d would compute is skipped.
 */
export function matMulConstant(a: tf.Tensor2D, b: tf.Tensor2D, bT: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad<tf.Tensor>((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    return {
      value: tf.matMul(x, b),
      gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, bT),
    };
  });
  return op(a) as tf.Tensor2D;
}
