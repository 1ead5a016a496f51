/**
 * A device across catalogue versions, in real Chromium with real IndexedDB, against a server of its
 * own (the stack's model, a fresh SQLite file, a catalogue of the model's items): the visitor's
 * stored interactions outlive a new catalogue version that removes one of them and adds new items,
 * removed items are never recommended after the reload, and what is shown carries the new titles.
 */
import { expect, test, type Page } from '@playwright/test';
import type { Recommendation } from '../protocol/api.js';
import type { CatalogItem } from '../protocol/catalog.js';
import { demoCatalogOf } from '../tools/demo-catalog.js';
import { hostUrl, pageErrors, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

let items: CatalogItem[];

const backend = ownServer('catalog', () => ({
  modelDir: stackModelDir(),
  minCohort: 100,
  noiseMultiplier: 0,
  aggregation: 'plaintext',
}));

test.beforeAll(async () => {
  items = demoCatalogOf(stackModelDir());
  await backend().server.store.replaceCatalog(items);
});

async function open(page: Page): Promise<void> {
  await page.goto(
    `${hostUrl()}pages/minimal.html?endpoint=${encodeURIComponent(backend().server.url)}`,
  );
  await page.waitForFunction(() => (window as { hearth?: { ready?: unknown } }).hearth?.ready);
  await page.evaluate(
    () => (window as unknown as { hearth: { ready: Promise<unknown> } }).hearth.ready,
  );
}

/** Calls `window.hearth[method](...args)` in the page. */
function call<T>(page: Page, method: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(
    ([name, list]) => {
      const api = (window as unknown as { hearth: Record<string, (...a: unknown[]) => unknown> })
        .hearth;
      return api[name]!(...list) as Promise<T>;
    },
    [method, args] as const,
  );
}

test('stored state survives a catalogue version that removes and adds items', async ({ page }) => {
  const errors = pageErrors(page);
  await open(page);
  const clicked = [items[3]!.id, items[7]!.id];
  for (const item of clicked) {
    await call(page, 'track', { type: 'click', item });
  }
  const before = await call<Recommendation[]>(page, 'recommend', { k: 6 });
  expect(before).toHaveLength(6);
  expect(before.every((r) => r.title === items.find((i) => i.id === r.item)?.title)).toBe(true);

  // Version 2: the first clicked item and the first recommended one are gone, two items are new,
  // every title changes.
  const gone = new Set([clicked[0]!, before[0]!.item]);
  const next = [
    ...items
      .filter((item) => !gone.has(item.id))
      .map((item) => ({ ...item, title: `${item.title} (2nd edition)` })),
    { id: 'fresh-1', title: 'Fresh one', url: '/fresh-1' },
    { id: 'fresh-2', title: 'Fresh two', url: '/fresh-2' },
  ];
  expect((await backend().server.store.replaceCatalog(next)).catalog.version).toBe(2);

  await open(page);
  const stored = await call<{ item: string }[]>(page, 'stored');
  expect(stored.map((s) => s.item)).toEqual([...clicked].reverse());
  const after = await call<Recommendation[]>(page, 'recommend', { k: 12 });
  expect(after).toHaveLength(12);
  for (const rec of after) {
    expect(gone.has(rec.item), rec.item).toBe(false);
    expect(rec.title).toMatch(/\(2nd edition\)$/);
  }
  expect(errors).toEqual([]);
});
