/**
 * Every capability check of the worker, in one place and evaluated once (transformers.js `env.js`
 * does the same): the backend ladder, the store and `status()` read this object instead of probing
 * globals each on its own. Presence only: whether WebGPU or WebGL really compute correctly is the
 * ladder's self-test, and whether IndexedDB really opens is the store's fallback to memory.
 */
import type { Capabilities } from '../protocol/api.js';
import { privacySignal, type PrivacySignalSource } from '../protocol/privacy-signal.js';

/** The globals detection reads (a worker's `globalThis`; tests pass their own). */
export interface CapabilityGlobals {
  readonly navigator?: PrivacySignalSource & { readonly gpu?: unknown; readonly locks?: unknown };
  readonly OffscreenCanvas?: unknown;
  readonly WebGL2RenderingContext?: unknown;
  readonly WebAssembly?: unknown;
  readonly indexedDB?: unknown;
  readonly BroadcastChannel?: unknown;
}

/** Reads `g` once and returns what it offers, frozen. */
export function detectCapabilities(g: CapabilityGlobals): Capabilities {
  const nav = g.navigator;
  const offscreenCanvas = typeof g.OffscreenCanvas === 'function';
  return Object.freeze({
    webgpu: !!nav?.gpu,
    offscreenCanvas,
    webgl2: offscreenCanvas && typeof g.WebGL2RenderingContext === 'function',
    wasm: typeof g.WebAssembly === 'object' && g.WebAssembly !== null,
    indexedDB: !!g.indexedDB,
    webLocks: typeof (nav?.locks as { request?: unknown } | undefined)?.request === 'function',
    broadcastChannel: typeof g.BroadcastChannel === 'function',
    privacySignal: privacySignal(nav ?? {}),
  });
}

let detected: Capabilities | undefined;

/**
 * This worker's capabilities, detected on the first call and the same frozen object after. Lazily,
 * not at import: Node hosts (tests, tools/simulate) install stand-ins such as fake-indexeddb before
 * they first start an engine, and a worker's globals never change after that.
 */
export function capabilities(): Capabilities {
  detected ??= detectCapabilities(globalThis as CapabilityGlobals);
  return detected;
}
