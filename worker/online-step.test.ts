/**
 * The sparse online update: it learns what the sessions show, leaves every item they do not touch
 * exactly as it was, and its proximal term keeps the weights near the global ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { splitFlat, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import { applyLocal, diffLocal } from './local-copy.js';
import { mulberry32 } from '../protocol/prng.js';
import { SessionModel } from '../model/session-model.js';
import { SparseLearner, type SparseStepOptions, type StepResult } from './online-step.js';

const dims = { items: 30, embedding: 8, hidden: 8, maxSessionLength: 6 };
let global: Float32Array;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = SessionModel.random(dims, 7);
  global = model.toFlat();
  model.dispose();
});

const options = (trainLstm: boolean, mu = 0.1): SparseStepOptions => ({
  learningRate: 0.05,
  mu,
  negatives: 10,
  trainLstm,
  random: mulberry32(3),
});

/** Largest absolute change of one named tensor between two flat vectors, per row for tables. */
function changed(
  a: Float32Array,
  b: Float32Array,
  name: 'item_embedding' | 'lstm_kernel' | 'repeat_bonus',
  modelDims: ModelDims = dims,
) {
  const layout = tensorLayout(modelDims);
  const x = splitFlat(a, layout).get(name)!;
  const y = splitFlat(b, layout).get(name)!;
  return x.map((v, i) => Math.abs(v - y[i]!));
}

/**
 * Five updates from the global weights on one repeated transition (3 -> 7): the first and last
 * losses, and the weights by tensor before and after.
 */
async function learnRepeated(modelDims: ModelDims, stepOptions: SparseStepOptions) {
  const learner = new SparseLearner(modelDims, global, global);
  const sessions = [{ items: [3, 7, 3, 7, 3, 7] }];
  const first = await learner.update(sessions, 1, stepOptions);
  let last = first;
  for (let i = 0; i < 4; i++) last = await learner.update(sessions, 3, stepOptions);
  const layout = tensorLayout(modelDims);
  return {
    learner,
    first,
    last,
    before: splitFlat(global, layout),
    after: splitFlat(learner.weights, layout),
  };
}

/**
 * The manifest's ways of scoring: a dot product, cosine with a scale and the last-item skip, and
 * cosine with the decayed mean of the session's items.
 */
const SCORINGS = [
  ['dot product', dims],
  ['cosine + last item', { ...dims, scoring: { normalize: true, scale: 12, lastItem: true } }],
  [
    'cosine + item mean',
    { ...dims, scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 1 } },
  ],
  [
    'cosine + repeat bonus',
    { ...dims, scoring: { normalize: true, scale: 8, lastItem: false, repeat: true } },
  ],
] as const;

