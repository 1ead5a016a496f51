/**
 * The attacks read a visitor's items off an update the worker computes: on a small model, the rows
 * the visitor touched move most, and the projection's change points at where the visitor went;
 * an update that says nothing about the visitor (noise) gives chance.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../../model/session-model.js';
import { manifestFor, type ModelManifest } from '../../protocol/manifest.js';
import { mulberry32, normal } from '../../protocol/prng.js';
import { updateLength, type UpdateLayout } from '../../protocol/update-layout.js';
import { learnLocally } from '../../worker/local-training.js';
import { projectionAttack, rowsAttack, scoreGuess } from './attacks.js';

const dims = { items: 60, embedding: 8, hidden: 8, maxSessionLength: 6 };
let weights: Float32Array;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = SessionModel.random(dims, 5);
  weights = model.toFlat();
  model.dispose();
});

function manifestWith(rows?: number[]): ModelManifest {
  return manifestFor(dims, {
    itemIds: Array.from({ length: dims.items }, (_, i) => (i ? `i${i}` : '')),
    federation: {
      clipNorm: 1e9,
      minCohort: 1,
      maxExamples: 1000,
      ...(rows ? { updateRows: rows } : {}),
    },
  });
}

const visitors = [
  [3, 17, 42, 17, 8],
  [11, 29, 5],
  [50, 2, 33, 21],
  [7, 44, 7, 38],
];

describe('attacks on one upload', () => {
  it("the rows attack names the visitor's items from the whole-model update; noise does not", async () => {
    const layout: UpdateLayout = { kind: 'full' };
    let recall = 0;
    let noise = 0;
    const rng = mulberry32(3);
    for (const items of visitors) {
      const { update, model } = await learnLocally({ manifest: manifestWith(), weights }, [
        { items },
      ]);
      model.dispose();
      const truth = new Set(items);
      recall += scoreGuess(rowsAttack(update.delta, dims, layout), truth).recall;
      const random = Float32Array.from({ length: updateLength(dims, layout) }, () => normal(rng));
      noise += scoreGuess(rowsAttack(random, dims, layout), truth).recall;
    }
    expect(recall / visitors.length).toBeGreaterThan(0.9);
    expect(noise / visitors.length).toBeLessThan(0.3);
  });

  it('reads only the rows the layout carries, and the projection attack needs none', async () => {
    const rows = [3, 8, 11, 21, 29, 33, 40, 41];
    const layout: UpdateLayout = { kind: 'rows', rows };
    let projection = 0;
    let chance = 0;
    for (const items of visitors) {
      const { update, model } = await learnLocally({ manifest: manifestWith(rows), weights }, [
        { items },
      ]);
      model.dispose();
      expect(update.delta.length).toBe(updateLength(dims, layout));
      const ranking = rowsAttack(update.delta, dims, layout);
      expect(new Set(ranking)).toEqual(new Set(rows));
      const truth = new Set(items);
      // The layout's rows the visitor touched come first.
      const visible = rows.filter((r) => truth.has(r));
      expect(new Set(ranking.slice(0, visible.length))).toEqual(new Set(visible));
      projection += scoreGuess(projectionAttack(update.delta, dims, layout, weights), truth).recall;
      chance += truth.size / (dims.items - 1);
    }
    expect(projection / visitors.length).toBeGreaterThan(3 * (chance / visitors.length));
  });
});
