/**
 * The demo as a visitor meets it: real Chromium, the built SDK through its script tag, the real
 * worker with real IndexedDB, the real server on a real port.
 */
import { expect, test, type BrowserContext, type Page, type Request } from '@playwright/test';
import { PATHS } from '../protocol/routes.js';
import { UPDATE_DTYPES, bodyBytes } from '../protocol/update-format.js';
import type { StatsReply } from '../server/stats.js';
import { parameterCount, updateDtypeOf, type ModelManifest } from '../protocol/manifest.js';

import { asOperator, clicksOnly, demoUrl, serverUrl } from './helpers.js';

async function manifest(): Promise<ModelManifest> {
  return (await (await fetch(`${serverUrl()}/v1/model`)).json()) as ModelManifest;
}

/** Updates the server holds in its collecting round: other specs' devices may have left some. */
async function pendingUpdates(): Promise<number> {
  const stats = (await (
    await fetch(`${serverUrl()}${PATHS.stats}`, { headers: asOperator() })
  ).json()) as StatsReply;
  return stats.rounds.find((r) => r.status === 'collecting')?.participants ?? 0;
}

async function openDemo(page: Page): Promise<void> {
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
}

const recsOf = (page: Page): Promise<string | null> =>
  page.locator('#recs').getAttribute('data-items');

/** Clicks the catalogue card at `index` and waits for the recommendations to be re-rendered. */
async function clickCatalogItem(page: Page, index: number): Promise<string> {
  const card = page.locator('#catalog .card').nth(index);
  const id = (await card.getAttribute('data-hearth-item'))!;
  await card.click();
  await expect(page.locator(`#stored li[data-item="${id}"]`).first()).toBeVisible();
  return id;
}

test('recommendations change with each click and history survives a reload', async ({ page }) => {
  await clicksOnly(page);
  await openDemo(page);
  const status = page.locator('#engine-status');
  await expect(status.locator('[data-field="backend"]')).not.toHaveText('none');
  await expect(status.locator('[data-field="storage"]')).toHaveText('indexeddb');
  const coldStart = await recsOf(page);
  expect(coldStart?.split(',')).toHaveLength(6);

  const seen: (string | null)[] = [coldStart];
  const clicked: string[] = [];
  // Six clicks: online learning starts once the device holds six interactions.
  for (const index of [3, 11, 17, 5, 8, 14]) {
    clicked.push(await clickCatalogItem(page, index));
    await expect.poll(() => recsOf(page)).not.toBe(seen[seen.length - 1]);
    const recs = await recsOf(page);
    // The session's own items are never recommended back.
    for (const id of clicked) expect(recs?.split(',')).not.toContain(id);
    seen.push(recs);
  }

  // Every rung of the ladder is reported, exactly one chosen, and the chosen one passed its
  // self-test on the served model; a reload reuses the decision instead of timing every rung.
  const ladder = (): Promise<{ backend: string; outcome: string; detail?: string }[]> =>
    page.evaluate(() =>
      (
        window as unknown as {
          hearth: { status(): Promise<{ backends: { backend: string; outcome: string }[] }> };
        }
      ).hearth
        .status()
        .then((s) => s.backends),
    );
  const first = await ladder();
  expect(first.map((a) => a.backend)).toEqual(['webgpu', 'webgl', 'wasm', 'cpu']);
  expect(first.filter((a) => a.outcome === 'chosen')).toHaveLength(1);

  // The clicks were learned from on the device (online learning, 1.5 s after the last one).
  const learning = (): Promise<{ personalised: boolean }> =>
    page.evaluate(() =>
      (
        window as unknown as {
          hearth: { status(): Promise<{ learning: { personalised: boolean } }> };
        }
      ).hearth
        .status()
        .then((s) => s.learning),
    );
  await expect.poll(learning, { timeout: 60_000 }).toMatchObject({ personalised: true });
  // What the personalised copy recommends now (the list on screen predates the last update).
  const recommendNow = (): Promise<string> =>
    page.evaluate(async () =>
      (
        await (
          window as unknown as {
            hearth: { recommend(o: { k: number }): Promise<{ item: string }[]> };
          }
        ).hearth.recommend({ k: 6 })
      )
        .map((r) => r.item)
        .join(','),
    );
  const beforeReload = await recommendNow();

  // A reload keeps the weights: the global model's weights come from IndexedDB, not the network,
  // and the personalised copy is served again.
  const weightsPath = new URL((await manifest()).weights.url, serverUrl()).pathname;
  const fetched: string[] = [];
  page.context().on('request', (r) => fetched.push(new URL(r.url()).pathname));
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const again = await ladder();
  const chosen = again.find((a) => a.outcome === 'chosen');
  expect(chosen?.backend).toBe(first.find((a) => a.outcome === 'chosen')?.backend);
  expect(chosen?.detail).toContain('cached choice');
  expect(await learning()).toMatchObject({ personalised: true });
  expect(fetched).toContain('/v1/model');
  expect(fetched).not.toContain(weightsPath);
  for (const id of clicked)
    await expect(page.locator(`#stored li[data-item="${id}"]`)).toHaveCount(1);
  await expect(status.locator('[data-field="interactions"]')).toHaveText(String(clicked.length));
  // The session and the personalised weights continue across the reload: the same list.
  expect(await recommendNow()).toBe(beforeReload);
});

