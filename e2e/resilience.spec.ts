/**
 * The engine keeps the host page working when the device is hostile:
 * - a backend that initialises but computes wrongly (here WebGL whose read-backs are corrupted, as
 *   with a buggy driver) fails its self-test, is reported with its error size, and is not used;
 * - IndexedDB refused (as private windows refuse it), or its upgrade blocked by another tab, still
 *   yields recommendations, from memory;
 * - a sandboxed frame (an opaque origin) cannot start a worker at all: the SDK says so with a code
 *   and leaves the frame's page as it was;
 * - storage quota pressure (the origin's quota shrunk to almost nothing) does not break the page.
 */
import { expect, test, type Frame, type Page } from '@playwright/test';
import type { ModelManifest } from '../protocol/manifest.js';
import { hostUrl, pageErrors, serverUrl } from './helpers.js';

interface Status {
  backend: string | null;
  backends: { backend: string; outcome: string; detail?: string }[];
  storage: string;
  interactions: number;
}
type Target = Page | Frame;
type Api = {
  hearth: {
    ready: Promise<Status>;
    status(): Promise<Status>;
    track(e: { type: string; item: string }): Promise<void>;
    recommend(o: { k: number }): Promise<{ item: string }[]>;
    stored(): Promise<{ item: string }[]>;
  };
};

const ready = (t: Target): Promise<Status> =>
  t.evaluate(() => (window as unknown as Api).hearth.ready);
const recommend = (t: Target): Promise<string[]> =>
  t.evaluate(async () =>
    (await (window as unknown as Api).hearth.recommend({ k: 6 })).map((r) => r.item),
  );
const track = (t: Target, item: string): Promise<void> =>
  t.evaluate((i) => (window as unknown as Api).hearth.track({ type: 'click', item: i }), item);

async function popularItems(n: number): Promise<string[]> {
  const manifest = (await (await fetch(`${serverUrl()}/v1/model`)).json()) as ModelManifest;
  return manifest.popular.slice(0, n).map((i) => manifest.itemIds[i]!);
}

test('a backend that computes wrongly fails its self-test and is not used', async ({ page }) => {
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/wrong-webgl.html`);
  const status = await ready(page);
  const webgl = status.backends.find((a) => a.backend === 'webgl');
  expect(webgl?.outcome).toBe('self-test-failed');
  // The detail is the self-test's relative error: far above any rounding.
  const error = Number(/relative error (\S+)/.exec(webgl?.detail ?? '')?.[1]);
  expect(error).toBeGreaterThan(1e-3);
  expect(status.backend).toBe('cpu');
  expect(await recommend(page)).toHaveLength(6);
  expect(errors).toEqual([]);
});

test('a wrong backend is only wrong because of the patch: the same page without it uses WebGL', async ({
  page,
}) => {
  // The control for the test above, so it cannot pass because WebGL never works here.
  await page.goto(`${hostUrl()}pages/webgl.html`);
  const status = await ready(page);
  expect(status.backends.find((a) => a.backend === 'webgl')?.outcome).toMatch(/chosen|passed/);
});

test('with IndexedDB refused, recommendations still work, from memory', async ({ page }) => {
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/no-idb.html`);
  const status = await ready(page);
  expect(status.storage).toBe('memory');
  const cold = await recommend(page);
  expect(cold).toHaveLength(6);
  const [a, b] = await popularItems(2);
  await track(page, a!);
  await track(page, b!);
  const after = await recommend(page);
  expect(after).not.toEqual(cold);
  expect(after).not.toContain(a);
  expect(
    await page.evaluate(async () => (await (window as unknown as Api).hearth.stored()).length),
  ).toBe(2);
  expect(errors).toEqual([]);
});

test('with the database upgrade blocked by another tab, recommendations still work', async ({
  page,
  context,
}) => {
  const errors = pageErrors(page);
  // Another tab of the site holds the database open at an old version and never lets go (as a
  // tab running an old SDK might): the engine's upgrade is blocked.
  const holder = await context.newPage();
  await holder.goto(`${hostUrl()}pages/minimal.js`);
  await holder.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const request = indexedDB.open('hearth', 1);
        request.onsuccess = () => {
          (window as unknown as { held: IDBDatabase }).held = request.result;
          resolve();
        };
        request.onerror = () => reject(request.error);
      }),
  );
  await page.goto(`${hostUrl()}pages/minimal.html`);
  const status = await ready(page);
  expect(status.storage).toBe('memory');
  const [a] = await popularItems(1);
  await track(page, a!);
  const recs = await recommend(page);
  expect(recs).toHaveLength(6);
  expect(recs).not.toContain(a);
  expect(errors).toEqual([]);
});

test('in a sandboxed frame no worker can start: one error with a code, the page untouched', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/sandboxed.html`);
  const frame = page.frames().find((f) => f !== page.mainFrame())!;
  await expect
    .poll(() => frame.evaluate(() => typeof (window as unknown as Api).hearth))
    .toBe('function');
  const before = await frame.evaluate(() => document.documentElement.outerHTML);
  const code = await frame.evaluate(() =>
    (window as unknown as Api).hearth.ready.then(
      () => 'ready',
      (error: { code: string }) => error.code,
    ),
  );
  expect(code).toBe('HEARTH_E_WORKER_START');
  expect(await frame.evaluate(() => document.documentElement.outerHTML)).toBe(before);
  expect(errors).toEqual([]);
});

test('with the storage quota used up the page keeps working', async ({ page }) => {
  const errors = pageErrors(page);
  const warnings: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'warning') warnings.push(m.text());
  });
  // Debug logging (the window.hearth config object) shows the store's handling of a full disk.
  await page.addInitScript(() => {
    (window as unknown as { hearth: unknown }).hearth = { debug: true };
  });
  const origin = new URL(hostUrl()).origin;
  const cdp = await page.context().newCDPSession(page);
  // 64 KB for the whole origin: the cached model alone is larger, so writes hit the quota.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 64 * 1024 });
  await page.goto(`${hostUrl()}pages/minimal.html`);
  const status = await ready(page);
  expect(status.backend).toBeTruthy();
  const cold = await recommend(page);
  const items = await popularItems(12);
  for (const item of items) await track(page, item);
  const after = await recommend(page);
  expect(after).toHaveLength(6);
  expect(after).not.toEqual(cold);
  for (const item of items) expect(after).not.toContain(item);
  const stored = await page.evaluate(
    async () => (await (window as unknown as Api).hearth.stored()).length,
  );
  expect(stored).toBe(items.length);
  // The pressure was real: writes failed with the quota error and were handled.
  expect(warnings.some((w) => w.includes('storage full'))).toBe(true);
  expect(errors).toEqual([]);
});
