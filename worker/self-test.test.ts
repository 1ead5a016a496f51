import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../model/session-model.js';
import { selfTest } from './self-test.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('backend self-test', () => {
  it('finds a correct backend correct on the fallback model', async () => {
    expect(await selfTest()).toBeLessThan(1e-5);
  });

  it('runs on the model that will be served, at its real size', async () => {
    const dims = { items: 3001, embedding: 32, hidden: 48, maxSessionLength: 20 };
    const model = SessionModel.random(dims, 7);
    const weights = model.toFlat();
    model.dispose();
    expect(await selfTest({ dims, weights })).toBeLessThan(1e-5);
  });

  it('never passes a model whose output is NaN', async () => {
    const dims = { items: 50, embedding: 4, hidden: 4, maxSessionLength: 5 };
    const model = SessionModel.random(dims, 1);
    const weights = model.toFlat();
    model.dispose();
    weights[dims.items * dims.embedding + 3] = NaN; // an item bias
    expect(await selfTest({ dims, weights })).toBe(Infinity);
  });
});
