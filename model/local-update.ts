/**
 * Local training on the device, for one device or many at once. Every device starts from the same
 * global weights and takes `steps` Adam steps on its own examples (all of them each step), pulled
 * back toward the global weights by a proximal term (FedProx, Li et al. 2020); its update is its
 * weights minus the global ones, in the round's layout (protocol/update-layout.ts).
 *
 * Batched, each device keeps its own copy of every trained tensor along a leading device axis, and
 * the objective is the sum of the devices' losses, so the gradient of that sum with respect to
 * device b's copy is the gradient of device b's loss alone, and Adam is elementwise: B devices in
 * one call follow exactly the paths they would follow one by one (local-update.test.ts checks it).
 * That is what lets a simulation run a population through the code the worker runs.
 *
 * The output layer scores each device's own items and the round's K shared negatives
 * (device-batch.ts), not the whole catalogue: a full softmax over 43k items would cost each
 * device ~20x more. Uniform negatives need no logQ correction (it is a constant); negatives drawn
 * by item bias carry theirs in the slot mask.
 */
import * as tf from '@tensorflow/tfjs-core';
import { denseLength, splitFlat, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import {
  denseStart,
  rowOffsets,
  updateLength,
  type ModelLayout,
} from '../protocol/update-layout.js';
import { ADAM } from './adam.js';
import { deviceLstm } from './device-lstm.js';
import { packDevices, sampleNegatives, type DeviceBatch } from './device-batch.js';
import { l2NormalizeRows, prefixMeanWeights } from './forward.js';
import { gatherRows } from './gather-rows.js';
import { batchMatMul, matMul2d } from './mat-mul.js';
import { scatterAdd } from './repeat.js';
import { PADDING_LOGIT } from './loss.js';
import type { TrainSession } from './train.js';

/** How a device trains before it sends an update. */
export interface LocalUpdateSettings {
  /** Optimiser steps, each over all of the device's examples. */
  readonly steps: number;
  /**
   * 'adam' (model/adam.ts constants, fresh moments every round) or plain gradient descent 'sgd',
   * which with one step is FedSGD's device step: the update is -lr times the gradient.
   */
  readonly optimizer?: 'adam' | 'sgd';
  readonly learningRate: number;
  /** Proximal pull (mu/2)||w - global||^2 on the trained tensors. */
  readonly mu: number;
  /** Negatives the round's devices share (device-batch.ts sampleNegatives). */
  readonly negatives: number;
  /**
   * How they are drawn: 0 (the default) uniformly; alpha > 0 in proportion to exp(alpha * item
   * bias) of the global model, with the logQ correction.
   */
  readonly negativeAlpha?: number;
  /** The round's public seed (draws the negatives). */
  readonly seed: number;
}

/** Per-device updates of one call, in the layout's coordinates, not yet clipped. */
export interface LocalUpdates {
  readonly deltas: Float32Array[];
  /** Examples each device trained on (0: its delta is all zeros). */
  readonly examples: number[];
}

/**
 * The trained tensors, each with a leading device axis (the item rows: one row per slot). The dense
 * tensors' axis has length B (each device its own copy) or 1 (one copy all devices share: the
 * summed path of cohort-sum.ts).
 */
export interface Trained {
  table: tf.Tensor2D; // [B*M, d]
  bias: tf.Tensor1D; // [B*M]
  kernel: tf.Tensor3D; // [B or 1, d, 4h]
  recurrent: tf.Tensor3D; // [B or 1, h, 4h]
  lstmBias: tf.Tensor2D; // [B or 1, 4h]
  projection: tf.Tensor3D; // [B or 1, h, d]
  projectionBias: tf.Tensor2D; // [B or 1, d]
  repeat: tf.Tensor2D; // [B, maxLen] (zeros, untrained, without scoring.repeat)
  /**
   * The round's K negative rows and biases, one copy all devices share (the summed path); `table`
   * and `bias` then hold each device's own slots only ([B*L, d], [B*L]).
   */
  negatives?: { table: tf.Tensor2D; bias: tf.Tensor1D };
}
type Name = Exclude<keyof Trained, 'negatives'>;

/**
 * Zero tensors added to the gates' input half (`xz`, [1, B*S*T, 4h]) and to the projection's output
 * (`out`, [1, B*S*T, d]) with shared dense tensors: the loss's gradient with respect to them is
 * each position's signal, from which cohort-sum.ts reads every device's gradient; with shared
 * negatives, `negatives` ([B*S*T, K]) is added to their logits. `seen` gets the embedded inputs
 * [B, S*T, d] and the hidden states [1, B*S, T, h]; `scored` the session vectors that multiply the
 * (normalised) item rows [B, S*T, d].
 */
export interface Probes {
  readonly xz: tf.Tensor3D;
  readonly out: tf.Tensor3D;
  readonly negatives?: tf.Tensor2D;
  readonly seen: (inputs: tf.Tensor3D, states: tf.Tensor4D) => void;
  readonly scored?: (out: tf.Tensor3D) => void;
}
const NAMES: readonly Name[] = [
  'table',
  'bias',
  'kernel',
  'recurrent',
  'lstmBias',
  'projection',
  'projectionBias',
  'repeat',
];

/** The constant tensors of one batch. */
export interface BatchTensors {
  readonly inputs: tf.Tensor1D;
  readonly targets: tf.Tensor2D; // one-hot [B*S*T, M]
  readonly weights: tf.Tensor2D; // [B, S*T], each device's row over its total weight
  readonly slotMask: tf.Tensor3D; // [B, 1, M] the slot's offset (0 or -log pi) or PADDING_LOGIT
  readonly repeatAt: tf.Tensor2D;
  readonly repeatBonus: tf.Tensor1D;
  readonly prefix: tf.Tensor2D | null;
}

/**
 * The batch's constant tensors; `sharedNegatives`: the inputs index a table of each device's own
 * slots only (b * L + slot), the negatives being one shared table (Trained.negatives).
 */
export function batchTensors(
  dims: ModelDims,
  p: DeviceBatch,
  sharedNegatives = false,
): BatchTensors {
  const { devices: B, windows: S, steps: T, slots: M, ownSlots: L } = p;
  const scaled = new Float32Array(B * S * T);
  for (let i = 0; i < scaled.length; i++) {
    const total = p.deviceWeight[Math.floor(i / (S * T))]!;
    scaled[i] = total > 0 ? p.weights[i]! / total : 0;
  }
  const decay = dims.scoring?.itemMean;
  return {
    inputs: tf.tensor1d(
      sharedNegatives ? p.inputs.map((at) => Math.floor(at / M) * L + (at % M)) : p.inputs,
      'int32',
    ),
    targets: tf.tidy(() => tf.oneHot(tf.tensor1d(p.targets, 'int32'), M)) as tf.Tensor2D,
    weights: tf.tensor2d(scaled, [B, S * T]),
    // Padding and switched-off slots never win; a sampled negative's logQ correction rides along.
    slotMask: tf.tensor3d(
      p.valid.map((v, i) => (v > 0 ? p.offset[i]! : PADDING_LOGIT)),
      [B, 1, M],
    ),
    repeatAt: tf.tensor2d(p.repeatAt, [p.repeatAt.length, 1], 'int32'),
    repeatBonus: tf.tensor1d(p.repeatBonus, 'int32'),
    prefix: decay === undefined ? null : prefixMeanWeights(T, decay),
  };
}

/** Every device's loss [B]: the weighted mean cross-entropy of its examples. */
export function deviceLoss(
  dims: ModelDims,
  p: DeviceBatch,
  c: BatchTensors,
  w: Trained,
  probes?: Probes,
): tf.Tensor1D {
  const { devices: B, windows: S, steps: T, slots: M } = p;
  const d = dims.embedding;
  const h = dims.hidden;
  const scoring = dims.scoring;
  // G copies of the dense tensors: one per device, or one for all (then one product for all).
  const G = w.kernel.shape[0];
  const x = tf.reshape(gatherRows(w.table, c.inputs), [B, S * T, d]) as tf.Tensor3D;
  const xg = tf.reshape(x, [G, (B * S * T) / G, d]) as tf.Tensor3D;
  let xz: tf.Tensor3D = tf.add(batchMatMul(xg, w.kernel), tf.expandDims(w.lstmBias, 1));
  if (probes) xz = tf.add(xz, probes.xz);
  const states = deviceLstm(tf.reshape(xz, [G, (B * S) / G, T, 4 * h]) as tf.Tensor4D, w.recurrent);
  probes?.seen(x, states);
  const hs = tf.reshape(states, [G, (B * S * T) / G, h]) as tf.Tensor3D;
  let projected: tf.Tensor3D = tf.add(
    batchMatMul(hs, w.projection),
    tf.expandDims(w.projectionBias, 1),
  );
  if (probes) projected = tf.add(projected, probes.out);
  let out = tf.reshape(projected, [B, S * T, d]) as tf.Tensor3D;
  if (scoring?.lastItem) out = tf.add(out, x);
  if (c.prefix) {
    // Time-major [T, B*S*d] so one matmul mixes every window's prefix (forward.ts prefixItemMeans).
    const timeMajor = tf.reshape(tf.transpose(tf.reshape(x, [B * S, T, d]), [1, 0, 2]), [T, -1]);
    const mixed = tf.reshape(tf.matMul(c.prefix, timeMajor as tf.Tensor2D), [T, B * S, d]);
    out = tf.add(out, tf.reshape(tf.transpose(mixed, [1, 0, 2]), [B, S * T, d]));
  }
  if (scoring?.normalize) out = tf.mul(l2NormalizeRows(out), scoring.scale);
  probes?.scored?.(out);
  const shared = w.negatives;
  const own = shared ? p.ownSlots : M;
  const table = tf.reshape(w.table, [B, own, d]) as tf.Tensor3D;
  const rows = scoring?.normalize ? l2NormalizeRows(table) : table;
  let logits: tf.Tensor = tf.add(
    batchMatMul(out, tf.transpose(rows, [0, 2, 1])),
    tf.reshape(w.bias, [B, 1, own]),
  );
  if (shared) {
    // One product of every position with the K negatives all devices share.
    const K = M - own;
    const negatives = scoring?.normalize ? l2NormalizeRows(shared.table) : shared.table;
    let scores: tf.Tensor2D = matMul2d(
      tf.reshape(out, [B * S * T, d]) as tf.Tensor2D,
      tf.transpose(negatives),
    );
    if (probes?.negatives) scores = tf.add(scores, probes.negatives);
    const negativeLogits = tf.add(tf.reshape(scores, [B, S * T, K]), shared.bias);
    logits = tf.concat([logits, negativeLogits], 2);
  }
  logits = tf.add(logits, c.slotMask);
  if (scoring?.repeat && p.repeatAt.length > 0) {
    const bonus = gatherRows(tf.reshape(w.repeat, [-1]), c.repeatBonus) as tf.Tensor1D;
    logits = scatterAdd(tf.reshape(logits, [-1]), bonus, c.repeatAt);
  }
  const logp = tf.logSoftmax(tf.reshape(logits, [B * S * T, M]));
  const picked = tf.reshape(tf.sum(tf.mul(logp, c.targets), 1), [B, S * T]);
  return tf.neg(tf.sum(tf.mul(picked, c.weights), 1)) as tf.Tensor1D;
}

/**
 * Every device's copy of the trained tensors: from `sources[b]` for device b (one source: the same
 * weights for all); `denseCopies` 1 gives one copy of the dense tensors for all devices, and
 * `slotsPerDevice` the first slots of each device only in the table (p.ownSlots: its own items).
 */
export function startingCopies(
  dims: ModelDims,
  sources: readonly Float32Array[],
  p: DeviceBatch,
  denseCopies: number = p.devices,
  slotsPerDevice: number = p.slots,
): Trained {
  const layout = tensorLayout(dims);
  const parts = sources.map((w) => splitFlat(w, layout));
  const B = p.devices;
  const M = p.slots;
  const of = (b: number) => parts[sources.length === 1 ? 0 : b]!;
  const tile = (
    name: Parameters<(typeof parts)[0]['get']>[0],
    shape: number[],
    copies: number = denseCopies,
  ) => {
    const size = parts[0]!.get(name)!.length;
    const out = new Float32Array(copies * size);
    for (let b = 0; b < copies; b++) out.set(of(b).get(name)!, b * size);
    return tf.tensor(out, [copies, ...shape]);
  };
  const { embedding: d, hidden: h, maxSessionLength: maxLen } = dims;
  const slots = B * slotsPerDevice;
  const rows = new Float32Array(slots * d);
  const bias = new Float32Array(slots);
  for (let i = 0; i < slots; i++) {
    const b = Math.floor(i / slotsPerDevice);
    const r = p.rows[b * M + (i % slotsPerDevice)]!;
    const source = of(b);
    rows.set(source.get('item_embedding')!.subarray(r * d, r * d + d), i * d);
    bias[i] = source.get('item_bias')![r]!;
  }
  return {
    table: tf.tensor2d(rows, [slots, d]),
    bias: tf.tensor1d(bias),
    kernel: tile('lstm_kernel', [d, 4 * h]) as tf.Tensor3D,
    recurrent: tile('lstm_recurrent', [h, 4 * h]) as tf.Tensor3D,
    lstmBias: tile('lstm_bias', [4 * h]) as tf.Tensor2D,
    projection: tile('projection_kernel', [h, d]) as tf.Tensor3D,
    projectionBias: tile('projection_bias', [d]) as tf.Tensor2D,
    repeat: dims.scoring?.repeat
      ? (tile('repeat_bonus', [maxLen], B) as tf.Tensor2D)
      : tf.zeros([B, maxLen]),
  };
}

/**
 * The round's negatives (drawn from its public seed and, with negativeAlpha, the global model's
 * item bias) and `devices` packed against them.
 */
export function packRound(
  dims: ModelDims,
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: ModelLayout,
  settings: Pick<LocalUpdateSettings, 'negatives' | 'seed' | 'negativeAlpha'>,
): { p: DeviceBatch; negatives: Int32Array } {
  const { rows, logInclusion } = sampleNegatives(
    dims,
    global,
    settings.negatives,
    settings.seed,
    settings.negativeAlpha ?? 0,
  );
  return { p: packDevices(dims, devices, rows, layout, logInclusion), negatives: rows };
}

/**
 * Runs local training for every device of `devices` from `global` and returns each device's
 * update in `layout`'s coordinates (unclipped: the caller clips, as the device does before it
 * sends). Devices without a next-item example get an all-zero update. Needs tfjs' gradients
 * registered (gradients.ts ensureGradients; Node tools register them at start). `starts[b]`, when given, is
 * where device b's training starts instead (its fine-tuned copy of this very version): the
 * proximal term and the update stay relative to `global`.
 */
export function localUpdates(
  dims: ModelDims,
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: ModelLayout,
  settings: LocalUpdateSettings,
  starts?: readonly Float32Array[],
): LocalUpdates {
  const { p } = packRound(dims, global, devices, layout, settings);
  const c = batchTensors(dims, p);
  const start = startingCopies(dims, [global], p);
  const begin = starts ? startingCopies(dims, starts, p) : start;
  const w: Trained = { ...begin };
  // Adam's moments; plain descent keeps none (scalars stand in, never read).
  const zeros = () =>
    Object.fromEntries(
      NAMES.map((k) => [k, settings.optimizer === 'sgd' ? tf.scalar(0) : tf.zerosLike(start[k])]),
    ) as unknown as Trained;
  const m = zeros();
  const v = zeros();
  const rowMask = tf.tensor2d(p.trainable, [p.trainable.length, 1]);
  const biasMask = tf.tensor1d(p.trainable);
  // The repeat bonus exists (and has a gradient) only with scoring.repeat.
  const names = NAMES.filter((k) => k !== 'repeat' || dims.scoring?.repeat === true);
  const { beta1, beta2, epsilon } = ADAM;
  for (let t = 1; t <= settings.steps; t++) {
    const stepSize = (settings.learningRate * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    const next = tf.tidy(() => {
      const objective = (...xs: tf.Tensor[]) => {
        const cur = {
          ...w,
          ...Object.fromEntries(names.map((k, i) => [k, xs[i]!])),
        } as unknown as Trained;
        let loss: tf.Tensor = tf.sum(deviceLoss(dims, p, c, cur));
        if (settings.mu > 0) {
          const prox = names.map((k) => tf.sum(tf.squaredDifference(cur[k], start[k])));
          loss = tf.add(loss, tf.mul(settings.mu / 2, tf.addN(prox)));
        }
        return loss as tf.Scalar;
      };
      const grads = tf.grads(objective)(names.map((k) => w[k]));
      const out: Record<string, tf.Tensor> = {};
      names.forEach((k, i) => {
        let g = grads[i]!;
        if (k === 'table') g = tf.mul(g, rowMask);
        if (k === 'bias') g = tf.mul(g, biasMask);
        if (settings.optimizer === 'sgd') {
          out[`w.${k}`] = tf.sub(w[k], tf.mul(g, settings.learningRate));
          return;
        }
        const mk = tf.add(tf.mul(m[k], beta1), tf.mul(g, 1 - beta1));
        const vk = tf.add(tf.mul(v[k], beta2), tf.mul(tf.square(g), 1 - beta2));
        out[`m.${k}`] = mk;
        out[`v.${k}`] = vk;
        out[`w.${k}`] = tf.sub(w[k], tf.div(tf.mul(mk, stepSize), tf.add(tf.sqrt(vk), epsilon)));
      });
      return out;
    });
    for (const k of names) {
      if (t > 1) w[k].dispose();
      (w as unknown as Record<string, tf.Tensor>)[k] = next[`w.${k}`]!;
      if (!next[`m.${k}`]) continue; // sgd keeps no moments
      m[k].dispose();
      v[k].dispose();
      (m as unknown as Record<string, tf.Tensor>)[k] = next[`m.${k}`]!;
      (v as unknown as Record<string, tf.Tensor>)[k] = next[`v.${k}`]!;
    }
  }
  const deltas = readDeltas(dims, p, layout, start, w);
  for (const k of NAMES) {
    if (w[k] !== begin[k]) w[k].dispose();
    if (begin[k] !== start[k]) begin[k].dispose();
    start[k].dispose();
    m[k].dispose();
    v[k].dispose();
  }
  rowMask.dispose();
  biasMask.dispose();
  for (const t of Object.values(c)) (t as tf.Tensor | null)?.dispose();
  return { deltas, examples: Array.from(p.examples) };
}

/**
 * Each device's local loss at `weights` (what localUpdates minimises, before the proximal term). With
 * `negatives` >= items - 1 every catalogue item is a candidate once: the full softmax.
 */
export function localLosses(
  dims: ModelDims,
  weights: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  settings: Pick<LocalUpdateSettings, 'negatives' | 'seed' | 'negativeAlpha'>,
): number[] {
  const { p } = packRound(dims, weights, devices, { kind: 'full' }, settings);
  const c = batchTensors(dims, p);
  const w = startingCopies(dims, [weights], p);
  const result = tf.tidy(() => deviceLoss(dims, p, c, w));
  const losses = result.dataSync();
  result.dispose();
  for (const t of [...Object.values(c), ...Object.values(w)]) (t as tf.Tensor | null)?.dispose();
  return Array.from(losses);
}

/** Each device's trained-minus-start values, written into the layout's coordinates. */
function readDeltas(
  dims: ModelDims,
  p: DeviceBatch,
  layout: ModelLayout,
  start: Trained,
  end: Trained,
): Float32Array[] {
  const diff = (k: Name) => {
    const t = tf.sub(end[k], start[k]);
    const values = t.dataSync() as Float32Array;
    t.dispose();
    return values;
  };
  const B = p.devices;
  const d = dims.embedding;
  const length = updateLength(dims, layout);
  const dense = denseLength(dims);
  const denseAt = denseStart(dims, layout);
  const deltas = Array.from({ length: B }, () => new Float32Array(length));
  // Dense tensors in manifest order: kernel, recurrent, lstm bias, projection, its bias, repeat.
  let offset = denseAt;
  for (const k of ['kernel', 'recurrent', 'lstmBias', 'projection', 'projectionBias'] as const) {
    const values = diff(k);
    const per = values.length / B;
    for (let b = 0; b < B; b++) deltas[b]!.set(values.subarray(b * per, (b + 1) * per), offset);
    offset += per;
  }
  if (dims.scoring?.repeat) {
    const values = diff('repeat');
    const per = values.length / B;
    for (let b = 0; b < B; b++) deltas[b]!.set(values.subarray(b * per, (b + 1) * per), offset);
    offset += per;
  }
  if (offset !== denseAt + dense) throw new Error('local update: dense layout mismatch');
  const table = diff('table');
  const bias = diff('bias');
  const at = rowOffsets(dims, layout);
  for (let i = 0; i < p.rows.length; i++) {
    if (!p.trainable[i]) continue;
    const b = Math.floor(i / p.slots);
    const row = p.rows[i]!;
    deltas[b]!.set(table.subarray(i * d, i * d + d), at.embedding(row));
    deltas[b]![at.bias(row)] = bias[i]!;
  }
  return deltas;
}
