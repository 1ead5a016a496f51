import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ErrorReply, UpdateReply } from '../protocol/api.js';
import type { Store } from './store.js';
import { bytesToFloat32 } from './float32-bytes.js';
import {
  joinRound,
  makeApp,
  makeDelta,
  postUpdate,
  seedWeights,
  updateBody,
} from './test-helpers.js';

let app: FastifyInstance;
let store: Store;
let close: () => Promise<void>;

beforeEach(async () => {
  ({ app, store, close } = await makeApp({ minCohort: 3, clipNorm: 1 }));
});
afterEach(async () => {
  await close();
});

/** Expected FedAvg computed here in float64, independently of aggregate(). */
function expectedWeights(updates: { delta: Float32Array; examples: number }[]): Float64Array {
  const global = seedWeights();
  const out = Float64Array.from(global);
  let total = 0;
  for (const { delta, examples } of updates) {
    const w = Math.min(Math.max(examples, 1), 1000);
    const norm = Math.sqrt(delta.reduce((s, v) => s + v * v, 0));
    const scale = norm > 1 ? 1 / norm : 1;
    total += w;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + w * delta[i]! * scale;
  }
  // out = global + sum / total, applied as (out - global) / total
  return Float64Array.from(out, (v, i) => global[i]! + (v - global[i]!) / total);
}

describe('rounds', () => {
  it('aggregates after minCohort updates into version 2, exactly once', async () => {
    const updates = [
      { delta: makeDelta(0.5, 1), examples: 10 },
      { delta: makeDelta(0.9, 2), examples: 5000 }, // clamped to maxExamples
      { delta: makeDelta(1.0005, 3), examples: 0 }, // within the norm slack; re-clipped to S; weight 1
    ];
    const replies: UpdateReply[] = [];
    for (const u of updates) {
      const { token, round } = await joinRound(app);
      expect(round).toBe(1);
      const res = await postUpdate(app, updateBody({ token, ...u }));
      expect(res.statusCode).toBe(202);
      replies.push(res.json<UpdateReply>());
    }
    expect(replies.map((r) => [r.round, r.received, r.version])).toEqual([
      [1, 1, 1],
      [1, 2, 1],
      [1, 3, 2],
    ]);

    const manifest = (await app.inject({ method: 'GET', url: '/v1/model' })).json();
    expect(manifest.version).toBe(2);
    expect(manifest.weights.url).toBe('/v1/model/2/weights');
    expect(manifest.itemIds).toEqual(['', 'a', 'b', 'c', 'd', 'e']);
    expect(manifest.popular).toEqual([3, 1, 2]);
    const res = await app.inject({ method: 'GET', url: '/v1/model/2/weights' });
    const weights = bytesToFloat32(res.rawPayload);
    const expected = expectedWeights(updates);
    expect(weights.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      expect(Math.abs(weights[i]! - expected[i]!)).toBeLessThan(1e-6);
    }
    // The old version is still served, unchanged.
    const v1 = bytesToFloat32(
      (await app.inject({ method: 'GET', url: '/v1/model/1/weights' })).rawPayload,
    );
    expect(Array.from(v1)).toEqual(Array.from(seedWeights()));
    expect(await store.counts()).toMatchObject({ versions: 2, rounds: 1, updates: 3 });

    // A new round opens on version 2.
    const next = await joinRound(app);
    expect([next.round, next.version]).toEqual([2, 2]);
  });

  it('rejects stale updates and tokens of a closed round after an aggregation', async () => {
    const late = await joinRound(app);
    for (let k = 0; k < 3; k++) {
      const { token } = await joinRound(app);
      expect(
        (await postUpdate(app, updateBody({ token, delta: makeDelta(0.2, k) }))).statusCode,
      ).toBe(202);
    }
    const before = await store.counts();
    const stale = await postUpdate(app, updateBody({ token: late.token, baseVersion: 1 }));
    expect(stale.statusCode).toBe(409);
    expect(stale.json<ErrorReply>().error.code).toBe('HEARTH_E_UPDATE_STALE');
    // Rebased on version 2 but still holding a round-1 token: the token is no longer valid.
    const closed = await postUpdate(app, updateBody({ token: late.token, baseVersion: 2 }));
    expect(closed.statusCode).toBe(403);
    expect(closed.json<ErrorReply>().error.code).toBe('HEARTH_E_ROUND_TOKEN');
    expect(await store.counts()).toEqual(before);
  });
});
