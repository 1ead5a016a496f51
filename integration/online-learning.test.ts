/**
 * Online learning in the engine, in Node against the real server (as engine.test.ts): a few steps
 * after interactions, nothing with `learn: false`, uploads built on the local copy, and a local copy
 * re-derived from a newly published global version.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EngineConfig } from '../protocol/api.js';
import { Engine } from '../worker/engine.js';
import { startEngineFixture, type EngineFixture } from './engine-fixture.js';
import type { LoadedModel } from '../worker/model-source.js';
import { ensureGradients } from '../model/gradients.js';
import { SessionModel } from '../model/session-model.js';
import {
  ONLINE_LEARNING,
  onlineLearningSettings,
  pickSessions,
} from '../worker/online-learning.js';
import { LOCAL_TRAINING, localTrainingSettings } from '../worker/local-training.js';

let config: EngineConfig;
let fixture: EngineFixture;
/** A short quiet time before an update, passed to every engine here. */
const DEBOUNCE_MS = 20;
const fast = { learning: { debounceMs: DEBOUNCE_MS } };

beforeAll(async () => {
  // Loading tfjs' gradients is a one-off import of the umbrella bundle (seconds under load): done
  // here, so the waits below time learning, not that import.
  await ensureGradients();
  fixture = await startEngineFixture(5, { uploads: false });
  ({ config } = fixture);
});

afterAll(async () => {
  await fixture.close();
});

/** The engine's global model (loaded by init()). */
const globalOf = (engine: Engine): LoadedModel => engine.snapshot().global!;

/** Largest absolute difference between the served weights and the global ones. */
function drift(engine: Engine): number {
  const { served, global } = engine.snapshot();
  if (!served || !global) throw new Error('no model served');
  let max = 0;
  for (let i = 0; i < served.length; i++)
    max = Math.max(max, Math.abs(served[i]! - global.weights[i]!));
  return max;
}

/** Waits past the debounce, then for every queued task (learning included) to finish. */
async function settle(engine: Engine): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 5));
  await engine.idle();
}

const clicks = ['item-3', 'item-17', 'item-25', 'item-3', 'item-17', 'item-25', 'item-9'];

