/**
 * A worker thread of the device pool (device-pool.ts): its own tfjs (wasm) runs the devices' code
 * for the share of a round's devices it is handed, and posts back the bodies they would send.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import type { ModelDims } from '../../protocol/manifest.js';
import type { UpdateLayout } from '../../protocol/update-layout.js';
import { deviceUploads } from '../../worker/device-update.js';
import { initNodeBackend } from '../tf-node.js';

/** One job: a share of a round's devices. */
export interface DeviceJob {
  readonly id: number;
  readonly dims: ModelDims;
  readonly version: number;
  readonly clipNorm: number;
  readonly maxExamples: number;
  /** The global weights, shared with the main thread (read only here). */
  readonly weights: Float32Array;
  readonly devices: readonly (readonly number[])[];
  readonly layout: UpdateLayout;
  readonly local: LocalUpdateSettings;
  readonly batch: number;
}

/** Its answer: each device's body, or null for a device without an example. */
export interface DeviceJobResult {
  readonly id: number;
  readonly bodies: (Uint8Array | null)[];
}

const TOKEN = new Uint8Array(16);

/** Runs a job's devices through the device code, `batch` at a time. */
export function runDeviceJob(job: DeviceJob): DeviceJobResult {
  const manifest = {
    version: job.version,
    layoutHash: 0,
    dims: job.dims,
    federation: { clipNorm: job.clipNorm, maxExamples: job.maxExamples },
  } as Parameters<typeof deviceUploads>[0];
  const bodies: (Uint8Array | null)[] = [];
  for (let start = 0; start < job.devices.length; start += job.batch) {
    const chunk = job.devices.slice(start, start + job.batch);
    const out = deviceUploads(
      manifest,
      job.weights,
      chunk.map((items) => [{ items }]),
      job.layout,
      job.local,
      chunk.map(() => TOKEN),
    );
    bodies.push(...out.bodies);
  }
  return { id: job.id, bodies };
}

/** What device-pool.ts passes as workerData, so importing this file elsewhere starts nothing. */
export const DEVICE_WORKER_MARK = 'hearth-device-worker';

if (parentPort && workerData === DEVICE_WORKER_MARK) {
  const port = parentPort;
  const ready = initNodeBackend('wasm');
  port.on('message', (job: DeviceJob) => {
    void ready.then(() => {
      const result = runDeviceJob(job);
      const buffers = result.bodies.flatMap((b) => (b ? [b.buffer as ArrayBuffer] : []));
      port.postMessage(result, buffers);
    });
  });
}
