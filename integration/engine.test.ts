/**
 * The engine in Node against the real aggregation server on a real port with a real SQLite file:
 * the same code path as in the browser worker, minus the browser (fake-indexeddb stands in for the
 * store; the browser run is in e2e/).
 */
import 'fake-indexeddb/auto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENGINE_API_VERSION, type EngineConfig } from '../protocol/api.js';
import { parameterCount, parseManifest, updateDtypeOf } from '../protocol/manifest.js';
import { DTYPE_INT4, payloadBytes } from '../protocol/update-format.js';
import type { HearthError } from '../protocol/errors.js';
import type { RunningServer } from '../server/start.js';
import { Engine } from '../worker/engine.js';
import { startEngineFixture, type EngineFixture } from './engine-fixture.js';
import { DB_NAME, MemoryStore } from '../worker/store.js';
import type { LockManagerLike } from '../worker/tabs.js';

let server: RunningServer;
let config: EngineConfig;
let fixture: EngineFixture;

beforeAll(async () => {
  fixture = await startEngineFixture(3, { backends: ['webgpu', 'webgl', 'cpu'] });
  ({ server, config } = fixture);
});

afterAll(async () => {
  await fixture.close();
});

describe('engine', () => {
  it('reports the ladder, recommends cold, then by session, and shares an update', async () => {
    const engine = new Engine();
    const status = await engine.init(config);
    expect(status.backend).toBe('cpu');
    expect(status.backends.map((a) => [a.backend, a.outcome])).toEqual([
      ['webgpu', 'skipped'],
      ['webgl', 'skipped'],
      ['cpu', 'chosen'],
    ]);
    expect(status.modelVersion).toBe(1);

    const cold = await engine.recommend({ k: 3 });
    expect(cold.map((r) => r.item)).toEqual(['item-5', 'item-4', 'item-3']);
    // The manifest names 8 popular items; a longer list goes on through the catalogue, never short.
    const long = (await engine.recommend({ k: 12, exclude: ['item-5'] })).map((r) => r.item);
    expect(long).toEqual(
      ['4', '3', '2', '1', '6', '7', '8', '9', '10', '11', '12', '13'].map((i) => `item-${i}`),
    );
    const allowed = await engine.recommend({ k: 6, allow: ['item-20', 'item-2', 'unknown'] });
    expect(allowed.map((r) => r.item)).toEqual(['item-2', 'item-20']);

    for (const item of ['item-9', 'item-12', 'item-30'])
      await engine.track({ type: 'click', item });
    await engine.track({ type: 'view', item: 'not-in-the-model' });
    const warm = await engine.recommend({ k: 5, exclude: ['item-1'] });
    expect(warm).toHaveLength(5);
    for (const id of ['item-9', 'item-12', 'item-30', 'item-1', 'not-in-the-model']) {
      expect(warm.map((r) => r.item)).not.toContain(id);
    }
    expect((await engine.stored(10)).map((s) => s.item)).toEqual([
      'not-in-the-model',
      'item-30',
      'item-12',
      'item-9',
    ]);

    const result = await engine.sync();
    expect(result.status).toBe('uploaded');
    // 44-byte header + an int4 payload (the server's default) of every model parameter.
    const manifest = parseManifest(await (await fetch(`${server.url}/v1/model`)).json());
    expect(updateDtypeOf(manifest.federation)).toBe('int4');
    expect(result.bytes).toBe(44 + payloadBytes(DTYPE_INT4, parameterCount(manifest.tensors)));
    // minCohort 1: the update closed the round, and the device picked up the new version.
    expect(manifest.version).toBe(2);
    expect(result.modelVersion).toBe(2);
    expect((await engine.status()).modelVersion).toBe(2);
    expect((await engine.status()).uploads.sent).toBe(1);
  });

  it('starts cold from popularity blended with the recency order of the manifest', async () => {
    // item-9 and item-4 are trending; item-5 is the most popular but not trending.
    const trending = await startEngineFixture(3, { backends: ['cpu'] }, [9, 4, 30]);
    try {
      const engine = new Engine();
      await engine.init(trending.config);
      await engine.forget(); // the IndexedDB stand-in still holds earlier tests' sessions
      const cold = await engine.recommend({ k: 4 });
      expect(cold.map((r) => r.item)).toEqual(['item-4', 'item-5', 'item-9', 'item-3']);
      await engine.dispose();
    } finally {
      await trending.close();
    }
  });

  it('shares nothing when uploads are off, and rejects bad input with stable codes', async () => {
    const engine = new Engine();
    await engine.init({ ...config, uploads: false });
    await engine.track({ type: 'purchase', item: 'item-2' });
    await engine.track({ type: 'click', item: 'item-3' });
    const before = (await (await fetch(`${server.url}/v1/model`)).json()) as { version: number };
    const result = await engine.sync();
    expect(result.status).toBe('skipped');
    const after = (await (await fetch(`${server.url}/v1/model`)).json()) as { version: number };
    expect(after.version).toBe(before.version);

    const code = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'resolved',
        (e: HearthError) => e.code,
      );
    expect(await code(engine.track({ type: 'hover', item: 'x' } as never))).toBe(
      'HEARTH_E_EVENT_INVALID',
    );
    expect(await code(engine.recommend({ k: 0 }))).toBe('HEARTH_E_ARGUMENT');
  });

  it('answers the handshake, keeps an opt-out across reloads, and forgets everything', async () => {
    const engine = new Engine();
    // Before init: the page's start-up check.
    expect(await engine.handshake()).toBe(ENGINE_API_VERSION);
    await engine.init(config);
    await engine.track({ type: 'click', item: 'item-6' });
    await engine.optOut();
    expect((await engine.status()).uploads.enabled).toBe(false);
    expect((await engine.sync()).reason).toMatch(/opt-out/);

    // A reload (a second engine on the same database) still sees the opt-out.
    const reloaded = new Engine();
    await reloaded.init(config);
    expect((await reloaded.status()).uploads.enabled).toBe(false);
    expect((await reloaded.stored(10)).map((s) => s.item)).toContain('item-6');

    // `reloaded` keeps its connection open, like another tab: forget must not wait on it forever.
    await engine.forget();
    expect(await engine.stored(10)).toEqual([]);
    const status = await engine.status();
    expect(status.interactions).toBe(0);
    expect(status.uploads.enabled).toBe(true);
    expect(status.uploads.sent).toBe(0);
    const after = new Engine();
    await after.init(config);
    expect(await after.stored(10)).toEqual([]);
    // Back to cold start: the same list a device with no history gets.
    expect(await engine.recommend({ k: 3 })).toEqual(await after.recommend({ k: 3 }));
    expect((await indexedDB.databases()).map((d) => d.name)).toContain(DB_NAME);
  });

  it('refuses calls before init, and keeps working when storage starts failing', async () => {
    const fresh = new Engine();
    const notReady = await fresh.track({ type: 'click', item: 'item-1' }).then(
      () => 'resolved',
      (e: HearthError) => e.code,
    );
    expect(notReady).toBe('HEARTH_E_NOT_READY');

    // A store that opens, then refuses every write: IndexedDB over its quota.
    const failing = new MemoryStore();
    const quota = (): Promise<never> =>
      Promise.reject(new DOMException('full', 'QuotaExceededError'));
    failing.add = quota;
    failing.setMeta = quota;
    const engine = new Engine({ openStore: async () => failing });
    await engine.init({ ...config, uploads: false });
    await engine.track({ type: 'click', item: 'item-7' });
    const recs = await engine.recommend({ k: 4 });
    expect(recs).toHaveLength(4);
    expect(recs.map((r) => r.item)).not.toContain('item-7');
  });
});

