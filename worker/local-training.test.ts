/**
 * Local learning before an upload trains under the settings it is given, and only those; a sync
 * under round windows flips one coin per window and sends nothing across windows.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EngineConfig } from '../protocol/api.js';
import {
  denseLength,
  manifestFor,
  roundWindowAt,
  type FederationParams,
} from '../protocol/manifest.js';
import { PATHS } from '../protocol/routes.js';
import { SessionModel } from '../model/session-model.js';
import {
  carriedInput,
  learnLocally,
  localTrainingSettings,
  shareLocalUpdate,
  type ShareHost,
} from './local-training.js';
import { MemoryStore } from './store.js';
import { toTrainingSessions } from './sessions.js';
import { clipForUpload, encodeDeviceUpdate } from './federated-client.js';
import { l2Norm } from '../protocol/clip.js';
import {
  DTYPE_FLOAT16,
  DTYPE_INT2,
  DTYPE_INT4,
  UPDATE_HEADER_BYTES,
  decodeUpdate,
} from '../protocol/update-format.js';
import { quantizedBytes } from '../protocol/update-quant.js';
import type { GlobalModel } from './model-source.js';
import { fitUpdate, gatherLayout, scatterLayout, updateLength } from '../protocol/update-layout.js';
import { roundSketch, sentDense, sketchLength, sketchUpdate } from '../protocol/item-sketch.js';

const dims = { items: 20, embedding: 4, hidden: 4, maxSessionLength: 5 };
let global: GlobalModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = SessionModel.random(dims, 3);
  const weights = model.toFlat();
  model.dispose();
  const manifest = manifestFor(dims, {
    itemIds: Array.from({ length: dims.items }, (_, i) => (i === 0 ? '' : `item-${i}`)),
    popular: [1, 2, 3],
    federation: { clipNorm: 1, minCohort: 1, maxExamples: 1000 },
  });
  global = { manifest, weights };
});

const sessions = [{ items: [1, 2, 3, 4] }, { items: [5, 6, 5, 7] }];

describe('learnLocally', () => {
  it('trains under the settings it is passed', async () => {
    const trained = await learnLocally(global, sessions, undefined, localTrainingSettings());
    expect(trained.update.examples).toBeGreaterThan(0);
    expect(trained.weights).not.toEqual(global.weights);
    trained.model.dispose();
    // No epoch: nothing is learned, and the delta is zero.
    const none = await learnLocally(
      global,
      sessions,
      undefined,
      localTrainingSettings({ epochs: 0 }),
    );
    expect(none.update.examples).toBe(0);
    expect(none.weights).toEqual(global.weights);
    expect(Math.max(...none.update.delta.map(Math.abs))).toBe(0);
    none.model.dispose();
  });

  it('sends the layout the manifest names, and adopts only its coordinates', async () => {
    const rows = [2, 5, 11];
    const layout = { kind: 'rows', rows } as const;
    const named = {
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, updateRows: rows, clipNorm: 1e9 },
      },
    };
    const trained = await learnLocally(named, sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    expect(trained.update.delta.length).toBe(updateLength(dims, layout));
    // Items 1-7 were seen, but rows outside the layout (1, 3, 4, 6, 7...) never move.
    const moved = trained.weights.map((w, i) => w - global.weights[i]!);
    const inLayout = new Float32Array(trained.weights.length);
    scatterLayout(new Float32Array(updateLength(dims, layout)).fill(1), dims, layout, inLayout);
    let outside = 0;
    moved.forEach((d, i) => {
      if (inLayout[i] === 0 && d !== 0) outside++;
    });
    expect(outside).toBe(0);
    const compact = gatherLayout(moved, dims, layout, new Float32Array(updateLength(dims, layout)));
    // What it adopted is what it sends (unclipped here: S is out of reach).
    compact.forEach((d, i) => expect(trained.update.delta[i]).toBeCloseTo(d, 5));
    expect(Math.max(...compact.map(Math.abs))).toBeGreaterThan(0);
  });

  it('trains the whole model under an item sketch, and sends the sketch of what it adopted', async () => {
    const sketch = roundSketch(3, 7);
    const sketched = (clipNorm: number) => ({
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, itemSketch: sketch, clipNorm },
      },
    });
    const trained = await learnLocally(sketched(1e9), sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    expect(trained.update.delta.length).toBe(sketchLength(dims, sketch));
    expect(trained.update.delta.length).toBeLessThan(global.weights.length);
    const moved = trained.weights.map((w, i) => w - global.weights[i]!);
    // Every item it saw moved (1-7): a sketch names no rows.
    for (const item of [1, 2, 3, 4, 5, 6, 7]) {
      const row = moved.subarray(item * dims.embedding, (item + 1) * dims.embedding);
      expect(l2Norm(row), `item ${item}`).toBeGreaterThan(0);
    }
    const expected = sketchUpdate(
      moved,
      dims,
      sketch,
      new Float32Array(sketchLength(dims, sketch)),
    );
    expected.forEach((d, i) => expect(trained.update.delta[i]).toBeCloseTo(d, 5));
    // Clipped as a whole to S: the sketch is what leaves the device.
    const clipped = await learnLocally(
      sketched(0.01),
      sessions,
      undefined,
      localTrainingSettings(),
    );
    clipped.model.dispose();
    expect(l2Norm(clipped.update.delta)).toBeLessThanOrEqual(0.01);
    expect(l2Norm(clipped.update.delta)).toBeGreaterThan(0.0099);
    // With a dense stride, one in k of the dense values it adopted, then the same buckets.
    const strided = roundSketch(3, 7, 1, 4);
    const stridedRun = await learnLocally(
      {
        ...global,
        manifest: {
          ...global.manifest,
          federation: { ...global.manifest.federation, itemSketch: strided, clipNorm: 1e9 },
        },
      },
      sessions,
      undefined,
      localTrainingSettings(),
    );
    stridedRun.model.dispose();
    const carried = sentDense(denseLength(dims), strided);
    expect(stridedRun.update.delta.length).toBe(sketchLength(dims, strided));
    expect(stridedRun.update.delta.length).toBe(
      expected.length - denseLength(dims) + carried.count,
    );
    const denseFrom = global.weights.length - denseLength(dims);
    for (let j = 0; j < carried.count; j++) {
      const at = denseFrom + carried.offset + j * carried.stride;
      expect(stridedRun.update.delta[j]).toBeCloseTo(moved[at]!, 5);
    }
    const buckets = stridedRun.update.delta.subarray(carried.count);
    buckets.forEach((d, i) => expect(d).toBeCloseTo(expected[denseLength(dims) + i]!, 5));
  });

  it("sends the same training in a newer version's sketch exactly, not carried over", async () => {
    const withSketch = (sketch: ReturnType<typeof roundSketch>) => ({
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, itemSketch: sketch, clipNorm: 1e9 },
      },
    });
    const own = roundSketch(3, 7);
    const newer = roundSketch(3, 8);
    const trained = await learnLocally(
      withSketch(own),
      sessions,
      undefined,
      localTrainingSettings(),
    );
    trained.model.dispose();
    // The same training (same version, sessions and seed) under the newer version's hashes.
    const there = await learnLocally(
      withSketch(newer),
      sessions,
      undefined,
      localTrainingSettings(),
    );
    there.model.dispose();
    const sent = trained.sendIn({ kind: 'sketch', sketch: newer }, dims, 1e9)!;
    expect(sent.length).toBe(there.update.delta.length);
    sent.forEach((v, i) => expect(v).toBeCloseTo(there.update.delta[i]!, 5));
    // Carrying the sent sketch over instead reads it back with its own hashes: not the same.
    const carried = fitUpdate(
      trained.update.delta,
      dims,
      { kind: 'sketch', sketch: own },
      { kind: 'sketch', sketch: newer },
    );
    expect(l2Norm(carried.map((v, i) => v - sent[i]!))).toBeGreaterThan(0.1 * l2Norm(sent));
    // Clipped to the S it is given.
    const small = l2Norm(trained.sendIn({ kind: 'sketch', sketch: newer }, dims, 0.01)!);
    expect(small).toBeLessThanOrEqual(0.01);
    expect(small).toBeGreaterThan(0.0099);
    // A secure round on the newer version takes the training afresh, a kept update carried over.
    const into = (fresh?: typeof trained) =>
      carriedInput(
        trained.update.delta,
        withSketch(own).manifest,
        withSketch(newer).manifest,
        fresh,
      );
    expect(Array.from(into(trained))).toEqual(Array.from(sent));
    expect(Array.from(into())).toEqual(Array.from(carried));
    // Trained on named rows, it has nothing beyond them to send.
    const named = {
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, updateRows: [2, 5], clipNorm: 1e9 },
      },
    };
    const rows = await learnLocally(named, sessions, undefined, localTrainingSettings());
    rows.model.dispose();
    expect(rows.sendIn({ kind: 'sketch', sketch: newer }, dims, 1e9)).toBeUndefined();
  });

  it("encodes the upload in the manifest's dtype, rounding with the platform's CSPRNG", async () => {
    const trained = await learnLocally(global, sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    const delta = clipForUpload(trained.update.delta, 1);
    const token = new Uint8Array(16);
    const half = encodeDeviceUpdate(global.manifest, delta, 3, token);
    expect(half[5]).toBe(DTYPE_FLOAT16);
    for (const [form, dtype, smaller] of [
      ['int4', DTYPE_INT4, 3],
      ['int2', DTYPE_INT2, 5],
    ] as const) {
      const named = {
        ...global.manifest,
        federation: { ...global.manifest.federation, updateDtype: form },
      };
      const a = encodeDeviceUpdate(named, delta, 3, token);
      const b = encodeDeviceUpdate(named, delta, 3, token);
      expect(a[5]).toBe(dtype);
      expect(a.length).toBe(UPDATE_HEADER_BYTES + quantizedBytes(form, delta.length));
      expect(a.length - UPDATE_HEADER_BYTES).toBeLessThan(
        (half.length - UPDATE_HEADER_BYTES) / smaller,
      );
      // Two draws of the rounding differ, and each decodes within S.
      expect(Array.from(a)).not.toEqual(Array.from(b));
      expect(l2Norm(decodeUpdate(a, delta.length).delta)).toBeLessThanOrEqual(1);
    }
  });
});

/** T of the windowed manifests below: an hour. */
const WINDOW_SECONDS = 3600;
const WINDOW_MS = WINDOW_SECONDS * 1000;
/** Some round window well after the epoch, and a time in its middle. */
const WINDOW = roundWindowAt(Date.UTC(2026, 11, 5, 17, 30), WINDOW_SECONDS);
const MID_WINDOW = (WINDOW + 0.5) * WINDOW_MS;

