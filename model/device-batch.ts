/**
 * Packs several devices' local data into the index arrays of one device-batched local update
 * (local-update.ts). Every device gets its own slots: its distinct items first (L slots, padded),
 * then the K negatives the round shares. A negative the device also saw is switched off for that
 * device, so every catalogue row appears at most once per device and its gradient is exact.
 *
 * Nothing here depends on the other devices of the batch except the padded sizes (L, S, T), and
 * padding is masked out of every sum: a device's update is the same alone or batched.
 */
import { mulberry32 } from '../protocol/prng.js';
import type { ModelDims } from '../protocol/manifest.js';
import type { ModelLayout } from '../protocol/update-layout.js';
import { toWindows } from './batches.js';
import type { TrainSession } from './train.js';

/** The index arrays of one batch of devices. */
export interface DeviceBatch {
  /** Devices B, windows per device S, steps per window T, own-item slots L, slots per device M. */
  readonly devices: number;
  readonly windows: number;
  readonly steps: number;
  readonly ownSlots: number;
  readonly slots: number;
  /** [B*M] catalogue row behind each slot (0 for an unused slot). */
  readonly rows: Int32Array;
  /** [B*M] 1 where a slot is a real candidate (a device's item or a negative it did not see). */
  readonly valid: Float32Array;
  /** [B*M] added to each valid slot's logit: minus a negative's log inclusion; 0 for own items. */
  readonly offset: Float32Array;
  /** [B*M] 1 where the slot's row is trained and reported (the layout's rows, or all for 'full'). */
  readonly trainable: Float32Array;
  /** [B*S*T] flat slot (b*M + slot) of every input position; padding points at the device's slot 0. */
  readonly inputs: Int32Array;
  /** [B*S*T] slot (0..M-1) of the next item at every position; 0 where nothing is predicted. */
  readonly targets: Int32Array;
  /** [B*S*T] sample weight of every position's example; 0 for padding and last positions. */
  readonly weights: Float32Array;
  /** [B] sum of each device's example weights (the device's loss is their weighted mean). */
  readonly deviceWeight: Float32Array;
  /** Repeat-bonus occurrences: logit index (position*M + slot) and device-flat bonus index. */
  readonly repeatAt: Int32Array;
  readonly repeatBonus: Int32Array;
  /** Examples (weighted positions > 0) per device. */
  readonly examples: Int32Array;
}

/**
 * K distinct negatives, uniform over 1..N-1, drawn from `seed` alone (the round's public seed), so
 * every device of a round, alone or batched, scores the same ones. All items when K >= N-1.
 */
export function roundNegatives(items: number, count: number, seed: number): Int32Array {
  const pool = items - 1;
  if (count >= pool) return Int32Array.from({ length: pool }, (_, i) => i + 1);
  const rng = mulberry32(seed);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(1 + Math.floor(rng() * pool));
  return Int32Array.from([...chosen].sort((a, b) => a - b));
}

/** A round's shared negatives, and what each one's logit is corrected by (none for uniform ones). */
export interface RoundNegatives {
  readonly rows: Int32Array;
  /** [K] log of each row's inclusion probability, subtracted from its logit; null: uniform. */
  readonly logInclusion: Float32Array | null;
}

/**
 * The round's negatives, the same for every device: uniform (`alpha` 0, roundNegatives), or K draws
 * with replacement from q_i ∝ exp(alpha b_i) over the global model's item biases b (public: the
 * bias tracks how often an item is the next click), kept once each. A kept row's logit is then
 * lowered by log pi_i, pi_i = 1 - (1 - q_i)^K its chance of being in the set, the logQ correction
 * of sampled softmax (Bengio & Senecal 2008; Jean et al. 2015), so popular negatives, drawn more
 * often, are not over-counted. Drawn from `seed` alone.
 */
