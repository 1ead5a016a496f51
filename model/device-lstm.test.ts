import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { mulberry32, normal } from '../protocol/prng.js';
import { deviceLstm } from './device-lstm.js';

beforeAll(async () => {
  expect(await tf.setBackend('wasm')).toBe(true);
});

/** The same recurrence in plain tfjs ops, differentiated by tfjs itself. */
function reference(xz: tf.Tensor4D, u: tf.Tensor3D): tf.Tensor4D {
  const steps = tf.unstack(xz, 2) as tf.Tensor3D[];
  const states: tf.Tensor3D[] = [];
  let h: tf.Tensor3D | null = null;
  let c: tf.Tensor3D | null = null;
  for (const xzt of steps) {
    const z: tf.Tensor3D = h ? tf.add(xzt, tf.matMul(h, u)) : xzt;
    const [zi, zf, zg, zo] = tf.split(z, 4, 2) as [
      tf.Tensor3D,
      tf.Tensor3D,
      tf.Tensor3D,
      tf.Tensor3D,
    ];
    const ig: tf.Tensor3D = tf.mul(tf.sigmoid(zi), tf.tanh(zg));
    const cNext: tf.Tensor3D = c ? tf.add(tf.mul(tf.sigmoid(zf), c), ig) : ig;
    const hNext: tf.Tensor3D = tf.mul(tf.sigmoid(zo), tf.tanh(cNext));
    c = cNext;
    h = hNext;
    states.push(hNext);
  }
  return tf.stack(states, 2) as tf.Tensor4D;
}

function random(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = mulberry32(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => scale * normal(rng)),
    shape,
  );
}

describe('deviceLstm', () => {
  for (const [B, S, T] of [
    [3, 2, 5],
    [2, 1, 2],
  ] as const) {
    it(`matches tfjs' own gradients of the recurrence (B=${B}, S=${S}, T=${T})`, () => {
      const h = 4;
      const xz = random([B, S, T, 4 * h], 1) as tf.Tensor4D;
      const u = random([B, h, 4 * h], 2, 0.5) as tf.Tensor3D;
      const weights = random([B, S, T, h], 3);
      const loss = (f: typeof reference) => (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor3D), weights)) as tf.Scalar;
      const mine = tf.grads(loss(deviceLstm))([xz, u]);
      const theirs = tf.grads(loss(reference))([xz, u]);
      const values = deviceLstm(xz, u).dataSync();
      const expected = reference(xz, u).dataSync();
      values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
      for (let k = 0; k < 2; k++) {
        const a = mine[k]!.dataSync();
        const b = theirs[k]!.dataSync();
        expect(a.length).toBe(b.length);
        let largest = 0;
        a.forEach((v, i) => {
          expect(v).toBeCloseTo(b[i]!, 4);
          largest = Math.max(largest, Math.abs(b[i]!));
        });
        expect(largest).toBeGreaterThan(1e-3);
      }
    });
  }
});
