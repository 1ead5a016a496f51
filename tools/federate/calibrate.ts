/**
 * The noise multiplier z that spends a target epsilon over a run (q, rounds, delta), from the
 * accountant the server uses: the smallest z (to 0.1%) whose epsilon is at most the target.
 */
import { computeEpsilon } from '../../protocol/privacy/index.js';

/**
 * The noise multiplier z of a round window's sum whose combined multiplier with the count's noise,
 * (1/z² + 1/countNoise²)^-½ (protocol/privacy windowNoiseMultiplier), is `combined`: what a windowed
 * run needs for the combined multiplier noiseForEpsilon finds. None when combined >= countNoise.
 */
export function noiseForWindows(combined: number, countNoise: number): number {
  if (!(combined > 0 && combined < countNoise)) {
    throw new RangeError(
      `a combined multiplier of ${combined} needs count noise above it, not ${countNoise}`,
    );
  }
  return 1 / Math.sqrt(1 / combined ** 2 - 1 / countNoise ** 2);
}

/** z with epsilon(q, z, rounds, delta) <= target, found by bisection on log z. */
export function noiseForEpsilon(
  target: number,
  sampleRate: number,
  rounds: number,
  delta: number,
): number {
  if (!(target > 0)) throw new RangeError('target epsilon must be > 0');
  const eps = (z: number) => computeEpsilon({ noise: z, sampleRate, steps: rounds, delta }).epsilon;
  let low = 0.05;
  let high = 1;
  while (eps(high) > target) {
    high *= 2;
    if (high > 1e4) throw new RangeError(`no noise multiplier reaches epsilon ${target}`);
  }
  if (eps(low) <= target) return low;
  while (high / low > 1.001) {
    const mid = Math.sqrt(low * high);
    if (eps(mid) > target) low = mid;
    else high = mid;
  }
  return high;
}
