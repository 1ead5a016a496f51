/**
 * The noise multiplier z that spends a target epsilon over a run (q, rounds, delta): the smallest z
 * (to 0.1%) whose epsilon is at most the target, by the accountant the server uses (RDP) or by the
 * privacy loss distribution (PLD, protocol/privacy/pld.ts), which is tighter.
 */
import { computeEpsilon, pldEpsilon } from '../../protocol/privacy/index.js';

/** Which accountant prices a run: the server's RDP bound, or the PLD's tighter one. */
export type Accountant = 'rdp' | 'pld';

/** Epsilon at `delta` after `rounds` rounds at (q, z), by `accountant`; Infinity for z = 0. */
export function runEpsilon(
  accountant: Accountant,
  noise: number,
  sampleRate: number,
  rounds: number,
  delta: number,
): number {
  if (!(noise > 0)) return rounds > 0 && sampleRate > 0 ? Infinity : 0;
  return accountant === 'pld'
    ? pldEpsilon([{ noise, sampleRate, steps: rounds }], delta)
    : computeEpsilon({ noise, sampleRate, steps: rounds, delta }).epsilon;
}

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

/**
 * z with epsilon(q, z, rounds, delta) <= target, found by bisection on log z. The PLD search starts
 * from the RDP answer (the PLD never prices a run higher, but for its grid) and halves down from
 * there, not up from 0.05: a small z makes the PLD's grid long.
 */
export function noiseForEpsilon(
  target: number,
  sampleRate: number,
  rounds: number,
  delta: number,
  accountant: Accountant = 'rdp',
): number {
  if (!(target > 0)) throw new RangeError('target epsilon must be > 0');
  const eps = (z: number) => runEpsilon(accountant, z, sampleRate, rounds, delta);
  let high = accountant === 'pld' ? noiseForEpsilon(target, sampleRate, rounds, delta) : 1;
  while (eps(high) > target) {
    high *= 2;
    if (high > 1e4) throw new RangeError(`no noise multiplier reaches epsilon ${target}`);
  }
  let low = accountant === 'pld' ? high / 2 : 0.05;
  while (accountant === 'pld' && low > 0.05 && eps(low) <= target) {
    high = low;
    low /= 2;
  }
  if (eps(low) <= target) return low;
  while (high / low > 1.001) {
    const mid = Math.sqrt(low * high);
    if (eps(mid) > target) low = mid;
    else high = mid;
  }
  return high;
}
