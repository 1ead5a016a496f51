/**
 * RDP accountant for Hearth's distributed Skellam mechanism: each device clips its update
 * to L2 norm S, scales it by `scale` (integer units per unit of the update; the papers' gamma is
 * 1 / scale), rounds it randomly to integers and adds its Skellam noise share (skellam-sampler.ts);
 * secure aggregation unmasks only the sum, which carries Skellam(mu) noise per coordinate. The
 * server's view of a round is therefore the multi-dimensional Skellam mechanism applied to an
 * integer sum query, run on a Poisson sample of devices (each joins with probability q).
 *
 * Written from Agarwal, Kairouz, Liu 2021 ("The Skellam Mechanism for Differentially Private
 * Federated Learning", NeurIPS, https://arxiv.org/abs/2110.04995) and Google's reference code for
 * it, google-research/federated `distributed_dp/accounting_utils.py` (`skellam_epsilon` and the
 * functions it calls), and checked against values computed from that code (skellam.test.ts).
 *
 * Units: everything here is in the integer domain the devices send. mu is the variance of the noise
 * in the unmasked sum, per coordinate, in integer units: with noise standard deviation sigma in
 * update units, mu = (sigma * scale)^2 (the reference's central_stddev^2 * scale^2), and each of m
 * devices draws Skellam(mu / m).
 */
import {
  checkDelta,
  checkOrders,
  checkSampleRate,
  checkSteps,
  epsilonFromRdp,
  invalid,
  type EpsilonResult,
} from './rdp.js';
import { poissonSubsampledRdp } from './subsampled-rdp.js';

/**
 * The reference's RDP orders (accounting_utils.RDP_ORDERS): 2..128 and 256. Integers only, because
 * the subsampling bound is stated for integer orders.
 */
export const SKELLAM_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 127 }, (_, i) => 2 + i),
  256,
]);

/** How a device turns its clipped update into integers. */
export interface QuantisationParams {
  /** L2 clipping bound S of the update, in update units. */
  readonly clip: number;
  /** Integer units per update unit: a coordinate x is sent as a random rounding of x * scale. */
  readonly scale: number;
  /** Number of coordinates L of the vector that is rounded (after any padding). */
  readonly dimension: number;
  /**
   * Conditional randomized rounding (Kairouz, Liu, Steinke 2021): with beta in (0, 1) the device
   * re-draws the rounding until the rounded vector's L2 norm is within the tighter bound below;
   * 0 (the default) is plain randomized rounding, whose bound holds for every draw.
   */
  readonly beta?: number;
}

/** L1 and L2 sensitivities of the integer sum query: how far one device can move the sum. */
export interface SkellamSensitivity {
  readonly l1: number;
  readonly l2: number;
}

/** Parameters of a distributed Skellam mechanism on a Poisson sample, composed `steps` times. */
export interface SkellamPrivacyParams extends QuantisationParams {
  /**
   * Variance of the noise in the unmasked sum, per coordinate, in integer units (see above). Where
   * devices can drop out after joining, the variance of the smallest sum the server can unmask.
   */
  readonly mu: number;
  /** Poisson sampling rate q in [0, 1]: each device joins a round with probability q. */
  readonly sampleRate: number;
  /** Number of compositions (published rounds); a non-negative integer. */
  readonly steps: number;
  /** Target delta in (0, 1). */
  readonly delta: number;
  /** Integer RDP orders >= 2 to optimise over; SKELLAM_ORDERS when left out. */
  readonly orders?: readonly number[];
}

function checkPositive(name: string, value: number): void {
  if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
    invalid(`${name} must be a finite number > 0, got ${value}`);
  }
}

function checkIntegerOrders(orders: readonly number[]): void {
  checkOrders(orders);
  for (const a of orders) {
    if (!Number.isInteger(a)) invalid(`Skellam accounting needs integer orders >= 2, got ${a}`);
  }
}

