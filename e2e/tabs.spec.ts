/**
 * Two tabs of the demo in one browser profile: each runs its own worker over the same IndexedDB
 * database. Only one may train and upload at a time (Web Locks), and weights one tab adopts reach
 * the other (BroadcastChannel), which loads them from the shared cache.
 */
import { expect, test, type Page, type Request } from '@playwright/test';
import type { EngineStatus, SyncResult } from '../protocol/api.js';
import type { ModelManifest } from '../protocol/manifest.js';
import { clicksOnly, demoUrl, serverUrl } from './helpers.js';

async function serverVersion(): Promise<number> {
  return ((await (await fetch(`${serverUrl()}/v1/model`)).json()) as ModelManifest).version;
}

async function openDemo(page: Page): Promise<void> {
  // Clicks alone: views would add interactions and, at 20, an automatic upload this test must not see.
  await clicksOnly(page);
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
}

/** Calls a method of `window.hearth` in the page, the way a site's own code would. */
function call<T>(page: Page, method: 'sync' | 'status'): Promise<T> {
  return page.evaluate(
    (m) => (window as unknown as { hearth: Record<string, () => Promise<unknown>> }).hearth[m]!(),
    method,
  ) as Promise<T>;
}

const served = async (page: Page): Promise<number> =>
  (await call<EngineStatus>(page, 'status')).modelVersion;

async function clickCatalog(page: Page, indices: number[]): Promise<void> {
  for (const index of indices) {
    const card = page.locator('#catalog .card').nth(index);
    const id = (await card.getAttribute('data-hearth-item'))!;
    await card.click();
    await expect(page.locator(`#stored li[data-item="${id}"]`).first()).toBeVisible();
  }
}

test('two tabs train one at a time and share the model one of them adopts', async ({
  browser,
  context,
}) => {
  const updates: { request: Request; start: number; end?: number }[] = [];
  context.on('request', (request) => {
    if (request.url().endsWith('/v1/updates')) updates.push({ request, start: Date.now() });
  });
  context.on('requestfinished', (request) => {
    const seen = updates.find((u) => u.request === request);
    if (seen) seen.end = Date.now();
  });
  const a = await context.newPage();
  const b = await context.newPage();
  await openDemo(a);
  await openDemo(b);
  for (const page of [a, b]) {
    await expect
      .poll(async () => (await page.locator('#recs').getAttribute('data-items'))?.split(','))
      .toHaveLength(6);
  }
  await clickCatalog(a, [2, 7, 12, 5]);

  // While tab B's page holds the trainer lock (locks are per origin: pages and workers share
  // them), tab A's sync does not train.
  await b.evaluate(
    () =>
      new Promise<void>((held) => {
        void navigator.locks.request(
          'hearth-trainer',
          () =>
            new Promise<void>((release) => {
              (window as unknown as { releaseLock: () => void }).releaseLock = release;
              held();
            }),
        );
      }),
  );
  expect(await call<SyncResult>(a, 'sync')).toMatchObject({
    status: 'skipped',
    reason: 'another tab is training',
  });
  await b.evaluate(() => (window as unknown as { releaseLock: () => void }).releaseLock());
  expect(updates).toHaveLength(0);

  // Both tabs sync at once: one trains while the other is told so (or, had the first finished
  // already, they run one after the other); never two uploads at the same time.
  const before = await serverVersion();
  const results = await Promise.all([call<SyncResult>(a, 'sync'), call<SyncResult>(b, 'sync')]);
  expect(results.filter((r) => r.status === 'uploaded').length).toBeGreaterThanOrEqual(1);
  for (const result of results.filter((r) => r.status !== 'uploaded')) {
    expect(result.status).toBe('skipped');
    expect(result.reason).toMatch(/another tab is training|already took part|newer global model/);
  }
  expect(updates.length).toBe(results.filter((r) => r.status === 'uploaded').length);
  const [first, second] = updates;
  if (second) expect(second.start).toBeGreaterThanOrEqual(first!.end!);

  // The server aggregates at minCohort updates; other specs may have left a round half full, so
  // a second device completes the round only if this upload did not.
  if ((await serverVersion()) === before) {
    const device = await browser.newContext();
    const page = await device.newPage();
    await openDemo(page);
    await clickCatalog(page, [1, 4, 9, 3]);
    expect((await call<SyncResult>(page, 'sync')).status).toBe('uploaded');
    await device.close();
    // Tab A notices on its next sync (the join names the newer version) and adopts it.
    expect((await call<SyncResult>(a, 'sync')).reason).toMatch(/newer global model/);
  }
  const target = await serverVersion();
  await expect.poll(() => served(a)).toBe(target);
  // Tab B did not sync: it heard tab A and loaded the weights tab A cached.
  await expect.poll(() => served(b)).toBe(target);
  await expect(b.locator('#share')).toBeVisible();
  await b.reload();
  await expect(b.locator('body')).toHaveAttribute('data-hearth', 'ready');
  expect(await served(b)).toBe(target);
});
