import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { DB_NAME, MemoryStore, openIdbStore, type InteractionStore } from './store.js';

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
  const fresh = { sinceUpload: 0, uploadsSent: 0, lastRound: 0, optedOut: false };
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
