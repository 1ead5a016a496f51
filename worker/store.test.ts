import 'fake-indexeddb/auto';
import { deleteDB, openDB } from 'idb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffLocal } from './local-copy.js';
import type { JoinedRound, SentRequest } from '../protocol/api.js';
import {
  DB_NAME,
  DB_VERSION,
  MAX_REQUESTS,
  MemoryStore,
  openIdbStore,
  type InteractionStore,
} from './store.js';

async function exercise(store: InteractionStore): Promise<void> {
  const a = await store.add({ item: 'a', type: 'click', ts: 1000, session: 1000 });
  const b = await store.add({ item: 'b', type: 'view', ts: 2000, session: 1000 });
  expect(b).toBeGreaterThan(a);
  expect(await store.count()).toBe(2);
  expect((await store.recent(1)).map((r) => r.item)).toEqual(['b']);
  expect((await store.all()).map((r) => [r.id, r.item])).toEqual([
    [a, 'a'],
    [b, 'b'],
  ]);
  const fresh = {
    sinceUpload: 0,
    uploadsSent: 0,
    lastRound: 0,
    optedOut: false,
    coinVersion: 0,
    coinJoins: false,
    coinWindow: -1,
    coinWindowJoins: false,
  };
  expect(await store.getMeta()).toEqual(fresh);
  await store.setMeta({ sinceUpload: 3 });
  await store.setMeta({ lastRound: 9, optedOut: true });
  expect(await store.getMeta()).toEqual({ ...fresh, sinceUpload: 3, lastRound: 9, optedOut: true });
}

describe('interaction store', () => {
  it('works in memory', async () => {
    await exercise(new MemoryStore());
  });

  it('works on IndexedDB and persists across opens', async () => {
    const store = (await openIdbStore())!;
    expect(store.kind).toBe('indexeddb');
    await exercise(store);
    const again = (await openIdbStore())!;
    expect(await again.count()).toBe(2);
  });

  it('skips rows and meta values that do not have the shape this version writes', async () => {
    const store = (await openIdbStore())!;
    const raw = await openDB(DB_NAME);
    await raw.put('interactions', { id: 999, item: 42, type: 'click', ts: 1, session: 1 });
    await raw.put('interactions', { id: 1000, item: 'x', type: 'teleport', ts: 1, session: 1 });
    await raw.put('meta', 'not a number', 'uploadsSent');
    await raw.put('meta', 1, 'optedOut');
    raw.close();
    const items = (await store.all()).map((r) => r.item);
    expect(items).not.toContain(42);
    expect(items).not.toContain('x');
    expect((await store.getMeta()).uploadsSent).toBe(0);
    expect((await store.getMeta()).optedOut).toBe(false);
  });

  it('reads meta kept before the window coin as no window coin yet, and keeps one', async () => {
    const store = (await openIdbStore())!;
    // What an SDK without round windows kept: the version coin only.
    const raw = await openDB(DB_NAME);
    await raw.put('meta', 2, 'uploadsSent');
    await raw.put('meta', 4, 'coinVersion');
    await raw.put('meta', true, 'coinJoins');
    raw.close();
    expect(await store.getMeta()).toMatchObject({
      uploadsSent: 2,
      coinVersion: 4,
      coinJoins: true,
      coinWindow: -1,
      coinWindowJoins: false,
    });
    await store.setMeta({ coinWindow: 493_409, coinWindowJoins: true });
    const again = (await openIdbStore())!;
    expect(await again.getMeta()).toMatchObject({
      coinVersion: 4,
      coinJoins: true,
      coinWindow: 493_409,
      coinWindowJoins: true,
    });
  });

  it('destroys the whole database, even while another connection has it open', async () => {
    const store = (await openIdbStore())!;
    await store.add({ item: 'gone', type: 'click', ts: 1, session: 1 });
    // A second connection stands for another tab: it must close itself rather than block.
    const otherTab = (await openIdbStore())!;
    await store.destroy();
    expect((await indexedDB.databases()).map((d) => d.name)).not.toContain(DB_NAME);
    await expect(otherTab.count()).rejects.toThrow();
    const reopened = (await openIdbStore())!;
    expect(await reopened.count()).toBe(0);

    const memory = new MemoryStore();
    await memory.add({ item: 'gone', type: 'click', ts: 1, session: 1 });
    await memory.setMeta({ optedOut: true });
    await memory.destroy();
    expect(await memory.count()).toBe(0);
    expect((await memory.getMeta()).optedOut).toBe(false);
  });

  it('reports IndexedDB as unavailable instead of throwing', async () => {
    const saved = globalThis.indexedDB;
    // @ts-expect-error simulating a browser without IndexedDB
    delete globalThis.indexedDB;
    try {
      expect(await openIdbStore()).toBeNull();
    } finally {
      globalThis.indexedDB = saved;
    }
  });
});