describe('engine storage and tabs', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
  });

  const urlOf = (input: string | URL | Request): URL =>
    new URL(input instanceof Request ? input.url : String(input));

  it('loads cached weights on a reload: only the manifest and the catalogue are fetched', async () => {
    const first = new Engine();
    await first.init(config);
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const reloaded = new Engine();
    const status = await reloaded.init(config);
    expect(status.modelVersion).toBe((await first.status()).modelVersion);
    // Both small and revalidated with their ETags in a browser; no weights.
    expect(fetchSpy.mock.calls.map(([input]) => urlOf(input).pathname).sort()).toEqual([
      '/v1/catalog',
      '/v1/model',
    ]);
    // And it recommends from those weights.
    await reloaded.track({ type: 'click', item: 'item-3' });
    expect(await reloaded.recommend({ k: 3 })).toHaveLength(3);
  });

  it('keeps an update it could not send and sends it on the next sync; drops a stale one', async () => {
    const engine = new Engine();
    await engine.init(config);
    for (const item of ['item-20', 'item-21', 'item-22'])
      await engine.track({ type: 'click', item });
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) =>
      urlOf(input).pathname === '/v1/updates'
        ? Promise.reject(new TypeError('Failed to fetch'))
        : realFetch(input, init),
    );
    const offline = await engine.sync();
    expect(offline.status).toBe('failed');
    expect(offline.reason).toMatch(/kept/);
    const { store } = engine.snapshot();
    expect((await store.getOutbox())?.baseVersion).toBe(offline.modelVersion);
    vi.restoreAllMocks();

    const retried = await engine.sync();
    expect(retried).toMatchObject({
      status: 'uploaded',
      reason: 'sent the update kept while offline',
    });
    expect(await store.getOutbox()).toBeUndefined();

    await store.setOutbox({
      baseVersion: 1,
      layoutHash: 0,
      delta: new Float32Array(4),
      examples: 1,
      createdAt: 0,
    });
    const fresh = await engine.sync();
    expect(fresh.status).toBe('uploaded');
    expect(fresh.reason).toBeUndefined();
    expect(await store.getOutbox()).toBeUndefined();
  });

  it('announces a new model to the other tabs, which load it', async () => {
    const a = new Engine();
    await a.init(config);
    const b = new Engine();
    await b.init(config);
    const before = (await b.status()).modelVersion;
    for (const item of ['item-8', 'item-9', 'item-10']) await a.track({ type: 'click', item });
    const result = await a.sync();
    // minCohort 1: this upload closes the round and tab A adopts the new version.
    expect(result).toMatchObject({ status: 'uploaded', modelVersion: before + 1 });
    await vi.waitFor(async () => expect((await b.status()).modelVersion).toBe(before + 1), {
      timeout: 10_000,
    });
  });

  it('explains, restricts to allowed items, and explores in the last slot when configured', async () => {
    const engine = new Engine();
    await engine.init({ ...config, uploads: false, explore: true });
    for (const item of ['item-14', 'item-15']) await engine.track({ type: 'click', item });
    // Earlier tests' clicks may still be in the same (30-minute) session on this shared database.
    const stored = await engine.stored(200);
    const session = stored.filter((s) => s.session === stored[0]!.session).map((s) => s.item);
    const recs = await engine.recommend({ k: 4, explain: true });
    expect(recs).toHaveLength(4);
    for (const r of recs) expect(session).toContain(r.reason?.item);
    expect(recs.map((r) => r.explore === true)).toEqual([false, false, false, true]);
    // The explored item is not one of the model's top 3 but is within the next EXPLORE_POOL.
    const plain = new Engine();
    await plain.init({ ...config, uploads: false });
    const top = await plain.recommend({ k: 3 + 50, exclude: session });
    expect(top.slice(0, 3).map((r) => r.item)).toEqual(recs.slice(0, 3).map((r) => r.item));
    expect(top.slice(3).map((r) => r.item)).toContain(recs[3]!.item);

    const allow = ['item-30', 'item-2', 'item-14', 'unknown'];
    const allowed = await engine.recommend({ k: 6, allow });
    expect(allowed.map((r) => r.item).sort()).toEqual(['item-2', 'item-30']);
    expect(allowed.some((r) => r.reason)).toBe(false);
  });

  it('skips a sync while another tab holds the trainer lock', async () => {
    const requested: string[] = [];
    const heldElsewhere: LockManagerLike = {
      // A lock held elsewhere: `ifAvailable` requests get null.
      request: (name, _options, callback) => {
        requested.push(name);
        return Promise.resolve(callback(null));
      },
    };
    const engine = new Engine({ locks: heldElsewhere });
    await engine.init(config);
    const result = await engine.sync();
    expect(result).toMatchObject({ status: 'skipped', reason: 'another tab is training' });
    expect(requested).toEqual(['hearth-trainer']);
  });
});
