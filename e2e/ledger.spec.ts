/**
 * The visitor's privacy ledger in the demo (`hearth.ledger()` and its panel), in real Chromium with
 * real IndexedDB. The demo's SDK talks to a server this spec starts with noise on (so the rounds
 * have a finite epsilon), through the loader's `window.hearth = { endpoint }` override; the page's
 * own catalogue still comes from the stack. Every request Playwright sees reach that server must be
 * in the ledger, and nothing else. With HEARTH_SCREENSHOTS=1 it writes the README's screenshot of
 * the ledger into docs/screenshots/.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Ledger } from '../protocol/api.js';
import { computeEpsilon } from '../protocol/privacy/index.js';
import { demoUrl, stackDir, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

const Z = 1.3;
const DELTA = 1e-6;
const noisy = ownServer('ledger', () => ({
  aggregation: 'plaintext',
  modelDir: stackModelDir(),
  catalogSource: join(stackDir(), 'demo-catalog.json'),
  minCohort: 1,
  sampleRate: 1,
  noiseMultiplier: Z,
  delta: DELTA,
}));

const ledgerOf = (page: Page): Promise<Ledger> =>
  page.evaluate(() =>
    (window as unknown as { hearth: { ledger(): Promise<Ledger> } }).hearth.ledger(),
  );

test('the ledger lists every request that left, the rounds joined with their ε, and deletes one item', async ({
  page,
}) => {
  const seen: string[] = [];
  page.context().on('request', (request) => {
    if (request.url().startsWith(noisy().server.url))
      seen.push(`${request.method()} ${request.url()}`);
  });
  await page.addInitScript((endpoint) => {
    (window as unknown as { hearth: unknown }).hearth = { endpoint };
  }, noisy().server.url);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const cards = page.locator('#catalog .card');
  const ids: string[] = [];
  for (const index of [1, 4, 6]) {
    ids.push((await cards.nth(index).getAttribute('data-hearth-item'))!);
    await cards.nth(index).click();
    await expect(page.locator(`#stored li[data-item="${ids.at(-1)}"]`)).toHaveCount(1);
  }
  // Two rounds: the first publishes a new version, which the second is computed on.
  for (const round of [1, 2]) {
    await page.locator('#share-result').evaluate((el) => (el.textContent = ''));
    await page.locator('#share').click();
    await expect(page.locator('#share-result')).toContainText('Shared a clipped update');
    await expect(page.locator('#epsilon')).toContainText(`${round} round`);
  }

  // Every request Playwright saw reach the server is in the ledger, and nothing else is.
  const logged = (ledger: Ledger) =>
    ledger.requests
      .filter((r) => r.url.startsWith(noisy().server.url))
      .map((r) => `${r.method} ${r.url}`)
      .sort();
  await expect.poll(async () => logged(await ledgerOf(page))).toEqual([...seen].sort());
  const ledger = await ledgerOf(page);
  expect(seen.filter((r) => r.startsWith('POST') && r.endsWith('/v1/updates'))).toHaveLength(2);
  expect(ledger.requests.filter((r) => r.kind === 'update').every((r) => r.sent > 44)).toBe(true);
  // The panel shows each of them.
  await expect(page.locator('#requests tbody tr')).toHaveCount(ledger.requests.length);

  // The two rounds, priced on the device with the published z and delta.
  expect(ledger.aggregation).toBe('plaintext');
  expect(ledger.rounds.map((r) => r.privacy.noiseMultiplier)).toEqual([Z, Z]);
  const two = computeEpsilon({ noise: Z, sampleRate: 1, steps: 2, delta: DELTA }).epsilon;
  expect(ledger.privacy.epsilon).toBeCloseTo(two, 6);
  await expect(page.locator('#epsilon')).toContainText(`ε = ${two.toFixed(2)}`);
  await expect(page.locator('#epsilon-chart circle')).toHaveCount(2);
  await expect(page.locator('#server-view')).toContainText('plaintext mode');

  // What is stored, by item (the cards on screen were viewed too); delete one.
  for (const id of ids) {
    expect(ledger.items.find((i) => i.item === id)?.types.click, id).toBe(1);
  }
  const [gone, ...kept] = ids;
  await page.locator(`#stored li[data-item="${gone}"] button`).click();
  await expect(page.locator(`#stored li[data-item="${gone}"]`)).toHaveCount(0);
  const after = await ledgerOf(page);
  expect(after.items.map((i) => i.item)).not.toContain(gone);
  for (const id of kept) expect(after.items.map((i) => i.item)).toContain(id);
  const stored = await page.evaluate(() =>
    (
      window as unknown as { hearth: { stored(n: number): Promise<{ item: string }[]> } }
    ).hearth.stored(100),
  );
  expect(stored.map((s) => s.item)).not.toContain(gone);
  // The record of what was sent stays.
  expect(after.rounds).toHaveLength(2);

  if (process.env.HEARTH_SCREENSHOTS) {
    const screenshots = join(import.meta.dirname, '..', 'docs', 'screenshots');
    mkdirSync(screenshots, { recursive: true });
    await page.locator('#privacy').screenshot({ path: join(screenshots, 'ledger.png') });
  }
});
