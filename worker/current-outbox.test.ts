/**
 * The update a device kept while offline is sent later only while the server still takes it: computed
 * on a version at most the manifest's federation.maxStaleness behind, in the same layout; under an
 * item sketch, on this very version.
 */
import { describe, expect, it } from 'vitest';
import type { ModelManifest } from '../protocol/manifest.js';
import { currentOutbox } from './local-training.js';
import type { GlobalModel } from './model-source.js';
import { MemoryStore } from './store.js';
import { sketchLength } from '../protocol/item-sketch.js';

const LAYOUT = 1234;

/** A global model of 4 weights at `version`, publishing `maxStaleness` when given. */
function globalAt(version: number, maxStaleness?: number): GlobalModel {
  const federation = {
    clipNorm: 1,
    minCohort: 1,
    maxExamples: 1000,
    ...(maxStaleness === undefined ? {} : { maxStaleness }),
  };
  const manifest = { version, layoutHash: LAYOUT, federation } as unknown as ModelManifest;
  return { manifest, weights: new Float32Array(4) };
}

/** A store holding an update computed on `baseVersion`. */
async function pendingOn(baseVersion: number, layoutHash = LAYOUT): Promise<MemoryStore> {
  const store = new MemoryStore();
  const delta = new Float32Array(4);
  await store.setOutbox({ baseVersion, layoutHash, delta, examples: 3, createdAt: 0 });
  return store;
}

describe('currentOutbox', () => {
  it('keeps an update up to maxStaleness versions behind, and drops one further behind', async () => {
    for (const [base, kept] of [
      [5, true],
      [4, true],
      [3, true],
      [2, false],
      [6, false],
    ] as const) {
      const store = await pendingOn(base);
      const pending = await currentOutbox(store, globalAt(5, 2));
      expect(pending?.baseVersion, `v${base}`).toBe(kept ? base : undefined);
      expect((await store.getOutbox())?.baseVersion, `v${base}`).toBe(kept ? base : undefined);
    }
  });

  it('keeps only the current version under a manifest without maxStaleness', async () => {
    expect(await currentOutbox(await pendingOn(5), globalAt(5))).toBeDefined();
    const store = await pendingOn(4);
    expect(await currentOutbox(store, globalAt(5))).toBeUndefined();
    expect(await store.getOutbox()).toBeUndefined();
  });

  it("under an item sketch keeps only this version's update, so the device trains afresh", async () => {
    const dims = { items: 10, embedding: 2, hidden: 2, maxSessionLength: 4 };
    const sketched = (version: number): GlobalModel => {
      const global = globalAt(version, 2);
      const federation = {
        ...global.manifest.federation,
        itemSketch: { buckets: 3, key: version },
      };
      const manifest = { ...global.manifest, dims, federation } as ModelManifest;
      return { manifest, weights: global.weights };
    };
    const length = sketchLength(dims, { buckets: 3, key: 5 });
    const kept = async (base: number) => {
      const store = new MemoryStore();
      const delta = new Float32Array(length);
      await store.setOutbox({
        baseVersion: base,
        layoutHash: LAYOUT,
        delta,
        examples: 3,
        createdAt: 0,
      });
      return { pending: await currentOutbox(store, sketched(5)), left: await store.getOutbox() };
    };
    expect((await kept(5)).pending?.baseVersion).toBe(5);
    // One version behind, well within maxStaleness 2: carried over, it would keep about a fifth of
    // its items' signal; dropped, the device trains on this version instead.
    for (const base of [4, 3]) {
      const { pending, left } = await kept(base);
      expect(pending, `v${base}`).toBeUndefined();
      expect(left, `v${base}`).toBeUndefined();
    }
  });

  it('drops an update in another layout, however recent', async () => {
    const store = await pendingOn(5, LAYOUT + 1);
    expect(await currentOutbox(store, globalAt(5, 3))).toBeUndefined();
    expect(await store.getOutbox()).toBeUndefined();
  });
});
