/**
 * The engine in Node against servers configured otherwise than the fixture's: per-site keys,
 * participation sampling (q), int8 weights, and when automatic updates are due. Same set-up as
 * engine.test.ts: the real server on a real port and SQLite file, fake-indexeddb for the store.
 */
import 'fake-indexeddb/auto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EngineConfig } from '../protocol/api.js';
import { computeEpsilon } from '../protocol/privacy/index.js';
import { int8StepError } from '../protocol/testing.js';
import { INT8E_STEP_RATIO } from '../protocol/weights-codec.js';
import { resolveConfig, type ServerConfig } from '../server/config.js';
import { startServer, type RunningServer } from '../server/start.js';
import { loadModel } from '../tools/model-io.js';
import { Engine } from '../worker/engine.js';
import { MemoryStore } from '../worker/store.js';
import { takePartSecurely } from '../worker/secure-client.js';
import { decodeUpdate } from '../protocol/update-format.js';
import { unsketchUpdate } from '../protocol/item-sketch.js';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { postZeroUpdate, worstDifference } from '../server/test-helpers.js';
import { startEngineFixture, type EngineFixture } from './engine-fixture.js';

let dir: string;
let config: EngineConfig;
let fixture: EngineFixture;

beforeAll(async () => {
  fixture = await startEngineFixture(3, { backends: ['webgpu', 'webgl', 'cpu'] });
  ({ dir, config } = fixture);
});

afterAll(async () => {
  await fixture.close();
});

/** A server of this file's own on the fixture's model, in `<name>.sqlite`, with `settings`. */
function startOwn(name: string, settings: Partial<ServerConfig>): Promise<RunningServer> {
  return startServer(
    resolveConfig({
      port: 0,
      dbPath: join(dir, `${name}.sqlite`),
      modelDir: join(dir, 'model'),
      ...settings,
    }),
  );
}

/** Pathnames of the POSTs made while `task` runs. */
async function postsDuring(task: () => Promise<unknown>): Promise<string[]> {
  const spy = vi.spyOn(globalThis, 'fetch');
  try {
    await task();
    return spy.mock.calls
      .filter(([, init]) => init?.method === 'POST')
      .map(([input]) => new URL(input instanceof Request ? input.url : String(input)).pathname);
  } finally {
    spy.mockRestore();
  }
}

describe('engine against a server with per-site keys', () => {
  const key = 'site-key-0123456789abcdef';
  let keyed: RunningServer;

  beforeAll(async () => {
    keyed = await startOwn('keyed', {
      aggregation: 'plaintext',
      minCohort: 1,
      sampleRate: 1,
      sites: [{ id: 'demo', key, origins: ['https://shop.example'] }],
    });
  });

  afterAll(async () => {
    await keyed.close();
  });

  it('shares an update with the site key and is refused without it', async () => {
    const without = new Engine();
    await without.init({ ...config, endpoint: keyed.url });
    await without.track({ type: 'click', item: 'item-2' });
    await without.track({ type: 'click', item: 'item-3' });
    const refused = await without.sync();
    expect(refused.status).toBe('failed');
    expect(refused.reason).toContain('HEARTH_E_API_KEY');

    const withKey = new Engine();
    await withKey.init({ ...config, endpoint: keyed.url, siteKey: key });
    expect((await withKey.sync()).status).toBe('uploaded');
  });
});

describe('automatic updates', () => {
  it('count visitor actions only: views alone never make a request', async () => {
    const engine = new Engine();
    await engine.init({ ...config, uploadEvery: 3 });
    await engine.forget();
    const viewed = await postsDuring(async () => {
      for (const item of ['item-11', 'item-12', 'item-13', 'item-14', 'item-15']) {
        await engine.track({ type: 'view', item });
      }
      await engine.track({ type: 'dwell', item: 'item-11' });
      await engine.idle();
    });
    expect(viewed).toEqual([]);
    // The third click queues a sync (track() does not wait for it); idle() waits it out.
    const clicked = await postsDuring(async () => {
      for (const item of ['item-16', 'item-17', 'item-18']) {
        await engine.track({ type: 'click', item });
      }
      await engine.idle();
    });
    expect(clicked).toContain('/v1/rounds/join');
  });
});