export function sampleNegatives(
  dims: ModelDims,
  global: Float32Array,
  count: number,
  seed: number,
  alpha: number,
): RoundNegatives {
  const pool = dims.items - 1;
  if (!(alpha > 0) || count >= pool) {
    return { rows: roundNegatives(dims.items, count, seed), logInclusion: null };
  }
  const at = dims.items * dims.embedding;
  let top = -Infinity;
  for (let r = 1; r <= pool; r++) top = Math.max(top, global[at + r]!);
  const cumulative = new Float64Array(pool);
  let total = 0;
  for (let r = 1; r <= pool; r++) {
    total += Math.exp(alpha * (global[at + r]! - top));
    cumulative[r - 1] = total;
  }
  const rng = mulberry32(seed);
  const chosen = new Set<number>();
  for (let k = 0; k < count; k++) {
    const u = rng() * total;
    let lo = 0;
    let hi = pool - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    chosen.add(lo + 1);
  }
  const rows = Int32Array.from([...chosen].sort((a, b) => a - b));
  const logInclusion = Float32Array.from(rows, (r) => {
    const q = Math.exp(alpha * (global[at + r]! - top)) / total;
    return Math.log(-Math.expm1(count * Math.log1p(-q)));
  });
  return { rows, logInclusion };
}

/** Packs `devices` (each a list of sessions in model indices) against `negatives`. */
export function packDevices(
  dims: ModelDims,
  devices: readonly (readonly TrainSession[])[],
  negatives: Int32Array,
  layout: ModelLayout,
  logInclusion: Float32Array | null = null,
): DeviceBatch {
  const maxLen = dims.maxSessionLength;
  const windows = devices.map((sessions) => toWindows(sessions, maxLen));
  const owns = windows.map((list) => {
    const slotOf = new Map<number, number>();
    for (const w of list)
      for (const item of w.items) if (!slotOf.has(item)) slotOf.set(item, slotOf.size);
    return slotOf;
  });
  const B = devices.length;
  const S = Math.max(1, ...windows.map((w) => w.length));
  const T = Math.max(2, ...windows.flatMap((w) => w.map((x) => x.items.length)));
  const L = Math.max(1, ...owns.map((o) => o.size));
  const K = negatives.length;
  const M = L + K;
  const layoutRows = layout.kind === 'rows' ? new Set(layout.rows) : null;

  const rows = new Int32Array(B * M);
  const valid = new Float32Array(B * M);
  const offset = new Float32Array(B * M);
  const trainable = new Float32Array(B * M);
  const inputs = new Int32Array(B * S * T);
  const targets = new Int32Array(B * S * T);
  const weights = new Float32Array(B * S * T);
  const deviceWeight = new Float32Array(B);
  const examples = new Int32Array(B);
  const repeatAt: number[] = [];
  const repeatBonus: number[] = [];
  const trains = (row: number) => (layoutRows ? layoutRows.has(row) : true);

  for (let b = 0; b < B; b++) {
    const own = owns[b]!;
    for (const [item, slot] of own) {
      rows[b * M + slot] = item;
      valid[b * M + slot] = 1;
      trainable[b * M + slot] = trains(item) ? 1 : 0;
    }
    negatives.forEach((item, k) => {
      const at = b * M + L + k;
      rows[at] = item;
      if (own.has(item)) return; // the device's own slot stands for this row
      valid[at] = 1;
      if (logInclusion) offset[at] = -logInclusion[k]!;
      trainable[at] = trains(item) ? 1 : 0;
    });
    inputs.fill(b * M, b * S * T, (b + 1) * S * T);
    windows[b]!.forEach((w, s) => {
      const base = (b * S + s) * T;
      w.items.forEach((item, t) => {
        inputs[base + t] = b * M + own.get(item)!;
        if (t + 1 >= w.items.length) return;
        const weight = w.weights[t + 1]!;
        targets[base + t] = own.get(w.items[t + 1]!)!;
        weights[base + t] = weight;
        deviceWeight[b] = deviceWeight[b]! + weight;
        if (weight > 0) examples[b] = examples[b]! + 1;
        if (dims.scoring?.repeat) {
          for (let u = 0; u <= t; u++) {
            repeatAt.push((base + t) * M + own.get(w.items[u]!)!);
            repeatBonus.push(b * maxLen + (t - u));
          }
        }
      });
    });
  }
  return {
    devices: B,
    windows: S,
    steps: T,
    ownSlots: L,
    slots: M,
    rows,
    valid,
    offset,
    trainable,
    inputs,
    targets,
    weights,
    deviceWeight,
    repeatAt: Int32Array.from(repeatAt),
    repeatBonus: Int32Array.from(repeatBonus),
    examples,
  };
}
