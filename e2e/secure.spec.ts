/**
 * Secure aggregation in real Chromium: six pages, each its own browser context (its own IndexedDB),
 * take part in one round of a second aggregation server started by this spec with
 * `--aggregation secure`; two close mid-round, one after sending its keys and one after sending its
 * masked update. The round publishes without them, the pages that stayed are told so, the published
 * model is the mean of the five summed pages' plaintext updates to the fixed-point rounding (of a
 * 16-bit ring, the vectors rotated), and no
 * byte string any page sent appears in the server's SQLite file. The plaintext updates come from the
 * test-only path `data-debug` opens: each worker keeps the clipped update it put into the round on
 * its own global scope (worker/debug-view.ts), read here through Playwright's worker handle; no page
 * sends it anywhere.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { secureEncoding } from '../server/secure-rounds.js';
import { clickRecommendations, hostUrl, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

const secure = ownServer('secure', () => ({
  modelDir: stackModelDir(),
  aggregation: 'secure',
  noiseMultiplier: 0,
  sampleRate: 1,
  minCohort: 4,
  secureCohort: 6,
  // Six pages of one browser are one loopback client.
  joinsPerRound: 0,
  // A stage closes as soon as its devices have all answered; this only bounds the two stages
  // a closed page leaves waiting.
  secureStageSeconds: 20,
}));

/** A page of its own context, with every POST body it sends recorded. */
async function openDevice(context: BrowserContext, bodies: Buffer[]): Promise<Page> {
  const page = await context.newPage();
  page.on('request', (request) => {
    const body = request.postDataBuffer();
    if (request.method() === 'POST' && body && body.length > 0) bodies.push(body);
  });
  await page.goto(
    `${hostUrl()}pages/minimal.html?debug=1&endpoint=${encodeURIComponent(secure().server.url)}`,
  );
  return page;
}

/** The plaintext update the page's worker put into its secure round (worker/debug-view.ts). */
async function secureInput(page: Page): Promise<{ round: string; delta: number[] }> {
  const worker = page.workers().find((w) => w.url().length > 0);
  if (!worker) throw new Error('the page has no worker');
  return worker.evaluate(() => {
    const view = (
      self as unknown as { hearthDebug?: { secureInput?: { round: string; delta: Float32Array } } }
    ).hearthDebug?.secureInput;
    if (!view) throw new Error('no secure input recorded');
    return { round: view.round, delta: Array.from(view.delta) };
  });
}

/**
 * Holds the page's POST to the secure round's `step` in the browser (it never reaches the server)
 * once the route is in place; `reached` resolves when the page has sent it.
 */
async function holdPost(page: Page, step: string): Promise<{ reached: Promise<void> }> {
  let reached!: () => void;
  const held = new Promise<void>((resolve) => (reached = resolve));
  await page.context().route(`**/${step}`, (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    reached();
    return undefined;
  });
  return { reached: held };
}

