/**
 * Losing the GPU under tfjs. A GPU process crash, a driver reset or the browser reclaiming GPU
 * memory loses the WebGL context (or the WebGPU device) under the backend, and tfjs does not notice:
 * a WebGL read-back waits on a fence of the lost context, whose status never comes, so whatever
 * awaited it waits for ever. The backend ladder races each rung against `whenLost` and a time bound
 * (`bounded`), so a lost or stuck rung fails and the ladder moves on.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from '../protocol/api.js';

/** How often a WebGL context is checked, besides its `webglcontextlost` event. */
const POLL_MS = 500;

/**
 * A pending watch: `lost` resolves with the reason, if ever; `check` says at once whether the context
 * is lost already (a WebGL context answers before its event is dispatched; a WebGPU device once its
 * `lost` has settled), with the reason; `stop` ends the watch.
 */
export interface LossWatch {
  readonly lost: Promise<string>;
  check(): string | undefined;
  stop(): void;
}

/** What the watch reads of a WebGL context (in a worker, its canvas is an OffscreenCanvas). */
interface WatchedGl {
  readonly canvas: EventTarget;
  isContextLost(): boolean;
}
interface GlHolder {
  readonly gpgpu?: { readonly gl?: WatchedGl };
}
interface DeviceHolder {
  readonly device?: {
    readonly lost?: Promise<{ readonly reason?: string; readonly message?: string }>;
  };
}

/** Watches the GPU context of tfjs' current backend, which is `name` (CPU and wasm have none). */
export function whenLost(name: BackendName): LossWatch {
  let stop = (): void => undefined;
  let lost: Promise<string> = new Promise<string>(() => undefined);
  let check = (): string | undefined => undefined;
  if (name === 'webgl') {
    const gl = (tf.backend() as unknown as GlHolder).gpgpu?.gl;
    if (gl) {
      const reason = 'the WebGL context was lost';
      check = () => (gl.isContextLost() ? reason : undefined);
      lost = new Promise<string>((resolve) => {
        const onLost = (): void => resolve(reason);
        const { canvas } = gl;
        canvas.addEventListener('webglcontextlost', onLost);
        // The event is queued behind other tasks; a lost context answers isContextLost() at once.
        const timer = setInterval(() => {
          if (gl.isContextLost()) onLost();
        }, POLL_MS);
        if (gl.isContextLost()) onLost();
        stop = () => {
          clearInterval(timer);
          canvas.removeEventListener('webglcontextlost', onLost);
        };
      });
    }
  } else if (name === 'webgpu') {
    const device = (tf.backend() as unknown as DeviceHolder).device;
    if (device?.lost) {
      let seen: string | undefined;
      lost = device.lost.then(
        (info) =>
          (seen = `the WebGPU device was lost (${info.reason ?? info.message ?? 'no reason given'})`),
      );
      check = () => seen;
    }
  }
  return { lost, check: () => check(), stop: () => stop() };
}

/**
 * `work`, unless `lost` resolves first or `ms` pass: then it rejects with the reason. The work
 * itself cannot be cancelled; it is left to finish (or to wait for ever) on its own.
 */
export async function bounded<T>(work: Promise<T>, lost: Promise<string>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([
      work,
      limit,
      lost.then((reason) => Promise.reject(new Error(reason))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Replaces tfjs' instance of backend `name` by a fresh one, made the next time `name` is set: a
 * lost context cannot come back, but a new one usually works (a crashed GPU process restarts).
 */
export function renewBackend(name: BackendName): void {
  const engine = tf.engine();
  const entry = engine.registryFactory[name];
  if (!entry) return;
  try {
    tf.removeBackend(name);
  } catch {
    // Freeing what a lost context held may fail; the instance is dropped all the same.
    Reflect.deleteProperty(engine.registry, name);
    Reflect.deleteProperty(engine.registryFactory, name);
  }
  tf.registerBackend(name, entry.factory, entry.priority);
}
