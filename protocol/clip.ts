/**
 * L2 clipping, shared by the device (which clips before upload) and the server (which re-clips
 * whatever the device claims). Sums run in float64: a float32 accumulator over ~10^6 squares loses
 * enough precision that a clipped vector could read as slightly over S.
 */

/** Euclidean norm of a vector, accumulated in float64. */
export function l2Norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    sum += v * v;
  }
  return Math.sqrt(sum);
}

/**
 * The factor that clips a vector of L2 norm `norm` to `bound`: 1, or bound / norm shrunk by a
 * relative 1e-6 so float32 rounding of the scaled values cannot push the result back over the
 * bound. The one factor the device, the server and the simulation clip with.
 */
export function clipFactor(norm: number, bound: number): number {
  if (!(bound > 0)) throw new RangeError(`clip bound must be positive, got ${bound}`);
  return norm > bound ? (bound / norm) * (1 - 1e-6) : 1;
}

/**
 * Scales `values` in place so its L2 norm is at most `bound` (clipFactor); returns the norm before
 * clipping. Non-finite input is the caller's to reject first.
 */
export function clipL2InPlace(values: Float32Array, bound: number): number {
  const norm = l2Norm(values);
  const scale = clipFactor(norm, bound);
  if (scale < 1) for (let i = 0; i < values.length; i++) values[i] = values[i]! * scale;
  return norm;
}

/** True when every value is a finite number. */
export function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}