describe('online learning', () => {
  it('picks the newest sessions plus a replay sample, or the newest history to re-derive', () => {
    const sessions = Array.from({ length: 10 }, (_, i) => ({
      items: [i + 1, i + 2],
      weights: [1, 1],
    }));
    const picked = pickSessions(sessions, false, ONLINE_LEARNING, () => 0);
    expect(picked).toHaveLength(ONLINE_LEARNING.recentSessions + ONLINE_LEARNING.replaySessions);
    expect(picked.slice(-2)).toEqual(sessions.slice(-2));
    expect(pickSessions(sessions, true, ONLINE_LEARNING)).toEqual(sessions);
    expect(pickSessions([], false, ONLINE_LEARNING)).toEqual([]);
  });

  it('does not learn with learn: false', async () => {
    const off = new Engine(fast);
    await off.init({ ...config, learn: false });
    for (const item of clicks) await off.track({ type: 'click', item });
    await settle(off);
    expect(drift(off)).toBe(0);
    expect(globalOf(off).local).toBeUndefined();
  });

  it('starts learning only once the device holds minInteractions interactions', async () => {
    // 5, below the default: the engine honours the setting its options pass.
    expect(ONLINE_LEARNING.minInteractions).toBeGreaterThan(5);
    const engine = new Engine({ learning: { debounceMs: DEBOUNCE_MS, minInteractions: 5 } });
    await engine.init(config);
    // The store is shared with the other tests' engines: start from an empty one.
    await engine.forget();
    for (const item of clicks.slice(0, 4)) await engine.track({ type: 'click', item });
    await settle(engine);
    expect(drift(engine)).toBe(0);
    expect(globalOf(engine).local).toBeUndefined();
    await engine.track({ type: 'click', item: clicks[4]! });
    await vi.waitFor(() => expect(drift(engine)).toBeGreaterThan(0), { timeout: 10_000 });
    await settle(engine);
  });

  it('learns with the learning rate its options pass: at 0 the local copy is the global one', async () => {
    const engine = new Engine({ learning: { debounceMs: DEBOUNCE_MS, learningRate: 0 } });
    await engine.init(config);
    await engine.forget();
    for (const item of clicks) await engine.track({ type: 'click', item });
    await engine.learnPending();
    const global = globalOf(engine);
    // An update ran and its result is served, yet nothing moved (the default rate moves weights:
    // 'serves fine-tuned weights after interactions' below).
    expect(global.local).toBeDefined();
    expect(global.local).toEqual(global.weights);
    expect(drift(engine)).toBe(0);
    await engine.dispose();
  });

  it('keeps its defaults frozen and merges settings over them without writing them', () => {
    const before = { ...ONLINE_LEARNING };
    const merged = onlineLearningSettings({ minInteractions: 2, learningRate: undefined });
    expect(merged).toEqual({ ...before, minInteractions: 2 });
    expect(Object.isFrozen(merged)).toBe(true);
    expect(ONLINE_LEARNING).toEqual(before);
    expect(Object.isFrozen(ONLINE_LEARNING)).toBe(true);
    expect(() => Object.assign(ONLINE_LEARNING, { debounceMs: 1 })).toThrow(TypeError);
    const local = localTrainingSettings({ maxSteps: 3 });
    expect(local).toEqual({ ...LOCAL_TRAINING, maxSteps: 3 });
    expect(Object.isFrozen(local)).toBe(true);
    expect(Object.isFrozen(LOCAL_TRAINING)).toBe(true);
    expect(() => Object.assign(LOCAL_TRAINING, { learningRate: 1 })).toThrow(TypeError);
  });

  it('serves fine-tuned weights after interactions, and the session ranks differently', async () => {
    const learning = new Engine(fast);
    await learning.init(config);
    for (const item of clicks) await learning.track({ type: 'click', item });
    await vi.waitFor(() => expect(drift(learning)).toBeGreaterThan(0), { timeout: 10_000 });
    await settle(learning);
    const global = globalOf(learning);
    const { sessionItems } = learning.snapshot();
    expect(global.local).toBeDefined();
    const tuned = await learning.recommend({ k: 10 });
    expect(tuned).toHaveLength(10);
    for (const id of clicks) expect(tuned.map((r) => r.item)).not.toContain(id);
    // The same session under the plain global weights scores differently.
    const plain = SessionModel.fromFlat(global.manifest.dims, global.weights);
    const scores = (await plain.scoreNext([[...sessionItems]]).data()) as Float32Array;
    plain.dispose();
    const ids = global.manifest.itemIds;
    const plainScores = tuned.map((r) => scores[ids.indexOf(r.item)]!);
    const diff = Math.max(...tuned.map((r, n) => Math.abs(r.score - plainScores[n]!)));
    expect(diff).toBeGreaterThan(1e-6);
    expect((await learning.status()).modelVersion).toBe(global.manifest.version);
  });

  it('keeps the served local copy in the store, and none learned before forget() after it', async () => {
    const engine = new Engine(fast);
    await engine.init(config);
    for (const item of ['item-4', 'item-8', 'item-15']) await engine.track({ type: 'click', item });
    await engine.learnPending();
    await engine.idle();
    const global = globalOf(engine);
    const kept = await engine.snapshot().store.getModel(global.manifest.version);
    expect(kept?.local).toEqual(global.local);
    // Learn once more, then erase before the write can finish: the new store has no local copy.
    await engine.track({ type: 'click', item: 'item-16' });
    await engine.learnPending();
    await engine.forget();
    await engine.idle();
    const after = await engine.snapshot().store.getModel(global.manifest.version);
    expect(after?.local).toBeUndefined();
    await engine.dispose();
  });

  it('uploads the local copy after online learning', async () => {
    const engine = new Engine(fast);
    await engine.init({ ...config, uploads: true });
    // At least minInteractions of them (the default): then the device starts learning.
    for (const item of ['item-30', 'item-31', 'item-32', 'item-33', 'item-34', 'item-35'])
      await engine.track({ type: 'click', item });
    await vi.waitFor(() => expect(globalOf(engine).local).toBeDefined(), {
      timeout: 10_000,
    });
    await settle(engine);
    const version = (await engine.status()).modelVersion;
    const result = await engine.sync();
    expect(result.status).toBe('uploaded');
    // minCohort 1: the round closed and a new version was published and adopted.
    expect(result.modelVersion).toBe(version + 1);
  });

  it('re-derives a local copy from a newly published global version', async () => {
    const engine = new Engine(fast);
    await engine.init({ ...config, uploads: true });
    for (const item of ['item-11', 'item-12', 'item-13'])
      await engine.track({ type: 'click', item });
    await settle(engine);
    const version = (await engine.status()).modelVersion;
    // Another device closes a round (minCohort 1): a new global version is published.
    const other = new Engine(fast);
    await other.init({ ...config, uploads: true, learn: false });
    await other.track({ type: 'click', item: 'item-1' });
    expect((await other.sync()).status).toBe('uploaded');
    // This device hears of it from the other engine (the tabs' announcement) and adopts it; its next
    // upload then closes a round on it.
    await vi.waitFor(() => expect(globalOf(engine).manifest.version).toBe(version + 1), {
      timeout: 10_000,
    });
    expect((await engine.sync()).modelVersion).toBe(version + 2);
    await vi.waitFor(
      () => {
        const global = globalOf(engine);
        expect(global.manifest.version).toBe(version + 2);
        expect(global.local).toBeDefined();
        expect(drift(engine)).toBeGreaterThan(0);
      },
      { timeout: 10_000 },
    );
    expect((await engine.status()).modelVersion).toBe(version + 2);
  });
});
