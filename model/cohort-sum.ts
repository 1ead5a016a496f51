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
import { clipFactor } from '../protocol/clip.js';
import { sentDense, sketchDepth, sketchSlot } from '../protocol/item-sketch.js';
import {
  denseLength,
  NORM_EPSILON,
  type ItemSketch,
  type ModelDims,
} from '../protocol/manifest.js';
import {
  denseStart,
  rowOffsets,
  updateLength,
  type ModelLayout,
} from '../protocol/update-layout.js';
import {
  batchTensors,
  deviceLoss,
  packRound,
  startingCopies,
  type LocalUpdateSettings,
  type Probes,
} from './local-update.js';
import { matMul2d } from './mat-mul.js';
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

/** Row `row`'s bucket in table `t` of `sketch`, counted over all tables, and its sign. */
function bucketOf(row: number, sketch: ItemSketch, t: number): { bucket: number; sign: number } {
  const slot = sketchSlot(row, sketch, t);
  return { bucket: t * sketch.buckets + Math.abs(slot) - 1, sign: Math.sign(slot) };
}

/**
 * Each device's squared norm of its update's item part as sketch `sketch` holds it
 * (protocol/item-sketch.ts): its own rows' and the shared negatives' gradients (embedding and bias)
 * added with their signs, over √depth, into their buckets of each table. Rows that share a bucket
 * add up there, so this is not the rows' own squared norm. A negative's gradient comes in as
 * v = sum_t a_tj o_t, with `unit` and `norms` its row's normalisation (cosine scoring): J_j v is
 * (v - u_j (u_j . v)) / r_j.
 */
function sketchedItemNorm2(
  sketch: ItemSketch,
  d: number,
  own: {
    readonly rows: ArrayLike<number>;
    readonly table: Float32Array;
    readonly bias: Float32Array;
  },
  negatives: ArrayLike<number>,
  negative: {
    readonly table: Float32Array;
    readonly bias: Float32Array;
    readonly unit?: Float32Array;
    readonly norms?: Float32Array;
  },
  devices: number,
): Float64Array {
  const depth = sketchDepth(sketch);
  const width = d + 1;
  const K = negatives.length;
  const L = own.rows.length / devices;
  const buckets = new Float64Array(depth * sketch.buckets * width);
  // Where each negative lands, table by table: the bucket's first value, and its sign.
  const base = new Int32Array(K * depth);
  const sign = new Float64Array(K * depth);
  for (let k = 0; k < K; k++) {
    for (let t = 0; t < depth; t++) {
      const at = bucketOf(negatives[k]!, sketch, t);
      base[k * depth + t] = at.bucket * width;
      sign[k * depth + t] = negatives[k]! > 0 ? at.sign : 0;
    }
  }
  const { unit, norms } = negative;
  const g = new Float64Array(d);
  const out = new Float64Array(devices);
  for (let b = 0; b < devices; b++) {
    buckets.fill(0);
    for (let l = 0; l < L; l++) {
      const i = b * L + l;
      const row = own.rows[i]!;
      if (row <= 0) continue;
      for (let t = 0; t < depth; t++) {
        const { bucket, sign: s } = bucketOf(row, sketch, t);
        const at = bucket * width;
        for (let c = 0; c < d; c++) buckets[at + c]! += s * own.table[i * d + c]!;
        buckets[at + d]! += s * own.bias[i]!;
      }
    }
    for (let k = 0; k < K; k++) {
      const from = (b * K + k) * d;
      if (unit && norms) {
        let along = 0;
        for (let c = 0; c < d; c++) along += unit[k * d + c]! * negative.table[from + c]!;
        const r = norms[k]!;
        for (let c = 0; c < d; c++)
          g[c] = (negative.table[from + c]! - unit[k * d + c]! * along) / r;
      } else {
        for (let c = 0; c < d; c++) g[c] = negative.table[from + c]!;
      }
      const bias = negative.bias[b * K + k]!;
      for (let t = 0; t < depth; t++) {
        const at = base[k * depth + t]!;
        const s = sign[k * depth + t]!;
        for (let c = 0; c < d; c++) buckets[at + c]! += s * g[c]!;
        buckets[at + d]! += s * bias;
      }
    }
    let norm2 = 0;
    for (let i = 0; i < buckets.length; i++) norm2 += buckets[i]! * buckets[i]!;
    out[b] = norm2 / depth;
  }
  return out;
}