const config: EngineConfig = {
  endpoint: 'http://fl.test/',
  backends: [],
  uploads: true,
  uploadEvery: 1,
  wasmPath: '/',
  debug: false,
};

/** The shared global model, at `version`, with `federation` over its own. */
function servedAt(version: number, federation: Partial<FederationParams>): ShareHost['global'] {
  return {
    ...global,
    origin: 'network',
    manifest: {
      ...global.manifest,
      version,
      federation: { ...global.manifest.federation, ...federation },
    },
  };
}

/** A windowed manifest (T = an hour) at `version`, sampling at `q`. */
const windowed = (q: number, version = 1) =>
  servedAt(version, {
    sampleRate: q,
    roundWindowSeconds: WINDOW_SECONDS,
    countNoise: 10,
    noiseMultiplier: 1.2,
  });
/** The same manifest with rounds that close on their m-th update (no window). */
const counted = (q: number, version = 1) => servedAt(version, { sampleRate: q });

/** A device store holding one session of four known items. */
async function deviceStore(): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const [i, item] of ['item-1', 'item-2', 'item-3', 'item-4'].entries()) {
    await store.add({ item, type: 'click', ts: 1000 + i, session: 1000 });
  }
  return store;
}

/**
 * A stand-in aggregation server on `fetch`: joins naming the round window of `clock` get a token
 * for it (others are refused, as the server refuses them), and updates are accepted (or refused
 * with `updateStatus` and the error code `updateCode`). `paths` lists what was requested.
 */
