/** Helpers for Hearth's unit tests (imported only by `*.test.ts` files; never shipped). */
import { HearthError } from './hearth-error.js';
import type { TensorSpec } from './manifest.js';
import { int8Rows } from './manifest.js';

/** Runs `fn` and returns the `code` of what it threw, or undefined when it did not throw. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** The HearthError `fn` throws; throws itself when `fn` throws nothing or something else. */
export function refusal(fn: () => unknown): HearthError {
  try {
    fn();
  } catch (error) {
    if (error instanceof HearthError) return error;
    throw new Error(`expected a HearthError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a HearthError, nothing was thrown');
}

/**
 * The largest error of `decoded` against `exact` in units of each int8 row's ideal step (max |row| /
 * 127): at most 0.5 for weights that went through the int8 codec, and half of INT8E_STEP_RATIO
 * through int8e, whose steps are at most that ratio above the ideal (protocol/weights-codec.ts).
 */
export function int8StepError(
  decoded: Float32Array,
  exact: Float32Array,
  layout: readonly TensorSpec[],
): number {
  let worst = 0;
  let at = 0;
  for (const width of int8Rows(layout)) {
    const row = exact.subarray(at, at + width);
    const step = Math.max(...row.map(Math.abs)) / 127;
    for (let i = at; i < at + width; i++) {
      const error = Math.abs(decoded[i]! - exact[i]!);
      worst = Math.max(worst, step > 0 ? error / step : error > 0 ? Infinity : 0);
    }
    at += width;
  }
  return worst;
}
