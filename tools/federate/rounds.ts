/**
 * One simulated federated round, through the code the real parts run: the devices' code
 * (worker/device-update.ts: local training, clipping, the float16 body they post), the server's
 * decoding and round policy (server/ingest.ts roundPolicy: re-clipping, equal weights, the fixed
 * denominator and Gaussian noise with DP on, FedAvg or FedAdam), in the round's update layout
 * (protocol/update-layout.ts: the server folds the layout's coordinates and leaves the rest).
 * With `--secure` the server learns the round only as secure aggregation would reveal it.
 */
import type { ModelDims } from '../../protocol/manifest.js';
import {
  fitUpdate,
  sameLayout,
  updateLength,
  type UpdateLayout,
} from '../../protocol/update-layout.js';
import { sketchUpdate } from '../../protocol/item-sketch.js';
import { encodeMasked } from '../../protocol/secagg/wire.js';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import type { AggregateUpdate } from '../../server/aggregate.js';
import type { ServerConfig } from '../../server/config.js';
import type { FedAdamState } from '../../server/fedadam.js';
import type { GaussianRng } from '../../server/gaussian.js';
import { roundPolicy } from '../../server/ingest.js';
import { roundWindows } from '../../server/round-windows.js';
import { foldInLayout } from '../../server/layout-round.js';
import { standInEncoding, standInSum } from '../../server/secure-sum.js';
import { gatedReading } from './held.js';
import {
  addSummed,
  runDeviceJob,
  type DeviceJob,
  type DeviceJobResult,
  type Received,
} from './device-worker.js';

/** What a sketch gated by the round's item histogram keeps (held.ts): rows held, and negatives. */
export interface RoundGate {
  /**
   * Each item row kept when above 0: how many of the round's devices hold it, or a count-min gate's
   * 1 (kept) and 0 (held.ts countMinGate).
   */
  readonly held: Uint32Array;
  /** The round's shared negatives. */
  readonly negatives: Int32Array;
}

/**
 * Devices of a round that trained on an older version (within the server's staleness bound) and
 * post their update into this round: each trained on `weights` with `local` (that version's round
 * seed), and sends in `layout`. In the round's own layout (what the worker does where the manifest
 * offers `layoutAhead`: worker/local-training.ts inNewestLayout) they are folded as fresh updates
 * are; in their version's layout each body is carried over as the server carries a stale update of
 * named rows (server/ingest.ts fitToVersion: protocol/update-layout.ts fitUpdate, which keeps its
 * norm; a stale sketch the server now refuses), so they need every body.
 */
export interface StaleGroup {
  readonly devices: readonly (readonly number[])[];
  readonly weights: Float32Array;
  readonly local: LocalUpdateSettings;
  readonly layout: UpdateLayout;
}

/** The global state a run carries from round to round. */
export interface GlobalState {
  /** Global weights, manifest order (run.ts keeps them in shared memory for the device threads). */
  weights: Float32Array;
  /**
   * FedAdam's moments over the whole model, from initialFedAdamState (only the layout's
   * coordinates move in a round); undefined with FedAvg.
   */
  optimizer: FedAdamState | undefined;
  /**
   * With stale devices (run.ts staleGroups), the weights of the versions before the current one,
   * newest first, at most the staleness bound of them (in shared memory, as `weights`).
   */
  past?: Float32Array[];
}

/** What one round did. */
export interface RoundResult {
  /** Devices that sent an update (sampled and with at least one next-item example). */
  readonly uploads: number;
  /** Bytes of one device's upload (every upload of a round has the layout's length). */
  readonly uploadBytes: number;
  /** Median L2 norm of the uploads as the server decoded them (after the devices' clipping). */
  readonly medianNorm: number;
  /** Share of uploads clipped to S (norm within 1% of S): guides the choice of S. */
  readonly clipped: number;
  /** Whether the round published a version (a round window whose noised count fell short did not). */
  readonly published: boolean;
  /** With a gate, the item rows it kept (run.ts adds it). */
  readonly gateRows?: number;
}

/** The framing of a secure device's masked input (protocol/secagg/wire.ts), before its words. */
const MASKED_HEADER_BYTES = encodeMasked({ from: 0, masked: new Uint32Array(0) }).length;

