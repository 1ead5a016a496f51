/**
 * A device's contribution to a round, from its sessions to the bytes it sends: local training
 * (model/local-update.ts) in the round's update layout, clipping to S (clipForUpload), encoding in
 * the manifest's dtype (encodeDeviceUpdate). Written for many devices at once so that `npm run
 * federate` runs a population through it; the worker's learnLocally runs the same three steps for
 * one device, the last when it posts (federated-client.ts shareUpdate).
 */
import type { ModelDims, ModelManifest } from '../protocol/manifest.js';
import type { UpdateLayout } from '../protocol/update-layout.js';
import { sketchLength, sketchUpdate, type ItemSketch } from '../protocol/item-sketch.js';
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
 * int4 body (the platform's CSPRNG when left out). With `sketch` (and the full layout) a device
 * sends its update's item sketch (protocol/item-sketch.ts), clipped to S.
 */
export function deviceUploads(
  manifest: Pick<ModelManifest, 'version' | 'layoutHash' | 'federation'> & { dims: ModelDims },
  global: Float32Array,
  devices: readonly (readonly TrainSession[])[],
  layout: UpdateLayout,
  settings: LocalUpdateSettings,
  tokens: readonly Uint8Array[],
  random?: () => number,
  sketch?: ItemSketch,
): DeviceUploads {
  const clipNorm = manifest.federation.clipNorm;
  const { deltas, examples } = localUpdates(manifest.dims, global, devices, layout, settings);
  // A sketching device clips what it sends, the sketch of its whole update.
  const sent = (delta: Float32Array) =>
    sketch
      ? sketchUpdate(
          delta,
          manifest.dims,
          sketch,
          new Float32Array(sketchLength(manifest.dims, sketch)),
        )
      : delta;
  const bodies = deltas.map((delta, i) =>
    examples[i]! > 0
      ? encodeDeviceUpdate(
          manifest,
          clipForUpload(sent(delta), clipNorm),
          examples[i]!,
          tokens[i]!,
          manifest.version,
          random,
        )
      : null,
  );
  return { bodies, examples };
}
