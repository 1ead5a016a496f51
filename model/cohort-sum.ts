/**
 * The sum of many devices' clipped one-step updates, without any device's copy of the dense
 * tensors: what the server of a round would learn from secure aggregation (only the sum), for a
 * simulation of thousands of devices a round.
 *
 * With one plain gradient step (FedSGD's device step, local-update.ts with `optimizer: 'sgd'` and
 * `steps: 1`), device b sends u_b = clip_S(-lr g_b), g_b the gradient of its own loss at the global
 * weights. Every dense tensor enters the loss through a product with per-position inputs (the
 * embedded items x_t and the hidden states h_{t-1} for the LSTM's kernels, h_t for the projection),
 * so device b's gradient of a kernel W is sum_t a_t^T s_t over its own positions, a_t the input and
 * s_t the loss's gradient with respect to that product's output. Its squared norm is
 * sum_{t,t'} (a_t . a_t')(s_t . s_t') (Goodfellow 2015, "Efficient per-example gradient
 * computations"; Li et al. 2022, "Large language models can be strong differentially private
 * learners", ghost clipping), and the clipped sum is A^T (c * S) over all positions, c_b the
 * device's clip factor on its rows. The signals s_t come from one backward pass with the dense
 * tensors shared by all devices (local-update.ts Probes); item rows and the repeat bonus are
 * per-device slots already. cohort-sum.test.ts checks the result against the sum of the
 * per-device updates of localUpdates, clipped as the device clips them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelDims } from '../protocol/manifest.js';
import { denseLength, updateLength, type UpdateLayout } from '../protocol/update-layout.js';
import { packDevices, roundNegatives } from './device-batch.js';
import {
  batchTensors,
  deviceLoss,
  startingCopies,
  type LocalUpdateSettings,
  type Probes,
} from './local-update.js';
import type { TrainSession } from './train.js';

/** What the devices of one call contribute to a round. */
export interface UpdateSum {
  /** Sum over the devices of their clipped updates, in the layout's coordinates. */
  readonly sum: Float32Array;
  /** Each device's update norm before clipping (0 for a device without examples). */
  readonly norms: number[];
  /** Examples each device trained on (0: it sends nothing). */
  readonly examples: number[];
}

/** The factor that clips a vector of norm `norm` to S (protocol/clip.ts clipL2InPlace's). */
function clipFactor(norm: number, clipNorm: number): number {
  return norm > clipNorm ? (clipNorm / norm) * (1 - 1e-6) : 1;
}

/** [B, n, k] -> [B, n, n] Gram matrices, with an explicit transpose (mat-mul.ts explains why). */
function gram(a: tf.Tensor3D): tf.Tensor3D {
  return tf.matMul(a, tf.transpose(a, [0, 2, 1]));
}

/** Per-device squared Frobenius norm of sum_t a_t^T s_t, from [B, n, k_a] and [B, n, k_s]. */
function ghostNorm2(a: tf.Tensor3D, s: tf.Tensor3D, sGram?: tf.Tensor3D): tf.Tensor1D {
  return tf.sum(tf.mul(gram(a), sGram ?? gram(s)), [1, 2]);
}

/** A^T S for [N, k_a] and [N, k_s]. */
function outer(a: tf.Tensor2D, s: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(tf.transpose(a), s);
}

/**
 * Trains every device of `devices` for one plain step from `global` and returns the sum of their
 * updates, each clipped to `clipNorm` as the device clips it, in `layout`'s coordinates.
 */