describe('engine against servers that sample devices (honest sampling)', () => {
  const servers: RunningServer[] = [];
  const serve = async (name: string, sampleRate: number): Promise<string> => {
    const started = await startOwn(name, {
      aggregation: 'plaintext',
      minCohort: 1,
      sampleRate,
    });
    servers.push(started);
    return started.url;
  };

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('with q = 0 never joins: no request, however often it syncs', async () => {
    const endpoint = await serve('q0', 0);
    const engine = new Engine({ coin: () => 0 });
    await engine.init({ ...config, endpoint });
    // A new device: the store (one per origin) is shared with the engines above.
    await engine.forget();
    for (const item of ['item-4', 'item-5', 'item-6']) await engine.track({ type: 'click', item });
    const posts = await postsDuring(async () => {
      for (let i = 0; i < 3; i++) {
        expect(await engine.sync()).toMatchObject({
          status: 'skipped',
          reason: expect.stringContaining('not sampled'),
        });
      }
    });
    expect(posts).toEqual([]);
  });

  it('flips its coin once per version, before any request, and keeps the outcome', async () => {
    const endpoint = await serve('q-half', 0.5);
    let flips = 0;
    const tails = new Engine({ coin: () => (flips++, 0.7) });
    await tails.init({ ...config, endpoint });
    await tails.forget();
    await tails.track({ type: 'click', item: 'item-7' });
    expect(await postsDuring(() => tails.sync())).toEqual([]);
    expect(await postsDuring(() => tails.sync())).toEqual([]);
    expect(flips).toBe(1);

    const heads = new Engine({ coin: () => 0.3 });
    await heads.init({ ...config, endpoint });
    await heads.forget();
    for (const item of ['item-8', 'item-9']) await heads.track({ type: 'click', item });
    let result: unknown;
    const posts = await postsDuring(async () => (result = await heads.sync()));
    expect(result).toMatchObject({ status: 'uploaded' });
    expect(posts).toEqual(['/v1/rounds/join', '/v1/updates']);
  });
});

describe('engine against a server that serves int8e weights (the default)', () => {
  let int8: RunningServer;

  beforeAll(async () => {
    int8 = await startOwn('int8e', {
      aggregation: 'plaintext',
      weightsDtype: 'int8e',
    });
  });

  afterAll(async () => {
    await int8.close();
  });

  it('downloads under half the bytes (a tiny model: a scale per 8 values) within half a step of each row', async () => {
    // The seed both servers started from (the fixture's server has published newer versions since).
    const seed = await loadModel(join(dir, 'model'));
    const exact = { weights: seed.model.toFlat() };
    seed.model.dispose();
    // A new device (its own empty store: this file's engines share one IndexedDB with cached
    // versions). It checks the download's length against the manifest before decoding it.
    const small = new Engine({ openStore: async () => new MemoryStore() });
    await small.init({ ...config, endpoint: int8.url });
    const got = small.snapshot().global!;
    expect(got.manifest.weights.dtype).toBe('int8e');
    expect(got.origin).toBe('network');
    expect(got.manifest.weights.byteLength).toBeLessThan(exact.weights.length * 4 * 0.5);
    expect(int8StepError(got.weights, exact.weights, got.manifest.tensors)).toBeLessThanOrEqual(
      0.5 * INT8E_STEP_RATIO + 1e-6,
    );
    await small.track({ type: 'click', item: 'item-3' });
    expect(await small.recommend({ k: 5 })).toHaveLength(5);
  });
});

