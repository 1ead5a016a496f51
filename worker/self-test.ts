/**
 * The backend self-test: the real model code on the current tfjs backend, compared with the plain-JS
 * reference forward pass. It runs on the model the device will actually serve when one is loaded:
 * a backend can be right on a toy model and wrong at real sizes (WebGPU on a software adapter gets a
 * 10,000-item LSTM wrong, ENV.md), and the reference costs only O(items x dims) per session.
 */
import type { ModelDims } from '../protocol/manifest.js';
import { referenceScores } from '../model/reference-forward.js';
import { SessionModel } from '../model/session-model.js';

/** Weights to test with; without them a fixed small random model is used. */
export interface SelfTestModel {
  readonly dims: ModelDims;
  readonly weights: Float32Array;
}

const FALLBACK_DIMS: ModelDims = { items: 97, embedding: 16, hidden: 24, maxSessionLength: 8 };

/** Two fixed sessions over the model's items: a long one and a short one. */
function probeSessions(items: number): number[][] {
  const pick = (k: number): number => 1 + ((k * 7919) % (items - 1));
  return [[0, 1, 2, 3, 4, 5, 6, 7].map(pick), [pick(11)]];
}

/**
 * Runs the self-test on the current backend; returns the largest error relative to the score scale
 * (max |got - want| / max(1, max |want|)), or Infinity when anything is NaN.
 */
export async function selfTest(probe?: SelfTestModel): Promise<number> {
  const dims = probe?.dims ?? FALLBACK_DIMS;
  const model = probe
    ? SessionModel.fromFlat(probe.dims, probe.weights)
    : SessionModel.random(FALLBACK_DIMS, 20261122);
  try {
    const flat = probe?.weights ?? model.toFlat();
    const sessions = probeSessions(dims.items);
    const scores = model.scoreNext(sessions);
    const got = await scores.data();
    scores.dispose();
    let maxError = 0;
    let scale = 1;
    sessions.forEach((session, row) => {
      const want = referenceScores(dims, flat, session);
      for (let i = 1; i < dims.items; i++) {
        const error = Math.abs(got[row * dims.items + i]! - want[i]!);
        // Written so that a NaN anywhere makes the result NaN rather than being skipped.
        maxError = error > maxError || Number.isNaN(error) ? error : maxError;
        scale = Math.max(scale, Math.abs(want[i]!));
      }
    });
    return Number.isNaN(maxError) ? Infinity : maxError / scale;
  } finally {
    model.dispose();
  }
}

/**
 * Median time (ms) of scoring one session with the probe model on the current backend, after a
 * warm-up run (the first call compiles shaders or allocates). Used only to compare rungs.
 */
export async function timeScoring(probe?: SelfTestModel, runs = 3): Promise<number> {
  const model = probe
    ? SessionModel.fromFlat(probe.dims, probe.weights)
    : SessionModel.random(FALLBACK_DIMS, 20261122);
  try {
    const session = probeSessions(model.dims.items)[0]!;
    const times: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const start = performance.now();
      const scores = model.scoreNext([session]);
      await scores.data();
      scores.dispose();
      if (i > 0) times.push(performance.now() - start);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  } finally {
    model.dispose();
  }
}
