/**
 * Item sketches on the real server (`--item-sketch`): each version's manifest publishes a count
 * sketch drawn for it; the server takes only updates of the sketch's length, reads the round's mean
 * back into every item row, and carries a stale sketch into the current version's hashes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { l2Norm } from '../protocol/clip.js';
import { roundSketch, sentDense, unsketchUpdate } from '../protocol/item-sketch.js';
import { denseLength } from '../protocol/manifest.js';
import {
  fitUpdate,
  manifestLayout,
  strideOfOlderSdk,
  updateLength,
} from '../protocol/update-layout.js';
import { publishSumRound } from './store-rules.js';
import { roundPolicy } from './ingest.js';
import { resolveConfig } from './config.js';
import {
  DIMS,
  PARAMS,
  joinRound,
  layoutDelta,
  moveOfRound,
  makeApp,
  postUpdate,
  servedModel,
  servedWeights,
  seedWeights,
  updateBody,
  worstDifference,
  type BodyOptions,
} from './test-helpers.js';

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
});

/** Two buckets for the test model's five items. */
const SKETCH = { itemSketch: 2 } as const;

/** The whole-model change a sketch (or a mean of sketches) of `version` stands for. */
function readBack(sketch: Float32Array, version: number): Float32Array {
  return unsketchUpdate(sketch, DIMS, roundSketch(2, version), new Float32Array(PARAMS));
}