/** Devices trained per call of the device code (the batched path; see local-update.test.ts). */
export const DEVICE_BATCH = 128;

/**
 * Runs devices through the device code and returns what the server decodes from their bodies, in
 * order, or only their sum for a summed job (device-pool.ts runs it on worker threads).
 */
export type DeviceRunner = (
  job: Omit<DeviceJob, 'id' | 'share' | 'devices'>,
  devices: readonly (readonly number[])[],
) => Promise<Omit<DeviceJobResult, 'id'>>;

/** The runner on this thread: devices of similar length batched together. */
export const inThisThread: DeviceRunner = async (job, devices) => {
  const order = devices
    .map((items, i) => ({ items, i }))
    .sort((a, b) => a.items.length - b.items.length);
  const { received, summed } = runDeviceJob({
    ...job,
    id: 0,
    share: 0,
    devices: order.map((d) => d.items),
  });
  if (summed) return { received: [], summed };
  const out = new Array<Received | null>(devices.length).fill(null);
  order.forEach((d, k) => (out[d.i] = received[k]!));
  return { received: out, summed: null };
};

/**
 * Whether a round's devices can be summed without their bodies (model/cohort-sum.ts): one plain
 * local step, and a server that weighs every update alike.
 */
export function summable(local: LocalUpdateSettings, config: ServerConfig): boolean {
  return local.steps === 1 && local.optimizer === 'sgd' && config.aggregator === 'mean';
}

/**
 * Runs one round: each device in `devices` trains and uploads; the server folds the uploads into
 * `state` (in place). A round in which nobody uploads publishes nothing, unless it is a round window
 * whose noised count reaches m all the same (it then publishes its noise, as a server's would). In
 * a sketch layout the devices send their item rows as the round's count sketch
 * (protocol/item-sketch.ts): the server clips and sums the sketches, noises the sum there when noise
 * is on, and reads it back into rows (layout-round.ts). Per device, each device sketches its
 * update and clips the sketch (worker/device-update.ts); summed, each device is clipped by its
 * sketch's norm as well (model/cohort-sum.ts) and the round's sum of clipped whole updates is
 * sketched, which is the sum of their sketches. With `gate`, a sketch's rows that no device of the
 * round holds and no shared negative names read as zero (held.ts).
 */
