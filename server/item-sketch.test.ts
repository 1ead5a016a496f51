/**
 * Item sketches on the real server (`--item-sketch`): each version's manifest publishes a count
 * sketch drawn for it; the server takes only updates of the sketch's length, reads the round's mean
 * back into every item row, and carries a stale sketch into the current version's hashes.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { l2Norm } from '../protocol/clip.js';
import { roundSketch, unsketchUpdate } from '../protocol/item-sketch.js';
import { denseLength, type ModelManifest } from '../protocol/manifest.js';
import { PATHS, weightsPath } from '../protocol/routes.js';
import { fitUpdate, itemSpan, manifestLayout, updateLength } from '../protocol/update-layout.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { publishSumRound } from './store-rules.js';
import { roundPolicy } from './ingest.js';
import { resolveConfig } from './config.js';
import {
  DIMS,
  PARAMS,
  joinRound,
  makeApp,
  postUpdate,
  seedWeights,
  updateBody,
} from './test-helpers.js';

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

/** Two buckets for the test model's five items. */
const SKETCH = { itemSketch: 2 } as const;

async function served(app: FastifyInstance): Promise<ModelManifest> {
  return (await app.inject({ method: 'GET', url: PATHS.model })).json<ModelManifest>();
}

async function weightsOf(app: FastifyInstance, version: number): Promise<Float32Array> {
  const res = await app.inject({ method: 'GET', url: weightsPath(version) });
  expect(res.statusCode).toBe(200);
  return bytesToFloat32(res.rawPayload);
}

/** A deterministic delta of `length` values and L2 norm `norm`. */
function delta(length: number, norm: number, salt: number): Float32Array {
  const raw = Float32Array.from({ length }, (_, i) => Math.sin(i * 2.3 + salt) + 0.2);
  const n = l2Norm(raw);
  return raw.map((x) => (x / n) * norm);
}

/** The whole-model change a sketch (or a mean of sketches) of `version` stands for. */
function readBack(sketch: Float32Array, version: number): Float32Array {
  return unsketchUpdate(sketch, DIMS, roundSketch(2, version), new Float32Array(PARAMS));
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((x, i) => expect(x, `coordinate ${i}`).toBeCloseTo(expected[i]!, 5));
}

describe('item sketches (--item-sketch)', () => {
  it('draws a sketch per version, refuses other lengths, and moves every item row', async () => {
    const t = await makeApp({ ...SKETCH, minCohort: 2, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await served(t.app);
    expect(v1.federation.itemSketch).toEqual(roundSketch(2, 1));
    expect(v1.federation.updateRows).toBeUndefined();
    const layout = manifestLayout(v1.federation);
    const length = updateLength(DIMS, layout);
    expect(length).toBe(denseLength(DIMS) + 2 * (DIMS.embedding + 1));

    const a = await joinRound(t.app);
    for (const wrong of [PARAMS, length + DIMS.embedding + 1]) {
      const res = await postUpdate(
        t.app,
        updateBody({ token: a.token, delta: delta(wrong, 0.5, 0) }),
      );
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_SHAPE' } });
    }

    const b = await joinRound(t.app);
    const deltas = [delta(length, 0.5, 1), delta(length, 0.5, 2)];
    for (const [token, d] of [
      [a.token, deltas[0]!],
      [b.token, deltas[1]!],
    ] as const) {
      const res = await postUpdate(t.app, updateBody({ token, delta: d }));
      expect(res.statusCode, res.body).toBe(202);
    }
    const before = await weightsOf(t.app, 1);
    const after = await weightsOf(t.app, 2);
    // FedAvg at lr 1: v2 = v1 + the mean of the sketches, read back with v1's hashes.
    const mean = deltas[0]!.map((x, i) => (x + deltas[1]![i]!) / 2);
    const moved = after.map((w, i) => w - before[i]!);
    expectClose(moved, readBack(mean, 1));
    // Every item row moved (row 0 is padding and stays).
    for (let item = 0; item < DIMS.items; item++) {
      const row = l2Norm(moved.subarray(item * DIMS.embedding, (item + 1) * DIMS.embedding));
      if (item === 0) expect(row).toBe(0);
      else expect(row, `item ${item}`).toBeGreaterThan(0);
    }

    const v2 = await served(t.app);
    expect(v2.version).toBe(2);
    expect(v2.federation.itemSketch).toEqual(roundSketch(2, 2));
    expect(v2.federation.itemSketch!.key).not.toBe(v1.federation.itemSketch!.key);
  });

  it('sketches a stale update again with the current hashes, its item norm kept', async () => {
    const t = await makeApp({ ...SKETCH, minCohort: 1, maxStaleness: 1 });
    closers.push(t.close);
    const v1 = await served(t.app);
    const late = await joinRound(t.app);
    const now = await joinRound(t.app);
    const from = manifestLayout(v1.federation);
    const length = updateLength(DIMS, from);
    let res = await postUpdate(
      t.app,
      updateBody({ token: now.token, delta: delta(length, 0.5, 3) }),
    );
    expect(res.statusCode, res.body).toBe(202);
    const to = manifestLayout((await served(t.app)).federation);
    const stale = delta(length, 0.5, 4);
    res = await postUpdate(t.app, updateBody({ token: late.token, delta: stale }));
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ version: 3 });

    const fitted = fitUpdate(stale, DIMS, from, to);
    const span = itemSpan(DIMS, to);
    expect(l2Norm(fitted.subarray(span.start, span.end))).toBeLessThanOrEqual(
      l2Norm(stale.subarray(span.start, span.end)) * (1 + 1e-6),
    );
    const v2w = await weightsOf(t.app, 2);
    const change = (await weightsOf(t.app, 3)).map((w, i) => w - v2w[i]!);
    expectClose(change, readBack(fitted, 2));
  });

  it('reads a secure sum back with the hashes of the version it was summed on', async () => {
    const config = resolveConfig({
      ...SKETCH,
      minCohort: 2,
      noiseMultiplier: 0,
      serverOptimizer: 'fedavg',
    });
    const t = await makeApp({ ...SKETCH, minCohort: 2, maxStaleness: 1 });
    closers.push(t.close);
    const v1 = (await t.store.getManifest(1))!;
    const base = {
      manifest: { ...v1, federation: { ...v1.federation, itemSketch: roundSketch(2, 2) } },
      weights: seedWeights(),
    };
    const length = updateLength(DIMS, manifestLayout(v1.federation));
    const sum = delta(length, 0.8, 5);
    const published = publishSumRound(
      roundPolicy(config),
      2,
      base,
      v1,
      { baseVersion: 1, sum, count: 2, openedAt: new Date(0).toISOString() },
      { optimizerState: undefined, ledger: [] },
      new Date(0).toISOString(),
    );
    // The sum was on v1: v1's hashes read it back, not the current version's.
    const mean = sum.map((x) => x / 2);
    const moved = published.output.weights.map((w, i) => w - base.weights[i]!);
    expectClose(moved, readBack(mean, 1));
    const wrong = readBack(mean, 2);
    expect(moved.some((x, i) => Math.abs(x - wrong[i]!) > 1e-3)).toBe(true);
    expect(published.manifest.federation.itemSketch).toEqual(roundSketch(2, 3));
  });
});
