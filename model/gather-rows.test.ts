import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { packBatch, toWindows } from './batches.js';
import { gatherRows } from './gather-rows.js';
import { PADDING_LOGIT } from './loss.js';
import { SessionModel } from './session-model.js';
import { batchLoss } from './train.js';

const dims = { items: 7, embedding: 3, hidden: 4, maxSessionLength: 5 };

describe.each(['cpu', 'wasm'] as const)('gatherRows gradient on %s', (backend) => {
  it('scatters rows and sums duplicate indices', async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    const table = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const idx = tf.tensor1d([2, 0, 2, 3], 'int32');
    const weights = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, idx), weights)))(table);
    // Row 2 was gathered twice: its gradient is the sum of both upstream rows.
    expect(Array.from(await grad.data())).toEqual([3, 4, 0, 0, 6, 8, 7, 8]);
    expect(Array.from(await gatherRows(table, idx).data())).toEqual([5, 6, 1, 2, 5, 6, 7, 8]);
    tf.dispose([table, idx, weights, grad]);
  });

  it('matches central differences through the whole model loss', async () => {
    expect(await tf.setBackend(backend)).toBe(true);
    const model = SessionModel.random(dims, 3);
    const batch = packBatch(
      toWindows([{ items: [1, 2, 3, 2] }, { items: [4, 4, 6] }, { items: [5, 1] }], 5),
    );
    const maskValues = new Float32Array(dims.items);
    maskValues[0] = PADDING_LOGIT;
    const mask = tf.tensor1d(maskValues);
    const loss = () => batchLoss(model, batch, mask, undefined);
    const embedding = model.variables[0]!;
    const { grads } = tf.variableGrads(loss, [embedding]);
    const analytic = (await grads[embedding.name]!.data()) as Float32Array;
    tf.dispose(grads);

    const base = model.toFlat();
    const eps = 1e-2;
    const lossAt = (flat: Float32Array) => {
      model.setFromFlat(flat);
      return tf.tidy(() => loss().dataSync()[0]!);
    };
    // Every entry of the item table: the input gather and the tied output layer both feed it.
    for (let i = 0; i < dims.items * dims.embedding; i++) {
      const plus = base.slice();
      plus[i]! += eps;
      const minus = base.slice();
      minus[i]! -= eps;
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * eps);
      // float32 losses of ~2 with eps 1e-2: rounding noise ~1e-5, truncation ~1e-4.
      expect(Math.abs(analytic[i]! - numeric)).toBeLessThan(2e-3);
    }
    // The padding row is never an input to a real position nor a reachable target.
    expect(Array.from(analytic.subarray(0, dims.embedding))).toEqual([0, 0, 0]);
    mask.dispose();
    model.dispose();
  });
});
