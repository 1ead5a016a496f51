/**
 * A worker thread of the device pool (device-pool.ts): its own tfjs (wasm) runs the devices' code
 * for the share of a round's devices it is handed, and the server's decoder reads the bodies they
 * would send; the decoded updates go back to the thread that aggregates.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import type { ModelDims } from '../../protocol/manifest.js';
import { l2Norm } from '../../protocol/clip.js';
import { decodeUpdate } from '../../protocol/update-format.js';
import { updateLength, type UpdateLayout } from '../../protocol/update-layout.js';
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

/** What the server decoded from one device's body (protocol/update-format.ts decodeUpdate). */
export interface Received {
  readonly delta: Float32Array;
  readonly examples: number;
  /** Bytes of the body on the wire. */
  readonly bytes: number;
  /** L2 norm of the decoded delta (for the run's clipping statistics). */
  readonly norm: number;
}

/** Its answer: each device's decoded update, or null for a device without an example. */
export interface DeviceJobResult {
  readonly id: number;
  readonly received: (Received | null)[];
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
  const received: (Received | null)[] = [];
  const length = updateLength(job.dims, job.layout);
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
    for (const body of out.bodies) {
      if (!body) {
        received.push(null);
        continue;
      }
      const { delta, examples } = decodeUpdate(body, length);
      received.push({ delta, examples, bytes: body.length, norm: l2Norm(delta) });
    }
  }
  return { id: job.id, received };
}

/** What device-pool.ts passes as workerData, so importing this file elsewhere starts nothing. */
export const DEVICE_WORKER_MARK = 'hearth-device-worker';

if (parentPort && workerData === DEVICE_WORKER_MARK) {
  const port = parentPort;
  const ready = initNodeBackend('wasm');
  port.on('message', (job: DeviceJob) => {
    void ready.then(() => {
      const result = runDeviceJob(job);
      const buffers = result.received.flatMap((r) => (r ? [r.delta.buffer as ArrayBuffer] : []));
      port.postMessage(result, buffers);
    });
  });
}