describe('schema version 2', () => {
  beforeEach(async () => {
    await deleteDB(DB_NAME);
  });

  it('migrates a version-1 database, keeping its interactions and deriving sessions', async () => {
    const v1 = await openDB(DB_NAME, 1, {
      upgrade(db) {
        db.createObjectStore('interactions', { keyPath: 'id', autoIncrement: true }).createIndex(
          'session',
          'session',
        );
        db.createObjectStore('meta');
      },
    });
    await v1.add('interactions', { item: 'a', type: 'click', ts: 1000, session: 1000 });
    await v1.add('interactions', { item: 'b', type: 'view', ts: 2000, session: 1000 });
    await v1.add('interactions', { item: 'c', type: 'cart', ts: 9_000_000, session: 9_000_000 });
    await v1.put('meta', 4, 'uploadsSent');
    v1.close();

    const store = (await openIdbStore())!;
    expect(store.kind).toBe('indexeddb');
    expect((await store.all()).map((r) => r.item)).toEqual(['a', 'b', 'c']);
    expect((await store.getMeta()).uploadsSent).toBe(4);
    expect(await store.sessions(10)).toEqual([
      { id: 9_000_000, start: 9_000_000, last: 9_000_000, count: 1 },
      { id: 1000, start: 1000, last: 2000, count: 2 },
    ]);
    const raw = await openDB(DB_NAME);
    expect(raw.version).toBe(DB_VERSION);
    expect([...raw.objectStoreNames].sort()).toEqual(
      ['interactions', 'meta', 'models', 'outbox', 'requests', 'rounds', 'sessions'].sort(),
    );
    raw.close();
  });

  it('keeps at most maxInteractions, evicting the oldest and their session counts', async () => {
    const store = (await openIdbStore({ maxInteractions: 5 }))!;
    for (let i = 0; i < 8; i++) {
      const session = i < 4 ? 1 : 2;
      await store.add({ item: `i${i}`, type: 'view', ts: 10 + i, session });
    }
    expect(await store.count()).toBe(5);
    expect((await store.all()).map((r) => r.item)).toEqual(['i3', 'i4', 'i5', 'i6', 'i7']);
    expect((await store.sessions(5)).map((s) => [s.id, s.count])).toEqual([
      [2, 4],
      [1, 1],
    ]);
    const memory = new MemoryStore(5);
    for (let i = 0; i < 8; i++)
      await memory.add({ item: `i${i}`, type: 'view', ts: i, session: 1 });
    expect((await memory.all()).map((r) => r.item)).toEqual(['i3', 'i4', 'i5', 'i6', 'i7']);
  });

  it('caches models by version and keeps only the newest two', async () => {
    const store = (await openIdbStore())!;
    for (const version of [3, 1, 2]) {
      await store.putModel({
        version,
        manifest: { version },
        weights: new Float32Array([version, 0.5]),
        savedAt: 0,
      });
    }
    expect(await store.getModel(1)).toBeUndefined();
    expect(Array.from((await store.getModel(2))!.weights)).toEqual([2, 0.5]);
    expect((await store.newestModel())?.version).toBe(3);
    const entry = {
      baseVersion: 3,
      layoutHash: 7,
      delta: new Float32Array([0.25]),
      examples: 2,
      createdAt: 1,
    };
    await store.setOutbox(entry);
    expect(await store.getOutbox()).toEqual(entry);
    await store.setOutbox(null);
    expect(await store.getOutbox()).toBeUndefined();
  });

  it('keeps the local copy apart from the model row and joins it on reading', async () => {
    const store = (await openIdbStore())!;
    const weights = Float32Array.from({ length: 40 }, (_, i) => i);
    const row = { version: 5, manifest: { version: 5 }, weights, savedAt: 0 };
    await store.putModel(row);
    expect((await store.getModel(5))?.local).toBeUndefined();
    const local = weights.slice();
    local[33] = -1;
    await store.putLocal(diffLocal(5, weights, local));
    const again = (await openIdbStore())!;
    expect((await again.getModel(5))?.local).toEqual(local);
    expect((await again.newestModel())?.local).toEqual(local);
    // Only the changed block went to disk; the row holds the global weights alone.
    const raw = await openDB(DB_NAME);
    const kept = (await raw.get('meta', 'localCopy')) as { values: Float32Array };
    expect(kept.values.length).toBeLessThan(weights.length);
    expect(((await raw.get('models', 5)) as { local?: unknown }).local).toBeUndefined();
    // A row an older Hearth wrote with its copy inside is read as it was until a newer copy lands
    // for that version; a copy that cannot be applied is ignored, the row still served.
    const older = weights.map((x) => x + 1);
    await raw.put('models', { ...row, version: 6, local: older });
    expect((await again.getModel(6))?.local).toEqual(older);
    await raw.put('meta', { version: 6, length: 40, blockSize: 16 }, 'localCopy');
    expect((await again.getModel(6))?.local).toEqual(older);
    expect((await again.getModel(5))?.weights).toEqual(weights);
    raw.close();
  });

  describe('when the disk is full', () => {
    const proto = IDBObjectStore.prototype;
    const realAdd = proto.add;
    afterEach(() => {
      proto.add = realAdd;
    });
    /** Makes the next `failures` object-store adds throw QuotaExceededError, as a full disk does. */
    function fillDisk(failures: number): void {
      let left = failures;
      proto.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
        if (left-- > 0) throw new DOMException('quota', 'QuotaExceededError');
        return realAdd.apply(this, args);
      };
    }

    it('evicts the oldest interactions and retries once', async () => {
      const store = (await openIdbStore())!;
      for (let i = 0; i < 120; i++)
        await store.add({ item: `o${i}`, type: 'view', ts: i, session: 0 });
      fillDisk(1);
      await store.add({ item: 'new', type: 'click', ts: 500, session: 500 });
      // At least QUOTA_EVICT_MIN (100) of the oldest went; the new row is on disk.
      const items = (await store.all()).map((r) => r.item);
      expect(items).toHaveLength(21);
      expect(items[0]).toBe('o100');
      expect(items.at(-1)).toBe('new');
      const raw = await openDB(DB_NAME);
      expect(await raw.count('interactions')).toBe(21);
      raw.close();
    });

    it('keeps the write in memory when the retry fails too, and never throws', async () => {
      const store = (await openIdbStore())!;
      await store.add({ item: 'disk', type: 'view', ts: 1, session: 1 });
      fillDisk(2);
      const id = await store.add({ item: 'memory', type: 'click', ts: 2, session: 1 });
      expect(id).toBeGreaterThan(2 ** 50);
      expect((await store.recent(5)).map((r) => r.item)).toEqual(['memory']);
      expect(await store.count()).toBe(1);
      const raw = await openDB(DB_NAME);
      expect(await raw.count('interactions')).toBe(0);
      raw.close();
    });
  });

  it('deletes and rebuilds a database that cannot be opened or has the wrong shape', async () => {
    // A newer SDK's database (VersionError on open).
    (await openDB(DB_NAME, 99)).close();
    const fromNewer = (await openIdbStore())!;
    expect(fromNewer.kind).toBe('indexeddb');
    expect(await fromNewer.count()).toBe(0);
    await fromNewer.destroy();

    // Our version number, but not our stores (some other code wrote it).
    const foreign = await openDB(DB_NAME, DB_VERSION, {
      upgrade(db) {
        db.createObjectStore('interactions', { keyPath: 'id', autoIncrement: true });
      },
    });
    await foreign.add('interactions', { id: 1, what: 'else' } as never);
    foreign.close();
    const rebuilt = (await openIdbStore())!;
    expect(rebuilt.kind).toBe('indexeddb');
    await rebuilt.add({ item: 'ok', type: 'view', ts: 1, session: 1 });
    expect((await rebuilt.all()).map((r) => r.item)).toEqual(['ok']);

    // Right stores, rows of the wrong shape.
    const raw = await openDB(DB_NAME);
    await raw.put('interactions', { id: 50, item: 7, type: 'click', ts: 1, session: 1 });
    raw.close();
    const again = (await openIdbStore())!;
    expect(await again.count()).toBe(0);
  });
});

