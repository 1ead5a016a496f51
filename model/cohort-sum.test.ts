import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipL2InPlace, l2Norm } from '../protocol/clip.js';
import type { ModelDims } from '../protocol/manifest.js';
import type { ModelLayout } from '../protocol/update-layout.js';
import { roundSketch, sketchLength, sketchUpdate } from '../protocol/item-sketch.js';
import type { ItemSketch } from '../protocol/manifest.js';
import { clippedUpdateSum } from './cohort-sum.js';
import { mulberry32 } from '../protocol/prng.js';
import { initialWeights } from './init.js';
import { PLAIN_DIMS, SAMPLE_DEVICES, SCORED_DIMS } from './testing.js';
import { localUpdates, type LocalUpdateSettings } from './local-update.js';

const scored = SCORED_DIMS;
const plain = PLAIN_DIMS;
// One more device, sharing items with others.
const devices = [...SAMPLE_DEVICES, [{ items: [2, 21, 8] }]];
const settings: LocalUpdateSettings = {
  steps: 1,
  optimizer: 'sgd',
  learningRate: 0.5,
  mu: 0,
  negatives: 10,
  seed: 7,
};

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

/**
 * Start weights far from the initial ones (uniform noise of +-0.5 added), so that every tensor,
 * the recurrent one included, carries a sizeable share of each device's gradient.
 */
function weightsOf(dims: ModelDims): Float32Array {
  const rng = mulberry32(11);
  return initialWeights(dims, 3).map((v) => v + (rng() - 0.5));
}

/** The sum the devices would send one by one: localUpdates, each clipped as the device clips. */
function perDeviceSum(
  dims: ModelDims,
  layout: ModelLayout,
  clip: number,
  s: LocalUpdateSettings = settings,
) {
  const { deltas, examples } = localUpdates(dims, weightsOf(dims), devices, layout, s);
  const norms = deltas.map((delta) => l2Norm(delta));
  const sum = new Float32Array(deltas[0]!.length);
  for (const delta of deltas) {
    clipL2InPlace(delta, clip);
    delta.forEach((v, i) => (sum[i] = sum[i]! + v));
  }
  return { sum, norms, examples };
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(diff) / l2Norm(b);
}

