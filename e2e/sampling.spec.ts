/**
 * Honest sampling in the browser: a device takes part in a round only when its own coin, flipped
 * with the manifest's q, says so, and a device that is not sampled sends nothing at all. Here the
 * page talks to a second aggregation server, started by this spec on the stack's model, whose q is 0.
 */
import { expect, test } from '@playwright/test';
import { clickRecommendations, hostUrl, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

const unsampled = ownServer('q0', () => ({
  aggregation: 'plaintext',
  modelDir: stackModelDir(),
  minCohort: 1,
  sampleRate: 0,
}));

test('with q = 0 a page never joins a round: no request however often it syncs', async ({
  page,
}) => {
  const posts: string[] = [];
  page.context().on('request', (request) => {
    if (request.method() === 'POST') posts.push(request.url());
  });
  await page.goto(
    `${hostUrl()}pages/minimal.html?endpoint=${encodeURIComponent(unsampled().server.url)}`,
  );
  await clickRecommendations(page, [0, 2, 4]);
  const result = page.locator('#sync-result');
  for (let attempt = 0; attempt < 3; attempt++) {
    await result.evaluate((el) => (el.textContent = ''));
    await page.locator('#sync').click();
    await expect(result).toHaveText('skipped');
  }
  const reason = await page.evaluate(
    async () =>
      (
        await (
          window as unknown as { hearth: { sync(): Promise<{ reason?: string }> } }
        ).hearth.sync()
      ).reason,
  );
  expect(reason).toContain('not sampled');
  expect(posts).toEqual([]);
});
