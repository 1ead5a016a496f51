/**
 * Exact Poisson sampling for the device's Skellam noise (skellam-sampler.ts). "Exact" means the
 * algorithm's output distribution is Poisson(lambda) itself, not an approximation (no normal
 * approximation at large lambda, no truncated table): the DP guarantee of the Skellam mechanism is a
 * statement about that distribution, so the sampler must not replace it with a look-alike. The only
 * departures are float64 rounding in the acceptance tests, kept small below.
 *
 * - lambda < 10: inversion by sequential search (Devroye 1986, Non-Uniform Random Variate Generation,
 *   Chapter X, the Poisson distribution): one uniform u, then subtract P(X = 0), P(X = 1), ... until u
 *   falls in a cell. Expected lambda + 1 steps.
 * - lambda >= 10: Hörmann's PTRS, transformed rejection with squeeze (W. Hörmann 1993, "The
 *   transformed rejection method for generating Poisson random variables", Insurance: Mathematics and
 *   Economics 12, 39-45), with the constants of the paper, as numpy's `random_poisson_ptrs` uses them.
 *   About 1.1 iterations of two uniforms each, whatever lambda is.
 */
import { HearthError } from '../errors.js';
import { logGamma } from './log-math.js';
import type { UniformSource } from './uniform.js';

/** Hörmann's PTRS is designed and tuned for lambda >= 10; below it inversion is cheaper anyway. */
const PTRS_MIN_MEAN = 10;

/**
 * The largest mean the sampler accepts: 2^49, so the Poisson variate (about lambda + 40 sqrt(lambda)
 * at worst) stays far below 2^53, where doubles stop holding every integer.
 */
export const MAX_POISSON_MEAN = 2 ** 49;

/**
 * PTRS loses each round with probability below ~0.15; a thousand losses in a row means the uniform
 * source is broken (e.g. it returns a constant), and the sampler says so instead of spinning.
 */
const MAX_REJECTIONS = 1000;

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log k! - (k log k - k + log(2 pi k) / 2), the Stirling series 1/(12k) - 1/(360k^3) + 1/(1260k^5)
 * - 1/(1680k^7) + 1/(1188k^9); for k >= 10 the omitted term is below 2e-14.
 */
function stirlingTail(k: number): number {
  const r = 1 / k;
  const r2 = r * r;
  return r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))));
}

/**
 * log P(X = k) for X ~ Poisson(lambda), integer k >= 0. The textbook -lambda + k log lambda - log k!
 * subtracts numbers of size k log k: at lambda = 10^13 (a 32-bit fixed-point encoding with many
 * devices) that loses ~0.1 in absolute terms, enough to bend PTRS's acceptance test. From k >= 10 the
 * same quantity is written as (k - lambda) - k log1p((k - lambda) / lambda) - log(2 pi k) / 2 -
 * stirlingTail(k), whose terms are of the size of the result.
 */
export function logPoissonPmf(k: number, lambda: number): number {
  if (k < 10) return -lambda + k * Math.log(lambda) - logGamma(k + 1);
  const d = k - lambda;
  return d - k * Math.log1p(d / lambda) - HALF_LOG_2PI - 0.5 * Math.log(k) - stirlingTail(k);
}

/** Inversion by sequential search for 0 < lambda < 10 (p0 = e^-lambda > 4.5e-5). */
function inversion(lambda: number, uniform: UniformSource): () => number {
  const p0 = Math.exp(-lambda);
  return () => {
    let u = uniform();
    let x = 0;
    let p = p0;
    // X = x exactly when F(x - 1) <= u < F(x). Rounding can leave u above the last representable
    // cell far in the tail; the search then stops where P(X = x) underflows (x in the hundreds).
    while (u >= p && p > 0) {
      u -= p;
      x += 1;
      p *= lambda / x;
    }
    return x;
  };
}

/** Hörmann's PTRS for lambda >= 10: steps 1 to 3.3 of the paper. */
function ptrs(lambda: number, uniform: UniformSource): () => number {
  const b = 0.931 + 2.53 * Math.sqrt(lambda);
  const a = -0.059 + 0.02483 * b;
  const logInvAlpha = Math.log(1.1239 + 1.1328 / (b - 3.4));
  const vr = 0.9277 - 3.6224 / (b - 2);
  return () => {
    for (let attempt = 0; attempt < MAX_REJECTIONS; attempt++) {
      const u = uniform() - 0.5;
      const v = uniform();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + lambda + 0.43);
      // Squeeze: the centre of the hat lies under the Poisson histogram, accept at once.
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      // log(0) = -Infinity for v = 0 accepts, as it should (the hat is above the histogram).
      if (Math.log(v) + logInvAlpha - Math.log(a / (us * us) + b) <= logPoissonPmf(k, lambda)) {
        return k;
      }
    }
    throw new HearthError(
      'HEARTH_E_ARGUMENT',
      'the uniform source looks broken (PTRS never accepts)',
    );
  };
}

/**
 * A generator of independent Poisson(lambda) variates driven by `uniform`, with the per-lambda
 * constants computed once (a noise vector draws 2 L variates of one lambda). lambda = 0 gives 0.
 * Throws HEARTH_E_PRIVACY_PARAMS unless 0 <= lambda <= MAX_POISSON_MEAN.
 */
export function poissonSampler(lambda: number, uniform: UniformSource): () => number {
  if (!(typeof lambda === 'number' && lambda >= 0 && lambda <= MAX_POISSON_MEAN)) {
    throw new HearthError(
      'HEARTH_E_PRIVACY_PARAMS',
      `Poisson mean must be in [0, 2^49], got ${lambda}`,
    );
  }
  if (lambda === 0) return () => 0;
  return lambda < PTRS_MIN_MEAN ? inversion(lambda, uniform) : ptrs(lambda, uniform);
}

/** One Poisson(lambda) variate; see poissonSampler. */
export function samplePoisson(lambda: number, uniform: UniformSource): number {
  return poissonSampler(lambda, uniform)();
}
