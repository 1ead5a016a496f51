/**
 * The SDK as a CDN serves it: the host page on one origin, hearth.js and hearth-worker.js on
 * another (with `Access-Control-Allow-Origin: *`). The page may not start a worker from the CDN's
 * URL, so the loader starts it from a same-origin blob that imports it; a site may instead self-host
 * the worker with `data-worker-url` and get a direct start.
 */
import { expect, test } from '@playwright/test';
import { cdnUrl, clicksOnly, hostUrl, pageErrors } from './helpers.js';

test('the demo works with the SDK served from another origin', async ({ page }) => {
  // The page's clock stands still: on a slow machine a catalogue card on screen for a second would
  // also be "viewed", and this test counts the clicked item's stored entries.
  await clicksOnly(page);
  const errors = pageErrors(page);
  const sdkRequests: string[] = [];
  page.context().on('request', (request) => {
    if (/hearth(-worker)?\.js$|\.wasm$/.test(request.url())) sdkRequests.push(request.url());
  });
  await page.goto(hostUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  expect(new URL(hostUrl()).origin).not.toBe(new URL(cdnUrl()).origin);
  // Both bundles came from the CDN; the worker itself runs from the page's blob bootstrap.
  expect(sdkRequests).toContain(`${cdnUrl()}hearth.js`);
  expect(sdkRequests).toContain(`${cdnUrl()}hearth-worker.js`);
  expect(page.workers().map((w) => w.url().slice(0, 5))).toEqual(['blob:']);

  const recs = page.locator('#recs');
  const cold = await recs.getAttribute('data-items');
  expect(cold?.split(',')).toHaveLength(6);
  const card = page.locator('#catalog .card').nth(5);
  const id = (await card.getAttribute('data-hearth-item'))!;
  await card.click();
  await expect(page.locator(`#stored li[data-item="${id}"]`)).toHaveCount(1);
  await expect.poll(() => recs.getAttribute('data-items')).not.toBe(cold);
  expect((await recs.getAttribute('data-items'))?.split(',')).not.toContain(id);
  expect(errors).toEqual([]);
});

test('a site can self-host the worker and start it directly, without blob:', async ({ page }) => {
  // No blob: anywhere in this policy: the direct start does not need it.
  const policy = [
    "default-src 'none'",
    "script-src %CDN% 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "connect-src %ENDPOINT% 'self'",
  ].join('; ');
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/self-hosted.html?csp=${encodeURIComponent(policy)}`);
  const status = await page.evaluate(
    () => (window as unknown as { hearth: { ready: Promise<{ backend: string }> } }).hearth.ready,
  );
  expect(status.backend).toBeTruthy();
  expect(page.workers().map((w) => w.url())).toEqual([`${hostUrl()}self/hearth-worker.js`]);
  expect(errors).toEqual([]);
});
