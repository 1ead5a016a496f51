/**
 * Round windows in the browser: against a server whose rounds close on a clock (`--round-window`),
 * a page flips one coin per window, names that window when it joins, and puts at most one update in
 * each window's round however often it syncs. The page talks to a server of this spec's own, on
 * the stack's model, with q = 1.
 */
import { expect, test } from '@playwright/test';
import { clickRecommendations, hostUrl, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

const WINDOW_SECONDS = 3600;

const windowed = ownServer('windows', () => ({
  aggregation: 'plaintext',
  modelDir: stackModelDir(),
  minCohort: 1,
  sampleRate: 1,
  roundWindowSeconds: WINDOW_SECONDS,
}));

test('a page names its round window when it joins, and sends one update a window', async ({
  page,
}) => {
  const joins: unknown[] = [];
  const updates: string[] = [];
  page.context().on('request', (request) => {
    if (request.method() !== 'POST') return;
    if (request.url().endsWith('/v1/rounds/join')) joins.push(request.postDataJSON());
    if (request.url().endsWith('/v1/updates')) updates.push(request.url());
  });
  await page.goto(
    `${hostUrl()}pages/minimal.html?endpoint=${encodeURIComponent(windowed().server.url)}`,
  );
  await clickRecommendations(page, [0, 2, 4]);
  const sync = () =>
    page.evaluate(async () =>
      (
        window as unknown as { hearth: { sync(): Promise<{ status: string; reason?: string }> } }
      ).hearth.sync(),
    );
  const results = [await sync(), await sync(), await sync()];
  expect(results[0]!.status).toBe('uploaded');
  const named = joins.map((body) => (body as { window?: unknown }).window);
  // Every join named the window it was made in, and each window took one update: a sync in a
  // window this page already took part in sends nothing.
  for (const window of named) expect(Number.isInteger(window)).toBe(true);
  expect(updates.length).toBe(new Set(named).size);
  expect(results.filter((r) => r.status === 'uploaded').length).toBe(updates.length);
  const now = Math.floor(Date.now() / (WINDOW_SECONDS * 1000));
  expect(Math.abs((named.at(-1) as number) - now)).toBeLessThanOrEqual(1);
  expect(
    results
      .slice(1)
      .every((r) => r.status === 'uploaded' || /already took part/.test(r.reason ?? '')),
  ).toBe(true);
});