describe('item sketches (--item-sketch)', () => {
  it('draws a sketch per version, refuses other lengths, and moves every item row', async () => {
    const t = await makeApp({ ...SKETCH, minCohort: 2, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    expect(v1.federation.itemSketch).toEqual(roundSketch(2, 1));
    expect(v1.federation.updateRows).toBeUndefined();
    const layout = manifestLayout(v1.federation);
    const length = updateLength(DIMS, layout);
    expect(length).toBe(denseLength(DIMS) + 2 * (DIMS.embedding + 1));

    const a = await joinRound(t.app);
    for (const wrong of [PARAMS, length + DIMS.embedding + 1]) {
      const res = await postUpdate(
        t.app,
        updateBody({ token: a.token, delta: layoutDelta(wrong, 0.5, 0) }),
      );
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_SHAPE' } });
    }

    const b = await joinRound(t.app);
    const deltas = [layoutDelta(length, 0.5, 1), layoutDelta(length, 0.5, 2)];
    // FedAvg at lr 1: v2 = v1 + the mean of the sketches, read back with v1's hashes.
    const { mean, moved } = await moveOfRound(t.app, [a.token, b.token], deltas);
    expect(worstDifference(moved, readBack(mean, 1))).toBeLessThan(5e-6);
    // Every item row moved (row 0 is padding and stays).
    for (let item = 0; item < DIMS.items; item++) {
      const row = l2Norm(moved.subarray(item * DIMS.embedding, (item + 1) * DIMS.embedding));
      if (item === 0) expect(row).toBe(0);
      else expect(row, `item ${item}`).toBeGreaterThan(0);
    }

    const v2 = await servedModel(t.app);
    expect(v2.version).toBe(2);
    expect(v2.federation.itemSketch).toEqual(roundSketch(2, 2));
    expect(v2.federation.itemSketch!.key).not.toBe(v1.federation.itemSketch!.key);
  });

  it('publishes a sketch of depth 2 (--sketch-depth) and reads a round back with it', async () => {
    const t = await makeApp({ ...SKETCH, sketchDepth: 2, minCohort: 1, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    expect(v1.federation.itemSketch).toEqual(roundSketch(2, 1, 2));
    const length = updateLength(DIMS, manifestLayout(v1.federation));
    expect(length).toBe(denseLength(DIMS) + 2 * 2 * (DIMS.embedding + 1));
    const a = await joinRound(t.app);
    const delta = layoutDelta(length, 0.5, 3);
    const { moved } = await moveOfRound(t.app, [a.token], [delta]);
    // FedAvg at lr 1 with one update: the model moves by the update read back with depth 2.
    const read = unsketchUpdate(delta, DIMS, roundSketch(2, 1, 2), new Float32Array(PARAMS));
    expect(worstDifference(moved, read)).toBeLessThan(5e-6);
    expect(worstDifference(moved, readBack(delta, 1))).toBeGreaterThan(1e-3);
    expect((await servedModel(t.app)).federation.itemSketch).toEqual(roundSketch(2, 2, 2));
  });

  it('publishes a dense stride (--sketch-dense-stride): only the carried dense values move', async () => {
    const t = await makeApp({ ...SKETCH, sketchDenseStride: 3, minCohort: 1, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    const sketch = roundSketch(2, 1, 1, 3);
    expect(v1.federation.itemSketch).toEqual(sketch);
    const carried = sentDense(denseLength(DIMS), sketch);
    const length = updateLength(DIMS, manifestLayout(v1.federation));
    expect(length).toBe(carried.count + 2 * (DIMS.embedding + 1));
    expect(carried.count).toBeLessThan(denseLength(DIMS));
    const a = await joinRound(t.app);
    const delta = layoutDelta(length, 0.5, 4);
    const { moved } = await moveOfRound(t.app, [a.token], [delta]);
    // FedAvg at lr 1 with one update: the model moves by the update read back, and a dense value
    // moves only if the sketch carried it.
    const read = unsketchUpdate(delta, DIMS, sketch, new Float32Array(PARAMS));
    expect(worstDifference(moved, read)).toBeLessThan(5e-6);
    const denseFrom = PARAMS - denseLength(DIMS);
    for (let j = 0; j < denseLength(DIMS); j++) {
      const value = moved[denseFrom + j]!;
      if ((j - carried.offset) % 3 === 0 && j >= carried.offset) {
        expect(Math.abs(value), `dense ${j}`).toBeGreaterThan(0);
      } else expect(value, `dense ${j}`).toBe(0);
    }
    expect((await servedModel(t.app)).federation.itemSketch).toEqual(roundSketch(2, 2, 1, 3));
  });

  it('takes the sketch of an SDK that predates the stride, and folds only the values it carries', async () => {
    const t = await makeApp({ ...SKETCH, sketchDenseStride: 3, minCohort: 1, maxStaleness: 0 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    const layout = manifestLayout(v1.federation);
    // Such a device reads the sketch without its stride: every dense value, then the buckets.
    const olderLength = denseLength(DIMS) + 2 * (DIMS.embedding + 1);
    expect(olderLength).toBeGreaterThan(updateLength(DIMS, layout));
    const a = await joinRound(t.app);
    const wrong = await postUpdate(
      t.app,
      updateBody({ token: a.token, delta: layoutDelta(olderLength - 1, 0.5, 5) }),
    );
    expect(wrong.statusCode).toBe(422);
    expect(wrong.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_SHAPE' } });
    const older = layoutDelta(olderLength, 0.5, 5);
    const { moved } = await moveOfRound(t.app, [a.token], [older]);
    const carried = strideOfOlderSdk(older, DIMS, layout)!;
    expect(carried.length).toBe(updateLength(DIMS, layout));
    const read = unsketchUpdate(carried, DIMS, roundSketch(2, 1, 1, 3), new Float32Array(PARAMS));
    expect(worstDifference(moved, read)).toBeLessThan(5e-6);
  });

  it("refuses a stale update sketched with its own version's hashes, storing nothing", async () => {
    const t = await makeApp({ ...SKETCH, minCohort: 1, maxStaleness: 1 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    const length = updateLength(DIMS, manifestLayout(v1.federation));
    const late = await joinRound(t.app);
    const now = await joinRound(t.app);
    await moveOfRound(t.app, [now.token], [layoutDelta(length, 0.5, 3)]);
    const before = await t.store.counts();
    // Trained on v1 and sketched with v1's hashes, posted once v2 is current: within the bound,
    // but carried into v2's hashes it would bring more noise than signal.
    const res = await postUpdate(
      t.app,
      updateBody({ token: late.token, baseVersion: 1, delta: layoutDelta(length, 0.5, 4) }),
    );
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_STALE' } });
    expect(res.json<{ error: { message: string } }>().error.message).toContain('layoutAhead 1');
    expect(await t.store.counts()).toEqual(before);
    expect((await servedModel(t.app)).version).toBe(2);
  });

  it("takes a stale device's training in the newer version's sketch as it takes a fresh one", async () => {
    const t = await makeApp({ ...SKETCH, minCohort: 1, maxStaleness: 1 });
    closers.push(t.close);
    const v1 = await servedModel(t.app);
    expect(v1.federation.layoutAhead).toBe(true);
    const length = updateLength(DIMS, manifestLayout(v1.federation));
    const late = await joinRound(t.app);
    const now = await joinRound(t.app);
    await moveOfRound(t.app, [now.token], [layoutDelta(length, 0.5, 3)]);
    const v2 = await servedModel(t.app);
    const before = await t.store.counts();
    // Trained on v1, sketched with v2's hashes: a layout one version on from its base.
    const sent = layoutDelta(length, 0.5, 4);
    const post = (options: Partial<BodyOptions>) =>
      postUpdate(t.app, updateBody({ token: late.token, baseVersion: 1, delta: sent, ...options }));
    // A layout not published yet, or of another length than that version's, is refused.
    const early = await post({ layoutAhead: 2 });
    expect(early.statusCode).toBe(422);
    expect(early.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_VERSION_UNKNOWN' } });
    const short = await post({ layoutAhead: 1, delta: layoutDelta(length - 1, 0.5, 4) });
    expect(short.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_SHAPE' } });
    expect(await t.store.counts()).toEqual(before);
    const res = await post({ layoutAhead: 1, layoutHash: v2.layoutHash });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ version: 3 });
    // FedAvg at lr 1: v3 = v2 + the update read back with v2's hashes, nothing carried over.
    const w2 = await servedWeights(t.app, 2);
    const change = (await servedWeights(t.app, 3)).map((w, i) => w - w2[i]!);
    expect(worstDifference(change, readBack(sent, 2))).toBeLessThan(5e-6);
    const carried = fitUpdate(
      sent,
      DIMS,
      manifestLayout(v1.federation),
      manifestLayout(v2.federation),
    );
    expect(worstDifference(change, readBack(carried, 2))).toBeGreaterThan(1e-3);
    // The staleness bound is on the version it trained on, whatever layout it came in.
    const later = await joinRound(t.app);
    const stale = await postUpdate(
      t.app,
      updateBody({ token: later.token, baseVersion: 1, layoutAhead: 2, delta: sent }),
    );
    expect(stale.json()).toMatchObject({ error: { code: 'HEARTH_E_UPDATE_STALE' } });
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
    const sum = layoutDelta(length, 0.8, 5);
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
    expect(worstDifference(moved, readBack(mean, 1))).toBeLessThan(5e-6);
    const wrong = readBack(mean, 2);
    expect(moved.some((x, i) => Math.abs(x - wrong[i]!) > 1e-3)).toBe(true);
    expect(published.manifest.federation.itemSketch).toEqual(roundSketch(2, 3));
  });
});
