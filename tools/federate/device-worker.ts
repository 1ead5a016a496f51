/**
 * A worker thread of the device pool (device-pool.ts): its own tfjs (wasm) runs the devices' code
 * for the share of a round's devices it is handed, and the server's decoder reads the bodies they
 * would send; the decoded updates go back to the thread that aggregates.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LocalUpdateSettings } from '../../model/local-update.js';
import type { ModelDims } from '../../protocol/manifest.js';
import { l2Norm } from '../../protocol/clip.js';
import { mulberry32 } from '../../protocol/prng.js';
import {
  UPDATE_DTYPES,
  bodyBytes,
  decodeUpdate,
  type UpdateDtypeName,
} from '../../protocol/update-format.js';
import { modelLayout, updateLength, type UpdateLayout } from '../../protocol/update-layout.js';
import { clippedUpdateSum } from '../../model/cohort-sum.js';
import { deviceUploads } from '../../worker/device-update.js';
import { initNodeBackend } from '../tf-node.js';

/** One job: a share of a round's devices. */
export interface DeviceJob {
  readonly id: number;
  /** Which share of the round's devices (0 .. threads - 1). */
  readonly share: number;
  readonly dims: ModelDims;
  readonly version: number;
  readonly clipNorm: number;
  readonly maxExamples: number;
  /** The dtype the devices encode their bodies in (the manifest's `federation.updateDtype`). */
  readonly updateDtype: UpdateDtypeName;
  /** Seeds an int8 / int4 / int2 body's stochastic rounding, with the job's share (runs replay). */
  readonly roundingSeed: number;
  /** The global weights, shared with the main thread (read only here). */
  readonly weights: Float32Array;
  readonly devices: readonly (readonly number[])[];
  /**
   * The round's update layout. In a sketch layout the devices train the whole model and a body's
   * values are the sketch's, clipped to S by the device; a summed job still sums the whole updates
   * (the caller sketches their sum), and its body size is the sketch's.
   */
  readonly layout: UpdateLayout;
  readonly local: LocalUpdateSettings;
  readonly batch: number;
  /**
   * Only the sum of the devices' clipped updates comes back (model/cohort-sum.ts: one plain step,
   * no device's own copy), not each device's body.
   */
  readonly summed: boolean;
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

/** The sum of a job's clipped updates (a summed job). */
export interface SummedUpdates {
  /** Sum of the uploads, in the model's coordinates of the layout (modelLayout). */
  readonly sum: Float64Array;
  /** Devices that sent an update (those with at least one example). */
  readonly uploads: number;
  /** Norm of each upload as sent (clipped). */
  readonly norms: number[];
  /** Bytes one device's body would have on the wire. */
  readonly bytes: number;
}

/**
 * Its answer: each device's decoded update, or null for a device without an example; or, for a
 * summed job, only their sum (`received` then empty).
 */
export interface DeviceJobResult {
  readonly id: number;
  readonly received: (Received | null)[];
  readonly summed: SummedUpdates | null;
}

/** Adds `part` into `into` (the sums of two shares of a round's devices). */
export function addSummed(into: SummedUpdates | null, part: SummedUpdates): SummedUpdates {
  if (!into) return part;
  const sum = into.sum;
  for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + part.sum[i]!;
  return {
    sum,
    uploads: into.uploads + part.uploads,
    norms: [...into.norms, ...part.norms],
    bytes: part.bytes,
  };
}

const TOKEN = new Uint8Array(16);

/** Runs a job's devices through the device code, `batch` at a time. */
export function runDeviceJob(job: DeviceJob): DeviceJobResult {
  const manifest = {
    version: job.version,
    layoutHash: 0,
    dims: job.dims,
    federation: {
      clipNorm: job.clipNorm,
      maxExamples: job.maxExamples,
      updateDtype: job.updateDtype,
    },
  } as Parameters<typeof deviceUploads>[0];
  const random = mulberry32(job.roundingSeed + job.share * 0x9e3779b1);
  const received: (Received | null)[] = [];
  // What each device sends: its update in the layout, or the sketch of it.
  const sent = updateLength(job.dims, job.layout);
  if (job.summed) return { id: job.id, received, summed: summedJob(job, sent) };
  for (let start = 0; start < job.devices.length; start += job.batch) {
    const chunk = job.devices.slice(start, start + job.batch);
    const out = deviceUploads(
      manifest,
      job.weights,
      chunk.map((items) => [{ items }]),
      job.layout,
      job.local,
      chunk.map(() => TOKEN),
      random,
    );
    for (const body of out.bodies) {
      if (!body) {
        received.push(null);
        continue;
      }
      const { delta, examples } = decodeUpdate(body, sent);
      received.push({ delta, examples, bytes: body.length, norm: l2Norm(delta) });
    }
  }
  return { id: job.id, received, summed: null };
}

/**
 * A summed job: each batch's clipped sum (cohort-sum.ts) in the model's coordinates, added up in
 * float64; `sent` values are what one device's body would carry. In a sketch layout each device is
 * clipped by its sketch's norm, as a sketching device clips what it sends.
 */
function summedJob(job: DeviceJob, sent: number): SummedUpdates {
  const layout = modelLayout(job.layout);
  const length = updateLength(job.dims, layout);
  const sum = new Float64Array(length);
  const norms: number[] = [];
  let uploads = 0;
  for (let start = 0; start < job.devices.length; start += job.batch) {
    const chunk = job.devices.slice(start, start + job.batch);
    const out = clippedUpdateSum(
      job.dims,
      job.weights,
      chunk.map((items) => [{ items }]),
      layout,
      job.local,
      job.clipNorm,
      job.layout.kind === 'sketch' ? job.layout.sketch : undefined,
    );
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + out.sum[i]!;
    out.examples.forEach((examples, b) => {
      if (examples === 0) return;
      uploads++;
      norms.push(Math.min(out.norms[b]!, job.clipNorm));
    });
  }
  // The body a device would post: its length depends on the dtype and the layout only.
  const bytes = bodyBytes(UPDATE_DTYPES[job.updateDtype], sent);
  return { sum, uploads, norms, bytes };
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
      if (result.summed) buffers.push(result.summed.sum.buffer as ArrayBuffer);
      port.postMessage(result, buffers);
    });
  });
}