describe('SparseLearner', () => {
  for (const [scoring, modelDims] of SCORINGS) {
    for (const lstm of [false, true]) {
      it(`lowers the loss and moves only the session's rows (${scoring}, ${lstm ? 'LSTM trained' : 'LSTM held'})`, async () => {
        // Scoring options change no tensor but the repeat bonus (appended, last in the layout).
        const repeat = (modelDims as ModelDims).scoring?.repeat === true;
        const start = repeat
          ? Float32Array.from([...global, ...new Array<number>(dims.maxSessionLength).fill(0.5)])
          : global;
        const learner = new SparseLearner(modelDims, start, start);
        const sessions = [{ items: [3, 7, 3, 7, 3, 7], weights: [1, 1, 1, 1, 1, 1] }];
        const first = await learner.update(sessions, 1, options(lstm));
        let last = first;
        for (let i = 0; i < 5; i++) last = await learner.update(sessions, 3, options(lstm));
        expect(last).toBeLessThan(first);
        const rows = changed(learner.weights, start, 'item_embedding', modelDims);
        // The repeat bonus is the global model's: held by on-device learning.
        if (repeat)
          expect(Math.max(...changed(learner.weights, start, 'repeat_bonus', modelDims))).toBe(0);
        for (let item = 0; item < dims.items; item++) {
          const moved = Math.max(...rows.subarray(item * 8, item * 8 + 8));
          if (item === 3 || item === 7) expect(moved).toBeGreaterThan(0);
          else expect(moved).toBe(0);
        }
        // The copy the device stores has exactly what the steps wrote, nothing it missed.
        expect(applyLocal(start, learner.localCopy(1))).toEqual(learner.weights);
        expect(learner.localCopy(1).blocks).toEqual(diffLocal(1, start, learner.weights).blocks);
        const kernel = Math.max(...changed(learner.weights, start, 'lstm_kernel', modelDims));
        if (lstm) expect(kernel).toBeGreaterThan(0);
        else expect(kernel).toBe(0);
        // The model the engine would serve ranks the repeated transition higher than before.
        const before = SessionModel.fromFlat(modelDims, start);
        const after = SessionModel.fromFlat(modelDims, learner.weights);
        const score = async (m: SessionModel) => (await m.scoreNext([[3]]).data())[7]!;
        expect(await score(after)).toBeGreaterThan(await score(before));
        before.dispose();
        after.dispose();
      });
    }
  }

  it('stores the whole difference when it starts from an earlier local copy', async () => {
    const earlier = global.slice();
    earlier[5] = global[5]! + 1; // a weight an earlier learner moved
    const learner = new SparseLearner(dims, global, earlier);
    await learner.update([{ items: [2, 9, 4] }], 2, options(false));
    const copy = learner.localCopy(3);
    expect(applyLocal(global, copy)).toEqual(learner.weights);
    expect(copy.blocks).toEqual(diffLocal(3, global, learner.weights).blocks);
  });

  it('holds the projection when asked, and still learns through the rows', async () => {
    const { first, last, before, after, learner } = await learnRepeated(dims, {
      ...options(false),
      trainProjection: false,
    });
    expect(last).toBeLessThan(first);
    expect(after.get('projection_kernel')).toEqual(before.get('projection_kernel'));
    expect(after.get('projection_bias')).toEqual(before.get('projection_bias'));
    expect(Math.max(...changed(learner.weights, global, 'item_embedding'))).toBeGreaterThan(0);
  });

  it('holds every item row when asked, and learns through the projection alone', async () => {
    const cosine = {
      ...dims,
      scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 1 },
    };
    const { first, last, before, after, learner } = await learnRepeated(cosine, {
      ...options(false),
      trainItems: false,
    });
    expect(last).toBeLessThan(first);
    expect(after.get('item_embedding')).toEqual(before.get('item_embedding'));
    expect(after.get('item_bias')).toEqual(before.get('item_bias'));
    expect(after.get('projection_kernel')).not.toEqual(before.get('projection_kernel'));
    // The stored copy is the projection's blocks only, and exactly what the steps wrote.
    expect(applyLocal(global, learner.localCopy(1))).toEqual(learner.weights);
    expect(learner.localCopy(1).blocks).toEqual(diffLocal(1, global, learner.weights).blocks);
    // What was learned reaches the clicked item through the shared projection.
    const score = async (flat: Float32Array) => {
      const model = SessionModel.fromFlat(cosine, flat);
      const scores = await model.scoreNext([[3]]).data();
      model.dispose();
      return scores[7]! - Math.max(...Array.from(scores).filter((_, i) => i !== 7 && i !== 3));
    };
    expect(await score(learner.weights)).toBeGreaterThan(await score(global));
  });
  it('learns nothing from returns to a session item when asked for new targets only', async () => {
    const only = { ...options(false), newTargetsOnly: true };
    const learner = new SparseLearner(dims, global, global);
    expect(await learner.update([{ items: [3, 7, 3, 7] }], 1, only)).not.toBeNaN();
    const returns = new SparseLearner(dims, global, global);
    expect(await returns.update([{ items: [5, 5, 5] }], 2, only)).toBeNaN();
    expect(returns.weights).toEqual(global);
    // Without the option the same clicks are learned from.
    expect(await returns.update([{ items: [5, 5, 5] }], 1, options(false))).not.toBeNaN();
  });

  it('stays nearer the global weights with a stronger proximal pull', async () => {
    const sessions = [{ items: [1, 2, 4, 8, 16] }];
    const distance = async (mu: number) => {
      const learner = new SparseLearner(dims, global, global);
      for (let i = 0; i < 10; i++) await learner.update(sessions, 4, options(false, mu));
      return learner.weights.reduce((sum, w, i) => sum + (w - global[i]!) ** 2, 0);
    };
    expect(await distance(50)).toBeLessThan(await distance(0));
  });

  it('learns when the sessions cover the whole catalogue (no negatives left)', async () => {
    const tiny = { items: 4, embedding: 4, hidden: 4, maxSessionLength: 6 };
    const model = SessionModel.random(tiny, 2);
    const start = model.toFlat();
    model.dispose();
    const learner = new SparseLearner(tiny, start, start);
    const loss = await learner.update([{ items: [1, 2, 3, 1, 2, 3] }], 2, options(false));
    expect(Number.isFinite(loss)).toBe(true);
    expect(learner.weights).not.toEqual(start);
  });

  it('learns nothing from sessions without a next item', async () => {
    const learner = new SparseLearner(dims, global, global);
    expect(await learner.update([{ items: [5] }], 3, options(false))).toBeNaN();
    expect(learner.weights).toEqual(global);
  });
});