describe('engines in a secure aggregation round', () => {
  let secure: RunningServer;

  beforeAll(async () => {
    secure = await startOwn('secure', {
      aggregation: 'secure',
      noiseMultiplier: 0,
      // Fewer buckets than the fixture's 40 items: devices send sketches, and a device on an
      // older version sketches its training afresh with the round's hashes.
      itemSketch: 8,
      minCohort: 3,
      secureCohort: 4,
      sampleRate: 1,
      secureStageSeconds: 20,
      // Every engine of this test is one loopback client.
      joinsPerRound: 0,
    });
  });

  afterAll(async () => {
    await secure.close();
  });

  it('send their updates only masked, and the round publishes their sum', async () => {
    const engines = [0, 1, 2, 3].map(
      () => new Engine({ openStore: async () => new MemoryStore(), locks: null }),
    );
    for (const [i, engine] of engines.entries()) {
      await engine.init({ ...config, endpoint: secure.url });
      for (const item of [`item-${i + 2}`, `item-${i + 7}`, `item-${i + 3}`]) {
        await engine.track({ type: 'click', item });
      }
    }
    const posts = await postsDuring(async () => {
      const results = await Promise.all(engines.map((engine) => engine.sync()));
      for (const result of results) {
        expect(result).toMatchObject({ status: 'uploaded', modelVersion: 2 });
      }
    });
    expect(posts).not.toContain('/v1/updates');
    expect(posts.filter((path) => path === '/v1/secure/join')).toHaveLength(4);
    expect(await secure.store.counts()).toMatchObject({ versions: 2, updates: 0 });
    expect((await secure.store.history(1))[0]).toMatchObject({ updates: 4, norms: [] });
  }, 60_000);

  it('take part in a round on a newer version within the staleness bound', async () => {
    const late = Array.from(
      { length: 4 },
      () => new Engine({ openStore: async () => new MemoryStore(), locks: null }),
    );
    for (const [i, engine] of late.entries()) {
      await engine.init({ ...config, endpoint: secure.url });
      for (const item of [`item-${i + 2}`, `item-${i + 5}`]) {
        await engine.track({ type: 'click', item });
      }
    }
    const start = (await secure.store.latestVersion())!;
    // Four other devices (the worker's client, no engine that would tell these of it) publish a
    // round; the engines, still on the version before it, sync into the next one.
    const others = await Promise.all(
      [0, 1, 2, 3].map(() =>
        takePartSecurely({
          endpoint: secure.url,
          expected: { minimum: 3, clipNorm: 1 },
          input: (info) => new Float32Array(info.length),
        }),
      ),
    );
    for (const outcome of others) expect(outcome).toMatchObject({ version: start + 1 });
    for (const engine of late) expect((await engine.status()).modelVersion).toBe(start);
    for (const result of await Promise.all(late.map((e) => e.sync()))) {
      expect(result).toMatchObject({ status: 'uploaded', modelVersion: start + 2 });
    }
    // Their updates were computed on the older version, and counted in the newer one's round.
    for (const engine of late) {
      const { rounds } = await engine.ledger();
      expect(rounds.at(-1)).toMatchObject({ version: start, mode: 'secure' });
    }
    expect((await secure.store.history(1))[0]).toMatchObject({ updates: 4 });
  }, 90_000);
});

describe('an engine whose version moved on while it trained', () => {
  let sketching: RunningServer;

  beforeAll(async () => {
    sketching = await startOwn('ahead', {
      aggregation: 'plaintext',
      // Fewer buckets than the fixture's 40 items; FedAvg at rate 1, float32 weights, no noise:
      // a version is the one before plus the round's update read back.
      itemSketch: 8,
      minCohort: 1,
      sampleRate: 1,
      maxStaleness: 2,
      noiseMultiplier: 0,
      serverOptimizer: 'fedavg',
      serverLearningRate: 1,
      weightsDtype: 'float32',
      joinsPerRound: 0,
    });
  });

  afterAll(async () => {
    await sketching.close();
  });

  /** Version `version`'s weights as the store keeps them (float32). */
  async function weightsOf(version: number): Promise<Float32Array> {
    return bytesToFloat32((await sketching.store.getWeightBytes(version))!);
  }

  it("sends its training in the newest version's sketch, and the server takes it as it is", async () => {
    const engine = new Engine({ openStore: async () => new MemoryStore(), locks: null });
    await engine.init({ ...config, endpoint: sketching.url });
    for (const item of ['item-2', 'item-9', 'item-3', 'item-17']) {
      await engine.track({ type: 'click', item });
    }
    const start = (await sketching.store.latestVersion())!;
    const send = globalThis.fetch;
    const bodies: Uint8Array[] = [];
    let joined = false;
    let published = false;
    // Another device's round publishes while this one trains: between its join and its upload.
    // Only this server's requests count: the engines of earlier tests hear this one's model
    // announcement and fetch their own (closed) servers' manifests meanwhile.
    const ours = new URL(sketching.url).origin;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.origin !== ours) return send(input, init);
      if (url.pathname === '/v1/rounds/join') joined = true;
      if (url.pathname === '/v1/model' && joined && !published) {
        published = true;
        const manifest = (await sketching.store.getManifest(start))!;
        expect(await postZeroUpdate(sketching.url, manifest, send)).toBe(202);
      }
      if (url.pathname === '/v1/updates') bodies.push(new Uint8Array(init!.body as Uint8Array));
      return send(input, init);
    });
    try {
      expect(await engine.sync()).toMatchObject({ status: 'uploaded', modelVersion: start + 2 });
    } finally {
      spy.mockRestore();
    }
    expect(published).toBe(true);
    const newer = (await sketching.store.getManifest(start + 1))!;
    const body = decodeUpdate(bodies[0]!, 1e7);
    expect(body).toMatchObject({
      baseVersion: start,
      layoutAhead: 1,
      layoutHash: newer.layoutHash,
    });
    // The version it landed in is the newer one plus its body read back with that version's
    // hashes: the server carried nothing over.
    const before = await weightsOf(start + 1);
    const moved = (await weightsOf(start + 2)).map((w, i) => w - before[i]!);
    const read = unsketchUpdate(
      body.delta,
      newer.dims,
      newer.federation.itemSketch!,
      new Float32Array(before.length),
    );
    expect(worstDifference(moved, read)).toBeLessThan(1e-6);
    // Its ledger names the version it trained on.
    const { rounds } = await engine.ledger();
    expect(rounds.at(-1)).toMatchObject({ version: start, mode: 'plaintext' });
  }, 60_000);
});

