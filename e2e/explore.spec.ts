/**
 * The exploration slot, as a site turns it on with `data-explore="on"`: the last of the k results is
 * an item the model ranks just below the list, marked `explore: true`. Off by default.
 */
import { expect, test, type Page } from '@playwright/test';
import { clicksOnly, hostUrl } from './helpers.js';

const recommend = (page: Page): Promise<{ item: string; explore?: true }[]> =>
  page.evaluate(() =>
    (
      window as unknown as {
        hearth: { recommend(o: { k: number }): Promise<{ item: string; explore?: true }[]> };
      }
    ).hearth.recommend({ k: 6 }),
  );

test('data-explore="on" makes the last result an exploration item; off by default', async ({
  page,
}) => {
  // No views either: both lists must be cold-start lists of the same empty session.
  await clicksOnly(page);
  await page.goto(`${hostUrl()}pages/minimal.html`);
  const plain = await recommend(page);
  expect(plain).toHaveLength(6);
  expect(plain.filter((r) => r.explore)).toEqual([]);

  await page.goto(`${hostUrl()}pages/explore.html`);
  const explored = await recommend(page);
  expect(explored).toHaveLength(6);
  expect(explored.map((r) => r.explore === true)).toEqual([
    false,
    false,
    false,
    false,
    false,
    true,
  ]);
  // The first five are the model's own top five; the sixth is drawn from the ranks below them
  // (served-list.ts pickPositions: the next EXPLORE_POOL, the sixth place itself among them).
  const top5 = plain.slice(0, 5).map((r) => r.item);
  expect(explored.slice(0, 5).map((r) => r.item)).toEqual(top5);
  expect(top5).not.toContain(explored[5]!.item);
});
