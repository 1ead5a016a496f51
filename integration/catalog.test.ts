/**
 * The engine with the server's catalogue, against the real server on a real port with a real SQLite
 * file: what may be shown, what each recommendation says of its item, the once-per-page warning for
 * ids the catalogue does not know, and a device's stored state across catalogue versions.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogItem } from '../protocol/catalog.js';
import { Engine } from '../worker/engine.js';
import { startEngineFixture, type EngineFixture } from './engine-fixture.js';

let fixture: EngineFixture;

beforeAll(async () => {
  fixture = await startEngineFixture(5);
});

afterAll(async () => {
  await fixture.close();
});

const entry = (id: string, title = `Title of ${id}`): CatalogItem => ({
  id,
  title,
  url: `https://site.example/${id}`,
  image: `https://site.example/${id}.jpg`,
});
/** The fixture model's items 1..39, less `removed`, plus `added`. */
function catalogue(removed: readonly string[], added: readonly string[] = []): CatalogItem[] {
  const ids = Array.from({ length: 39 }, (_, i) => `item-${i + 1}`).filter(
    (id) => !removed.includes(id),
  );
  return [...ids, ...added].map((id) => entry(id));
}

describe('the engine with a catalogue', () => {
  it('without one, serves the model ids and warns once about ids the model does not know', async () => {
    const engine = new Engine();
    await engine.init(fixture.config);
    const recs = await engine.recommend({ k: 2 });
    expect(recs.map((r) => r.item)).toEqual(['item-5', 'item-4']);
    expect(recs[0]!.title).toBeUndefined();
    expect(await engine.track({ type: 'click', item: 'item-3' })).toBeUndefined();
    const warning = await engine.track({ type: 'click', item: 'sku-1' });
    expect(warning).toMatchObject({ code: 'HEARTH_E_UNKNOWN_ITEM' });
    expect(warning!.message).toContain('"sku-1" is not in the model');
    expect(await engine.track({ type: 'click', item: 'sku-2' })).toBeUndefined();
    await engine.forget();
    await engine.dispose();
  });

  it('never shows a removed item, says what each item is, and keeps the visitor state across versions', async () => {
    await fixture.server.store.replaceCatalog(catalogue(['item-5'], ['fresh-1']));
    const first = new Engine();
    await first.init(fixture.config);
    const cold = await first.recommend({ k: 3, explain: true });
    // item-5 leads the popularity order, and is gone from the catalogue.
    expect(cold.map((r) => r.item)).toEqual(['item-4', 'item-3', 'item-2']);
    expect(cold[0]).toMatchObject({
      title: 'Title of item-4',
      url: 'https://site.example/item-4',
      image: 'https://site.example/item-4.jpg',
    });
    // In the catalogue though not yet in the model: known, no warning.
    expect(await first.track({ type: 'click', item: 'fresh-1' })).toBeUndefined();
    for (const item of ['item-9', 'item-12']) {
      expect(await first.track({ type: 'click', item })).toBeUndefined();
    }
    const warning = await first.track({ type: 'view', item: 'p-005' });
    expect(warning?.message).toContain('"p-005" is not in the catalogue v1');
    const warm = await first.recommend({ k: 30, explain: true });
    expect(warm.map((r) => r.item)).not.toContain('item-5');
    const explained = warm.find((r) => r.reason);
    expect(explained?.reason?.title).toBe(`Title of ${explained!.reason!.item}`);
    await first.dispose();

    // Version 2 removes an item of the visitor's session and adds two; the page reloads.
    await fixture.server.store.replaceCatalog(
      catalogue(['item-5', 'item-12', 'item-20'], ['fresh-1', 'fresh-2']),
    );
    const second = new Engine();
    await second.init(fixture.config);
    // What the device stored is kept, by item id, removed items included.
    expect((await second.stored(10)).map((s) => s.item)).toEqual([
      'p-005',
      'item-12',
      'item-9',
      'fresh-1',
    ]);
    const after = await second.recommend({ k: 36 });
    const shown = after.map((r) => r.item);
    for (const gone of ['item-5', 'item-12', 'item-20', 'item-9'])
      expect(shown).not.toContain(gone);
    expect(after.every((r) => r.title === `Title of ${r.item}`)).toBe(true);
    await second.forget();
    await second.dispose();
  });

  it('publishes a new item in the next round, new row and all, and shows it to cold visitors', async () => {
    const fresh = {
      ...entry('fresh-1', 'Published this morning'),
      published: new Date().toISOString(),
    };
    await fixture.server.store.replaceCatalog([...catalogue([]), fresh]);
    const device = new Engine();
    await device.init(fixture.config);
    expect((await device.status()).modelVersion).toBe(1);
    for (const item of ['item-3', 'item-7', 'item-11']) await device.track({ type: 'click', item });
    // The round (m = 1 here) publishes version 2 with a row for the new item.
    expect(await device.sync()).toMatchObject({ status: 'uploaded' });
    await device.forget();
    await device.dispose();
    const manifest = (await fixture.server.store.getManifest(2))!;
    expect(manifest.itemIds.at(-1)).toBe('fresh-1');
    expect(manifest.recent?.[0]).toBe(manifest.itemIds.length - 1);

    const visitor = new Engine();
    await visitor.init(fixture.config);
    expect((await visitor.status()).modelVersion).toBe(2);
    const cold = await visitor.recommend({ k: 3 });
    expect(cold.map((r) => r.item)).toContain('fresh-1');
    expect(cold.find((r) => r.item === 'fresh-1')?.title).toBe('Published this morning');
    await visitor.dispose();
  });
});
