import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatherLayout, updateLength, type UpdateLayout } from '../protocol/update-layout.js';
import { initialWeights } from './init.js';
import { PLAIN_DIMS, SAMPLE_DEVICES, SCORED_DIMS } from './testing.js';
import { localLosses, localUpdates, type LocalUpdateSettings } from './local-update.js';
import { SessionModel } from './session-model.js';

const scored = SCORED_DIMS;
const plain = PLAIN_DIMS;
const devices = SAMPLE_DEVICES;
const settings: LocalUpdateSettings = {
  steps: 3,
  learningRate: 0.05,
  mu: 0.1,
  negatives: 10,
  seed: 7,
};

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

describe('localUpdates', () => {
  for (const [name, dims, mu] of [
    ['cosine + last item + item mean + repeat bonus', scored, 0.1],
    ['dot product, no proximal term', plain, 0],
  ] as const) {
    for (const layout of [{ kind: 'full' }, { kind: 'rows', rows: [2, 8, 21, 29] }] as const) {
      it(`gives each device alone the update it gets batched (${name}, ${layout.kind})`, () => {
        const global = initialWeights(dims, 3);
        const batched = localUpdates(dims, global, devices, layout, { ...settings, mu });
        expect(batched.examples).toEqual([4, 7, 0, 4]);
        devices.forEach((device, b) => {
          const alone = localUpdates(dims, global, [device], layout, { ...settings, mu });
          expect(alone.deltas[0]!.length).toBe(updateLength(dims, layout));
          expect(maxAbsDiff(alone.deltas[0]!, batched.deltas[b]!)).toBeLessThan(1e-5);
        });
        // Training moved the devices that have examples, and only those.
        expect(
          maxAbsDiff(batched.deltas[0]!, new Float32Array(batched.deltas[0]!.length)),
        ).toBeGreaterThan(1e-3);
        expect(batched.deltas[2]!.every((x) => x === 0)).toBe(true);
      });
    }
  }

  it('changes only the rows the layout names, and no row in the dense-only layout', () => {
    const global = initialWeights(scored, 5);
    const full = localUpdates(scored, global, devices, { kind: 'full' }, settings);
    const rows: UpdateLayout = { kind: 'rows', rows: [2, 8] };
    const part = localUpdates(scored, global, devices, rows, settings);
    // Device 0 saw item 2: its row moved; item 8 it never scored (not its item, not a negative).
    const d = scored.embedding;
    const rowOf = (delta: Float32Array, i: number) =>
      delta.subarray(
        delta.length - 2 * (d + 1) + i * (d + 1),
        delta.length - 2 * (d + 1) + (i + 1) * (d + 1),
      );
    expect(rowOf(part.deltas[0]!, 0).some((x) => x !== 0)).toBe(true);
    expect(rowOf(part.deltas[0]!, 1).every((x) => x === 0)).toBe(true);
    // The full update of device 1 touches rows outside [2, 8]; the rows layout drops them.
    const fullRows = gatherLayout(
      full.deltas[1]!,
      scored,
      rows,
      new Float32Array(updateLength(scored, rows)),
    );
    expect(fullRows.length).toBe(part.deltas[1]!.length);
    const dense = localUpdates(scored, global, devices, { kind: 'rows', rows: [] }, settings);
    expect(dense.deltas[0]!.length).toBe(updateLength(scored, { kind: 'rows', rows: [] }));
  });

  it('with one plain gradient step, sends -lr times the gradient of the local loss', () => {
    const dims = plain;
    const global = initialWeights(dims, 4);
    const one = { ...settings, steps: 1, mu: 0, optimizer: 'sgd' as const, learningRate: 0.5 };
    const { deltas } = localUpdates(dims, global, [devices[0]!], { kind: 'full' }, one);
    // Finite differences of the local loss along a few coordinates: delta_i = -lr * dL/dw_i.
    const loss = (w: Float32Array) => localLosses(dims, w, [devices[0]!], one)[0]!;
    const d = dims.embedding;
    let largest = 0;
    for (const i of [2 * d + 1, 5 * d + 3, dims.items * (d + 1) + 7, global.length - 3]) {
      const h = 1e-2;
      const up = global.slice();
      const down = global.slice();
      up[i] = up[i]! + h;
      down[i] = down[i]! - h;
      const gradient = (loss(up) - loss(down)) / (2 * h);
      expect(deltas[0]![i]).toBeCloseTo(-0.5 * gradient, 3);
      largest = Math.max(largest, Math.abs(gradient));
    }
    expect(largest).toBeGreaterThan(1e-3);
  });

  it('starts a device from its own copy, and measures its update from the global weights', () => {
    const global = initialWeights(scored, 2);
    const own = initialWeights(scored, 8);
    const layout = { kind: 'full' } as const;
    // No step: the update is the device's copy minus the global weights, on the rows it holds.
    const still = localUpdates(scored, global, [devices[0]!], layout, { ...settings, steps: 0 }, [
      own,
    ]);
    const d = scored.embedding;
    for (const i of [1 * d, 3 * d + 2, global.length - 5]) {
      expect(still.deltas[0]![i]).toBeCloseTo(own[i]! - global[i]!, 6);
    }
    // Trained from its copy, batched with a device that starts from the global weights.
    const alone = localUpdates(scored, global, [devices[1]!], layout, settings, [own]);
    const both = localUpdates(scored, global, [devices[0]!, devices[1]!], layout, settings, [
      global,
      own,
    ]);
    const fromGlobal = localUpdates(scored, global, [devices[0]!], layout, settings);
    expect(maxAbsDiff(both.deltas[1]!, alone.deltas[0]!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(both.deltas[0]!, fromGlobal.deltas[0]!)).toBeLessThan(1e-5);
  });

  it("lowers each device's own loss", () => {
    const global = initialWeights(scored, 11);
    const before = localLosses(scored, global, devices, settings);
    const { deltas } = localUpdates(
      scored,
      global,
      devices,
      { kind: 'full' },
      {
        ...settings,
        steps: 10,
      },
    );
    devices.forEach((device, b) => {
      if (b === 2) return;
      const moved = Float32Array.from(global, (x, i) => x + deltas[b]![i]!);
      const after = localLosses(scored, moved, [device], settings)[0]!;
      expect(after).toBeLessThan(before[b]! - 0.05);
    });
  });
});

describe('localLosses', () => {
  it("with every item a candidate, is the model's own full-softmax cross-entropy", async () => {
    for (const dims of [scored, plain]) {
      const weights = initialWeights(dims, 9);
      const model = SessionModel.fromFlat(dims, weights);
      const all = { negatives: dims.items, seed: 1 };
      const losses = localLosses(dims, weights, devices, all);
      for (const [b, device] of devices.entries()) {
        let total = 0;
        let weight = 0;
        for (const session of device) {
          for (let t = 0; t + 1 < session.items.length; t++) {
            // Windows of maxSessionLength restart the LSTM, as local training does.
            const start = Math.floor(t / (dims.maxSessionLength - 1)) * (dims.maxSessionLength - 1);
            const prefix = session.items.slice(start, t + 1);
            const scores = model.scoreNext([prefix]);
            const logp = tf.tidy(() => tf.logSoftmax(scores)).dataSync();
            scores.dispose();
            const w = session.weights?.[t + 1] ?? 1;
            total -= w * logp[session.items[t + 1]!]!;
            weight += w;
          }
        }
        expect(losses[b]).toBeCloseTo(weight > 0 ? total / weight : 0, 4);
      }
      model.dispose();
    }
  });
});

describe('localUpdates and tensors', () => {
  it('frees every tensor it makes', () => {
    const before = tf.memory().numTensors;
    for (const optimizer of ['adam', 'sgd'] as const) {
      localUpdates(
        scored,
        initialWeights(scored, 1),
        devices,
        { kind: 'full' },
        {
          ...settings,
          optimizer,
        },
      );
      localLosses(scored, initialWeights(scored, 1), devices, settings);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