/**
 * The sensitivities of the integer sum after scaling and randomized rounding, in integer units
 * (reference: `rounded_l2_norm_bound` and `rounded_l1_norm_bound`):
 *   L2: rounding moves each coordinate by less than 1, so ||round(x s)|| <= S s + sqrt(L); with
 *       conditional rounding (beta > 0) also
 *       sqrt((S s)^2 + L / 4 + sqrt(2 log(1 / beta)) (S s + sqrt(L) / 2))
 *       (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for Federated
 *       Learning with Secure Aggregation", https://arxiv.org/abs/2102.06387, Theorem 1 as the
 *       reference cites it), the smaller of the two.
 *   L1: ||v||_1 <= sqrt(L) ||v||_2 for any vector, and ||v||_1 <= ||v||_2^2 for an integer one, so
 *       Delta1 = Delta2 * min(sqrt(L), Delta2).
 * Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function skellamSensitivity(params: QuantisationParams): SkellamSensitivity {
  const { clip, scale, dimension, beta = 0 } = params;
  checkPositive('clip', clip);
  checkPositive('scale', scale);
  if (!(Number.isSafeInteger(dimension) && dimension > 0)) {
    invalid(`dimension must be a positive integer, got ${dimension}`);
  }
  if (!(typeof beta === 'number' && beta >= 0 && beta < 1)) {
    invalid(`beta must be in [0, 1), got ${beta}`);
  }
  const scaled = clip * scale;
  const sqrtL = Math.sqrt(dimension);
  let l2 = scaled + sqrtL;
  if (beta > 0) {
    const squared =
      scaled * scaled + dimension / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (scaled + sqrtL / 2);
    l2 = Math.min(l2, Math.sqrt(squared));
  }
  return { l1: l2 * Math.min(sqrtL, l2), l2 };
}

/**
 * RDP at order alpha > 1 of one round of the Skellam mechanism with variance mu on an integer query
 * with sensitivities Delta1, Delta2 (Agarwal, Kairouz, Liu 2021: the RDP bound for the
 * multi-dimensional Skellam mechanism, from their bound on the Rényi divergence between shifted
 * Skellam distributions; reference `_skellam_rdp`, there written in update units):
 *   eps(alpha) = alpha Delta2^2 / (2 mu)
 *              + min( ((2 alpha - 1) Delta2^2 + 6 Delta1) / (4 mu^2), 3 Delta1 / (2 mu) ).
 * The first term is the Gaussian mechanism's RDP at noise variance mu; the second is what
 * discreteness costs, and it fades like 1 / mu relative to the first.
 */
export function skellamRdp(alpha: number, sensitivity: SkellamSensitivity, mu: number): number {
  const { l1, l2 } = sensitivity;
  const l2Squared = l2 * l2;
  const gaussian = (alpha * l2Squared) / (2 * mu);
  const discrete = Math.min(
    ((2 * alpha - 1) * l2Squared + 6 * l1) / (4 * mu * mu),
    (3 * l1) / (2 * mu),
  );
  return gaussian + discrete;
}

/**
 * RDP of `steps` rounds of the Poisson-subsampled Skellam mechanism, at each integer order: per
 * round, the Zhu-Wang general subsampling bound (subsampled-rdp.ts; not a Gaussian approximation)
 * capped by the unsampled RDP, as the reference's `skellam_epsilon` computes it; rounds compose by
 * adding RDP. Being general, that bound is looser than rdp.ts's exact sampled-Gaussian analysis:
 * at q = 0.01, noise multiplier 1.1 and 1000 rounds it gives about 17% more epsilon than the
 * Gaussian at the same noise (skellam.test.ts), the price of not assuming Gaussian noise.
 * Throws HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function computeSkellamRdp(
  sensitivity: SkellamSensitivity,
  mu: number,
  q: number,
  steps: number,
  orders: readonly number[] = SKELLAM_ORDERS,
): number[] {
  checkPositive('mu', mu);
  checkPositive('L1 sensitivity', sensitivity.l1);
  checkPositive('L2 sensitivity', sensitivity.l2);
  checkSampleRate(q);
  checkSteps(steps);
  checkIntegerOrders(orders);
  const round = (alpha: number) => skellamRdp(alpha, sensitivity, mu);
  return orders.map((alpha) => (steps === 0 ? 0 : poissonSubsampledRdp(alpha, q, round) * steps));
}

/**
 * Epsilon (at the given delta) after `steps` rounds of Hearth's distributed Skellam mechanism, with
 * the order that attains it: sensitivities from skellamSensitivity, RDP from computeSkellamRdp,
 * converted with rdp.ts's epsilonFromRdp (Balle et al. 2020 Thm 21). Throws
 * HEARTH_E_PRIVACY_PARAMS on bad input.
 */
export function computeSkellamEpsilon(params: SkellamPrivacyParams): EpsilonResult {
  checkDelta(params.delta);
  const orders = params.orders ?? SKELLAM_ORDERS;
  const sensitivity = skellamSensitivity(params);
  const rdp = computeSkellamRdp(sensitivity, params.mu, params.sampleRate, params.steps, orders);
  return epsilonFromRdp(orders, rdp, params.delta);
}
