/**
 * The backend self-test: a small fixed model run through the real model code on the current tfjs
 * backend, compared with the plain-JS reference. Sizes are big enough to exercise tiled matmuls and
 * several recurrent steps, small enough to take milliseconds on a working backend.
 */
import { SessionModel } from './model/session-model.js';
import { referenceScores } from './model/reference-forward.js';
import type { ModelDims } from '../protocol/manifest.js';

const DIMS: ModelDims = { items: 97, embedding: 16, hidden: 24, maxSessionLength: 8 };
const SESSIONS = [
  [5, 17, 42, 8, 91, 3],
  [77, 12],
];

/** Runs the self-test on the current backend; returns the largest absolute error seen. */
export async function selfTest(): Promise<number> {
  const model = SessionModel.random(DIMS, 20261122);
  try {
    const flat = model.toFlat();
    const scores = model.scoreNext(SESSIONS);
    const got = await scores.data();
    scores.dispose();
    let maxError = 0;
    SESSIONS.forEach((session, row) => {
      const want = referenceScores(DIMS, flat, session);
      for (let i = 1; i < DIMS.items; i++) {
        const error = Math.abs(got[row * DIMS.items + i]! - want[i]!);
        // NaN must fail the test, so compare in a way NaN cannot pass.
        maxError = error > maxError || Number.isNaN(error) ? error : maxError;
      }
    });
    return Number.isNaN(maxError) ? Infinity : maxError;
  } finally {
    model.dispose();
  }
}
