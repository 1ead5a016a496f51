/**
 * Hearth on pages with a strict Content-Security-Policy (sent as a response header). With the policy
 * the README documents, it works; with one that forbids the worker, it fails gracefully: one
 * `hearth-error` with a code, the page's DOM exactly as served, no uncaught error.
 */
import { expect, test, type Page } from '@playwright/test';
import { hostUrl, pageErrors, recordHearthEvents, seenEvents } from './helpers.js';

/**
 * The README's policy for the CDN mode, with `worker` as worker-src. The blob bootstrap's import of
 * hearth-worker.js is a worker fetch too, so the CDN must be in worker-src as well as blob:.
 */
const policy = (worker: string, wasm = " 'wasm-unsafe-eval'"): string =>
  [
    "default-src 'none'",
    `script-src %CDN%${wasm}`,
    `worker-src ${worker}`,
    'connect-src %ENDPOINT% %CDN%',
  ].join('; ');

const cspPage = (csp: string): string =>
  `${hostUrl()}pages/csp.html?csp=${encodeURIComponent(csp)}`;

type PageHearth = {
  ready: Promise<{ backend: string; backends: { backend: string; outcome: string }[] }>;
  recommend(o: { k: number }): Promise<{ item: string }[]>;
};

/** Uses only the wasm backend (then cpu), set the documented way: a config object before the tag. */
async function wasmFirst(page: Page): Promise<void> {
  await page.addInitScript(() => {
    (window as unknown as { hearth: unknown }).hearth = { backends: ['wasm', 'cpu'] };
  });
}

test('a strict CSP that allows the blob bootstrap and wasm works', async ({ page }) => {
  const errors = pageErrors(page);
  await wasmFirst(page);
  await page.goto(cspPage(policy('blob: %CDN%')));
  const status = await page.evaluate(
    () => (window as unknown as { hearth: PageHearth }).hearth.ready,
  );
  expect(status.backend).toBe('wasm');
  const recs = await page.evaluate(() =>
    (window as unknown as { hearth: PageHearth }).hearth.recommend({ k: 6 }),
  );
  expect(recs).toHaveLength(6);
  expect(errors).toEqual([]);
});

test("without 'wasm-unsafe-eval' the wasm backend is refused and the ladder moves on", async ({
  page,
}) => {
  await wasmFirst(page);
  await page.goto(cspPage(policy('blob: %CDN%', '')));
  const status = await page.evaluate(
    () => (window as unknown as { hearth: PageHearth }).hearth.ready,
  );
  expect(status.backends[0]).toMatchObject({ backend: 'wasm', outcome: 'init-failed' });
  expect(status.backend).toBe('cpu');
});

test('a CSP that forbids the worker fails gracefully and leaves the page as it was', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await recordHearthEvents(page);
  // worker-src allows only the CDN, so the page's blob: bootstrap is refused.
  const url = cspPage(policy('%CDN%'));
  await page.goto(url);
  await expect
    .poll(async () => (await seenEvents(page)).map((e) => e.type))
    .toContain('hearth-error');
  const events = await seenEvents(page);
  expect(events.map((e) => e.type)).toEqual(['hearth-error']);
  expect(events[0]!.detail.code).toBe('HEARTH_E_CSP');
  expect(page.workers()).toEqual([]);

  // Clicks on marked items do nothing now (no error per click), and API calls reject with the code.
  await page.locator('[data-hearth-item]').click();
  const code = await page.evaluate(() =>
    (window as unknown as { hearth: PageHearth }).hearth.recommend({ k: 3 }).then(
      () => 'resolved',
      (e: { code: string }) => e.code,
    ),
  );
  expect(code).toBe('HEARTH_E_CSP');
  expect((await seenEvents(page)).length).toBe(1);

  // The DOM is exactly what the server sent.
  const served = await (await page.request.get(url)).text();
  const same = await page.evaluate((html) => {
    const parsed = new DOMParser().parseFromString(html, 'text/html');
    return parsed.documentElement.outerHTML === document.documentElement.outerHTML;
  }, served);
  expect(same).toBe(true);
  expect(errors).toEqual([]);
});