const request = (ts: number, kind: SentRequest['kind'] = 'model'): SentRequest => ({
  ts,
  kind,
  method: 'GET',
  url: `https://fl.example/v1/model?ts=${ts}`,
  sent: 0,
  received: 100 + ts,
  status: 200,
});

const round = (at: number, noiseMultiplier = 1): JoinedRound => ({
  round: `r${at}`,
  version: at,
  at,
  mode: 'plaintext',
  privacy: { noiseMultiplier, sampleRate: 1 },
});

/** The privacy ledger's part of a store: the bounded request log, the rounds, forget one item. */
async function exerciseLedger(open: () => Promise<InteractionStore>): Promise<void> {
  const store = await open();
  for (let ts = 1; ts <= MAX_REQUESTS + 3; ts++) await store.logRequest(request(ts));
  const kept = await store.requests(MAX_REQUESTS + 10);
  expect(kept).toHaveLength(MAX_REQUESTS);
  expect(kept[0]).toEqual(request(MAX_REQUESTS + 3));
  expect(kept.at(-1)).toEqual(request(4));
  await store.addRound(round(2));
  await store.addRound(round(1, 0));
  expect(await store.rounds()).toEqual([round(1, 0), round(2)]);

  await store.add({ item: 'a', type: 'click', ts: 10, session: 10 });
  await store.add({ item: 'b', type: 'view', ts: 11, session: 10 });
  await store.add({ item: 'a', type: 'view', ts: 12, session: 10 });
  await store.add({ item: 'a', type: 'click', ts: 9_000_000, session: 9_000_000 });
  const weights = Float32Array.from({ length: 40 }, (_, i) => i);
  await store.putModel({ version: 5, manifest: { version: 5 }, weights, savedAt: 0 });
  const local = weights.slice();
  local[3] = -1;
  await store.putLocal(diffLocal(5, weights, local));
  await store.setOutbox({
    baseVersion: 5,
    layoutHash: 1,
    delta: new Float32Array([1]),
    examples: 1,
    createdAt: 1,
  });
  expect((await store.getModel(5))?.local).toEqual(local);

  expect(await store.forgetItem('a')).toBe(3);
  const again = await open();
  expect((await again.all()).map((r) => r.item)).toEqual(['b']);
  // The erased session went with its only interaction; the other keeps one of its three.
  expect((await again.sessions(10)).map((x) => [x.id, x.count])).toEqual([[10, 1]]);
  // The personalised copy and the pending update were learned from the erased item.
  expect((await again.getModel(5))?.local).toBeUndefined();
  expect((await again.getModel(5))?.weights).toEqual(weights);
  expect(await again.getOutbox()).toBeUndefined();
  // Requests and rounds are not interactions: forgetting an item leaves them.
  expect(await again.rounds()).toHaveLength(2);
  expect(await again.forgetItem('never-seen')).toBe(0);
}

