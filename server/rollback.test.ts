/**
 * Rollback on a validation drop (rollback.ts): a round that wrecks HR@20 on the operator's validation
 * sessions is undone by republishing the best recent version; a harmless round is left alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { layoutHash, splitFlat, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import { SessionModel } from '../model/session-model.js';
import { referenceScores } from '../model/reference-forward.js';
import { buildApp } from './app.js';
import { resolveConfig } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { rollbackTarget, ROLLBACK_WINDOW } from './rollback.js';
import { seedIfEmpty } from './seed.js';
import { SqliteStore } from './sqlite-store.js';
import { joinRound, postUpdate, updateBody, writeSeedDir } from './test-helpers.js';

const OPERATOR = 'operator-token-for-rollback-tests';

describe('the rollback rule', () => {
  it('rolls back to the best recent version when the current one falls more than the fraction', () => {
    const rates = new Map([
      [1, 0.3],
      [2, 0.4],
      [3, 0.35],
      [4, 0.3],
    ]);
    expect(rollbackTarget(rates, 4, 0.2)).toBe(2); // 0.30 < 0.8 * 0.40
    expect(rollbackTarget(rates, 4, 0.3)).toBeUndefined(); // 0.30 >= 0.7 * 0.40
    expect(rollbackTarget(rates, 3, 0.2)).toBeUndefined();
    expect(rollbackTarget(rates, 4, 0)).toBeUndefined(); // off
    expect(rollbackTarget(rates, 1, 0.2)).toBeUndefined(); // nothing before it
    expect(rollbackTarget(new Map([[1, 0.4]]), 2, 0.2)).toBeUndefined(); // not evaluated yet
    // Only the window before it counts.
    const old = new Map([
      [1, 0.9],
      [2 + ROLLBACK_WINDOW, 0.3],
    ]);
    expect(rollbackTarget(old, 2 + ROLLBACK_WINDOW, 0.2)).toBeUndefined();
  });
});

describe('a server with a validation set', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('republishes the last good version after a round that wrecks HR@20, and keeps a harmless one', async () => {
    await tf.setBackend('cpu');
    const dims: ModelDims = { items: 40, embedding: 4, hidden: 4, maxSessionLength: 5 };
    const itemIds = ['', ...Array.from({ length: 39 }, (_, i) => `i${i + 1}`)];
    const model = SessionModel.random(dims, 11);
    const weights = model.toFlat();
    model.dispose();
    const seed = await writeSeedDir('float32', weights, { dims, itemIds });
    closers.push(seed.cleanup);
    // Validation sessions the seed model gets right: each item, then its top-scored next item.
    const sessions: string[][] = [];
    const targets = new Set<number>();
    for (let a = 1; a < dims.items; a++) {
      const scores = referenceScores(dims, weights, [a]);
      let best = a === 1 ? 2 : 1;
      for (let i = 1; i < dims.items; i++) if (i !== a && scores[i]! > scores[best]!) best = i;
      sessions.push([itemIds[a]!, itemIds[best]!]);
      targets.add(best);
    }
    const store = new SqliteStore(':memory:');
    const config = resolveConfig({
      dbPath: ':memory:',
      modelDir: seed.dir,
      weightsDtype: 'float32',
      aggregation: 'plaintext',
      noiseMultiplier: 0,
      minCohort: 1,
      clipNorm: 1000,
      rollbackDrop: 0.5,
      operatorToken: OPERATOR,
    });
    await seedIfEmpty(store, config);
    const app = buildApp({ store, config, validation: sessions });
    await app.ready();
    closers.push(async () => {
      await app.close();
      await store.close();
    });
    const stats = async () =>
      (
        await app.inject({
          method: 'GET',
          url: '/v1/stats',
          headers: { authorization: `Bearer ${OPERATOR}` },
        })
      ).json<{ hitRate: { versions: { version: number; hr: number }[] } }>();
    const rateOf = async (version: number) =>
      (await stats()).hitRate.versions.find((v) => v.version === version)?.hr;
    await expect.poll(() => rateOf(1)).toBe(1);

    // A round that buries every validation target: its item bias to -100.
    const layout = tensorLayout(dims);
    const wreck = new Float32Array(weights.length);
    const bias = splitFlat(wreck, layout).get('item_bias')!;
    for (const t of targets) bias[t] = -100;
    const post = async (delta: Float32Array) => {
      const { token } = await joinRound(app);
      const baseVersion = (await store.latestVersion())!;
      return postUpdate(
        app,
        updateBody({ token, delta, baseVersion, layoutHash: layoutHash(layout) }),
      );
    };
    const wrecked = await post(wreck);
    expect([wrecked.statusCode, wrecked.json<{ version: number }>().version]).toEqual([202, 2]);
    // Version 2 is evaluated in the background, found wanting, and version 1 published again as 3.
    await expect.poll(() => store.latestVersion(), { timeout: 20_000 }).toBe(3);
    expect(await rateOf(2)).toBeLessThan(0.5);
    expect(bytesToFloat32((await store.getWeightBytes(3))!)).toEqual(weights);
    const manifest = (await store.getManifest(3))!;
    expect(manifest.version).toBe(3);
    expect(await store.counts()).toMatchObject({ rounds: 1 });

    // A harmless round is published and stays.
    const small = new Float32Array(weights.length).map((_, i) => (i % 7 === 0 ? 1e-4 : 0));
    expect((await post(small)).statusCode).toBe(202);
    expect(await store.latestVersion()).toBe(4);
    await expect.poll(() => rateOf(4), { timeout: 20_000 }).toBe(1);
    expect(await store.latestVersion()).toBe(4);
  });
});
