import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { lstmStates } from './forward.js';
import { gatherRows } from './gather-rows.js';
import { lstmStatesAt } from './lstm-cells.js';
import { SessionModel } from './session-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('lstmStatesAt', () => {
  it('equals lstmStates at the asked rows, padding included', async () => {
    const dims = { items: 40, embedding: 6, hidden: 5, maxSessionLength: 8 };
    const model = SessionModel.random(dims, 21);
    const p = model.params;
    // Three sessions of 4, 2 and 3 items, time-major, right-padded with 0.
    const steps = 4;
    const batch = 3;
    const inputs = Int32Array.from([3, 9, 12, 17, 30, 4, 5, 0, 22, 8, 0, 0]);
    const positions = Int32Array.from([0, 1, 2, 3, 4, 5, 7, 8, 9, 11]);
    const expected = tf.tidy(() =>
      gatherRows(
        lstmStates(p, tf.tensor1d(inputs, 'int32'), steps, batch),
        tf.tensor1d(positions, 'int32'),
      ),
    );
    const embedded = tf.tidy(() => gatherRows(p.itemEmbedding, tf.tensor1d(inputs, 'int32')));
    const actual = await lstmStatesAt(
      { kernel: p.lstmKernel, recurrent: p.lstmRecurrent, bias: p.lstmBias.dataSync() },
      embedded.dataSync() as Float32Array,
      steps,
      batch,
      positions,
    );
    const want = expected.dataSync();
    expect(actual.length).toBe(want.length);
    let worst = 0;
    actual.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[i]!))));
    expect(worst).toBeLessThan(1e-6);
    // The states really differ from row to row (a constant answer would pass nothing above).
    expect(new Set(Array.from(actual, (v) => v.toFixed(4))).size).toBeGreaterThan(20);
    [expected, embedded].forEach((t) => t.dispose());
    model.dispose();
  });
});