export async function runRound(
  state: GlobalState,
  dims: ModelDims,
  devices: readonly (readonly number[])[],
  layout: UpdateLayout,
  version: number,
  local: LocalUpdateSettings,
  config: ServerConfig,
  rng: GaussianRng,
  runner: DeviceRunner = inThisThread,
  sum: boolean,
  gate?: RoundGate,
  stale: readonly StaleGroup[] = [],
): Promise<RoundResult> {
  const job = (weights: Float32Array, sentIn: UpdateLayout, settings: LocalUpdateSettings) => ({
    dims,
    version,
    clipNorm: config.clipNorm,
    maxExamples: config.maxExamples,
    updateDtype: config.updateDtype,
    roundingSeed: (settings.seed ^ 0x5bd1e995) >>> 0,
    weights,
    layout: sentIn,
    local: settings,
    batch: DEVICE_BATCH,
  });
  const first = await runner({ ...job(state.weights, layout, local), summed: sum }, devices);
  const received = [...first.received];
  let summed = first.summed;
  // Stale devices in the round's layout: as fresh ones, on their own weights; in an older layout,
  // each body carried over to the round's, as the server carries it.
  const carried: Received[] = [];
  for (const group of stale) {
    const inRoundLayout = sameLayout(group.layout, layout);
    const out = await runner(
      { ...job(group.weights, group.layout, group.local), summed: sum && inRoundLayout },
      group.devices,
    );
    if (out.summed) summed = addSummed(summed, out.summed);
    for (const update of out.received) {
      if (!update) continue;
      if (inRoundLayout) received.push(update);
      else carried.push({ ...update, delta: fitUpdate(update.delta, dims, group.layout, layout) });
    }
  }
  const updates: AggregateUpdate[] = [];
  const norms: number[] = summed ? summed.norms : [];
  let uploadBytes = summed?.bytes ?? 0;
  for (const update of [...received, ...carried]) {
    if (!update) continue;
    uploadBytes = update.bytes;
    updates.push({ delta: update.delta, examples: update.examples });
    norms.push(update.norm);
  }
  const uploads = summed ? summed.uploads + carried.length : updates.length;
  // A round window decides on its noised count even with no update (server/round-windows.ts): it
  // may reach m, and the window then publishes its noise, as a server's would.
  const windowed = config.roundWindowSeconds > 0;
  if (uploads === 0 && !windowed) {
    return { uploads: 0, uploadBytes: 0, medianNorm: 0, clipped: 0, published: false };
  }
  const sent = updateLength(dims, layout);
  // A secure device sends no body: its masked input, bits / 8 bytes for each coordinate of the
  // vector summed (rotated and padded in a 16-bit ring), is most of what it sends; its keys,
  // shares and unmasking answer add a few kilobytes, by its number of neighbours.
  if (config.aggregation === 'secure') {
    const encoding = standInEncoding(uploads, sent, config);
    uploadBytes = MASKED_HEADER_BYTES + (encoding.bits / 8) * encoding.length;
  }
  norms.sort((a, b) => a - b);
  const medianNorm = norms[norms.length >> 1] ?? 0;
  const clipped = norms.filter((n) => n >= 0.99 * config.clipNorm).length / (norms.length || 1);
  // A round window (server/round-windows.ts) publishes only if its count plus Gaussian noise
  // reaches m, as the mean over that noised count; the server's own decision, drawn from `rng`.
  const policy =
    config.roundWindowSeconds > 0
      ? roundWindows(config, 0, rng)!.decide(uploads)
      : roundPolicy(config, rng);
  if (!policy) return { uploads, uploadBytes, medianNorm, clipped, published: false };
  const out = foldInLayout(
    dims,
    layout,
    state.weights,
    { optimizerState: state.optimizer, ledger: [] },
    (compact, read) => {
      // A gated sketch (held.ts): rows nobody in the round holds, and no negative, read as zero.
      const context =
        gate && read.sent
          ? { ...read, sent: gatedReading(read.sent, dims, gate.held, gate.negatives) }
          : read;
      const secure = config.aggregation === 'secure';
      // A plaintext server clips each body again (a sketch's too) and reads sketches back into rows.
      // With no update (a window whose noised count reached m) the mean is the noise alone.
      if ((!secure && !summed) || uploads === 0) return policy.aggregate(compact, updates, context);
      // Known by a sum only: what secure aggregation unmasks, or a summed round. Summed, the sum is
      // of whole updates, sketched here as the devices would have sent them, plus the bodies
      // carried over from older layouts (already in this one's).
      const total = !summed
        ? sumOf(updates, sent)
        : addInto(
            layout.kind === 'sketch'
              ? sketchUpdate(summed.sum, dims, layout.sketch, new Float64Array(sent))
              : summed.sum,
            updates,
          );
      if (!secure) return policy.aggregateSum(compact, { sum: total, count: uploads }, context);
      // What a secure round unmasks: the devices' clipped updates summed in fixed point, with
      // their Skellam noise (server/secure-sum.ts).
      const { sum, encoding } = standInSum(total, uploads, config);
      const skellam = encoding.skellam ? { skellam: encoding.skellam } : {};
      return policy.aggregateSum(compact, { sum, count: uploads, ...skellam }, context);
    },
  );
  // In place: the weights live in shared memory that the device threads read.
  state.weights.set(out.weights);
  if (out.optimizerState) state.optimizer = out.optimizerState;
  return { uploads, uploadBytes, medianNorm, clipped, published: true };
}

/** The sum of the round's (device-clipped) updates, as secure aggregation reveals it. */
function sumOf(updates: readonly AggregateUpdate[], length: number): Float64Array {
  return addInto(new Float64Array(length), updates);
}

/** `total` with each update's delta added into it (in place). */
function addInto(total: Float64Array, updates: readonly AggregateUpdate[]): Float64Array {
  for (const { delta } of updates) for (let i = 0; i < total.length; i++) total[i]! += delta[i]!;
  return total;
}
