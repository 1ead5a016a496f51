/**
 * Item sketches in real Chromium: the demo's worker, talking to a server this spec starts with a
 * small `--item-sketch` (the stack's catalogue has more items than buckets), sends the sketch of its
 * update (the length the version's manifest names, never the whole model), and the server reads the
 * body it received back into the next version with that version's hashes.
 */
import { expect, test, type Request } from '@playwright/test';
import { join } from 'node:path';
import { unsketchUpdate } from '../protocol/item-sketch.js';
import { parameterCount, parseManifest, type ModelManifest } from '../protocol/manifest.js';
import { PATHS, weightsPath } from '../protocol/routes.js';
import { decodeUpdate } from '../protocol/update-format.js';
import { manifestLayout, updateLength } from '../protocol/update-layout.js';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { demoUrl, stackDir, stackModelDir } from './helpers.js';
import { ownServer } from './own-server.js';

const BUCKETS = 4;
const sketching = ownServer('sketch', () => ({
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
}));

async function manifestOf(): Promise<ModelManifest> {
  return parseManifest(await (await fetch(`${sketching().server.url}${PATHS.model}`)).json());
}

async function weightsOf(version: number): Promise<Float32Array> {
  const res = await fetch(`${sketching().server.url}${weightsPath(version)}`);
  expect(res.status).toBe(200);
  return bytesToFloat32(new Uint8Array(await res.arrayBuffer()));
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

  const uploads: Request[] = [];
  page.context().on('request', (request) => {
    if (request.url() === `${sketching().server.url}${PATHS.updates}`) uploads.push(request);
  });
  await page.addInitScript((endpoint) => {
    (window as unknown as { hearth: unknown }).hearth = { endpoint };
  }, sketching().server.url);
  await page.goto(demoUrl());
  await expect(page.locator('body')).toHaveAttribute('data-hearth', 'ready');
  const cards = page.locator('#catalog .card');
  for (const index of [1, 4, 6]) await cards.nth(index).click();
  await page.locator('#share').click();
  await expect(page.locator('#share-result')).toContainText('Shared a clipped update');

  expect(uploads).toHaveLength(1);
  const body = uploads[0]!.postDataBuffer()!;
  const update = decodeUpdate(new Uint8Array(body), length);
  expect(update.baseVersion).toBe(1);
  expect(update.delta.length).toBe(length);
  // Published at once (m = 1, FedAvg at rate 1, no noise): v2 = v1 + the body read back with v1's
  // hashes into every item row.
  await expect.poll(async () => (await manifestOf()).version).toBe(2);
  const moved = await weightsOf(2).then(async (w2) => {
    const w1 = await weightsOf(1);
    return w2.map((w, i) => w - w1[i]!);
  });
  const expected = unsketchUpdate(
    update.delta,
    v1.dims,
    v1.federation.itemSketch!,
    new Float32Array(moved.length),
  );
  let worst = 0;
  for (let i = 0; i < moved.length; i++)
    worst = Math.max(worst, Math.abs(moved[i]! - expected[i]!));
  expect(worst).toBeLessThan(1e-6);
  // The next version draws its own hashes.
  const v2 = await manifestOf();
  expect(v2.federation.itemSketch?.buckets).toBe(BUCKETS);
  expect(v2.federation.itemSketch?.key).not.toBe(v1.federation.itemSketch!.key);
});
