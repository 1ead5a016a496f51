/**
 * Renyi-DP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
 * "Renyi Differential Privacy of the Sampled Gaussian Mechanism", https://arxiv.org/abs/1908.10530),
 * converted to (epsilon, delta) with the improved bound of Balle et al. 2020 (Hypothesis testing
 * interpretations and Renyi DP, Theorem 21, https://arxiv.org/abs/1905.09982; also Canonne, Kamath,
 * Steinke 2020, https://arxiv.org/abs/2004.00010 Prop. 12), as TF Privacy's rdp_privacy_accountant
 * and Opacus' analysis/rdp.py do today. Written from the papers and those libraries' behaviour, and
 * checked against their published test values (see rdp.test.ts).
 *
 * In Hearth one "step" is one published round: each device joins a round with probability q (its own
 * coin flip), every contribution is clipped to S, and the server adds N(0, (z S / m)^2) to the fixed-
 * denominator mean, i.e. noise z times the sensitivity S / m. That is the sampled Gaussian mechanism
 * with sampling rate q and noise multiplier z, giving user-level DP.
 */
import { HearthError } from '../errors.js';
import { logAbsBinomial, logAdd, logComb, logErfc, logSub } from './log-math.js';

/**
 * Default RDP orders: exactly those of TF Privacy's `compute_dp_sgd_privacy_lib` (the source of the
 * two TF Privacy reference values), [1.25, 1.5, ..., 4.5] + 5..63 + [128, 256, 512].
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  1.25,
  1.5,
  1.75,
  2,
  2.25,
  2.5,
  3,
  3.5,
  4,
  4.5,
  ...Array.from({ length: 59 }, (_, i) => 5 + i),
  128,
  256,
  512,
]);

/**
 * Opacus' `RDPAccountant.DEFAULT_ALPHAS`, [1.1, 1.2, ..., 10.9] + 12..63; needed to reproduce Opacus'
 * reference value (its optimum differs slightly with the order grid).
 */
export const OPACUS_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

/** Parameters of a sampled Gaussian mechanism composed `steps` times. */
export interface PrivacyParams {
  /** Noise multiplier z: noise standard deviation divided by the L2 sensitivity. */
  readonly noise: number;
  /** Poisson sampling rate q in (0, 1]. */
  readonly sampleRate: number;
  /** Number of compositions (published rounds); a non-negative integer. */
  readonly steps: number;
  /** Target delta in (0, 1). */
  readonly delta: number;
  /** RDP orders to optimise over; DEFAULT_ORDERS when left out. */
  readonly orders?: readonly number[];
}

/** An (epsilon, delta) guarantee and the RDP order that gave it (NaN when epsilon is infinite). */
export interface EpsilonResult {
  readonly epsilon: number;
  readonly order: number;
}

/** Throws HEARTH_E_PRIVACY_PARAMS with `detail`: the accountants' one refusal. */
export function invalid(detail: string): never {
  throw new HearthError('HEARTH_E_PRIVACY_PARAMS', detail);
}

/** Throws HEARTH_E_PRIVACY_PARAMS unless q is in [0, 1] (0: no device ever takes part). */
export function checkSampleRate(q: number): void {
  if (!(typeof q === 'number' && q >= 0 && q <= 1))
    invalid(`sample rate must be in [0, 1], got ${q}`);
}

/** Throws HEARTH_E_PRIVACY_PARAMS unless z is a finite positive number. */
export function checkNoise(z: number): void {
  if (!(typeof z === 'number' && Number.isFinite(z) && z > 0)) {
    invalid(`noise multiplier must be a finite number > 0, got ${z}`);
  }
}

/** Throws HEARTH_E_PRIVACY_PARAMS unless delta is in (0, 1). */
export function checkDelta(delta: number): void {
  if (!(typeof delta === 'number' && delta > 0 && delta < 1)) {
    invalid(`delta must be in (0, 1), got ${delta}`);
  }
}

/** Throws HEARTH_E_PRIVACY_PARAMS unless steps is a non-negative safe integer. */
export function checkSteps(steps: number): void {
  if (!(Number.isSafeInteger(steps) && steps >= 0)) {
    invalid(`steps must be a non-negative integer, got ${steps}`);
  }
}

