import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelDims } from '../protocol/manifest.js';
import { packBatch, toWindows } from './batches.js';
import { ensureGradients } from './gradients.js';
import { fullSoftmaxLoss, PADDING_LOGIT } from './loss.js';
import { referenceScores } from './reference-forward.js';
import { NegativeSampler, sampledSoftmaxLoss } from './sampled-softmax.js';
import { SessionModel } from './session-model.js';
import { batchLoss } from './train.js';

const base = { items: 9, embedding: 4, hidden: 5, maxSessionLength: 5 };
const cosine: ModelDims = { ...base, scoring: { normalize: true, scale: 6, lastItem: true } };
/** Cosine scoring with the repeat bonus for the session's own items (an extra tensor). */
const repeat: ModelDims = {
  ...base,
  scoring: { normalize: true, scale: 6, lastItem: false, itemMean: 1, repeat: true },
};
/** Cosine scoring with the decayed mean of the session's items instead of the last-item skip. */
const itemMean: ModelDims = {
  ...base,
  scoring: { normalize: true, scale: 6, lastItem: false, itemMean: 0.7 },
};
const sessions = [{ items: [1, 4, 2, 7] }, { items: [3, 3, 8] }, { items: [5, 6] }];

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
  await ensureGradients();
});

/** Weights with random biases too, so every tensor influences the scores. */
function weights(dims: ModelDims, seed: number): Float32Array {
  const model = SessionModel.random(dims, seed);
  const flat = model.toFlat().map((v, i) => v + 0.2 * Math.sin(3 * i + seed));
  model.dispose();
  flat.fill(0, 0, dims.embedding); // the padding row stays zero, as trained models have it
  return flat;
}

describe('cosine scoring with a last-item skip', () => {
  it('matches the float64 reference forward pass', async () => {
    for (const dims of [
      cosine,
      { ...base, scoring: { normalize: true, scale: 3, lastItem: false } },
      itemMean,
      { ...base, scoring: { normalize: false, scale: 1, lastItem: true, itemMean: 1 } },
      repeat,
    ]) {
      const flat = weights(dims, 3);
      const model = SessionModel.fromFlat(dims, flat);
      const list = [[2], [1, 2, 3, 4, 5, 6, 7], [4, 2, 4, 4]];
      const rows = (await model.scoreNext(list).array()) as number[][];
      list.forEach((session, b) => {
        const expected = referenceScores(dims, flat, session);
        for (let i = 1; i < dims.items; i++) expect(rows[b]![i]).toBeCloseTo(expected[i]!, 4);
      });
      model.dispose();
    }
  });

  it('changes the scores (the options are not ignored) and keeps scores within scale + bias', async () => {
    const flat = weights(cosine, 4);
    const dot = referenceScores(base, flat, [1, 2]);
    const cos = referenceScores(cosine, flat, [1, 2]);
    expect(Math.abs(dot[3]! - cos[3]!)).toBeGreaterThan(1e-3);
    const noSkip = { ...base, scoring: { normalize: true, scale: 6, lastItem: false } };
    const mean = referenceScores(itemMean, flat, [1, 2]);
    expect(Math.abs(mean[3]! - referenceScores(noSkip, flat, [1, 2])[3]!)).toBeGreaterThan(1e-3);
    const bias = flat.subarray(
      cosine.items * cosine.embedding,
      cosine.items * (cosine.embedding + 1),
    );
    for (let i = 1; i < cosine.items; i++) {
      expect(Math.abs(cos[i]! - bias[i]!)).toBeLessThanOrEqual(6 + 1e-9);
    }
  });

  it.each([
    ['last-item skip', cosine],
    ['decayed item mean', itemMean],
    ['repeat bonus', repeat],
  ])(
    'has the gradient of a central finite difference, full and sampled softmax (%s)',
    (_, dims) => {
      const flat = weights(dims, 5);
      const model = SessionModel.fromFlat(dims, flat);
      const batch = packBatch(toWindows(sessions, cosine.maxSessionLength));
      const mask = new Float32Array(cosine.items);
      mask[0] = PADDING_LOGIT;
      const paddingMask = tf.tensor1d(mask);
      const losses = [
        fullSoftmaxLoss,
        // A fixed sampler seed per evaluation, so the finite difference sees the same negatives.
        () =>
          sampledSoftmaxLoss(new NegativeSampler(new Array(9).fill(1), 0.5, 7), {
            negatives: 6,
            alpha: 0.5,
            logQ: true,
          }),
      ];
      for (const [k, make] of losses.entries()) {
        const lossAt = (values: Float32Array): number => {
          model.setFromFlat(values);
          const loss = k === 0 ? fullSoftmaxLoss : (make as () => typeof fullSoftmaxLoss)();
          return tf.tidy(() => batchLoss(model, batch, paddingMask, loss).dataSync()[0]!);
        };
        model.setFromFlat(flat);
        const loss = k === 0 ? fullSoftmaxLoss : (make as () => typeof fullSoftmaxLoss)();
        const { grads } = tf.variableGrads(
          () => batchLoss(model, batch, paddingMask, loss),
          model.variables,
        );
        const analytic = new Float32Array(flat.length);
        let offset = 0;
        for (const v of model.variables) {
          const g = grads[v.name]!.dataSync();
          analytic.set(g, offset);
          offset += g.length;
        }
        Object.values(grads).forEach((g) => g.dispose());
        // Every 7th parameter (all tensors are hit) and the last few (the repeat bonus, when the
        // model has one), central differences in float32.
        const eps = 3e-3;
        let checked = 0;
        const probed = Array.from({ length: flat.length }, (_, i) => i).filter(
          (i) => i >= dims.embedding && (i % 7 === 0 || i >= flat.length - dims.maxSessionLength),
        );
        for (const i of probed) {
          const plus = flat.slice();
          plus[i]! += eps;
          const minus = flat.slice();
          minus[i]! -= eps;
          const numeric = (lossAt(plus) - lossAt(minus)) / (2 * eps);
          expect(Math.abs(analytic[i]! - numeric)).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
          checked++;
        }
        expect(checked).toBeGreaterThan(20);
      }
      paddingMask.dispose();
      model.dispose();
    },
  );
});
