import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initialWeights } from '../../model/init.js';
import { SCORED_DIMS } from '../../model/testing.js';
import { l2Norm } from '../../protocol/clip.js';
import { roundSketch, sketchUpdate } from '../../protocol/item-sketch.js';
import { mulberry32 } from '../../protocol/prng.js';
import { runDeviceJob, type DeviceJob } from './device-worker.js';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

const dims = SCORED_DIMS;
const devices = [
  [1, 2, 3, 2, 4],
  [7, 8, 9, 10, 11, 12],
  [2, 21, 8],
  [5, 6, 5, 14, 15],
  [16, 17, 18, 19],
  [3, 22, 23, 9],
];

/** A round's job on a sketch of few buckets: each device's rows and negatives share them. */
function job(clipNorm: number, summed: boolean): DeviceJob {
  const rng = mulberry32(5);
  return {
    id: 0,
    share: 0,
    dims,
    version: 4,
    clipNorm,
    maxExamples: 1000,
    updateDtype: 'float16',
    roundingSeed: 1,
    weights: initialWeights(dims, 3).map((v) => v + (rng() - 0.5)),
    devices,
    layout: { kind: 'sketch', sketch: roundSketch(5, 4) },
    local: {
      steps: 1,
      optimizer: 'sgd',
      learningRate: 0.5,
      mu: 0,
      negatives: 10,
      negativeAlpha: 2,
      seed: 7,
    },
    batch: 4,
    summed,
  };
}

/** The sum of the bodies the devices sent, as the server decodes them (sketch coordinates). */
function sumOfBodies(clipNorm: number): { sum: Float64Array; norms: number[] } {
  const each = runDeviceJob(job(clipNorm, false));
  const received = each.received.flatMap((r) => (r ? [r] : []));
  const sum = new Float64Array(received[0]!.delta.length);
  for (const { delta } of received) delta.forEach((v, i) => (sum[i] = sum[i]! + v));
  return { sum, norms: received.map((r) => r.norm) };
}

describe('summed jobs in a sketch layout', () => {
  it("sum what the devices' clipped sketches sum, to float16 rounding", () => {
    const unclipped = sumOfBodies(1e9);
    const sorted = [...unclipped.norms].sort((a, b) => a - b);
    const clip = sorted[sorted.length >> 1]!;
    const bodies = sumOfBodies(clip);
    const summed = runDeviceJob(job(clip, true)).summed!;
    expect(summed.uploads).toBe(bodies.norms.length);
    const sketched = sketchUpdate(
      summed.sum,
      dims,
      roundSketch(5, 4),
      new Float64Array(bodies.sum.length),
    );
    const error = (a: Float64Array, b: Float64Array) => {
      const diff = new Float64Array(a.length);
      a.forEach((v, i) => (diff[i] = v - b[i]!));
      return l2Norm(diff) / l2Norm(b);
    };
    expect(error(sketched, bodies.sum)).toBeLessThan(2e-3);
    // Each norm is the sketch's, clipped: the devices' bodies are at S or below it.
    for (const norm of summed.norms) expect(norm).toBeLessThanOrEqual(clip * (1 + 1e-6));
    // Clipping was at work: the unclipped sum is elsewhere.
    expect(error(unclipped.sum, bodies.sum)).toBeGreaterThan(2e-2);
  });
});