describe("the visitor's privacy ledger", () => {
  let noisy: RunningServer;

  beforeAll(async () => {
    noisy = await startOwn('ledger', {
      aggregation: 'plaintext',
      minCohort: 1,
      sampleRate: 1,
      noiseMultiplier: 1.5,
      delta: 1e-5,
    });
  });

  afterAll(async () => {
    await noisy.close();
  });

  it('lists every request the engine sent, the round it joined and its epsilon; forgets one item', async () => {
    const engine = new Engine();
    const original = globalThis.fetch;
    const seen: string[] = [];
    // As worker/index.ts does; the spy underneath sees what really goes out.
    globalThis.fetch = engine.requests.wrap(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      seen.push(`${(init?.method ?? 'GET').toUpperCase()} ${url}`);
      return original(input, init);
    });
    try {
      await engine.init({ ...config, endpoint: noisy.url });
      await engine.forget();
      seen.length = 0;
      await engine.track({ type: 'click', item: 'item-2' });
      await engine.track({ type: 'view', item: 'item-2' });
      await engine.track({ type: 'click', item: 'item-3' });
      await engine.track({ type: 'click', item: 'item-4' });
      await engine.track({ type: 'click', item: 'item-5' });
      await engine.track({ type: 'view', item: 'item-5' });
      const result = await engine.sync();
      expect(result.status).toBe('uploaded');
      const ledger = await engine.ledger();

      // Every request to this server since forget() (which erased the log with everything else),
      // and only those. (Engines of the tests above, still alive in this process, use other servers.)
      const ours = (list: string[]) => list.filter((r) => r.includes(noisy.url)).sort();
      const logged = ledger.requests.map((r) => `${r.method} ${r.url}`);
      expect(ours(logged)).toEqual(ours(seen));
      expect(ours(logged).length).toBeGreaterThanOrEqual(2);
      const update = ledger.requests.find((r) => r.kind === 'update')!;
      expect(update).toMatchObject({ method: 'POST', status: 202, sent: result.bytes });
      expect(ledger.requests.find((r) => r.kind === 'join')).toMatchObject({ status: 200 });

      expect(ledger.rounds).toHaveLength(1);
      expect(ledger.rounds[0]).toMatchObject({
        mode: 'plaintext',
        privacy: { noiseMultiplier: 1.5, sampleRate: 1 },
      });
      expect(ledger.aggregation).toBe('plaintext');
      expect(ledger.privacy.delta).toBe(1e-5);
      const once = computeEpsilon({ noise: 1.5, sampleRate: 1, steps: 1, delta: 1e-5 }).epsilon;
      expect(ledger.privacy.epsilon).toBeCloseTo(once, 9);
      expect(ledger.privacy.curve).toEqual([ledger.privacy.epsilon]);

      const items = ledger.items.map((i) => [i.item, i.count, i.types]);
      expect(items.sort()).toEqual([
        ['item-2', 2, { click: 1, view: 1 }],
        ['item-3', 1, { click: 1 }],
        ['item-4', 1, { click: 1 }],
        ['item-5', 2, { click: 1, view: 1 }],
      ]);
      // The round published a new version; the device learns its copy of it from the history.
      await engine.learnPending();
      expect((await engine.status()).learning.personalised).toBe(true);

      await engine.forget('item-2');
      const after = await engine.ledger();
      expect(after.items.map((i) => i.item).sort()).toEqual(['item-3', 'item-4', 'item-5']);
      expect((await engine.stored(50)).map((s) => s.item)).not.toContain('item-2');
      expect(await engine.stored(50)).toHaveLength(4);
      // What was learned from item-2 went with it; the record of what was sent stays.
      expect((await engine.status()).learning.personalised).toBe(false);
      expect(after.rounds).toHaveLength(1);
      expect(after.requests.length).toBeGreaterThanOrEqual(ledger.requests.length);
      expect((await engine.recommend({ k: 3 })).map((r) => r.item)).not.toContain('item-3');
      await expect(engine.forget('')).rejects.toMatchObject({ code: 'HEARTH_E_ARGUMENT' });
      await engine.dispose();
    } finally {
      globalThis.fetch = original;
    }
  });
});