/**
 * A device's gradient of one dense tensor, in manifest order: sum_t a_t^T s_t over its positions
 * (`a` [B, n, k_a], `s` [B, n, k_s]), or given as it is (`g` [B, k]: a bias, the repeat bonus).
 */
type DenseGradient =
  { readonly a: tf.Tensor3D; readonly s: tf.Tensor3D } | { readonly g: tf.Tensor2D };

/**
 * Each device's squared norm of its dense gradients, or, under a strided sketch, of the dense
 * values it carries (item-sketch.ts sentDense: those at o, o + k, o + 2k, ... of the dense tensors
 * in manifest order). Stride 1 is the plain ghost norm, one Gram matrix of each s shared by the
 * kernels it feeds. In a kernel [k_a, k_s] starting at flat index p, row i carries the columns
 * j = r_i, r_i + k, ... with r_i = (o - p - i k_s) mod k. The rows fall into at most k classes by
 * r_i, and a class's carried values are its rows of sum_t a_t^T s_t at its columns: the product of
 * those columns of a and of s, whose squared norm is a ghost norm again. A bias is masked as it is.
 */
function denseNorm2Of(
  gradients: readonly DenseGradient[],
  carried: { readonly offset: number; readonly stride: number },
  devices: number,
): tf.Tensor1D {
  const { offset, stride } = carried;
  const residue = (x: number) => ((x % stride) + stride) % stride;
  const fromEvery = (first: number, size: number): number[] => {
    const out: number[] = [];
    for (let j = first; j < size; j += stride) out.push(j);
    return out;
  };
  const grams = new Map<tf.Tensor3D, tf.Tensor3D>();
  const gramOf = (s: tf.Tensor3D): tf.Tensor3D => grams.get(s) ?? grams.set(s, gram(s)).get(s)!;
  const parts: tf.Tensor1D[] = [];
  let start = 0;
  for (const gradient of gradients) {
    if ('g' in gradient) {
      const k = gradient.g.shape[1];
      const columns = stride === 1 ? null : fromEvery(residue(offset - start), k);
      start += k;
      if (!columns) parts.push(tf.sum(tf.square(gradient.g), 1));
      else if (columns.length > 0) {
        parts.push(tf.sum(tf.square(tf.gather(gradient.g, columns, 1)), 1));
      }
      continue;
    }
    const ka = gradient.a.shape[2];
    const ks = gradient.s.shape[2];
    const kernelStart = start;
    start += ka * ks;
    if (stride === 1) {
      parts.push(ghostNorm2(gradient.a, gradient.s, gramOf(gradient.s)));
      continue;
    }
    const classes = new Map<number, number[]>();
    for (let i = 0; i < ka; i++) {
      const first = residue(offset - kernelStart - i * ks);
      if (first >= ks) continue; // a row shorter than the stride may carry nothing
      const rows = classes.get(first) ?? [];
      rows.push(i);
      classes.set(first, rows);
    }
    for (const [first, rows] of classes) {
      const a = tf.gather(gradient.a, rows, 2) as tf.Tensor3D;
      const s = tf.gather(gradient.s, fromEvery(first, ks), 2) as tf.Tensor3D;
      parts.push(ghostNorm2(a, s));
    }
  }
  return parts.length > 0 ? tf.addN(parts) : tf.zeros([devices]);
}

