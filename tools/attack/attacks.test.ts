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
import {
  decodeFixedPointSum,
  encodeFixedPoint,
  runRoundInProcess,
} from '../../protocol/secagg/index.js';
import { seededRandomBytes, testParams } from '../../protocol/secagg/testing.js';
import { clipForUpload } from '../../worker/federated-client.js';
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

describe('attacks on what a secure aggregation server receives', () => {
  it('find the items in the plaintext updates, and no more than popularity does in the masked ones', async () => {
    // 120 visitors of 3 to 5 items each, in one SecAgg+ round of the real protocol code.
    const rng = mulberry32(11);
    const sessions = Array.from({ length: 120 }, () =>
      Array.from({ length: 3 + Math.floor(rng() * 3) }, () => 1 + Math.floor(rng() * 59)),
    );
    const manifest = manifestWith();
    const layout: UpdateLayout = { kind: 'full' };
    const clip = 1;
    const n = sessions.length;
    const deltas: Float32Array[] = [];
    for (const items of sessions) {
      const { update, model } = await learnLocally({ manifest, weights }, [{ items }]);
      model.dispose();
      deltas.push(clipForUpload(update.delta, clip));
    }
    const random = seededRandomBytes(4);
    const params = testParams(n, { length: deltas[0]!.length, neighbours: 8 });
    const inputs = new Map(
      params.devices.map((id, i) => [id, encodeFixedPoint(deltas[i]!, clip, n, 32, { random })]),
    );
    const { transcript, result } = await runRoundInProcess({ params, inputs, random });
    expect(result.survivors).toHaveLength(n);
    // Popularity among the other visitors: the guess that needs nothing from this one.
    const popularExcept = (i: number) => {
      const counts = new Float64Array(dims.items);
      sessions.forEach((items, j) => {
        if (j !== i) for (const item of new Set(items)) counts[item]! += 1;
      });
      return Array.from({ length: dims.items - 1 }, (_, r) => r + 1).sort(
        (a, b) => counts[b]! - counts[a]! || a - b,
      );
    };
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const recall = (guess: (i: number) => readonly number[]) =>
      mean(sessions.map((items, i) => scoreGuess(guess(i), new Set(items)).recall));
    // What the server receives from device i: its masked input, read as the server would a sum.
    const received = (i: number) =>
      Float32Array.from(
        decodeFixedPointSum(
          transcript.masked.find((m) => m.from === params.devices[i])!.masked,
          clip,
          n,
        ),
      );
    const plaintext = recall((i) => rowsAttack(deltas[i]!, dims, layout));
    const popularity = recall(popularExcept);
    const maskedRows = recall((i) => rowsAttack(received(i), dims, layout));
    const maskedProjection = recall((i) => projectionAttack(received(i), dims, layout, weights));
    // Plaintext: the attack works, visibly; masked: within 0.05 of guessing by popularity.
    expect(plaintext).toBeGreaterThan(0.9);
    expect(Math.abs(maskedRows - popularity)).toBeLessThan(0.05);
    expect(Math.abs(maskedProjection - popularity)).toBeLessThan(0.05);
  }, 60_000);
});