export function clippedUpdateSum(
  dims: ModelDims,
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: UpdateLayout,
  settings: LocalUpdateSettings,
  clipNorm: number,
): UpdateSum {
  if (settings.steps !== 1 || settings.optimizer !== 'sgd') {
    throw new RangeError('the summed path takes one plain gradient step (sgd, 1 step)');
  }
  const negatives = roundNegatives(dims.items, settings.negatives, settings.seed);
  const p = packDevices(dims, devices, negatives, layout);
  const c = batchTensors(dims, p);
  const w = startingCopies(dims, [global], p, 1);
  const { devices: B, windows: S, steps: T, slots: M } = p;
  const { embedding: d, hidden: h } = dims;
  const n = S * T;
  const repeat = dims.scoring?.repeat === true;
  const lr = settings.learningRate;

  const result = tf.tidy(() => {
    let inputs: tf.Tensor3D | null = null;
    let states: tf.Tensor4D | null = null;
    const probes = (xz: tf.Tensor, out: tf.Tensor): Probes => ({
      xz: xz as tf.Tensor3D,
      out: out as tf.Tensor3D,
      seen: (x, s) => {
        inputs = tf.keep(x);
        states = tf.keep(s);
      },
    });
    const xs: tf.Tensor[] = [
      w.table,
      w.bias,
      tf.zeros([1, B * n, 4 * h]),
      tf.zeros([1, B * n, d]),
      ...(repeat ? [w.repeat] : []),
    ];
    const grads = tf.grads((...v: tf.Tensor[]) => {
      const cur = {
        ...w,
        table: v[0] as tf.Tensor2D,
        bias: v[1] as tf.Tensor1D,
        ...(repeat ? { repeat: v[4] as tf.Tensor2D } : {}),
      };
      return tf.sum(deviceLoss(dims, p, c, cur, probes(v[2]!, v[3]!))) as tf.Scalar;
    })(xs);
    const trainable = tf.tensor1d(p.trainable);
    const gTable = tf.mul(grads[0]!, tf.expandDims(trainable, 1)) as tf.Tensor2D;
    const gBias = tf.mul(grads[1]!, trainable) as tf.Tensor1D;
    const gates = tf.reshape(grads[2]!, [B, n, 4 * h]) as tf.Tensor3D;
    const outs = tf.reshape(grads[3]!, [B, n, d]) as tf.Tensor3D;
    const x = inputs! as tf.Tensor3D;
    const hs = tf.reshape(states!, [B, S, T, h]) as tf.Tensor4D;
    // h_{t-1}: each window's states shifted one step (zero before its first step).
    const before = tf.concat(
      [tf.zeros([B, S, 1, h]), tf.slice(hs, [0, 0, 0, 0], [B, S, T - 1, h])],
      2,
    );
    const hsFlat = tf.reshape(hs, [B, n, h]) as tf.Tensor3D;
    const beforeFlat = tf.reshape(before, [B, n, h]) as tf.Tensor3D;
    const gatesGram = gram(gates);
    let norm2 = tf.addN([
      ghostNorm2(x, gates, gatesGram),
      ghostNorm2(beforeFlat, gates, gatesGram),
      tf.sum(tf.square(tf.sum(gates, 1)), 1),
      ghostNorm2(hsFlat, outs),
      tf.sum(tf.square(tf.sum(outs, 1)), 1),
      tf.sum(tf.reshape(tf.square(gTable), [B, M * d]), 1),
      tf.sum(tf.reshape(tf.square(gBias), [B, M]), 1),
    ]);
    if (repeat) norm2 = tf.add(norm2, tf.sum(tf.square(grads[4]!), 1));
    const norms = tf.mul(tf.sqrt(norm2), lr);
    const normValues = norms.dataSync();
    // Each device's weight in the sum: -lr times its clip factor.
    const factors = tf.tensor1d(Array.from(normValues, (v) => -lr * clipFactor(v, clipNorm)));
    const perPosition = tf.reshape(factors, [B, 1, 1]);
    const gatesW = tf.reshape(tf.mul(gates, perPosition), [B * n, 4 * h]) as tf.Tensor2D;
    const outsW = tf.reshape(tf.mul(outs, perPosition), [B * n, d]) as tf.Tensor2D;
    const dense = [
      outer(tf.reshape(x, [B * n, d]) as tf.Tensor2D, gatesW),
      outer(tf.reshape(beforeFlat, [B * n, h]) as tf.Tensor2D, gatesW),
      tf.sum(gatesW, 0),
      outer(tf.reshape(hsFlat, [B * n, h]) as tf.Tensor2D, outsW),
      tf.sum(outsW, 0),
      ...(repeat ? [tf.sum(tf.mul(grads[4]!, tf.reshape(factors, [B, 1])), 0)] : []),
    ];
    const perSlot = tf.reshape(tf.tile(tf.reshape(factors, [B, 1]), [1, M]), [B * M]);
    // Tensors only: tidy walks what it returns, element by element for a typed array.
    return {
      dense,
      rows: tf.mul(gTable, tf.expandDims(perSlot, 1)),
      biases: tf.mul(gBias, perSlot),
      norms: tf.tensor1d(normValues),
      kept: [inputs!, states!] as tf.Tensor[],
    };
  });
  const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const out = {
    dense: result.dense.map(read),
    rows: read(result.rows),
    biases: read(result.biases),
    norms: Array.from(read(result.norms)),
  };
  for (const t of [
    ...result.dense,
    result.rows,
    result.biases,
    result.norms,
    ...result.kept,
    ...Object.values(w),
    ...Object.values(c),
  ]) {
    (t as tf.Tensor | null)?.dispose();
  }

  const sum = new Float32Array(updateLength(dims, layout));
  let offset = layout.kind === 'full' ? dims.items * (d + 1) : 0;
  for (const part of out.dense) {
    sum.set(part, offset);
    offset += part.length;
  }
  if (offset - (layout.kind === 'full' ? dims.items * (d + 1) : 0) !== denseLength(dims)) {
    throw new Error('summed update: dense layout mismatch');
  }
  const dense = denseLength(dims);
  const positionOf =
    layout.kind === 'rows' ? new Map(layout.rows.map((r, i) => [r, dense + i * (d + 1)])) : null;
  for (let i = 0; i < p.rows.length; i++) {
    if (!p.trainable[i]) continue;
    const row = p.rows[i]!;
    const at = positionOf ? positionOf.get(row)! : row * d;
    const biasAt = positionOf ? at + d : dims.items * d + row;
    for (let k = 0; k < d; k++) sum[at + k] = sum[at + k]! + out.rows[i * d + k]!;
    sum[biasAt] = sum[biasAt]! + out.biases[i]!;
  }
  return { sum, norms: out.norms, examples: Array.from(p.examples) };
}