describe('the privacy ledger in the store', () => {
  beforeEach(async () => {
    await deleteDB(DB_NAME);
  });

  it('works in memory', async () => {
    const memory = new MemoryStore();
    await exerciseLedger(() => Promise.resolve(memory));
  });

  it('works on IndexedDB, across opens', async () => {
    await exerciseLedger(async () => (await openIdbStore())!);
  });

  it('migrates a version-2 database to 3, keeping everything and adding the ledger', async () => {
    const v2 = await openDB(DB_NAME, 2, {
      upgrade(db) {
        db.createObjectStore('interactions', { keyPath: 'id', autoIncrement: true }).createIndex(
          'session',
          'session',
        );
        db.createObjectStore('meta');
        db.createObjectStore('sessions', { keyPath: 'id' });
        db.createObjectStore('models', { keyPath: 'version' });
        db.createObjectStore('outbox');
      },
    });
    await v2.add('interactions', { item: 'a', type: 'click', ts: 1000, session: 1000 });
    await v2.put('sessions', { id: 1000, start: 1000, last: 1000, count: 1 });
    await v2.put('meta', 2, 'uploadsSent');
    v2.close();
    const store = (await openIdbStore())!;
    expect((await store.all()).map((r) => r.item)).toEqual(['a']);
    expect((await store.getMeta()).uploadsSent).toBe(2);
    expect(await store.requests(10)).toEqual([]);
    expect(await store.rounds()).toEqual([]);
    await store.logRequest(request(1));
    expect(await store.requests(10)).toEqual([request(1)]);
  });

  it('skips ledger rows of the wrong shape', async () => {
    const store = (await openIdbStore())!;
    await store.logRequest(request(1));
    await store.addRound(round(1));
    const raw = await openDB(DB_NAME);
    await raw.add('requests', { ...request(2), kind: 'exfiltrate' });
    await raw.add('requests', { ...request(3), sent: -1 });
    await raw.add('rounds', { ...round(2), privacy: { noiseMultiplier: -1, sampleRate: 1 } });
    await raw.add('rounds', { ...round(3), mode: 'other' });
    raw.close();
    expect(await store.requests(10)).toEqual([request(1)]);
    expect(await store.rounds()).toEqual([round(1)]);
  });
});