test('six pages, two closed mid-round: the round publishes, no body reaches the database', async ({
  browser,
}) => {
  // Six pages boot their engines at once: on a loaded 2-core machine one took over 60 s to show
  // its first list, so the first list may take 120 s here.
  test.setTimeout(240_000);
  const bodies: Buffer[] = [];
  const contexts = await Promise.all(Array.from({ length: 6 }, () => browser.newContext()));
  const pages = await Promise.all(contexts.map((context) => openDevice(context, bodies)));
  for (const [i, page] of pages.entries()) {
    await clickRecommendations(page, [i % 3, (i + 1) % 4], 120_000);
  }

  // Page 1 leaves once its keys are out, page 4 once its masked update is out: the POST that
  // would follow (its key shares, its unmasking shares) is held in the browser and never reaches
  // the server, and the page's context closes with it in flight. Closing on the response alone
  // raced the round: on a loaded machine the page could finish the round before it closed.
  const inputs = new Map<number, { round: string; delta: number[] }>();
  const leaving = [
    { page: 1, heldStep: 'shares' },
    { page: 4, heldStep: 'unmask' },
  ];
  const holds = await Promise.all(
    leaving.map(({ page, heldStep }) => holdPost(pages[page]!, heldStep)),
  );
  const closing = leaving.map(async ({ page }, i) => {
    await holds[i]!.reached;
    // Page 4's masked update is in the sum: its plaintext is read before it leaves.
    if (page === 4) inputs.set(4, await secureInput(pages[4]!));
    await pages[page]!.context().close();
  });
  const syncs = pages.map((page) =>
    page
      .evaluate(() =>
        (
          window as unknown as {
            hearth: { sync(): Promise<{ status: string; modelVersion: number }> };
          }
        ).hearth.sync(),
      )
      .catch(() => 'closed' as const),
  );
  const results = await Promise.all(syncs);
  await Promise.all(closing);
  expect(results[1]).toBe('closed');
  expect(results[4]).toBe('closed');
  for (const i of [0, 2, 3, 5]) {
    expect(results[i]).toMatchObject({ status: 'uploaded', modelVersion: 2 });
  }
  for (const i of [0, 2, 3, 5]) inputs.set(i, await secureInput(pages[i]!));
  await Promise.all(contexts.map((context) => context.close().catch(() => undefined)));

  // The published model is version 1 plus the mean of the five summed updates (FedAvg, server
  // learning rate 1), up to the fixed-point rounding and float32: what no page sent in plaintext.
  const summed = [...inputs.values()];
  expect(summed).toHaveLength(5);
  expect(new Set(summed.map((input) => input.round)).size).toBe(1);
  const before = bytesToFloat32((await secure().server.store.getWeightBytes(1))!);
  const after = bytesToFloat32((await secure().server.store.getWeightBytes(2))!);
  expect(summed[0]!.delta).toHaveLength(before.length);
  let worst = 0;
  let moved = 0;
  for (let j = 0; j < before.length; j++) {
    const mean = summed.reduce((sum, input) => sum + input.delta[j]!, 0) / summed.length;
    worst = Math.max(worst, Math.abs(after[j]! - (before[j]! + mean)));
    moved = Math.max(moved, Math.abs(mean));
  }
  expect(moved).toBeGreaterThan(1e-3); // the pages did learn something
  // The round's rounding (server/secure-rounds.ts secureEncoding: six devices joined, t = 4, no
  // noise): each device's has variance at most 1 / (4 scale^2) a coordinate, which the rotation
  // of a 16-bit round keeps, so the mean of five is off by a standard deviation of at most
  // sqrt(5 / 4) / (5 scale); six of them, and float32, bound it over the model.
  const { scale } = secureEncoding(1, 0, 6, 4, before.length);
  expect(worst).toBeLessThan((6 * Math.sqrt(5 / 4)) / (5 * scale) + 1e-6);

  // Five in the sum: page 1 never shared its keys; page 4's masked update was in before it left.
  expect(await secure().server.store.counts()).toMatchObject({ versions: 2, updates: 0 });
  expect((await secure().server.store.history(1))[0]).toMatchObject({ updates: 5, norms: [] });
  // Whatever the server wrote, the database file and its write-ahead log hold it.
  const { dbPath } = secure();
  const db = new Database(dbPath, { readonly: true });
  expect(db.prepare('SELECT participants FROM rounds').all()).toEqual([{ participants: 5 }]);
  db.close();
  const stored = Buffer.concat(
    [dbPath, `${dbPath}-wal`].flatMap((path) => {
      try {
        return [readFileSync(path)];
      } catch {
        return [];
      }
    }),
  );
  const sent = bodies.filter((body) => body.length >= 48);
  expect(sent.length).toBeGreaterThan(6);
  for (const body of sent) expect(stored.includes(body.subarray(16, 48))).toBe(false);
});
