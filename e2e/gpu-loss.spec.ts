/**
 * Losing the GPU. A GPU process crash or a driver reset loses the worker's WebGL context, and tfjs
 * does not notice: a read-back then waits for ever (worker/gpu-loss.ts). The worker entries of
 * e2e/pages/self/ lose the context on purpose (WEBGL_lose_context), as a crash would:
 * - during the backend self-test: the rung fails with the reason and the ladder moves on;
 * - while the page is in use, even in the middle of a call: the call still answers, from a fresh
 *   context the engine self-tests like any rung;
 * - for good (every new context is lost too): calls fail with a code instead of waiting;
 * - while a sync trains: what it read back off the lost context is not sent, and it learns again.
 */
import { expect, test, type Page, type Request, type Worker } from '@playwright/test';
import { parseManifest } from '../protocol/manifest.js';
import { PATHS } from '../protocol/routes.js';
import { decodeUpdate } from '../protocol/update-format.js';
import { manifestLayout, updateLength } from '../protocol/update-layout.js';
import { hostUrl, pageErrors, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

/** A server of this file's own for the sync: every sync joins, and one update publishes. */
const syncing = ownServer('gpu-loss', () => ({
  aggregation: 'plaintext',
  modelDir: stackModelDir(),
  minCohort: 1,
  sampleRate: 1,
  noiseMultiplier: 0,
  updateDtype: 'float16',
}));

interface Status {
  backend: string | null;
  backends: { backend: string; outcome: string; detail?: string }[];
}
type Api = {
  hearth: {
    ready: Promise<Status>;
    status(): Promise<Status & { learning: { personalised: boolean } }>;
    sync(): Promise<{ status: string; reason?: string; modelVersion: number }>;
    track(e: { type: string; item: string }): Promise<unknown>;
    recommend(o: { k: number }): Promise<{ item: string }[]>;
  };
};
type Patched = {
  loseWebgl(): void;
  webglContexts(): number;
  lostWebgl?: number;
  loseWebglOnFence?: boolean;
  loseWebglOnRead?: boolean;
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

test('a WebGL context lost while a sync trains: what it read back is not sent, and it learns again', async ({
  page,
}) => {
  const errors = pageErrors(page);
  const server = syncing().server.url;
  const uploads: Request[] = [];
  page.context().on('request', (request) => {
    if (request.url() === `${server}${PATHS.updates}`) uploads.push(request);
  });
  await page.goto(`${hostUrl()}pages/losable-webgl.html?endpoint=${encodeURIComponent(server)}`);
  expect((await ready(page)).backend).toBe('webgl');
  const worker = engineWorker(page);
  // A session of six clicks in a row (online learning's least), then the one online update they
  // lead to: after it, no other work reads off the GPU until the sync.
  await page.evaluate(async () => {
    const { hearth } = window as unknown as Api;
    const items = (await hearth.recommend({ k: 6 })).map((r) => r.item);
    for (const item of items) await hearth.track({ type: 'click', item });
  });
  await expect
    .poll(async () =>
      page.evaluate(
        async () => (await (window as unknown as Api).hearth.status()).learning.personalised,
      ),
    )
    .toBe(true);
  const contexts = await worker.evaluate(() => (self as unknown as Patched).webglContexts());

  // The sync's first read-back (of the update it trained) loses the context: what it reads back
  // then is not its update.
  await worker.evaluate(() => ((self as unknown as Patched).loseWebglOnRead = true));
  const result = await page.evaluate(() => (window as unknown as Api).hearth.sync());
  expect(result).toMatchObject({
    status: 'uploaded',
    reason: 'the GPU was lost while this device trained; it learned again',
  });
  expect(await worker.evaluate(() => (self as unknown as Patched).lostWebgl)).toBe(contexts);
  const status = await page.evaluate(() => (window as unknown as Api).hearth.status());
  expect(status.backend).toBe('webgl');
  expect(status.backends[0]!.detail).toContain('lost while in use (the WebGL context was lost)');

  // One update reached the server, from the training on the fresh context: not zeros.
  expect(uploads).toHaveLength(1);
  // The length of an update on any version of this server (the layout's shape does not move).
  const manifest = parseManifest(await (await fetch(`${server}${PATHS.model}`)).json());
  const length = updateLength(manifest.dims, manifestLayout(manifest.federation));
  const update = decodeUpdate(new Uint8Array(uploads[0]!.postDataBuffer()!), length);
  expect(update.baseVersion).toBe(1);
  expect(update.delta.some((v) => v !== 0)).toBe(true);
  expect(errors).toEqual([]);
});