describe('the held-LSTM step by hand', () => {
  const ALL = [
    ...SCORINGS,
    [
      'cosine + item mean + repeat bonus, decay 0.7',
      {
        ...dims,
        scoring: { normalize: true, scale: 8, lastItem: false, itemMean: 0.7, repeat: true },
      },
    ],
  ] as const;
  for (const [scoring, modelDims] of ALL) {
    it(`gives autodiff's loss and gradients (${scoring})`, async () => {
      const model = SessionModel.random(modelDims, 9);
      const flat = model.toFlat();
      model.dispose();
      if ('scoring' in modelDims && 'repeat' in modelDims.scoring) {
        // The bonus starts at zero: give every age its own value, as a trained model has.
        flat.set([2, 1, 0.5, 0.25, 0.1, 0], flat.length - dims.maxSessionLength);
      }
      const learner = new SparseLearner(modelDims, flat, flat);
      // Unequal sample weights, a repeated item, sessions of different lengths (padding).
      const sessions = [
        { items: [3, 7, 3, 12, 5], weights: [1, 0.5, 1, 0.2, 1] },
        { items: [9, 4] },
        { items: [21, 22, 23, 9] },
      ];
      const losses: number[] = [];
      for (const correctNegatives of [false, true]) {
        const both = await learner.gradientsBothWays(sessions, {
          ...options(false),
          correctNegatives,
        });
        expect(both).not.toBeNull();
        expectSame(both!);
        losses.push(both![0]!.loss);
      }
      // The correction raises every negative's score (the sample stands for more items than it
      // contains), so the loss grows.
      expect(losses[1]).toBeGreaterThan(losses[0]! + 1e-3);
    });
  }
});

/** The same loss and gradients from autodiff and by hand, to float rounding. */
function expectSame([auto, hand]: StepResult[]): void {
  expect(hand!.loss).toBeCloseTo(auto!.loss, 5);
  const pairs: [string, Float32Array, Float32Array][] = [
    ['rows', auto!.gradients.rows, hand!.gradients.rows],
    ['bias', auto!.gradients.bias, hand!.gradients.bias],
    ['projection kernel', auto!.gradients.dense[0]!, hand!.gradients.dense[0]!],
    ['projection bias', auto!.gradients.dense[1]!, hand!.gradients.dense[1]!],
  ];
  for (const [name, a, b] of pairs) {
    expect(b.length, name).toBe(a.length);
    const scale = Math.max(...Array.from(a, Math.abs));
    expect(scale, name).toBeGreaterThan(0);
    let worst = 0;
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]!))));
    expect(worst / scale, name).toBeLessThan(1e-4);
  }
}