function fakeServer(
  clock: { t: number },
  version: number,
  updateStatus = 200,
  updateCode = 'HEARTH_E_UPLOAD',
) {
  const paths: string[] = [];
  const joins: (number | undefined)[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = new URL(String(input)).pathname;
    paths.push(path);
    const round = roundWindowAt(clock.t, WINDOW_SECONDS);
    if (path === PATHS.join) {
      // As a windowed server does, a join naming another window is refused; what each join named
      // is kept for the tests (a count-mode join names none).
      const named = (JSON.parse(String(init?.body)) as { window?: number }).window;
      joins.push(named);
      if (named !== undefined && named !== round) {
        const error = { code: 'HEARTH_E_ROUND_WINDOW', message: `named ${named}, now ${round}` };
        return Response.json({ error }, { status: 409 });
      }
      return Response.json({ token: 'ab'.repeat(16), version, round });
    }
    if (path === PATHS.updates && updateStatus === 200) {
      return Response.json({ accepted: true, round, received: 1, version });
    }
    const error = { code: updateCode, message: 'refused' };
    return Response.json({ error }, { status: updateStatus });
  });
  vi.stubGlobal('fetch', fetch);
  return { paths, joins };
}

/** A host for one sync of `served` on `store`, at `clock`, flipping `coin`. */
function hostFor(
  served: ShareHost['global'],
  store: MemoryStore,
  clock: { t: number },
  coin: () => number,
  afterTraining: () => void = () => {},
): ShareHost {
  return {
    config,
    settings: localTrainingSettings(),
    global: served,
    store,
    indexOf: new Map(served.manifest.itemIds.map((id, i) => [id, i])),
    coin,
    now: () => clock.t,
    uploadsAllowed: () => true,
    refetch: async () => {},
    serveLocal: async (model) => {
      model.dispose();
      afterTraining();
    },
  };
}