/**
 * The most row vectors of one device that share a bucket of a table: the round's negatives there
 * plus the device's own rows there (row 0 left out), the most over the batch's devices.
 */
function mostSharing(
  sketch: ItemSketch,
  own: ArrayLike<number>,
  negatives: ArrayLike<number>,
  devices: number,
): number {
  const depth = sketchDepth(sketch);
  const L = own.length / devices;
  const counts = new Int32Array(depth * sketch.buckets);
  let most = 0;
  for (let k = 0; k < negatives.length; k++) {
    if (negatives[k]! <= 0) continue;
    for (let t = 0; t < depth; t++) {
      const { bucket } = bucketOf(negatives[k]!, sketch, t);
      most = Math.max(most, ++counts[bucket]!);
    }
  }
  for (let b = 0; b < devices; b++) {
    const mine = new Map<number, number>();
    for (let l = 0; l < L; l++) {
      const row = own[b * L + l]!;
      if (row <= 0) continue;
      for (let t = 0; t < depth; t++) {
        const { bucket } = bucketOf(row, sketch, t);
        const n = (mine.get(bucket) ?? 0) + 1;
        mine.set(bucket, n);
        most = Math.max(most, counts[bucket]! + n);
      }
    }
  }
  return most;
}

/**
 * Trains every device of `devices` for one plain step from `global` and returns the sum of their
 * updates, each clipped to `clipNorm` as the device clips it, in `layout`'s coordinates. With
 * `sketch` (a full layout whose item rows the devices send as that sketch) a device clips what it
 * sends, its update's sketch, so its clip factor comes from the sketch's norm (under a dense
 * stride, of the dense values the sketch carries and its buckets); the sum is still of the whole
 * updates, and its sketch is the sum of the devices' clipped sketches.
 *
 * The round's K negatives are one table all devices share (local-update.ts Trained.negatives):
 * device b's gradient of negative row j is J_j sum_t a_tj o_t, with a_tj the loss's gradient with
 * respect to position t's logit of j, o_t the session vector that multiplies the row and J_j the
 * Jacobian of the row's normalisation (identity without cosine scoring), so its norms and the
 * clipped sum come from the same per-position signals as the dense tensors'.
 */
