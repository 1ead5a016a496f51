/**
 * Losing the GPU. A GPU process crash or a driver reset loses the worker's WebGL context, and tfjs
 * does not notice: a read-back then waits for ever (worker/gpu-loss.ts). The worker entries of
 * e2e/pages/self/ lose the context on purpose (WEBGL_lose_context), as a crash would:
 * - during the backend self-test: the rung fails with the reason and the ladder moves on;
 * - while the page is in use, even in the middle of a call: the call still answers, from a fresh
 *   context the engine self-tests like any rung;
 * - for good (every new context is lost too): calls fail with a code instead of waiting.
 */
import { expect, test, type Page, type Worker } from '@playwright/test';
import { hostUrl, pageErrors } from './helpers.js';

interface Status {
  backend: string | null;
  backends: { backend: string; outcome: string; detail?: string }[];
}
type Api = {
  hearth: {
    ready: Promise<Status>;
    status(): Promise<Status>;
    track(e: { type: string; item: string }): Promise<unknown>;
    recommend(o: { k: number }): Promise<{ item: string }[]>;
  };
};
type Patched = {
  loseWebgl(): void;
  webglContexts(): number;
  lostWebgl?: number;
  loseWebglOnFence?: boolean;
};

const ready = (page: Page): Promise<Status> =>
  page.evaluate(() => (window as unknown as Api).hearth.ready);

/** Clicks `item`, then asks for six recommendations (the click makes the model score again). */
const clickThenRecommend = (page: Page, item: string): Promise<string[]> =>
  page.evaluate(async (i) => {
    const { hearth } = window as unknown as Api;
    await hearth.track({ type: 'click', item: i });
    return (await hearth.recommend({ k: 6 })).map((r) => r.item);
  }, item);

function engineWorker(page: Page): Worker {
  const worker = page.workers().find((w) => w.url().length > 0);
  if (!worker) throw new Error('the page has no worker');
  return worker;
}

test('a WebGL context lost during the self-test fails that rung, and the ladder moves on', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/lost-webgl.html`);
  const status = await ready(page);
  expect(status.backends[0]).toMatchObject({
    backend: 'webgl',
    outcome: 'self-test-failed',
    detail: expect.stringContaining('the WebGL context was lost'),
  });
  expect(status.backend).toBe('wasm');
  expect(await engineWorker(page).evaluate(() => (self as unknown as Patched).lostWebgl)).toBe(1);
  const items = await page.evaluate(async () =>
    (await (window as unknown as Api).hearth.recommend({ k: 6 })).map((r) => r.item),
  );
  expect(items).toHaveLength(6);
  expect(errors).toEqual([]);
});

test('a WebGL context lost in the middle of a call: the call answers from a fresh context', async ({
  page,
}) => {
  const errors = pageErrors(page);
  await page.goto(`${hostUrl()}pages/losable-webgl.html`);
  const before = await ready(page);
  expect(before.backend).toBe('webgl');
  const worker = engineWorker(page);
  const first = await page.evaluate(async () =>
    (await (window as unknown as Api).hearth.recommend({ k: 6 })).map((r) => r.item),
  );
  const warm = await clickThenRecommend(page, first[0]!);
  expect(warm).toHaveLength(6);
  const contexts = await worker.evaluate(() => (self as unknown as Patched).webglContexts());

  // Lost now, before the next click is scored: that call's read-back waits on the lost context.
  await worker.evaluate(() => (self as unknown as Patched).loseWebgl());
  const after = await clickThenRecommend(page, warm[0]!);
  expect(after).toHaveLength(6);
  expect(after).not.toContain(warm[0]); // scored for the session, which excludes what it holds

  const status = await page.evaluate(() => (window as unknown as Api).hearth.status());
  expect(status.backend).toBe('webgl');
  expect(status.backends[0]!.detail).toContain('lost while in use (the WebGL context was lost)');
  // The engine made a new context: the lost one cannot come back.
  expect(await worker.evaluate(() => (self as unknown as Patched).webglContexts())).toBeGreaterThan(
    contexts,
  );
  expect(await worker.evaluate(() => (self as unknown as Patched).lostWebgl)).toBe(contexts);
  // And it keeps working on it.
  expect(await clickThenRecommend(page, after[0]!)).toHaveLength(6);
  expect(errors).toEqual([]);
});

test('a GPU lost for good: calls fail with HEARTH_E_NO_BACKEND instead of waiting', async ({
  page,
}) => {
  await page.goto(`${hostUrl()}pages/losable-webgl.html`);
  expect((await ready(page)).backend).toBe('webgl');
  const worker = engineWorker(page);
  const first = await page.evaluate(async () =>
    (await (window as unknown as Api).hearth.recommend({ k: 6 })).map((r) => r.item),
  );
  // From now on every context is lost at its first read-back, the fresh one included.
  await worker.evaluate(() => {
    const patched = self as unknown as Patched;
    patched.loseWebglOnFence = true;
    patched.loseWebgl();
  });
  /** The code a click-then-recommend fails with ('answered' if it does not fail). */
  const failureOf = (item: string): Promise<string> =>
    page.evaluate(async (i) => {
      try {
        const { hearth } = window as unknown as Api;
        await hearth.track({ type: 'click', item: i });
        await hearth.recommend({ k: 6 });
        return 'answered';
      } catch (error) {
        return String((error as { code?: string }).code);
      }
    }, item);
  expect(await failureOf(first[0]!)).toBe('HEARTH_E_NO_BACKEND');
  // And so does the next call, at once.
  expect(await failureOf(first[1]!)).toBe('HEARTH_E_NO_BACKEND');
});
