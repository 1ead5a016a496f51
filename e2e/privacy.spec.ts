/**
 * The commands a site wires to its consent and privacy controls, through the script-tag API:
 * calls queued by the standard stub before the SDK loads, `hearth('optOut')` (persisted),
 * `hearth('forget')` (every local store erased), and Global Privacy Control (nothing uploaded).
 */
import { expect, test, type Page, type Request } from '@playwright/test';
import type { ModelManifest } from '../protocol/manifest.js';
import { clicksOnly, demoUrl, hostUrl, serverUrl } from './helpers.js';

type Command = (name: string, ...args: unknown[]) => Promise<unknown>;

/** Runs `hearth(name, ...args)` in the page, the way a site's own code would. */
function command<T>(page: Page, name: string, ...args: unknown[]): Promise<T> {
  return page.evaluate(
    ([n, a]) => (window as unknown as { hearth: Command }).hearth(n as string, ...(a as unknown[])),
    [name, args] as const,
  ) as Promise<T>;
}

async function openDemo(page: Page): Promise<void> {
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
}

async function clickCatalog(page: Page, indices: number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const index of indices) {
    const card = page.locator('#catalog .card').nth(index);
    const id = (await card.getAttribute('data-hearth-item'))!;
    await card.click();
    await expect(page.locator(`#stored li[data-item="${id}"]`).first()).toBeVisible();
    ids.push(id);
  }
  return ids;
}

const uploads = (requests: Request[]): string[] =>
  requests
    .filter((r) => r.method() === 'POST')
    .map((r) => r.url())
    .filter((url) => /\/v1\/(updates|rounds\/join)$/.test(url));

test('calls queued with the standard stub before the script loads are replayed', async ({
  page,
}) => {
  const manifest = (await (await fetch(`${serverUrl()}/v1/model`)).json()) as ModelManifest;
  const queued = manifest.popular.slice(0, 2).map((i) => manifest.itemIds[i]!);
  await page.goto(`${hostUrl()}pages/stub.html#${queued.join(',')}`);
  const stored = await page.evaluate(async () => {
    const h = (window as unknown as { hearth: { stored(): Promise<{ item: string }[]> } }).hearth;
    return (await h.stored()).map((s) => s.item);
  });
  expect(stored).toEqual([...queued].reverse());
  // The queued items are the session now: they are not recommended back.
  const recs = await command<{ item: string }[]>(page, 'recommend', { k: 6 });
  for (const id of queued) expect(recs.map((r) => r.item)).not.toContain(id);
});

test("hearth('optOut') stops uploads and survives a reload", async ({ page }) => {
  const requests: Request[] = [];
  page.context().on('request', (r) => requests.push(r));
  await openDemo(page);
  await command(page, 'optOut');
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  await expect(page.locator('[data-field="uploads"]')).toHaveText('off');
  await clickCatalog(page, [1, 2]);
  await page.locator('#share').click();
  await expect(page.locator('#share-result')).toContainText('Not shared: uploads are off');
  expect(uploads(requests)).toEqual([]);
  // Opting back in is explicit.
  await command(page, 'optIn');
  expect((await command<{ uploads: { enabled: boolean } }>(page, 'status')).uploads.enabled).toBe(
    true,
  );
});

test("hearth('forget') erases every local store and the page keeps working", async ({ page }) => {
  await clicksOnly(page);
  await openDemo(page);
  const cold = await page.locator('#recs').getAttribute('data-items');
  const clicked = await clickCatalog(page, [3, 6]);
  await command(page, 'optOut');
  await command(page, 'forget');
  // In this page: nothing stored, the session is gone, recommendations are cold-start again.
  expect(await command(page, 'stored')).toEqual([]);
  // IndexedDB itself, read from the page (the worker shares its origin's storage): the database
  // was deleted, or whatever the engine has written since holds no interaction.
  const left = await page.evaluate(async () => {
    const names = (await indexedDB.databases()).map((d) => d.name);
    if (!names.includes('hearth')) return {};
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open('hearth');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const counts: Record<string, number> = {};
    for (const name of ['interactions', 'sessions', 'outbox'].filter((n) =>
      db.objectStoreNames.contains(n),
    )) {
      counts[name] = await new Promise<number>((resolve) => {
        const request = db.transaction(name).objectStore(name).count();
        request.onsuccess = () => resolve(request.result);
      });
    }
    db.close();
    return counts;
  });
  for (const count of Object.values(left)) expect(count).toBe(0);
  const recs = await command<{ item: string }[]>(page, 'recommend', { k: 6 });
  expect(recs.map((r) => r.item).join(',')).toBe(cold);
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  await expect(page.locator('[data-field="interactions"]')).toHaveText('0');
  await expect(page.locator('#stored li')).toHaveCount(0);
  // The opt-out lived in the erased database too.
  await expect(page.locator('[data-field="uploads"]')).toHaveText(/^on/);
  // And it keeps working: a new click is stored and recommendations follow it.
  expect(await clickCatalog(page, [8])).not.toEqual(clicked);
  await expect.poll(() => page.locator('#recs').getAttribute('data-items')).not.toBe(cold);
});

test('with Global Privacy Control on, nothing is ever uploaded', async ({ page }) => {
  await page.addInitScript(() =>
    Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }),
  );
  const requests: Request[] = [];
  page.context().on('request', (r) => requests.push(r));
  await openDemo(page);
  await expect(page.locator('[data-field="uploads"]')).toHaveText('off');
  await clickCatalog(page, [0, 4, 9]);
  await page.locator('#share').click();
  await expect(page.locator('#share-result')).toContainText('Not shared');
  expect(requests.length).toBeGreaterThan(0);
  expect(uploads(requests)).toEqual([]);
  expect(requests.filter((r) => r.method() === 'POST')).toEqual([]);
});

test('GPC with data-privacy-signal="learning" stops on-device learning too', async ({
  browser,
}) => {
  const manifest = (await (await fetch(`${serverUrl()}/v1/model`)).json()) as ModelManifest;
  // Six: online learning starts once the device holds six interactions.
  const items = manifest.popular.slice(0, 6).map((i) => manifest.itemIds[i]!);
  type Learning = { enabled: boolean; personalised: boolean };
  /**
   * A fresh visitor with GPC on clicks six items on `path`; what did the device learn within
   * `patience` ms? Returns the learning status, the POSTs made and how long learning took.
   */
  const visit = async (path: string, patience: number) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }),
    );
    const posts: string[] = [];
    context.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    await page.goto(`${hostUrl()}${path}`);
    for (const item of items) await command(page, 'track', { type: 'click', item });
    const start = Date.now();
    // Online learning runs 1.5 s after the last interaction.
    await expect
      .poll(async () => (await command<{ learning: Learning }>(page, 'status')).learning, {
        timeout: patience,
      })
      .toHaveProperty('personalised', true)
      .catch(() => undefined);
    const took = Date.now() - start;
    const { learning } = await command<{ learning: Learning }>(page, 'status');
    await context.close();
    return { learning, posts, took };
  };
  // The default under GPC: nothing is shared, but the model still learns on the device.
  const byDefault = await visit('pages/minimal.html', 60_000);
  expect(byDefault).toMatchObject({ learning: { enabled: true, personalised: true }, posts: [] });
  // A site that asks for it: no learning either, given twice the time learning took above.
  const stopped = await visit('pages/gpc.html', Math.max(3000, 2 * byDefault.took));
  expect(stopped).toMatchObject({ learning: { enabled: false, personalised: false }, posts: [] });
});
