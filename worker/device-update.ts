/**
 * A device's contribution to a round, from its sessions to the bytes it sends: local training
 * (model/local-update.ts) in the round's update layout, clipping to S (clipForUpload), encoding in
 * the manifest's dtype (encodeDeviceUpdate). Written for many devices at once so that `npm run
 * federate` runs a population through it; the worker's learnLocally runs the same three steps for
 * one device, the last when it posts (federated-client.ts shareUpdate).
 */
import type { ModelDims, ModelManifest } from '../protocol/manifest.js';
import { modelLayout, sentUpdate, type UpdateLayout } from '../protocol/update-layout.js';
import { localUpdates, type LocalUpdateSettings } from '../model/local-update.js';
import type { TrainSession } from '../model/train.js';
import { clipForUpload, encodeDeviceUpdate } from './federated-client.js';

/** What the devices of one call send (a device without examples sends nothing: null). */
export interface DeviceUploads {
  readonly bodies: (Uint8Array<ArrayBuffer> | null)[];
  readonly examples: number[];
}

/**
 * Trains each device of `devices` from `global`, clips its update to the manifest's S and encodes
 * it as the device would post it. `tokens[i]` is device i's round token; `random` rounds an int8 /
 * int4 / int2 body (the platform's CSPRNG when left out). In a sketch layout a device trains the
 * whole model and sends its update's item sketch (protocol/item-sketch.ts), clipped to S.
 */
export function deviceUploads(
  manifest: Pick<ModelManifest, 'version' | 'layoutHash' | 'federation'> & { dims: ModelDims },
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: UpdateLayout,
  settings: LocalUpdateSettings,
  tokens: readonly Uint8Array[],
  random?: () => number,
): DeviceUploads {
  const { dims, federation } = manifest;
  const trained = modelLayout(layout);
  const { deltas, examples } = localUpdates(dims, global, devices, trained, settings);
  // A sketching device clips what it sends, the sketch of its whole update.
  const bodies = deltas.map((delta, i) =>
    examples[i]! > 0
      ? encodeDeviceUpdate(
          manifest,
          clipForUpload(sentUpdate(delta, dims, layout), federation.clipNorm),
          examples[i]!,
          tokens[i]!,
          manifest.version,
          random,
        )
      : null,
  );
  return { bodies, examples };
}
