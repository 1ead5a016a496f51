/**
 * Item sketches in real Chromium: the demo's worker, talking to a server this spec starts with a
 * small `--item-sketch` (the stack's catalogue has more items than buckets), sends the sketch of its
 * update (the length the version's manifest names, never the whole model), and the server reads the
 * body it received back into the next version with that version's hashes. When a version is published
 * between its join and its upload, it sends its training in that newer version's sketch.
 */
import { expect, test, type Page, type Request } from '@playwright/test';
import { join } from 'node:path';
import { unsketchUpdate } from '../protocol/item-sketch.js';
import { parameterCount, parseManifest, type ModelManifest } from '../protocol/manifest.js';
import { PATHS, weightsPath } from '../protocol/routes.js';
import { decodeUpdate } from '../protocol/update-format.js';
import { manifestLayout, updateLength } from '../protocol/update-layout.js';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { demoUrl, stackDir, stackModelDir } from './helpers.js';
import { ownServer, type OwnServer } from './own-server.js';
import type { ServerConfig } from '../server/config.js';
import { postZeroUpdate, worstDifference } from '../server/test-helpers.js';

const BUCKETS = 4;
const settings = (): Partial<ServerConfig> => ({
  aggregation: 'plaintext',
  modelDir: stackModelDir(),
  catalogSource: join(stackDir(), 'demo-catalog.json'),
  minCohort: 1,
  sampleRate: 1,
  noiseMultiplier: 0,
  itemSketch: BUCKETS,
  // Read back exactly: the published versions in float32, the upload in float16.
  weightsDtype: 'float32',
  updateDtype: 'float16',
});
const sketching = ownServer('sketch', settings);
/** The same server for the second test, whose versions move on of their own. */
const moving = ownServer('sketch-ahead', settings);

async function manifestOf(own = sketching()): Promise<ModelManifest> {
  return parseManifest(await (await fetch(`${own.server.url}${PATHS.model}`)).json());
}

async function weightsOf(version: number, own = sketching()): Promise<Float32Array> {
  const res = await fetch(`${own.server.url}${weightsPath(version)}`);
  expect(res.status).toBe(200);
  return bytesToFloat32(new Uint8Array(await res.arrayBuffer()));
}

/** The change from `version` to the next, and `body` read back with `sketched`'s hashes. */
async function movedAndRead(
  version: number,
  body: Float32Array,
  sketched: ModelManifest,
  own = sketching(),
): Promise<{ moved: Float32Array; read: Float32Array }> {
  const before = await weightsOf(version, own);
  const moved = (await weightsOf(version + 1, own)).map((w, i) => w - before[i]!);
  const read = unsketchUpdate(
    body,
    sketched.dims,
    sketched.federation.itemSketch!,
    new Float32Array(moved.length),
  );
  return { moved, read };
}

/** Opens the demo on `own`'s server, clicks three cards and shares; returns what it uploaded. */
async function shareFromDemo(page: Page, own: OwnServer): Promise<Request[]> {
  const uploads: Request[] = [];
  page.context().on('request', (request) => {
    if (request.url() === `${own.server.url}${PATHS.updates}`) uploads.push(request);
  });
  await page.addInitScript((endpoint) => {
    (window as unknown as { hearth: unknown }).hearth = { endpoint };
  }, own.server.url);
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const cards = page.locator('#catalog .card');
  for (const index of [1, 4, 6]) await cards.nth(index).click();
  await page.locator('#share').click();
  await expect(page.locator('#share-result')).toContainText('Shared a clipped update');
  return uploads;
}

test("the worker sends its update's sketch, and the server reads it back with the version's hashes", async ({
  page,
}) => {
  const v1 = await manifestOf();
  expect(v1.dims.items - 1).toBeGreaterThan(BUCKETS);
  expect(v1.federation.itemSketch?.buckets).toBe(BUCKETS);
  const layout = manifestLayout(v1.federation);
  const length = updateLength(v1.dims, layout);
  expect(length).toBeLessThan(parameterCount(v1.tensors));

  const uploads = await shareFromDemo(page, sketching());
  expect(uploads).toHaveLength(1);
  const body = uploads[0]!.postDataBuffer()!;
  const update = decodeUpdate(new Uint8Array(body), length);
  expect(update.baseVersion).toBe(1);
  expect(update.layoutAhead).toBe(0);
  expect(update.delta.length).toBe(length);
  // Published at once (m = 1, FedAvg at rate 1, no noise): v2 = v1 + the body read back with v1's
  // hashes into every item row.
  await expect.poll(async () => (await manifestOf()).version).toBe(2);
  const { moved, read } = await movedAndRead(1, update.delta, v1);
  expect(worstDifference(moved, read)).toBeLessThan(1e-6);
  // The next version draws its own hashes.
  const v2 = await manifestOf();
  expect(v2.federation.itemSketch?.buckets).toBe(BUCKETS);
  expect(v2.federation.itemSketch?.key).not.toBe(v1.federation.itemSketch!.key);
});

test("a version published while the worker trained: it sends in that version's sketch", async ({
  page,
}) => {
  const own = moving();
  const v1 = await manifestOf(own);
  expect(v1.federation.layoutAhead).toBe(true);
  const length = updateLength(v1.dims, manifestLayout(v1.federation));
  // Another device's update publishes v2 once the worker has joined v1's round, before the
  // worker has its join reply (and so before it trains).
  let published = false;
  await page.context().route(`${own.server.url}${PATHS.join}`, async (route) => {
    const response = await route.fetch();
    if (!published) {
      published = true;
      expect(await postZeroUpdate(own.server.url, v1)).toBe(202);
    }
    await route.fulfill({ response });
  });
  const uploads = await shareFromDemo(page, own);
  expect(published).toBe(true);
  expect(uploads).toHaveLength(1);
  const v2 = (await own.server.store.getManifest(2))!;
  const update = decodeUpdate(new Uint8Array(uploads[0]!.postDataBuffer()!), length);
  // Trained on v1, in v2's layout: the header names both.
  expect(update).toMatchObject({ baseVersion: 1, layoutAhead: 1, layoutHash: v2.layoutHash });
  expect(update.delta.length).toBe(updateLength(v2.dims, manifestLayout(v2.federation)));
  // v3 = v2 + the body read back with v2's hashes: nothing carried over from v1's.
  await expect.poll(async () => (await manifestOf(own)).version).toBe(3);
  const { moved, read } = await movedAndRead(2, update.delta, v2, own);
  expect(worstDifference(moved, read)).toBeLessThan(1e-6);
  const carried = await movedAndRead(2, update.delta, v1, own);
  expect(worstDifference(carried.moved, carried.read)).toBeGreaterThan(1e-4);
});