/** An update kept in the outbox on `served`'s version, in its layout. */
async function keepPending(store: MemoryStore, served: ShareHost['global']): Promise<void> {
  await store.setOutbox({
    baseVersion: served.manifest.version,
    layoutHash: served.manifest.layoutHash,
    delta: new Float32Array(served.weights.length),
    examples: 3,
    createdAt: 0,
  });
}

describe('shareLocalUpdate under round windows', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('flips one coin per round window, however often it syncs or the version moves', async () => {
    const clock = { t: MID_WINDOW };
    const { paths } = fakeServer(clock, 1);
    const store = await deviceStore();
    let flips = 0;
    const tails = (): number => (flips++, 0.9);
    for (const version of [1, 1, 2]) {
      const result = await shareLocalUpdate(hostFor(windowed(0.5, version), store, clock, tails));
      expect(result).toEqual({
        status: 'skipped',
        reason: `not sampled for round window ${WINDOW} (q = 0.5)`,
        modelVersion: version,
      });
      // Later in the same window: the kept coin answers.
      clock.t += WINDOW_MS / 8;
    }
    expect(flips).toBe(1);
    expect(await store.getMeta()).toMatchObject({ coinWindow: WINDOW, coinWindowJoins: false });
    // The next window flips a coin of its own.
    clock.t = MID_WINDOW + WINDOW_MS;
    const next = await shareLocalUpdate(hostFor(windowed(0.5), store, clock, tails));
    expect(next.reason).toBe(`not sampled for round window ${WINDOW + 1} (q = 0.5)`);
    expect(flips).toBe(2);
    expect(paths).toEqual([]);
  });

  it('keeps flipping once per version when rounds are counted, whatever the clock', async () => {
    const clock = { t: MID_WINDOW };
    const { paths } = fakeServer(clock, 1);
    const store = await deviceStore();
    let flips = 0;
    const tails = (): number => (flips++, 0.9);
    for (let window = 0; window < 3; window++) {
      const result = await shareLocalUpdate(hostFor(counted(0.5), store, clock, tails));
      expect(result.reason).toBe('not sampled for the round of v1 (q = 0.5)');
      clock.t += WINDOW_MS;
    }
    expect(flips).toBe(1);
    expect(await store.getMeta()).toMatchObject({ coinVersion: 1, coinWindow: -1 });
    expect(paths).toEqual([]);
  });

  it('never sends an update kept in the outbox, and drops it', async () => {
    const clock = { t: MID_WINDOW };
    const { paths } = fakeServer(clock, 1);
    // No local history: the kept update is all it could send.
    const store = new MemoryStore();
    await keepPending(store, windowed(1));
    const result = await shareLocalUpdate(hostFor(windowed(1), store, clock, () => 0));
    expect(result).toEqual({
      status: 'skipped',
      reason: 'not enough local history yet',
      modelVersion: 1,
    });
    expect(paths).toEqual([]);
    expect(await store.getOutbox()).toBeUndefined();
    // When rounds are counted, the same kept update is sent.
    const countedStore = new MemoryStore();
    await keepPending(countedStore, counted(1));
    const sent = await shareLocalUpdate(hostFor(counted(1), countedStore, clock, () => 0));
    expect(sent).toMatchObject({
      status: 'uploaded',
      reason: 'sent the update kept while offline',
    });
    expect(paths).toEqual([PATHS.join, PATHS.updates]);
  });

  it('keeps nothing from a sync whose upload failed', async () => {
    const clock = { t: MID_WINDOW };
    fakeServer(clock, 1, 503);
    const store = await deviceStore();
    const failed = await shareLocalUpdate(hostFor(windowed(1), store, clock, () => 0));
    expect(failed.status).toBe('failed');
    expect(failed.reason).toContain('dropped');
    expect(await store.getOutbox()).toBeUndefined();
    // When rounds are counted, the update is kept for the next sync on this version.
    const countedStore = await deviceStore();
    const kept = await shareLocalUpdate(hostFor(counted(1), countedStore, clock, () => 0));
    expect(kept.status).toBe('failed');
    expect(kept.reason).toContain('kept');
    expect((await countedStore.getOutbox())?.baseVersion).toBe(1);
  });

  it('drops a kept update the server refused, and keeps one that a server failure did not reach', async () => {
    const clock = { t: MID_WINDOW };
    // A kept sketch the server has moved past since the join: refused as stale, never to be taken.
    fakeServer(clock, 1, 409, 'HEARTH_E_UPDATE_STALE');
    const store = new MemoryStore();
    await keepPending(store, counted(1));
    const refused = await shareLocalUpdate(hostFor(counted(1), store, clock, () => 0));
    expect(refused.status).toBe('failed');
    expect(refused.reason).toContain('HEARTH_E_UPDATE_STALE');
    expect(refused.reason).toContain('the kept update was refused: dropped');
    expect(await store.getOutbox()).toBeUndefined();
    // A server that failed (5xx) may take it at the next sync: it stays.
    fakeServer(clock, 1, 503);
    const failedStore = new MemoryStore();
    await keepPending(failedStore, counted(1));
    const failed = await shareLocalUpdate(hostFor(counted(1), failedStore, clock, () => 0));
    expect(failed.status).toBe('failed');
    expect(failed.reason).not.toContain('dropped');
    expect((await failedStore.getOutbox())?.baseVersion).toBe(1);
  });

  it('posts nothing when training ends after its round window closed', async () => {
    // Training starts in the window's last second and ends in the next one.
    const clock = { t: (WINDOW + 1) * WINDOW_MS - 1000 };
    const { paths, joins } = fakeServer(clock, 1);
    const store = await deviceStore();
    const trainFor = (ms: number) => () => void (clock.t += ms);
    const late = await shareLocalUpdate(
      hostFor(windowed(1), store, clock, () => 0, trainFor(2000)),
    );
    expect(late).toEqual({
      status: 'skipped',
      reason: 'the round window of this coin closed while training; the update is dropped',
      modelVersion: 1,
    });
    expect(paths).toEqual([PATHS.join]);
    expect(await store.getOutbox()).toBeUndefined();
    expect(await store.rounds()).toEqual([]);
    expect((await store.getMeta()).uploadsSent).toBe(0);
    // Training that ends within the window posts its update.
    clock.t = MID_WINDOW + WINDOW_MS;
    const onTime = await shareLocalUpdate(
      hostFor(windowed(1), store, clock, () => 0, trainFor(2000)),
    );
    expect(onTime.status).toBe('uploaded');
    expect(paths).toEqual([PATHS.join, PATHS.join, PATHS.updates]);
    // Its own ledger prices the window with z and the count's noise together.
    const [round] = await store.rounds();
    expect(round?.privacy.noiseMultiplier).toBeCloseTo(1 / Math.sqrt(1 / 1.44 + 1 / 100), 12);
    // Each join named the window of its coin, which the server checks.
    expect(joins).toEqual([WINDOW, WINDOW + 1]);
    expect((await store.getMeta()).uploadsSent).toBe(1);
  });
});