test('an idle page keeps its list and sends nothing for a minute; a click changes the list', async ({
  page,
}) => {
  // The page's clock is moved by hand: a minute of capture timers (views, dwell) in moments.
  await page.clock.install({ time: new Date('2026-11-22T12:00:00Z') });
  await page.clock.pauseAt(new Date('2026-11-22T12:00:01Z'));
  const requests = recordRequests(page.context());
  await openDemo(page);
  await expect(page.locator('#recs .card')).toHaveCount(6);
  const before = await recsOf(page);
  const sent = requests.length;
  const stored = (): Promise<number> =>
    page.evaluate(
      async () =>
        (
          await (
            window as unknown as { hearth: { stored(n: number): Promise<unknown[]> } }
          ).hearth.stored(1000)
        ).length,
    );
  for (let second = 0; second < 60; second++) await page.clock.runFor(1000);
  // What the visitor had on screen was viewed (the catalogue), and the worker has stored it...
  await expect.poll(stored).toBeGreaterThan(0);
  const views = await stored();
  await page.waitForTimeout(1000);
  expect(await stored()).toBe(views);
  // ...yet Hearth's own list was not: the list is the one first shown, and nothing left the page.
  expect(await recsOf(page)).toBe(before);
  expect(requests.slice(sent).map((r) => r.url())).toEqual([]);

  await clickCatalogItem(page, 3);
  await expect.poll(() => recsOf(page)).not.toBe(before);
});

/** Records every request a context makes (page and worker), with its body. */
function recordRequests(context: BrowserContext): Request[] {
  const requests: Request[] = [];
  context.on('request', (request) => requests.push(request));
  return requests;
}

test('uploads carry only clipped updates, no item ids, and advance the global model', async ({
  browser,
}) => {
  const before = await manifest();
  const pending = await pendingUpdates();
  const cohort = Number(process.env.HEARTH_MIN_COHORT);
  // The whole model (the demo's catalogue is within --update-rows), in the dtype the manifest names.
  const expectedBytes = bodyBytes(
    UPDATE_DTYPES[updateDtypeOf(before.federation)],
    parameterCount(before.tensors),
  );
  const devices: { requests: Request[]; clicked: string[] }[] = [];
  for (let device = 0; device < cohort; device++) {
    const context = await browser.newContext();
    const requests = recordRequests(context);
    const page = await context.newPage();
    await openDemo(page);
    const clicked: string[] = [];
    for (const index of [device, device + 4, device + 9, device + 2]) {
      clicked.push(await clickCatalogItem(page, index));
    }
    await page.locator('#share').click();
    await expect(page.locator('#share-result')).toContainText('Shared a clipped update');
    devices.push({ requests, clicked });
    await context.close();
  }

  // A round publishes at `cohort` updates: this spec's uploads close exactly one, whatever an
  // earlier spec left in the collecting round (fewer than `cohort`, or it would have closed).
  expect(pending).toBeLessThan(cohort);
  const after = await manifest();
  expect(after.version).toBe(before.version + 1);
  expect(await pendingUpdates()).toBe(pending);

  const updates = devices.flatMap((d) => d.requests.filter((r) => r.url().endsWith('/v1/updates')));
  expect(updates).toHaveLength(cohort);
  for (const { requests, clicked } of devices) {
    for (const request of requests) {
      const url = request.url();
      for (const id of clicked) expect(url).not.toContain(`=${id}`);
      const body = request.postDataBuffer();
      if (!body) continue;
      if (url.endsWith('/v1/updates')) {
        expect(body.length).toBe(expectedBytes);
        expect(request.headers()['content-type']).toBe('application/vnd.hearth.update');
      } else {
        // The only other body a device sends: an empty JSON object asking to join a round.
        expect(url.endsWith('/v1/rounds/join')).toBe(true);
        expect(body.toString()).toBe('{}');
      }
      for (const id of clicked) {
        expect(body.includes(Buffer.from(id, 'utf8'))).toBe(false);
        expect(body.includes(Buffer.from(id, 'utf16le'))).toBe(false);
      }
    }
  }
});