export function clippedUpdateSum(
  dims: ModelDims,
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: ModelLayout,
  settings: LocalUpdateSettings,
  clipNorm: number,
  sketch?: ItemSketch,
): UpdateSum {
  if (settings.steps !== 1 || settings.optimizer !== 'sgd') {
    throw new RangeError('the summed path takes one plain gradient step (sgd, 1 step)');
  }
  if (sketch && layout.kind !== 'full') {
    throw new RangeError('a sketch is of the whole model: its summed path takes the full layout');
  }
  const { p, negatives } = packRound(dims, global, devices, layout, settings);
  const c = batchTensors(dims, p, true);
  const w = startingCopies(dims, [global], p, 1, p.ownSlots);
  const { devices: B, windows: S, steps: T, slots: M, ownSlots: L } = p;
  const K = negatives.length;
  const { embedding: d, hidden: h, items: N } = dims;
  const n = S * T;
  const repeat = dims.scoring?.repeat === true;
  const normalize = dims.scoring?.normalize === true;
  const lr = settings.learningRate;
  const layoutRows = layout.kind === 'rows' ? new Set(layout.rows) : null;
  const negativeRows = new Float32Array(K * d);
  const negativeBias = new Float32Array(K);
  const negativeTrainable = new Float32Array(K);
  negatives.forEach((r, k) => {
    negativeRows.set(global.subarray(r * d, r * d + d), k * d);
    negativeBias[k] = global[N * d + r]!;
    negativeTrainable[k] = !layoutRows || layoutRows.has(r) ? 1 : 0;
  });
  w.negatives = { table: tf.tensor2d(negativeRows, [K, d]), bias: tf.tensor1d(negativeBias) };
  const ownTrainable = new Float32Array(B * L);
  const ownRows = new Int32Array(B * L);
  for (let i = 0; i < B * L; i++) {
    ownTrainable[i] = p.trainable[Math.floor(i / L) * M + (i % L)]!;
    ownRows[i] = p.rows[Math.floor(i / L) * M + (i % L)]!;
  }

  const result = tf.tidy(() => {
    let inputs: tf.Tensor3D | null = null;
    let states: tf.Tensor4D | null = null;
    let scored: tf.Tensor3D | null = null;
    const probes = (xz: tf.Tensor, out: tf.Tensor, negative: tf.Tensor): Probes => ({
      xz: xz as tf.Tensor3D,
      out: out as tf.Tensor3D,
      negatives: negative as tf.Tensor2D,
      seen: (x, s) => {
        inputs = tf.keep(x);
        states = tf.keep(s);
      },
      scored: (o) => {
        scored = tf.keep(o);
      },
    });
    const xs: tf.Tensor[] = [
      w.table,
      w.bias,
      tf.zeros([1, B * n, 4 * h]),
      tf.zeros([1, B * n, d]),
      tf.zeros([B * n, K]),
      ...(repeat ? [w.repeat] : []),
    ];
    const grads = tf.grads((...v: tf.Tensor[]) => {
      const cur = {
        ...w,
        table: v[0] as tf.Tensor2D,
        bias: v[1] as tf.Tensor1D,
        ...(repeat ? { repeat: v[5] as tf.Tensor2D } : {}),
      };
      return tf.sum(deviceLoss(dims, p, c, cur, probes(v[2]!, v[3]!, v[4]!))) as tf.Scalar;
    })(xs);
    const trainable = tf.tensor1d(ownTrainable);
    const gTable = tf.mul(grads[0]!, tf.expandDims(trainable, 1)) as tf.Tensor2D;
    const gBias = tf.mul(grads[1]!, trainable) as tf.Tensor1D;
    const gates = tf.reshape(grads[2]!, [B, n, 4 * h]) as tf.Tensor3D;
    const outs = tf.reshape(grads[3]!, [B, n, d]) as tf.Tensor3D;
    const logitSignal = tf.reshape(grads[4]!, [B, n, K]) as tf.Tensor3D;
    const x = inputs! as tf.Tensor3D;
    const sessions = tf.reshape(scored!, [B, n, d]) as tf.Tensor3D;
    const hs = tf.reshape(states!, [B, S, T, h]) as tf.Tensor4D;
    // h_{t-1}: each window's states shifted one step (zero before its first step).
    const before = tf.concat(
      [tf.zeros([B, S, 1, h]), tf.slice(hs, [0, 0, 0, 0], [B, S, T - 1, h])],
      2,
    );
    const hsFlat = tf.reshape(hs, [B, n, h]) as tf.Tensor3D;
    const beforeFlat = tf.reshape(before, [B, n, h]) as tf.Tensor3D;

    // The shared negatives: row norms r_j (1 without cosine scoring), normalised rows, layout mask.
    const rowsRaw = w.negatives!.table;
    const norms = normalize
      ? tf.sqrt(tf.add(tf.sum(tf.square(rowsRaw), 1), NORM_EPSILON))
      : tf.onesLike(w.negatives!.bias);
    const unit = tf.div(rowsRaw, tf.expandDims(norms, 1)) as tf.Tensor2D;
    const mask = tf.tensor1d(negativeTrainable);
    const perRow = tf.div(mask, tf.square(norms)); // mask_j / r_j^2
    // Each device's v_bj = sum_t a_tj o_t for each negative row (and its bias's gradient), for a
    // sketch's norms: [B, K, d], which only a sketch needs (its layout is full: no row masked).
    const negativeBiasGradients = tf.sum(logitSignal, 1); // [B, K]
    const negativeGradients = () => ({
      table: tf.matMul(tf.transpose(logitSignal, [0, 2, 1]), sessions).dataSync() as Float32Array,
      bias: negativeBiasGradients.dataSync() as Float32Array,
      ...(normalize
        ? { unit: unit.dataSync() as Float32Array, norms: norms.dataSync() as Float32Array }
        : {}),
    });
    // sum_j |J_j v_bj|^2 = sum_j (|v_bj|^2 - (2 - |u_j|^2)(u_j . v_bj)^2) / r_j^2 (cosine), with
    // v_bj = sum_t a_tj o_t; the first term is a Gram product, the second needs u_j . o_t.
    let negativeNorm2: tf.Tensor1D = ghostNorm2(sessions, tf.mul(logitSignal, tf.sqrt(perRow)));
    if (normalize) {
      const along = tf.reshape(
        matMul2d(tf.reshape(sessions, [B * n, d]) as tf.Tensor2D, tf.transpose(unit)),
        [B, n, K],
      );
      const projected = tf.sum(tf.mul(logitSignal, along), 1); // [B, K]
      const shrink = tf.mul(perRow, tf.sub(2, tf.sum(tf.square(unit), 1)));
      negativeNorm2 = tf.sub(negativeNorm2, tf.sum(tf.mul(tf.square(projected), shrink), 1));
    }
    const negativeBias2 = tf.sum(tf.mul(tf.square(negativeBiasGradients), mask), 1);
    const rowsNorm2 = tf.addN([
      tf.sum(tf.reshape(tf.square(gTable), [B, L * d]), 1),
      tf.sum(tf.reshape(tf.square(gBias), [B, L]), 1),
      negativeNorm2,
      negativeBias2,
    ]);
    // The dense tensors' gradients in manifest order: the kernels' as products, the biases'.
    const denseGradients: DenseGradient[] = [
      { a: x, s: gates },
      { a: beforeFlat, s: gates },
      { g: tf.sum(gates, 1) },
      { a: hsFlat, s: outs },
      { g: tf.sum(outs, 1) },
      ...(repeat ? [{ g: grads[5]! as tf.Tensor2D }] : []),
    ];
    const denseNorm2 = denseNorm2Of(denseGradients, { offset: 0, stride: 1 }, B);
    // A sketch's squared norm is at most c times the update's, c the most of a device's rows that
    // share a bucket (Cauchy-Schwarz within each bucket). Only where that could reach S is the
    // sketch's own norm computed (it costs a product per device of every negative row); elsewhere
    // no device is clipped either way, and the whole update's norm is reported.
    const wholeNorm2 = tf.add(denseNorm2, rowsNorm2);
    const sketched =
      sketch &&
      lr *
        Math.sqrt(
          Math.max(0, ...wholeNorm2.dataSync()) * mostSharing(sketch, ownRows, negatives, B),
        ) >=
        clipNorm;
    // A strided sketch carries one in k dense values: the device clips by those alone.
    const carried = sketch && sentDense(denseLength(dims), sketch);
    const sentDenseNorm2 =
      sketched && carried && carried.stride > 1
        ? denseNorm2Of(denseGradients, carried, B)
        : denseNorm2;
    const norm2 = sketched
      ? tf.add(
          sentDenseNorm2,
          tf.tensor1d(
            Float32Array.from(
              sketchedItemNorm2(
                sketch,
                d,
                {
                  rows: ownRows,
                  table: gTable.dataSync() as Float32Array,
                  bias: gBias.dataSync() as Float32Array,
                },
                negatives,
                negativeGradients(),
                B,
              ),
            ),
          ),
        )
      : wholeNorm2;
    const normValues = tf.mul(tf.sqrt(tf.relu(norm2)), lr).dataSync();
    // Each device's weight in the sum: -lr times its clip factor.
    const factors = tf.tensor1d(Array.from(normValues, (v) => -lr * clipFactor(v, clipNorm)));
    const perPosition = tf.reshape(factors, [B, 1, 1]);
    const gatesW = tf.reshape(tf.mul(gates, perPosition), [B * n, 4 * h]) as tf.Tensor2D;
    const outsW = tf.reshape(tf.mul(outs, perPosition), [B * n, d]) as tf.Tensor2D;
    const signalW = tf.reshape(tf.mul(logitSignal, perPosition), [B * n, K]) as tf.Tensor2D;
    const dense = [
      outer(tf.reshape(x, [B * n, d]) as tf.Tensor2D, gatesW),
      outer(tf.reshape(beforeFlat, [B * n, h]) as tf.Tensor2D, gatesW),
      tf.sum(gatesW, 0),
      outer(tf.reshape(hsFlat, [B * n, h]) as tf.Tensor2D, outsW),
      tf.sum(outsW, 0),
      ...(repeat ? [tf.sum(tf.mul(grads[5]!, tf.reshape(factors, [B, 1])), 0)] : []),
    ];
    let negativeSum: tf.Tensor2D = outer(signalW, tf.reshape(sessions, [B * n, d]) as tf.Tensor2D);
    if (normalize) {
      const along = tf.sum(tf.mul(unit, negativeSum), 1, true);
      negativeSum = tf.div(tf.sub(negativeSum, tf.mul(unit, along)), tf.expandDims(norms, 1));
    }
    const perSlot = tf.reshape(tf.tile(tf.reshape(factors, [B, 1]), [1, L]), [B * L]);
    // Tensors only: tidy walks what it returns, element by element for a typed array.
    return {
      dense,
      rows: tf.mul(gTable, tf.expandDims(perSlot, 1)),
      biases: tf.mul(gBias, perSlot),
      negativeRows: tf.mul(negativeSum, tf.expandDims(mask, 1)),
      negativeBias: tf.mul(tf.sum(signalW, 0), mask),
      norms: tf.tensor1d(normValues),
      kept: [inputs!, states!, scored!] as tf.Tensor[],
    };
  });
  const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const out = {
    dense: result.dense.map(read),
    rows: read(result.rows),
    biases: read(result.biases),
    negativeRows: read(result.negativeRows),
    negativeBias: read(result.negativeBias),
    norms: Array.from(read(result.norms)),
  };
  for (const t of [
    ...result.dense,
    result.rows,
    result.biases,
    result.negativeRows,
    result.negativeBias,
    result.norms,
    ...result.kept,
    ...Object.values(w).filter((v): v is tf.Tensor => v instanceof tf.Tensor),
    w.negatives.table,
    w.negatives.bias,
    ...Object.values(c),
  ]) {
    (t as tf.Tensor | null)?.dispose();
  }

  const sum = new Float32Array(updateLength(dims, layout));
  const denseAt = denseStart(dims, layout);
  let offset = denseAt;
  for (const part of out.dense) {
    sum.set(part, offset);
    offset += part.length;
  }
  if (offset - denseAt !== denseLength(dims)) {
    throw new Error('summed update: dense layout mismatch');
  }
  const at = rowOffsets(dims, layout);
  const addRow = (row: number, values: Float32Array, from: number, bias: number) => {
    const rowAt = at.embedding(row);
    for (let k = 0; k < d; k++) sum[rowAt + k] = sum[rowAt + k]! + values[from + k]!;
    sum[at.bias(row)] = sum[at.bias(row)]! + bias;
  };
  for (let i = 0; i < B * L; i++) {
    if (ownTrainable[i])
      addRow(p.rows[Math.floor(i / L) * M + (i % L)]!, out.rows, i * d, out.biases[i]!);
  }
  negatives.forEach((row, k) => {
    if (negativeTrainable[k]) addRow(row, out.negativeRows, k * d, out.negativeBias[k]!);
  });
  return { sum, norms: out.norms, examples: Array.from(p.examples) };
}
