/**
 * Hearth must not make the host page janky: the model, the store and training live in the worker,
 * and the page side only posts messages. A long-task observer (installed before any page script)
 * watches a minimal host site through load, recommendations, clicks and a training + upload round.
 * The site's own code is a few lines (e2e/pages/minimal.js), so any long task would be Hearth's.
 * Its upload may stay in the server's collecting round: specs that count rounds (demo.spec.ts)
 * read what is pending first, so the order the files run in does not matter.
 */
import { expect, test } from '@playwright/test';
import { clickRecommendations, hostUrl } from './helpers.js';

/** Anything longer than this blocks input: the Long Tasks API's own threshold. */
const LONG_TASK_MS = 50;

test('no long tasks on the host page while Hearth loads, recommends and trains', async ({
  page,
}) => {
  await page.addInitScript(() => {
    const durations: number[] = [];
    Object.defineProperty(window, '__longTasks', { value: durations });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) durations.push(entry.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  const longTasks = (): Promise<number[]> =>
    page.evaluate(() => (window as unknown as { __longTasks: number[] }).__longTasks);

  // Every step below starts from an ordinary task (navigation, input events, worker messages):
  // a long-task observer does not see work started from page.evaluate itself (ENV.md).
  await page.goto(`${hostUrl()}pages/minimal.html`);
  await clickRecommendations(page, [0, 2, 4]);
  await page.locator('#sync').click();
  await expect(page.locator('#sync-result')).toHaveText(/uploaded|skipped|failed/);
  expect(await page.locator('#sync-result').textContent()).toBe('uploaded');
  expect(await longTasks()).toEqual([]);

  // The observer works: a deliberate 120 ms block from an ordinary task is seen.
  await page.evaluate(() =>
    setTimeout(() => {
      const end = performance.now() + 120;
      while (performance.now() < end);
    }),
  );
  await expect.poll(longTasks).toHaveLength(1);
  expect((await longTasks())[0]).toBeGreaterThan(LONG_TASK_MS);
});
