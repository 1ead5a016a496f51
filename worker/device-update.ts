/**
 * A device's contribution to a round, from its sessions to the bytes it sends: local training
 * (model/local-update.ts) in the round's update layout, clipping to S, float16 encoding. Written
 * for many devices at once so that `npm run federate` runs a population through exactly this code;
 * the worker calls it with one.
 */
import type { ModelDims, ModelManifest } from '../protocol/manifest.js';
import type { UpdateLayout } from '../protocol/update-layout.js';
import { localUpdates, type LocalUpdateSettings } from '../model/local-update.js';
import type { TrainSession } from '../model/train.js';
import { clipForUpload, encodeDeviceUpdate } from './federated-client.js';

/** The clipped update of each device (what it would send), and its raw one. */
export interface DeviceDeltas {
  /** Clipped to the manifest's S (with the wire's headroom). */
  readonly clipped: Float32Array[];
  /** Trained minus global, unclipped: what the device itself adopts. */
  readonly raw: Float32Array[];
  readonly examples: number[];
}

/**
 * Local training of each device from `global` in `layout`, and the clipped update it would send.
 * `starts[b]` is device b's fine-tuned copy of this version, when it has one.
 */
export function deviceDeltas(
  dims: ModelDims,
  clipNorm: number,
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: UpdateLayout,
  settings: LocalUpdateSettings,
  starts?: readonly Float32Array[],
): DeviceDeltas {
  const { deltas, examples } = localUpdates(dims, global, devices, layout, settings, starts);
  const clipped = deltas.map((delta) => clipForUpload(Float32Array.from(delta), clipNorm));
  return { clipped, raw: deltas, examples };
}

/** What the devices of one call send (a device without examples sends nothing: null). */
export interface DeviceUploads {
  readonly bodies: (Uint8Array<ArrayBuffer> | null)[];
  readonly examples: number[];
}

/**
 * Trains each device of `devices` from `global`, clips its update to the manifest's S and encodes
 * it as the device would post it. `tokens[i]` is device i's round token.
 */
export function deviceUploads(
  manifest: Pick<ModelManifest, 'version' | 'layoutHash' | 'federation'> & { dims: ModelDims },
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: UpdateLayout,
  settings: LocalUpdateSettings,
  tokens: readonly Uint8Array[],
): DeviceUploads {
  const clipNorm = manifest.federation.clipNorm;
  const { deltas, examples } = localUpdates(manifest.dims, global, devices, layout, settings);
  const bodies = deltas.map((delta, i) =>
    examples[i]! > 0
      ? encodeDeviceUpdate(manifest, clipForUpload(delta, clipNorm), examples[i]!, tokens[i]!)
      : null,
  );
  return { bodies, examples };
}
