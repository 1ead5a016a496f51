import { describe, expect, it } from 'vitest';
import { capabilities, detectCapabilities } from './capabilities.js';
import { Engine } from './engine.js';

/** Stands in for a global constructor (detection only checks that one is there). */
const ctor = (): void => undefined;

/** A worker's globals in a browser that has everything, GPC on. */
const everything = {
  navigator: { gpu: {}, locks: { request: () => undefined }, globalPrivacyControl: true },
  OffscreenCanvas: ctor,
  WebGL2RenderingContext: ctor,
  WebAssembly: {},
  indexedDB: {},
  BroadcastChannel: ctor,
};

describe('capabilities', () => {
  it('reports what the globals offer', () => {
    expect(detectCapabilities(everything)).toEqual({
      webgpu: true,
      offscreenCanvas: true,
      webgl2: true,
      wasm: true,
      indexedDB: true,
      webLocks: true,
      broadcastChannel: true,
      privacySignal: true,
    });
  });

  it('reports nothing where nothing is there', () => {
    expect(detectCapabilities({})).toEqual({
      webgpu: false,
      offscreenCanvas: false,
      webgl2: false,
      wasm: false,
      indexedDB: false,
      webLocks: false,
      broadcastChannel: false,
      privacySignal: false,
    });
  });

  it('tells each capability apart', () => {
    // WebGL 2 needs a canvas to draw on in a worker.
    expect(detectCapabilities({ WebGL2RenderingContext: ctor }).webgl2).toBe(false);
    expect(detectCapabilities({ OffscreenCanvas: ctor })).toMatchObject({
      offscreenCanvas: true,
      webgl2: false,
    });
    // A `locks` without `request` (a partial polyfill) cannot serialise training.
    expect(detectCapabilities({ navigator: { locks: {} } }).webLocks).toBe(false);
    expect(detectCapabilities({ WebAssembly: null }).wasm).toBe(false);
  });

  it('reads GPC and DNT from the navigator it is given', () => {
    const signal = (navigator: Record<string, unknown>): boolean =>
      detectCapabilities({ navigator }).privacySignal;
    expect(signal({ globalPrivacyControl: true })).toBe(true);
    expect(signal({ doNotTrack: '1' })).toBe(true);
    expect(signal({ globalPrivacyControl: false, doNotTrack: '0' })).toBe(false);
    expect(signal({ doNotTrack: 'unspecified' })).toBe(false);
  });

  it('freezes what it detects', () => {
    const detected = detectCapabilities(everything);
    expect(Object.isFrozen(detected)).toBe(true);
    expect(() => Object.assign(detected, { webgpu: false })).toThrow(TypeError);
  });

  it("detects this worker's once and returns the same frozen object after", () => {
    const first = capabilities();
    expect(Object.isFrozen(first)).toBe(true);
    // Node: no WebGPU, no canvas, no IndexedDB (nothing installed a stand-in), but wasm.
    expect(first).toMatchObject({ webgpu: false, offscreenCanvas: false, wasm: true });
    expect(first.indexedDB).toBe(false);
    (globalThis as { indexedDB?: unknown }).indexedDB = {};
    try {
      expect(capabilities()).toBe(first);
      expect(capabilities().indexedDB).toBe(false);
    } finally {
      delete (globalThis as { indexedDB?: unknown }).indexedDB;
    }
  });

  it("is what the engine's status reports", async () => {
    const engine = new Engine();
    expect((await engine.status()).capabilities).toBe(capabilities());
    await engine.dispose();
  });
});
