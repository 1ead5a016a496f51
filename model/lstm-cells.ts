/**
 * The LSTM recurrence with tfjs doing the products and JavaScript the gates. On wasm every tfjs
 * kernel costs tens of microseconds of overhead whatever its size, and one step through tfjs ops
 * (forward.ts's lstmStates) is about a dozen of them; here a step is one product plus a loop.
 * Inference only: nothing here has a gradient. Same maths as lstmStates (gates i, f, g, o; step 0
 * from h = c = 0), equal to float rounding.
 */
import * as tf from '@tensorflow/tfjs-core';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * One step for `rows` states: `z` [rows, 4h] holds x . W + h . U + b, `c` the previous cells
 * [rows, h] (null: zero state). Returns the new (h, c).
 */
export function lstmCells(
  z: ArrayLike<number>,
  c: ArrayLike<number> | null,
  rows: number,
  hidden: number,
): { h: Float32Array; c: Float32Array } {
  const hNext = new Float32Array(rows * hidden);
  const cNext = new Float32Array(rows * hidden);
  for (let r = 0; r < rows; r++) {
    const at = r * 4 * hidden;
    for (let j = 0; j < hidden; j++) {
      const i = sigmoid(z[at + j]!);
      const f = sigmoid(z[at + hidden + j]!);
      const g = Math.tanh(z[at + 2 * hidden + j]!);
      const o = sigmoid(z[at + 3 * hidden + j]!);
      const cell = (c ? f * c[r * hidden + j]! : 0) + i * g;
      cNext[r * hidden + j] = cell;
      hNext[r * hidden + j] = o * Math.tanh(cell);
    }
  }
  return { h: hNext, c: cNext };
}

/** The LSTM's weights as lstmStatesAt reads them: the two matrices as tensors, the bias in JS. */
export interface LstmWeights {
  /** lstm_kernel [d, 4h]. */
  readonly kernel: tf.Tensor2D;
  /** lstm_recurrent [h, 4h]. */
  readonly recurrent: tf.Tensor2D;
  /** lstm_bias [4h]. */
  readonly bias: ArrayLike<number>;
}

/**
 * The hidden states at `positions` (rows t*B + b, as lstmStates numbers them) of a time-major batch
 * whose inputs are already embedded: `embedded` [T*B, d]. Returns [positions.length, h].
 */
export async function lstmStatesAt(
  weights: LstmWeights,
  embedded: Float32Array,
  steps: number,
  batch: number,
  positions: ArrayLike<number>,
): Promise<Float32Array> {
  const [d, gates] = weights.kernel.shape;
  const hidden = gates / 4;
  const input = tf.tidy(() => tf.matMul(tf.tensor2d(embedded, [steps * batch, d]), weights.kernel));
  const xz = (await input.data()) as Float32Array;
  input.dispose();
  const states = new Float32Array(steps * batch * hidden);
  let h: Float32Array | null = null;
  let c: Float32Array | null = null;
  for (let t = 0; t < steps; t++) {
    const z = xz.slice(t * batch * gates, (t + 1) * batch * gates);
    if (h) {
      const previous = h;
      const product = tf.tidy(() =>
        tf.matMul(tf.tensor2d(previous, [batch, hidden]), weights.recurrent),
      );
      const hU = (await product.data()) as Float32Array;
      product.dispose();
      for (let k = 0; k < z.length; k++) z[k]! += hU[k]!;
    }
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < gates; j++) z[b * gates + j]! += weights.bias[j]!;
    }
    ({ h, c } = lstmCells(z, c, batch, hidden));
    states.set(h, t * batch * hidden);
  }
  const out = new Float32Array(positions.length * hidden);
  for (let m = 0; m < positions.length; m++) {
    const row = positions[m]!;
    out.set(states.subarray(row * hidden, (row + 1) * hidden), m * hidden);
  }
  return out;
}
