/**
 * Runs a round's devices on worker threads (device-worker.ts), one tfjs each: local training is
 * single-threaded wasm, and the devices of a round are independent, so a machine with n cores
 * trains n shares at once. The decoded updates come back in the devices' order; what each device computes
 * does not depend on which thread ran it or on the other devices of its batch.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  addSummed,
  DEVICE_WORKER_MARK,
  type DeviceJob,
  type DeviceJobResult,
  type Received,
  type SummedUpdates,
} from './device-worker.js';

/** Runs device jobs; `close` ends the threads. */
export interface DevicePool {
  run(
    job: Omit<DeviceJob, 'id' | 'share' | 'devices'>,
    devices: readonly (readonly number[])[],
  ): Promise<Omit<DeviceJobResult, 'id'>>;
  close(): Promise<void>;
}

/** A pool of `threads` workers (default: one per core). */
export function devicePool(threads = availableParallelism()): DevicePool {
  const workers = Array.from(
    { length: Math.max(1, threads) },
    () =>
      // The worker is TypeScript: its boot file registers tsx's loader, then imports it.
      new Worker(new URL('./device-worker-boot.mjs', import.meta.url), {
        workerData: DEVICE_WORKER_MARK,
      }),
  );
  let next = 0;
  const pending = new Map<number, (result: DeviceJobResult) => void>();
  const failures: ((error: Error) => void)[] = [];
  for (const worker of workers) {
    worker.on('message', (result: DeviceJobResult) => {
      pending.get(result.id)?.(result);
      pending.delete(result.id);
    });
    worker.on('error', (error) => failures.splice(0).forEach((fail) => fail(error)));
  }
  return {
    async run(base, devices) {
      // Shares of similar lengths: device i goes to thread i mod n of the length-sorted order.
      const order = devices
        .map((items, i) => ({ items, i }))
        .sort((a, b) => a.items.length - b.items.length);
      const shares = workers.map((_, w) => order.filter((_, k) => k % workers.length === w));
      const results = await Promise.all(
        shares.map(
          (share, w) =>
            new Promise<DeviceJobResult>((resolve, reject) => {
              const id = next++;
              pending.set(id, resolve);
              failures.push(reject);
              const job: DeviceJob = {
                ...base,
                id,
                share: w,
                devices: share.map((d) => d.items),
              };
              workers[w]!.postMessage(job);
            }),
        ),
      );
      failures.length = 0;
      if (base.summed) {
        let summed: SummedUpdates | null = null;
        for (const result of results) summed = addSummed(summed, result.summed!);
        return { received: [], summed };
      }
      const received = new Array<Received | null>(devices.length).fill(null);
      results.forEach((result, w) =>
        result.received.forEach((update, k) => {
          received[shares[w]![k]!.i] = update;
        }),
      );
      return { received, summed: null };
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