describe('clippedUpdateSum', () => {
  for (const [name, dims, alpha] of [
    ['cosine + last item + item mean + repeat bonus', scored, 0],
    ['dot product', plain, 0],
    // Negatives drawn by the global model's bias, with their logQ correction in the logits.
    ['cosine and the rest, popular negatives', scored, 2],
  ] as const) {
    const s = { ...settings, negativeAlpha: alpha };
    for (const layout of [{ kind: 'full' }, { kind: 'rows', rows: [2, 8, 21, 29] }] as const) {
      it(`equals the sum of the devices' clipped updates (${name}, ${layout.kind})`, () => {
        const unclipped = perDeviceSum(dims, layout, 1e9, s);
        // A bound between the smallest and the largest norm: some devices clipped, some not.
        const nonzero = unclipped.norms.filter((x) => x > 0).sort((a, b) => a - b);
        const clip = (nonzero[0]! + nonzero[nonzero.length - 1]!) / 2;
        for (const bound of [1e9, clip]) {
          const expected = perDeviceSum(dims, layout, bound, s);
          const summed = clippedUpdateSum(dims, weightsOf(dims), devices, layout, s, bound);
          expect(summed.examples).toEqual(expected.examples);
          summed.norms.forEach((norm, b) => {
            const want = expected.norms[b]!;
            expect(Math.abs(norm - want)).toBeLessThanOrEqual(1e-5 * want);
          });
          expect(relativeError(summed.sum, expected.sum)).toBeLessThan(1e-5);
        }
        // The clipped sum differs from the unclipped one: clipping was exercised.
        const clipped = perDeviceSum(dims, layout, clip, s).sum;
        expect(relativeError(clipped, unclipped.sum)).toBeGreaterThan(1e-2);
      });
    }
  }

  /** What the devices would send in `sketch`: each update's sketch, clipped to `clip`, summed. */
  function perDeviceSketchSum(dims: ModelDims, sketch: ItemSketch, clip: number) {
    const s = { ...settings, negativeAlpha: 2 };
    const { deltas } = localUpdates(dims, weightsOf(dims), devices, { kind: 'full' }, s);
    const length = sketchLength(dims, sketch);
    const sum = new Float32Array(length);
    const norms: number[] = [];
    const fullNorms: number[] = [];
    for (const delta of deltas) {
      fullNorms.push(l2Norm(delta));
      const sent = sketchUpdate(delta, dims, sketch, new Float32Array(length));
      norms.push(l2Norm(sent));
      clipL2InPlace(sent, clip);
      sent.forEach((v, i) => (sum[i] = sum[i]! + v));
    }
    return { sum, norms, fullNorms };
  }

  // Few buckets: each device's own rows and negatives share buckets, in one table or in two; with
  // a dense stride, a device clips by the dense values its sketch carries, not by all of them.
  for (const [buckets, depth, stride] of [
    [5, 1, 1],
    [4, 2, 1],
    [5, 1, 3],
    [4, 2, 10],
  ] as const) {
    for (const [name, dims] of [
      ['cosine and the rest', scored],
      ['dot product', plain],
    ] as const) {
      it(`clips each device by its sketch's norm (${name}, ${buckets} buckets x ${depth}, dense stride ${stride})`, () => {
        const sketch = roundSketch(buckets, 3, depth, stride);
        const s = { ...settings, negativeAlpha: 2 };
        const unclipped = perDeviceSketchSum(dims, sketch, 1e9);
        // Collisions move the norms: the sketch's is not the update's.
        const moved = unclipped.norms.some(
          (norm, b) => Math.abs(norm - unclipped.fullNorms[b]!) > 1e-2 * unclipped.fullNorms[b]!,
        );
        expect(moved).toBe(true);
        const nonzero = unclipped.norms.filter((x) => x > 0).sort((a, b) => a - b);
        const clip = (nonzero[0]! + nonzero[nonzero.length - 1]!) / 2;
        for (const bound of [1e9, clip]) {
          const expected = perDeviceSketchSum(dims, sketch, bound);
          const out = clippedUpdateSum(
            dims,
            weightsOf(dims),
            devices,
            { kind: 'full' },
            s,
            bound,
            sketch,
          );
          // Where no device could reach S the sketch's norm is not computed: the update's is
          // reported, and nothing is clipped either way.
          const wanted = bound === clip ? expected.norms : expected.fullNorms;
          out.norms.forEach((norm, b) => {
            const want = wanted[b]!;
            expect(Math.abs(norm - want)).toBeLessThanOrEqual(1e-5 * want + 1e-7);
          });
          const summed = sketchUpdate(out.sum, dims, sketch, new Float32Array(expected.sum.length));
          expect(relativeError(summed, expected.sum)).toBeLessThan(1e-5);
        }
        const clipped = perDeviceSketchSum(dims, sketch, clip).sum;
        expect(relativeError(clipped, unclipped.sum)).toBeGreaterThan(1e-2);
      });
    }
  }

  it('refuses a sketch with a layout of named rows', () => {
    const global = initialWeights(plain, 3);
    expect(() =>
      clippedUpdateSum(
        plain,
        global,
        devices,
        { kind: 'rows', rows: [2] },
        settings,
        1,
        roundSketch(5, 1),
      ),
    ).toThrow(/full layout/);
  });

  it('refuses anything but one plain step', () => {
    const global = initialWeights(plain, 3);
    for (const other of [{ steps: 2 }, { optimizer: 'adam' as const }]) {
      expect(() =>
        clippedUpdateSum(plain, global, devices, { kind: 'full' }, { ...settings, ...other }, 1),
      ).toThrow(/one plain gradient step/);
    }
  });
});
