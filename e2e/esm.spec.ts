/**
 * The ESM entry as a site imports it from the CDN: `createHearth({ endpoint })` with no worker URL
 * finds hearth-worker.js next to hearth.mjs (another origin, so it starts from a blob bootstrap),
 * captures clicks on the site's own `[data-hearth-item]` elements, and recommends.
 */
import { expect, test } from '@playwright/test';
import { cdnUrl, hostUrl, pageErrors } from './helpers.js';

interface EsmHearth {
  ready: Promise<{ backend: string }>;
  stored(): Promise<{ type: string; item: string }[]>;
}

test('the ESM entry starts the worker from next to hearth.mjs and captures clicks', async ({
  page,
}) => {
  const errors = pageErrors(page);
  const workerScripts: string[] = [];
  page.context().on('request', (r) => {
    if (r.url().endsWith('hearth-worker.js')) workerScripts.push(r.url());
  });
  await page.goto(`${hostUrl()}pages/esm.html`);
  const recs = page.locator('#recs');
  await expect(recs).toHaveAttribute('data-items', /,/);
  const status = await page.evaluate(
    () => (window as unknown as { esmHearth: EsmHearth }).esmHearth.ready,
  );
  expect(status.backend).toBeTruthy();
  expect(workerScripts).toEqual([`${cdnUrl()}hearth-worker.js`]);
  expect(page.workers().map((w) => w.url().slice(0, 5))).toEqual(['blob:']);

  const before = (await recs.getAttribute('data-items'))!;
  const first = recs.locator('button').first();
  const id = (await first.getAttribute('data-hearth-item'))!;
  await first.click();
  await expect
    .poll(() =>
      page.evaluate(async () =>
        (await (window as unknown as { esmHearth: EsmHearth }).esmHearth.stored()).map(
          (s) => `${s.type}:${s.item}`,
        ),
      ),
    )
    .toContain(`click:${id}`);
  await expect.poll(() => recs.getAttribute('data-items')).not.toBe(before);
  expect((await recs.getAttribute('data-items'))!.split(',')).not.toContain(id);
  expect(errors).toEqual([]);
});
