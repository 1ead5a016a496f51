/**
 * Local learning before an upload trains under the settings it is given, and only those.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { manifestFor } from '../protocol/manifest.js';
import { SessionModel } from '../model/session-model.js';
import { learnLocally, localTrainingSettings } from './local-training.js';
import { clipForUpload, encodeDeviceUpdate } from './federated-client.js';
import { l2Norm } from '../protocol/clip.js';
import {
  DTYPE_FLOAT16,
  DTYPE_INT2,
  DTYPE_INT4,
  UPDATE_HEADER_BYTES,
  decodeUpdate,
} from '../protocol/update-format.js';
import { quantizedBytes } from '../protocol/update-quant.js';
import type { GlobalModel } from './model-source.js';
import { gatherLayout, scatterLayout, updateLength } from '../protocol/update-layout.js';
import { roundSketch, sketchLength, sketchUpdate } from '../protocol/item-sketch.js';

const dims = { items: 20, embedding: 4, hidden: 4, maxSessionLength: 5 };
let global: GlobalModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  const model = SessionModel.random(dims, 3);
  const weights = model.toFlat();
  model.dispose();
  const manifest = manifestFor(dims, {
    itemIds: Array.from({ length: dims.items }, (_, i) => (i === 0 ? '' : `item-${i}`)),
    popular: [1, 2, 3],
    federation: { clipNorm: 1, minCohort: 1, maxExamples: 1000 },
  });
  global = { manifest, weights };
});

const sessions = [{ items: [1, 2, 3, 4] }, { items: [5, 6, 5, 7] }];

describe('learnLocally', () => {
  it('trains under the settings it is passed', async () => {
    const trained = await learnLocally(global, sessions, undefined, localTrainingSettings());
    expect(trained.update.examples).toBeGreaterThan(0);
    expect(trained.weights).not.toEqual(global.weights);
    trained.model.dispose();
    // No epoch: nothing is learned, and the delta is zero.
    const none = await learnLocally(
      global,
      sessions,
      undefined,
      localTrainingSettings({ epochs: 0 }),
    );
    expect(none.update.examples).toBe(0);
    expect(none.weights).toEqual(global.weights);
    expect(Math.max(...none.update.delta.map(Math.abs))).toBe(0);
    none.model.dispose();
  });

  it('sends the layout the manifest names, and adopts only its coordinates', async () => {
    const rows = [2, 5, 11];
    const layout = { kind: 'rows', rows } as const;
    const named = {
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, updateRows: rows, clipNorm: 1e9 },
      },
    };
    const trained = await learnLocally(named, sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    expect(trained.update.delta.length).toBe(updateLength(dims, layout));
    // Items 1-7 were seen, but rows outside the layout (1, 3, 4, 6, 7...) never move.
    const moved = trained.weights.map((w, i) => w - global.weights[i]!);
    const inLayout = new Float32Array(trained.weights.length);
    scatterLayout(new Float32Array(updateLength(dims, layout)).fill(1), dims, layout, inLayout);
    let outside = 0;
    moved.forEach((d, i) => {
      if (inLayout[i] === 0 && d !== 0) outside++;
    });
    expect(outside).toBe(0);
    const compact = gatherLayout(moved, dims, layout, new Float32Array(updateLength(dims, layout)));
    // What it adopted is what it sends (unclipped here: S is out of reach).
    compact.forEach((d, i) => expect(trained.update.delta[i]).toBeCloseTo(d, 5));
    expect(Math.max(...compact.map(Math.abs))).toBeGreaterThan(0);
  });

  it('trains the whole model under an item sketch, and sends the sketch of what it adopted', async () => {
    const sketch = roundSketch(3, 7);
    const sketched = (clipNorm: number) => ({
      ...global,
      manifest: {
        ...global.manifest,
        federation: { ...global.manifest.federation, itemSketch: sketch, clipNorm },
      },
    });
    const trained = await learnLocally(sketched(1e9), sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    expect(trained.update.delta.length).toBe(sketchLength(dims, sketch));
    expect(trained.update.delta.length).toBeLessThan(global.weights.length);
    const moved = trained.weights.map((w, i) => w - global.weights[i]!);
    // Every item it saw moved (1-7): a sketch names no rows.
    for (const item of [1, 2, 3, 4, 5, 6, 7]) {
      const row = moved.subarray(item * dims.embedding, (item + 1) * dims.embedding);
      expect(l2Norm(row), `item ${item}`).toBeGreaterThan(0);
    }
    const expected = sketchUpdate(
      moved,
      dims,
      sketch,
      new Float32Array(sketchLength(dims, sketch)),
    );
    expected.forEach((d, i) => expect(trained.update.delta[i]).toBeCloseTo(d, 5));
    // Clipped as a whole to S: the sketch is what leaves the device.
    const clipped = await learnLocally(
      sketched(0.01),
      sessions,
      undefined,
      localTrainingSettings(),
    );
    clipped.model.dispose();
    expect(l2Norm(clipped.update.delta)).toBeLessThanOrEqual(0.01);
    expect(l2Norm(clipped.update.delta)).toBeGreaterThan(0.0099);
  });

  it("encodes the upload in the manifest's dtype, rounding with the platform's CSPRNG", async () => {
    const trained = await learnLocally(global, sessions, undefined, localTrainingSettings());
    trained.model.dispose();
    const delta = clipForUpload(trained.update.delta, 1);
    const token = new Uint8Array(16);
    const half = encodeDeviceUpdate(global.manifest, delta, 3, token);
    expect(half[5]).toBe(DTYPE_FLOAT16);
    for (const [form, dtype, smaller] of [
      ['int4', DTYPE_INT4, 3],
      ['int2', DTYPE_INT2, 5],
    ] as const) {
      const named = {
        ...global.manifest,
        federation: { ...global.manifest.federation, updateDtype: form },
      };
      const a = encodeDeviceUpdate(named, delta, 3, token);
      const b = encodeDeviceUpdate(named, delta, 3, token);
      expect(a[5]).toBe(dtype);
      expect(a.length).toBe(UPDATE_HEADER_BYTES + quantizedBytes(form, delta.length));
      expect(a.length - UPDATE_HEADER_BYTES).toBeLessThan(
        (half.length - UPDATE_HEADER_BYTES) / smaller,
      );
      // Two draws of the rounding differ, and each decodes within S.
      expect(Array.from(a)).not.toEqual(Array.from(b));
      expect(l2Norm(decodeUpdate(a, delta.length).delta)).toBeLessThanOrEqual(1);
    }
  });
});
