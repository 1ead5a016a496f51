/**
 * The device's share of the distributed DP noise: each of the m devices
 * whose updates a round sums adds, to every coordinate of its integer-encoded update, independent
 * noise Skellam(mu / m), the difference of two independent Poisson(mu / (2 m)) variates. Skellam
 * variables with the same centre add up to a Skellam variable whose variance is the sum of theirs,
 * so the sum that secure aggregation unmasks carries Skellam(mu) per coordinate: the noise the
 * accountant in skellam.ts prices, without trusting the server to add any. (Agarwal, Kairouz, Liu
 * 2021, "The Skellam Mechanism for Differentially Private Federated Learning", NeurIPS,
 * https://arxiv.org/abs/2110.04995: Skellam is closed under summation, which is what makes it fit
 * secure aggregation.)
 *
 * If fewer than m devices' noise reaches the sum (dropouts), the sum carries less than mu: the
 * accountant must be given the variance of the smallest sum the server can unmask.
 */
import { HearthError } from '../errors.js';
import { poissonSampler } from './poisson.js';
import { cryptoUniform, type UniformSource } from './uniform.js';

/**
 * The largest per-coordinate variance a device may draw: 2^50, i.e. a standard deviation of 2^25,
 * so a draw leaves the int32 range only past 64 standard deviations (probability below 10^-800),
 * and each Poisson mean stays within MAX_POISSON_MEAN.
 */
export const MAX_SKELLAM_VARIANCE = 2 ** 50;

/** Throws HEARTH_E_PRIVACY_PARAMS unless the variance is a number in [0, MAX_SKELLAM_VARIANCE]. */
function checkVariance(variance: number): void {
  if (!(typeof variance === 'number' && variance >= 0 && variance <= MAX_SKELLAM_VARIANCE)) {
    throw new HearthError(
      'HEARTH_E_PRIVACY_PARAMS',
      `Skellam noise variance must be in [0, 2^50], got ${variance}`,
    );
  }
}

/**
 * Adds independent Skellam noise of the given per-coordinate variance to every coordinate of
 * `target`, in place, modulo 2^32: the arithmetic of secure aggregation's group Z_(2^32), so a
 * Uint32Array holding the encoded update (two's complement) and an Int32Array holding it signed give
 * the same bits. Variance 0 leaves `target` unchanged (a test-only plaintext mode, never a DP one).
 * The default source is cryptoUniform(); throws HEARTH_E_PRIVACY_PARAMS on a bad variance.
 */
export function addSkellamNoise(
  target: Int32Array | Uint32Array,
  variance: number,
  uniform: UniformSource = cryptoUniform(),
): void {
  checkVariance(variance);
  if (variance === 0) return;
  const poisson = poissonSampler(variance / 2, uniform);
  const n = target.length;
  if (target instanceof Uint32Array) {
    for (let i = 0; i < n; i++) target[i] = (target[i]! + poisson() - poisson()) >>> 0;
  } else {
    // Int32Array stores ToInt32(value): the same wrap modulo 2^32.
    for (let i = 0; i < n; i++) target[i] = target[i]! + poisson() - poisson();
  }
}

/**
 * A fresh vector of `length` independent Skellam draws of the given variance (mean 0), e.g. one
 * device's noise share: sampleSkellam(L, mu / m). Throws HEARTH_E_ARGUMENT for a length that is not
 * a non-negative integer below 2^31, HEARTH_E_PRIVACY_PARAMS for a bad variance.
 */
export function sampleSkellam(
  length: number,
  variance: number,
  uniform: UniformSource = cryptoUniform(),
): Int32Array {
  if (!(Number.isSafeInteger(length) && length >= 0 && length < 2 ** 31)) {
    throw new HearthError(
      'HEARTH_E_ARGUMENT',
      `noise length must be an integer >= 0, got ${length}`,
    );
  }
  const out = new Int32Array(length);
  addSkellamNoise(out, variance, uniform);
  return out;
}
