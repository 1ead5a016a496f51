import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { packBatch, toWindows } from './batches.js';
import { ensureGradients } from './gradients.js';
import { fullSoftmaxLoss, PADDING_LOGIT } from './loss.js';
import {
  candidateColumns,
  maskedCrossEntropy,
  NegativeSampler,
  sampledSoftmaxLoss,
} from './sampled-softmax.js';
import { SessionModel } from './session-model.js';
import { batchLoss, chooseOutputLoss, trainSessions, type TrainSession } from './train.js';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
  await ensureGradients();
});

const cycle = (items: number): TrainSession[] =>
  Array.from({ length: 60 }, (_, s) => ({
    items: Array.from({ length: 3 + (s % 5) }, (_, t) => ((s + t) % (items - 1)) + 1),
  }));

describe('NegativeSampler', () => {
  it('is seeded, never draws padding, and follows count^alpha', () => {
    const counts = [0, 99, 0, 9]; // +1 smoothing: weights 100^a, 1, 10^a
    const a = new NegativeSampler(counts, 1, 5);
    const draws = a.sample(20_000);
    expect(Array.from(new NegativeSampler(counts, 1, 5).sample(20_000))).toEqual(Array.from(draws));
    expect(draws.includes(0)).toBe(false);
    const share = draws.filter((x) => x === 1).length / draws.length;
    expect(share).toBeCloseTo(100 / 111, 1);
    // The state restores the stream exactly (checkpoints rely on it).
    const state = a.state;
    const next = Array.from(a.sample(5));
    a.state = state;
    expect(Array.from(a.sample(5))).toEqual(next);
  });
});

describe('candidateColumns', () => {
  it('lists accidental hits of each target (duplicates and sampled copies), never itself', () => {
    const sampler = new NegativeSampler([0, 1, 1, 1, 1], 1, 1);
    const { candidates, hits, correction } = candidateColumns(
      Int32Array.from([2, 3, 2]),
      Int32Array.from([2, 4]),
      sampler,
      true,
    );
    expect(Array.from(candidates)).toEqual([2, 3, 2, 2, 4]);
    expect(hits).toEqual([[2, 3], [], [0, 3]]);
    // logQ: expected count of item 2 among 5 candidates = 3 * 1/4 + 2 * 1/4.
    expect(correction[0]).toBeCloseTo(-Math.log(1.25), 6);
  });
});

describe('maskedCrossEntropy', () => {
  it('matches log-softmax cross-entropy with a dense mask, values and gradients', () => {
    const m = 3;
    const c = 5;
    const scores = tf.tensor2d(
      Array.from({ length: m * c }, (_, k) => Math.sin(k) * 2),
      [m, c],
    );
    const bias = tf.tensor1d([0.1, -0.2, 0.3, 0, 0.5]);
    const correction = Float32Array.from([0.5, -0.5, 0, 1, -1]);
    const hits = [[2], [], [0, 4]];
    const dense = new Float32Array(m * c);
    hits.forEach((row, i) => row.forEach((j) => (dense[i * c + j] = PADDING_LOGIT)));
    const weights = tf.tensor1d([1, 0.5, 2]);
    const reference = (s: tf.Tensor, b: tf.Tensor) => {
      const logits = tf.add(tf.add(s, tf.add(b, correction)), tf.tensor2d(dense, [m, c]));
      const picked = tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.range(0, m, 1, 'int32'), c));
      return tf.sum(tf.mul(tf.neg(tf.sum(picked, 1)), weights));
    };
    const ours = (s: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(maskedCrossEntropy(s as tf.Tensor2D, b as tf.Tensor1D, correction, hits), weights),
      );
    const run = (f: typeof ours) => {
      const { value, grads } = tf.valueAndGrads(f)([scores, bias]);
      return { value: value.dataSync()[0]!, grads: grads.map((g) => Array.from(g.dataSync())) };
    };
    const want = run(reference);
    const got = run(ours);
    expect(got.value).toBeCloseTo(want.value, 4);
    got.grads.forEach((g, i) => g.forEach((x, k) => expect(x).toBeCloseTo(want.grads[i]![k]!, 5)));
  });
});

describe('sampled softmax loss', () => {
  const dims = { items: 40, embedding: 8, hidden: 8, maxSessionLength: 6 };

  it('has a gradient that points the same way as the full softmax gradient', () => {
    const model = SessionModel.random(dims, 3);
    const sessions = cycle(dims.items);
    const batch = packBatch(toWindows(sessions.slice(0, 16), dims.maxSessionLength));
    const mask = new Float32Array(dims.items);
    mask[0] = PADDING_LOGIT;
    const paddingMask = tf.tensor1d(mask);
    const gradient = (loss: typeof fullSoftmaxLoss) => {
      const { grads } = tf.variableGrads(
        () => batchLoss(model, batch, paddingMask, loss),
        model.variables,
      );
      const flat = model.variables.flatMap((v) =>
        Array.from(grads[v.name]?.dataSync() ?? new Float32Array(v.size)),
      );
      Object.values(grads).forEach((g) => g.dispose());
      return flat;
    };
    const full = gradient(fullSoftmaxLoss);
    const sampler = new NegativeSampler(new Array(dims.items).fill(1), 0.75, 9);
    const sampled = gradient(
      sampledSoftmaxLoss(sampler, { negatives: 16, alpha: 0.75, logQ: true }),
    );
    const dot = full.reduce((s, g, k) => s + g * sampled[k]!, 0);
    const norm = (x: number[]) => Math.sqrt(x.reduce((s, g) => s + g * g, 0));
    const cosine = dot / (norm(full) * norm(sampled));
    expect(cosine).toBeGreaterThan(0.5);
    paddingMask.dispose();
    model.dispose();
  });

  it('makes the loss fall in training and learns the cycle', async () => {
    const model = SessionModel.random(dims, 1);
    const losses: number[] = [];
    await trainSessions(model, cycle(dims.items), {
      epochs: 12,
      batchSize: 8,
      learningRate: 0.05,
      seed: 1,
      loss: 'sampled',
      sampled: { negatives: 8 },
      onStep: ({ loss }) => losses.push(loss),
    });
    const mean = (x: number[]) => x.reduce((a, b) => a + b) / x.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) / 3);
    expect((await model.topK([4, 5], 1)).items).toEqual([6]);
    model.dispose();
  });

  it('is chosen automatically only for large catalogues', () => {
    const sessions = [{ items: [1, 2] }];
    expect(chooseOutputLoss(1000, sessions, { seed: 1 }).sampler).toBeNull();
    expect(chooseOutputLoss(30_000, sessions, { seed: 1 }).sampler).not.toBeNull();
    expect(chooseOutputLoss(1000, sessions, { seed: 1, loss: 'sampled' }).sampler).not.toBeNull();
    expect(chooseOutputLoss(30_000, sessions, { seed: 1, loss: 'full' }).sampler).toBeNull();
  });
});
