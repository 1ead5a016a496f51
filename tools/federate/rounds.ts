/**
 * One simulated federated round, through the code the real parts run: the devices' code
 * (worker/device-update.ts: local training, clipping, the float16 body they post), the server's
 * decoding and round policy (server/ingest.ts roundPolicy: re-clipping, equal weights, the fixed
 * denominator and Gaussian noise with DP on, FedAvg or FedAdam), in the round's update layout
 * (protocol/update-layout.ts: the server folds the layout's coordinates and leaves the rest).
 */
import type { ModelDims } from '../../protocol/manifest.js';
import { decodeUpdate } from '../../protocol/update-format.js';
import {
  gatherLayout,
  scatterLayout,
  updateLength,
  type UpdateLayout,
} from '../../protocol/update-layout.js';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import type { AggregateUpdate } from '../../server/aggregate.js';
import type { ServerConfig } from '../../server/config.js';
import type { FedAdamState } from '../../server/fedadam.js';
import type { GaussianRng } from '../../server/gaussian.js';
import { roundPolicy } from '../../server/ingest.js';
import { deviceUploads } from '../../worker/device-update.js';

/** The global state a run carries from round to round. */
export interface GlobalState {
  /** Global weights, manifest order. */
  weights: Float32Array;
  /**
   * FedAdam's moments over the whole model, from initialFedAdamState (only the layout's
   * coordinates move in a round); undefined with FedAvg.
   */
  optimizer: FedAdamState | undefined;
}

/** What one round did. */
export interface RoundResult {
  /** Devices that sent an update (sampled and with at least one next-item example). */
  readonly uploads: number;
  /** Bytes of one device's upload (every upload of a round has the layout's length). */
  readonly uploadBytes: number;
}

/** A device's round token: the simulation has no server to hand them out; the bytes are unused. */
const TOKEN = new Uint8Array(16);

/** Devices trained per call of the device code (the batched path; see local-update.test.ts). */
export const DEVICE_BATCH = 128;

/**
 * Runs one round: each device in `devices` trains and uploads; the server folds the uploads into
 * `state` (in place). A round in which nobody uploads publishes nothing.
 */
export function runRound(
  state: GlobalState,
  dims: ModelDims,
  devices: readonly (readonly number[])[],
  layout: UpdateLayout,
  version: number,
  local: LocalUpdateSettings,
  config: ServerConfig,
  rng: GaussianRng,
): RoundResult {
  const manifest = {
    version,
    layoutHash: 0,
    dims,
    federation: { clipNorm: config.clipNorm, maxExamples: config.maxExamples },
  } as Parameters<typeof deviceUploads>[0];
  const length = updateLength(dims, layout);
  // Similar lengths batched together: every device of a call is padded to the longest history.
  const order = devices
    .map((items, i) => ({ items, i }))
    .sort((a, b) => a.items.length - b.items.length);
  const updates: AggregateUpdate[] = [];
  let uploadBytes = 0;
  for (let start = 0; start < order.length; start += DEVICE_BATCH) {
    const chunk = order.slice(start, start + DEVICE_BATCH);
    const { bodies } = deviceUploads(
      manifest,
      state.weights,
      chunk.map((d) => [{ items: d.items }]),
      layout,
      local,
      chunk.map(() => TOKEN),
    );
    for (const body of bodies) {
      if (!body) continue;
      uploadBytes = body.length;
      const update = decodeUpdate(body, length);
      updates.push({ delta: update.delta, examples: update.examples });
    }
  }
  if (updates.length === 0) return { uploads: 0, uploadBytes: 0 };
  const compact = gatherLayout(state.weights, dims, layout, new Float32Array(length));
  const optimizerState = state.optimizer && {
    step: state.optimizer.step,
    m: gatherLayout(state.optimizer.m, dims, layout, new Float64Array(length)),
    v: gatherLayout(state.optimizer.v, dims, layout, new Float64Array(length)),
  };
  const out = roundPolicy(config, rng).aggregate(compact, updates, {
    optimizerState,
    ledger: [],
  });
  scatterLayout(out.weights, dims, layout, state.weights);
  if (out.optimizerState && state.optimizer) {
    // FedAdam's moments move where the round's coordinates are; the others keep theirs.
    scatterLayout(out.optimizerState.m, dims, layout, state.optimizer.m);
    scatterLayout(out.optimizerState.v, dims, layout, state.optimizer.v);
    state.optimizer = { ...state.optimizer, step: out.optimizerState.step };
  }
  return { uploads: updates.length, uploadBytes };
}
