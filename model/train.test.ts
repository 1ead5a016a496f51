import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DOT_SCORING } from '../protocol/manifest.js';
import { batchesPerEpoch, packBatch, planBatches, toWindows } from './batches.js';
import { mulberry32 } from '../protocol/prng.js';
import { SessionModel } from './session-model.js';
import {
  trainSessions,
  type TrainCheckpoint,
  type TrainOptions,
  type TrainSession,
} from './train.js';

const dims = { items: 10, embedding: 8, hidden: 8, maxSessionLength: 6 };
// A deterministic cycle 1 -> 2 -> ... -> 9 -> 1: easy to learn, so the loss must fall.
const cycle: TrainSession[] = Array.from({ length: 40 }, (_, s) => ({
  items: Array.from({ length: 3 + (s % 5) }, (_, t) => ((s + t) % 9) + 1),
}));

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

describe('trainSessions', () => {
  it('makes the loss fall on a learnable log', async () => {
    const model = SessionModel.random(dims, 1);
    const losses: number[] = [];
    await trainSessions(model, cycle, {
      epochs: 15,
      batchSize: 8,
      learningRate: 0.03,
      seed: 1,
      onStep: ({ loss }) => losses.push(loss),
    });
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(first).toBeGreaterThan(Math.log(9) - 0.3); // ~uniform over 9 items at the start
    expect(last).toBeLessThan(first / 3);
    expect((await model.topK([4, 5], 1)).items).toEqual([6]);
    model.dispose();
  });

  it('gives identical weights for identical seeds', async () => {
    const run = async (seed: number) => {
      const model = SessionModel.random(dims, 7);
      await trainSessions(model, cycle, { epochs: 2, batchSize: 8, learningRate: 0.01, seed });
      const flat = model.toFlat();
      model.dispose();
      return Array.from(flat);
    };
    const a = await run(3);
    expect(await run(3)).toEqual(a);
    expect(await run(4)).not.toEqual(a);
  });

  it('leaks no tensors across steps and frees its optimiser state', async () => {
    const model = SessionModel.random(dims, 2);
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const result = await trainSessions(model, cycle, {
      epochs: 3,
      batchSize: 4,
      learningRate: 0.01,
      seed: 1,
      maxSteps: 12,
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(result.steps).toBe(12);
    // After the first step Adam owns its moment estimates; from then on the count is flat.
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it.each([
    ['the plain model', dims],
    ['a model with the repeat bonus', { ...dims, scoring: { ...DOT_SCORING, repeat: true } }],
  ])('stays at the anchor under a strong proximal pull (%s)', async (_, modelDims) => {
    const model = SessionModel.random(modelDims, 3);
    const anchor = model.toFlat();
    const drift = async (mu: number) => {
      model.setFromFlat(anchor);
      await trainSessions(model, cycle, {
        epochs: 1,
        batchSize: 8,
        learningRate: 0.01,
        seed: 1,
        proximal: { anchor, mu },
      });
      const flat = model.toFlat();
      return Math.sqrt(flat.reduce((s, v, i) => s + (v - anchor[i]!) ** 2, 0));
    };
    const free = await drift(0);
    const pulled = await drift(1000);
    expect(pulled).toBeLessThan(free / 2);
    model.dispose();
  });

  it('ignores zero-weight targets', async () => {
    const model = SessionModel.random(dims, 4);
    const before = model.toFlat();
    const result = await trainSessions(model, [{ items: [1, 2, 3], weights: [1, 0, 0] }], {
      epochs: 1,
      batchSize: 1,
      learningRate: 0.1,
      seed: 1,
    });
    expect(result.lastLoss).toBe(0);
    expect(Array.from(model.toFlat())).toEqual(Array.from(before));
    model.dispose();
  });
});

describe('checkpoints and early stopping', () => {
  const options = (extra: Partial<TrainOptions> = {}): TrainOptions => ({
    epochs: 3,
    batchSize: 8,
    learningRate: 0.02,
    seed: 5,
    loss: 'sampled',
    sampled: { negatives: 4 },
    dropout: 0.2,
    schedule: 'linear',
    ...extra,
  });

  it('resumes an interrupted run to bit-identical weights', async () => {
    const straight = SessionModel.random(dims, 9);
    const total = (await trainSessions(straight, cycle, options())).steps;
    const want = Array.from(straight.toFlat());
    straight.dispose();

    // Interrupt mid-epoch (step 7; an epoch is 6 batches) and at an epoch boundary (step 12).
    for (const stopAt of [7, 12]) {
      let saved: TrainCheckpoint | null = null;
      const first = SessionModel.random(dims, 9);
      await trainSessions(first, cycle, {
        ...options({ maxSteps: stopAt }),
        onCheckpoint: (c) => void (saved = c),
      });
      first.dispose();
      const checkpoint = saved! as TrainCheckpoint;
      expect(checkpoint.step).toBe(stopAt);
      const resumed = SessionModel.fromFlat(dims, checkpoint.weights);
      const result = await trainSessions(resumed, cycle, options({ resume: checkpoint }));
      expect(result.steps).toBe(total);
      expect(Array.from(resumed.toFlat())).toEqual(want);
      resumed.dispose();
    }
  });

  it('stops after `patience` epochs without improvement and keeps the best weights', async () => {
    const model = SessionModel.random(dims, 2);
    const scores = [0.1, 0.5, 0.4, 0.3, 0.9, 0.9];
    let best: number[] = [];
    let calls = 0;
    const result = await trainSessions(model, cycle, {
      ...options({ epochs: 6, patience: 2 }),
      validate: async (m) => {
        if (calls === 1) best = Array.from(m.toFlat());
        return scores[calls++]!;
      },
    });
    expect(result.validation).toEqual([0.1, 0.5, 0.4, 0.3]);
    expect(result.bestEpoch).toBe(1);
    expect(result.stoppedEarly).toBe(true);
    expect(Array.from(model.toFlat())).toEqual(best);
    model.dispose();
  });
});

describe('batching', () => {
  it('splits long sessions into windows that share one item', () => {
    const windows = toWindows([{ items: [1, 2, 3, 4, 5, 6, 7] }, { items: [8] }], 3);
    expect(windows.map((w) => w.items)).toEqual([
      [1, 2, 3],
      [3, 4, 5],
      [5, 6, 7],
    ]);
  });

  it('packs every prefix -> next pair, time-major, right-padded', () => {
    const batch = packBatch(
      toWindows([{ items: [1, 2, 3] }, { items: [4, 5], weights: [1, 0.5] }], 5),
    );
    expect(batch.steps).toBe(2);
    expect(Array.from(batch.inputs)).toEqual([1, 4, 2, 0]);
    expect(Array.from(batch.positions)).toEqual([0, 2, 1]);
    expect(Array.from(batch.targets)).toEqual([2, 3, 5]);
    expect(Array.from(batch.weights)).toEqual([1, 1, 0.5]);
  });

  it('plans every window exactly once, in the predicted number of batches', () => {
    const windows = toWindows(
      Array.from({ length: 1000 }, (_, i) => ({ items: [1, 2, 3].slice(0, 2 + (i % 2)) })),
      5,
    );
    const batches = planBatches(windows, 7, mulberry32(1));
    expect(batches.flat()).toHaveLength(windows.length);
    expect(batches).toHaveLength(batchesPerEpoch(windows.length, 7));
  });
});