describe('shareLocalUpdate when the GPU is lost while it trains', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('sends and keeps nothing, and fails with HEARTH_E_BACKEND_LOST for the engine to learn again', async () => {
    const clock = { t: MID_WINDOW };
    const { paths } = fakeServer(clock, 1);
    const store = await deviceStore();
    let served = 0;
    const host = {
      ...hostFor(
        counted(1),
        store,
        clock,
        () => 0,
        () => served++,
      ),
      backendLost: () => true,
    };
    await expect(shareLocalUpdate(host)).rejects.toMatchObject({ code: 'HEARTH_E_BACKEND_LOST' });
    // It joined before training; nothing was posted, served or kept for later.
    expect(paths).toEqual([PATHS.join]);
    expect(served).toBe(0);
    expect(await store.getOutbox()).toBeUndefined();
    expect(await store.getMeta()).toMatchObject({ uploadsSent: 0 });
    // The next sync, on a live backend, sends (the coin kept for the version still joins).
    const again = await shareLocalUpdate({ ...host, backendLost: () => false });
    expect(again.status).toBe('uploaded');
    expect(paths).toEqual([PATHS.join, PATHS.join, PATHS.updates]);
  });
});

describe('shareLocalUpdate when a version was published while it trained', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  const own = roundSketch(3, 7);
  const newerSketch = roundSketch(3, 8);
  /** v1 under `own`'s sketch, on a server that takes newer layouts within a bound of 2. */
  const onV1 = (federation: Partial<FederationParams> = {}) =>
    servedAt(1, { itemSketch: own, maxStaleness: 2, layoutAhead: true, ...federation });
  /** The manifest GET /v1/model serves: `version`, under the newer sketch. */
  const newest = (version: number, federation: Partial<FederationParams> = {}) =>
    servedAt(version, {
      itemSketch: newerSketch,
      maxStaleness: 2,
      layoutAhead: true,
      ...federation,
    }).manifest;

  /** A server on `fetch` whose current manifest is `current` (or that fails to serve it). */
  function serverAt(current: ReturnType<typeof newest> | 'down', joinVersion = 1) {
    const paths: string[] = [];
    const bodies: Uint8Array[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
        const path = new URL(String(input)).pathname;
        paths.push(path);
        if (path === PATHS.join)
          return Response.json({ token: 'ab'.repeat(16), version: joinVersion, round: 1 });
        if (path === PATHS.model) {
          return current === 'down'
            ? new Response('unavailable', { status: 503 })
            : Response.json(current);
        }
        bodies.push(new Uint8Array(await new Response(init?.body).arrayBuffer()));
        return Response.json({ accepted: true, round: 1, received: 1, version: 1 });
      }),
    );
    return { paths, bodies };
  }

  /** What the device trains in a sync of `served` on `store` (the same training, run again). */
  async function training(served: ShareHost['global'], store: MemoryStore) {
    const indexOf = new Map(served.manifest.itemIds.map((id, i) => [id, i]));
    const trained = await learnLocally(
      served,
      toTrainingSessions(await store.all(), indexOf),
      undefined,
      localTrainingSettings(),
    );
    trained.model.dispose();
    return trained;
  }

  it("sends its training in the newest version's sketch, naming both versions", async () => {
    const served = onV1();
    const v2 = newest(2);
    const { paths, bodies } = serverAt(v2);
    const store = await deviceStore();
    const result = await shareLocalUpdate(hostFor(served, store, { t: 0 }, () => 0));
    expect(result.status).toBe('uploaded');
    expect(paths).toEqual([PATHS.join, PATHS.model, PATHS.updates]);
    const body = decodeUpdate(bodies[0]!, 1e6);
    expect(body).toMatchObject({ baseVersion: 1, layoutAhead: 1, layoutHash: v2.layoutHash });
    const trained = await training(served, store);
    const expected = trained.sendIn({ kind: 'sketch', sketch: newerSketch }, dims, 1)!;
    expect(body.delta.length).toBe(expected.length);
    // Float16 on the wire.
    body.delta.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 3));
    // Not the sketch it would have sent in its own version's layout (norm 1, float16 to ~1e-3).
    expect(l2Norm(body.delta.map((v, i) => v - trained.update.delta[i]!))).toBeGreaterThan(0.02);
  });

  it('sends in its own layout when the newest version is beyond the bound or cannot be had', async () => {
    for (const current of [newest(4), newest(1), 'down'] as const) {
      const { paths, bodies } = serverAt(current);
      const store = await deviceStore();
      const result = await shareLocalUpdate(hostFor(onV1(), store, { t: 0 }, () => 0));
      expect(result.status).toBe('uploaded');
      expect(paths).toEqual([PATHS.join, PATHS.model, PATHS.updates]);
      const body = decodeUpdate(bodies[0]!, 1e6);
      expect(body).toMatchObject({ baseVersion: 1, layoutAhead: 0 });
      const trained = await training(onV1(), store);
      body.delta.forEach((v, i) => expect(v).toBeCloseTo(trained.update.delta[i]!, 3));
    }
  });

  it('trains afresh rather than send a sketch kept from an older version', async () => {
    const served = servedAt(2, { itemSketch: own, maxStaleness: 2, layoutAhead: true });
    const length = sketchLength(dims, own);
    for (const base of [1, 2]) {
      const { bodies } = serverAt(served.manifest, 2);
      const store = await deviceStore();
      const delta = new Float32Array(length).fill(0.001);
      const layoutHash = served.manifest.layoutHash;
      await store.setOutbox({ baseVersion: base, layoutHash, delta, examples: 3, createdAt: 0 });
      const result = await shareLocalUpdate(hostFor(served, store, { t: 0 }, () => 0));
      expect(result.status).toBe('uploaded');
      expect(await store.getOutbox()).toBeUndefined();
      const body = decodeUpdate(bodies[0]!, 1e6);
      if (base === 2) {
        // This version's own kept update is sent as it was.
        expect(result.reason).toBe('sent the update kept while offline');
        expect(body.baseVersion).toBe(2);
        body.delta.forEach((v) => expect(v).toBeCloseTo(0.001, 5));
        continue;
      }
      // v1's sketch, carried into v2's, would keep about a fifth of its items' signal: the device
      // trains on v2 and sends that training instead.
      expect(result.reason).not.toBe('sent the update kept while offline');
      expect(body).toMatchObject({ baseVersion: 2, layoutAhead: 0 });
      const trained = await training(served, store);
      body.delta.forEach((v, i) => expect(v).toBeCloseTo(trained.update.delta[i]!, 3));
    }
  });

  it('asks for nothing more where the server does not take newer layouts', async () => {
    for (const served of [onV1({ layoutAhead: undefined }), onV1({ maxStaleness: 0 })]) {
      const { paths, bodies } = serverAt(newest(2));
      const store = await deviceStore();
      await shareLocalUpdate(hostFor(served, store, { t: 0 }, () => 0));
      expect(paths).toEqual([PATHS.join, PATHS.updates]);
      expect(decodeUpdate(bodies[0]!, 1e6).layoutAhead).toBe(0);
    }
  });
});