/** Throws HEARTH_E_PRIVACY_PARAMS unless orders is a non-empty list of finite numbers > 1. */
export function checkOrders(orders: readonly number[]): void {
  if (!Array.isArray(orders) || orders.length === 0) invalid('orders must be a non-empty list');
  for (const a of orders) {
    if (!(typeof a === 'number' && Number.isFinite(a) && a > 1)) {
      invalid(`every order must be a finite number > 1, got ${a}`);
    }
  }
}

/**
 * log A_alpha for integer alpha (MTZ19 Section 3.3): the binomial expansion
 *   A_alpha = sum_{i=0..alpha} C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2)).
 * Every term is positive, so the log-space sum is exact up to rounding.
 */
function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    const term = logComb(alpha, i) + i * logQ + (alpha - i) * log1mQ + (i * i - i) / twoSigma2;
    logA = logAdd(logA, term);
  }
  return logA;
}

/** Safety stop for the fractional series; it converges in tens of terms for sane parameters. */
const MAX_SERIES_TERMS = 100_000;

/**
 * log A_alpha for fractional alpha (MTZ19 Section 3.3): the integral is split at
 * z0 = sigma^2 log(1/q - 1) + 1/2 and each half expanded in the generalised binomial series; the
 * coefficients C(alpha, i) change sign past i = ceil(alpha), and those terms are subtracted (log-sub)
 * rather than dropped, as Opacus and TF Privacy do. Stops once both new terms are below e^-30.
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const twoSigma2 = 2 * sigma * sigma;
  const z0 = sigma * sigma * (log1mQ - logQ) + 0.5;
  const scale = Math.SQRT2 * sigma;
  for (let i = 0; ; i++) {
    if (i >= MAX_SERIES_TERMS) {
      throw new RangeError(`RDP series at order ${alpha} did not converge (q ${q}, z ${sigma})`);
    }
    const { logAbs: logCoef, sign } = logAbsBinomial(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * logQ + j * log1mQ;
    const logT1 = logCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / scale);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / scale);
    const logS0 = logT0 + (i * i - i) / twoSigma2 + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigma2 + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism at one order (no validation). */
function rdpOneStep(q: number, sigma: number, alpha: number): number {
  // q = 0: no device takes part, so a round reveals nothing about any of them.
  if (q === 0) return 0;
  // q = 1 is the plain Gaussian mechanism with sensitivity 1: alpha / (2 sigma^2) exactly.
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/**
 * RDP of the sampled Gaussian mechanism with sampling rate q and noise multiplier `noise`, composed
 * `steps` times (RDP composes additively), at each order. Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function computeRdp(
  q: number,
  noise: number,
  steps: number,
  orders: readonly number[] = DEFAULT_ORDERS,
): number[] {
  checkSampleRate(q);
  checkNoise(noise);
  checkSteps(steps);
  checkOrders(orders);
  return orders.map((alpha) => (steps === 0 ? 0 : rdpOneStep(q, noise, alpha) * steps));
}

/**
 * The smallest epsilon such that the mechanism is (epsilon, delta)-DP, over the given orders, using
 *   epsilon(alpha) = rdp + log((alpha - 1) / alpha) - (log(delta) + log(alpha)) / (alpha - 1)
 * (Balle et al. 2020 Thm 21; TF Privacy's conversion, including its two guards: orders <= 1.01 are
 * skipped because the bound is numerically unstable there, and an order whose RDP is below the KL
 * bound delta >= sqrt(1 - exp(-rdp)) gives epsilon 0). Epsilon is clamped at 0. Ties keep the first
 * order. Infinite RDP (no noise) gives epsilon Infinity and order NaN.
 */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
): EpsilonResult {
  checkDelta(delta);
  checkOrders(orders);
  if (rdp.length !== orders.length) {
    invalid(`orders and rdp differ in length (${orders.length} vs ${rdp.length})`);
  }
  let best: EpsilonResult = { epsilon: Infinity, order: NaN };
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k]!;
    const r = rdp[k]!;
    if (!(r >= 0)) invalid(`RDP values must be non-negative, got ${r} at order ${a}`);
    let eps: number;
    if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/**
 * Epsilon (at the given delta) after `steps` compositions of the sampled Gaussian mechanism, with the
 * order that attains it. Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function computeEpsilon(params: PrivacyParams): EpsilonResult {
  checkDelta(params.delta);
  const orders = params.orders ?? DEFAULT_ORDERS;
  const rdp = computeRdp(params.sampleRate, params.noise, params.steps, orders);
  return epsilonFromRdp(orders, rdp, params.delta);
}
