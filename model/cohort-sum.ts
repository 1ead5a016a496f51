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

/** sum_t x[i + t] y[j + t] over n values. */
function dotOf(x: Float32Array, i: number, y: Float32Array, j: number, n: number): number {
  let acc = 0;
  for (let t = 0; t < n; t++) acc += x[i + t]! * y[j + t]!;
  return acc;
}

/**
 * Each device's squared norm of its update's item part as sketch `sketch` holds it
 * (protocol/item-sketch.ts): its own rows' and the shared negatives' gradients (embedding and bias)
 * added with their signs, over √depth, into their buckets of each table. A bucket's squared norm is
 * its rows' own squared norms plus twice the inner products of every pair of rows that share it, so
 * the sketch's is sum_r |g_r|^2 + (2 / depth) sum_t sum over the pairs sharing a bucket of table t
 * of s_r s_r' (g_r . g_r'). The negatives' own norms are ghost norms (`negativeNorm2`, from the
 * caller). A negative's gradient is J_j v_bj, v_bj = sum_t a_tj o_t, with J_j = (I - u_j u_j^T) /
 * r_j under cosine scoring (`cosine`: u_j, r_j, and `along` [B, n, K]: u_j . o_t) and the identity
 * without; so two negatives' inner product comes from a_j^T (O O^T) a_j' and their projections on
 * u_j and u_j', and a negative's with an own row g from sum_t a_tj (J_j g . o_t). Which negatives
 * pair up is the same for every device (the round's hashes); a device's own rows meet only the
 * negatives in their buckets.
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
  signal: tf.Tensor3D,
  sessions: tf.Tensor3D,
  sessionsGram: tf.Tensor3D,
  negativeNorm2: tf.Tensor1D,
  cosine: { unit: tf.Tensor2D; norms: tf.Tensor1D; along: tf.Tensor3D } | null,
  devices: number,
): tf.Tensor1D {
  const depth = sketchDepth(sketch);
  const [, n, K] = signal.shape;
  const L = own.rows.length / devices;
  // The negatives in each bucket of each table, with their signs (row 0 is never sketched).
  const inBucket = new Map<number, { k: number; sign: number }[]>();
  for (let k = 0; k < K; k++) {
    if (negatives[k]! <= 0) continue;
    for (let t = 0; t < depth; t++) {
      const { bucket, sign } = bucketOf(negatives[k]!, sketch, t);
      const list = inBucket.get(bucket) ?? [];
      list.push({ k, sign });
      inBucket.set(bucket, list);
    }
  }
  const first: number[] = [];
  const second: number[] = [];
  const signs: number[] = [];
  for (const list of inBucket.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        first.push(list[i]!.k);
        second.push(list[j]!.k);
        signs.push(list[i]!.sign * list[j]!.sign);
      }
    }
  }
  // Per device and negative, its signals over the positions (a_tj, t = 0 .. n - 1) and u_j . o_t.
  const a = tf.transpose(signal, [0, 2, 1]).dataSync() as Float32Array;
  const along = cosine ? (tf.transpose(cosine.along, [0, 2, 1]).dataSync() as Float32Array) : null;
  const unit = cosine ? (cosine.unit.dataSync() as Float32Array) : null;
  const norms = cosine ? (cosine.norms.dataSync() as Float32Array) : null;
  const o = sessions.dataSync() as Float32Array;
  const G = first.length > 0 ? (sessionsGram.dataSync() as Float32Array) : null;
  const uu = first.map((k, p) => (unit ? dotOf(unit, k * d, unit, second[p]! * d, d) : 0));
  const column = (b: number, k: number) => (b * K + k) * n;
  const g = own.table;
  const w = new Float64Array(d);
  const out = new Float64Array(devices);
  for (let b = 0; b < devices; b++) {
    let sum = 0;
    let paired = 0;
    // Pairs of negatives sharing a bucket: (v . v') = a_j^T (O O^T) a_j'; with cosine scoring
    // (v - u (u . v)) . (v' - u' (u' . v')) / (r r'), for v = v_bj and v' = v_bj'.
    for (let p = 0; p < first.length; p++) {
      const x = column(b, first[p]!);
      const y = column(b, second[p]!);
      let inner = 0;
      let bias1 = 0;
      let bias2 = 0;
      for (let t = 0; t < n; t++) {
        bias1 += a[x + t]!;
        bias2 += a[y + t]!;
        if (a[x + t] === 0) continue;
        inner += a[x + t]! * dotOf(G!, (b * n + t) * n, a, y, n);
      }
      if (along) {
        const own1 = dotOf(a, x, along, x, n); // u_j . v_bj
        const own2 = dotOf(a, y, along, y, n); // u_j' . v_bj'
        const cross1 = dotOf(a, x, along, y, n); // u_j' . v_bj
        const cross2 = dotOf(a, y, along, x, n); // u_j . v_bj'
        inner =
          (inner - own2 * cross1 - own1 * cross2 + own1 * own2 * uu[p]!) /
          (norms![first[p]!]! * norms![second[p]!]!);
      }
      paired += signs[p]! * (inner + bias1 * bias2);
    }
    // The device's own rows: their norms, their pairs, and the negatives in their buckets, whose
    // inner product with a row g is sum_t a_tj (J_j g . o_t), J_j being symmetric.
    for (let l = 0; l < L; l++) {
      const i = b * L + l;
      const row = own.rows[i]!;
      if (row <= 0) continue;
      sum += dotOf(g, i * d, g, i * d, d) + own.bias[i]! * own.bias[i]!;
      for (let t = 0; t < depth; t++) {
        const at = bucketOf(row, sketch, t);
        for (let l2 = l + 1; l2 < L; l2++) {
          const j = b * L + l2;
          if (own.rows[j]! <= 0) continue;
          const other = bucketOf(own.rows[j]!, sketch, t);
          if (other.bucket !== at.bucket) continue;
          paired +=
            at.sign * other.sign * (dotOf(g, i * d, g, j * d, d) + own.bias[i]! * own.bias[j]!);
        }
        for (const { k, sign } of inBucket.get(at.bucket) ?? []) {
          const onUnit = unit ? dotOf(unit, k * d, g, i * d, d) : 0; // u_j . g
          for (let c = 0; c < d; c++) {
            w[c] = unit ? (g[i * d + c]! - unit[k * d + c]! * onUnit) / norms![k]! : g[i * d + c]!;
          }
          const x = column(b, k);
          let dot = 0;
          let biasGradient = 0;
          for (let t = 0; t < n; t++) {
            if (a[x + t] === 0) continue;
            biasGradient += a[x + t]!;
            let wo = 0;
            for (let c = 0; c < d; c++) wo += w[c]! * o[(b * n + t) * d + c]!;
            dot += a[x + t]! * wo;
          }
          paired += at.sign * sign * (dot + own.bias[i]! * biasGradient);
        }
      }
    }
    out[b] = sum + (2 / depth) * paired;
  }
  return tf.add(negativeNorm2, tf.tensor1d(Float32Array.from(out)));
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
    const negativeBiasGradients = tf.sum(logitSignal, 1); // [B, K]
    const sessionsGram = gram(sessions);
    // u_j . o_t for every position and negative (cosine scoring).
    const along = normalize
      ? (tf.reshape(matMul2d(tf.reshape(sessions, [B * n, d]) as tf.Tensor2D, tf.transpose(unit)), [
          B,
          n,
          K,
        ]) as tf.Tensor3D)
      : null;
    // sum_j m_j |J_j v_bj|^2 (and the biases'), over the negatives kept by `kept` (m_j):
    // (|v_bj|^2 - (2 - |u_j|^2)(u_j . v_bj)^2) / r_j^2 under cosine scoring, with
    // v_bj = sum_t a_tj o_t; the first term is a Gram product, the second needs u_j . o_t.
    const negativeNorm2 = (kept: tf.Tensor1D): tf.Tensor1D => {
      const perRow = tf.div(kept, tf.square(norms)); // m_j / r_j^2
      let norm2: tf.Tensor1D = tf.sum(
        tf.mul(sessionsGram, gram(tf.mul(logitSignal, tf.sqrt(perRow)))),
        [1, 2],
      );
      if (along) {
        const projected = tf.sum(tf.mul(logitSignal, along), 1); // [B, K]
        const shrink = tf.mul(perRow, tf.sub(2, tf.sum(tf.square(unit), 1)));
        norm2 = tf.sub(norm2, tf.sum(tf.mul(tf.square(projected), shrink), 1));
      }
      return tf.add(norm2, tf.sum(tf.mul(tf.square(negativeBiasGradients), kept), 1));
    };
    const negativesNorm2 = negativeNorm2(mask);
    const rowsNorm2 = tf.addN([
      tf.sum(tf.reshape(tf.square(gTable), [B, L * d]), 1),
      tf.sum(tf.reshape(tf.square(gBias), [B, L]), 1),
      negativesNorm2,
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
    // A sketch holds the negatives but row 0 (the layout is full, so no other is masked).
    const sketchKept = Float32Array.from(negatives, (r) => (r > 0 ? 1 : 0));
    const norm2 = sketched
      ? tf.add(
          sentDenseNorm2,
          sketchedItemNorm2(
            sketch,
            d,
            {
              rows: ownRows,
              table: gTable.dataSync() as Float32Array,
              bias: gBias.dataSync() as Float32Array,
            },
            negatives,
            logitSignal,
            sessions,
            sessionsGram,
            sketchKept.every((m, k) => m === negativeTrainable[k])
              ? negativesNorm2
              : negativeNorm2(tf.tensor1d(sketchKept)),
            along && { unit, norms: norms as tf.Tensor1D, along },
            B,
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
