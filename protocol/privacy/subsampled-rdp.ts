/**
 * Privacy amplification by Poisson subsampling for any mechanism with a known RDP curve: the general
 * upper bound of Zhu and Wang 2019 ("Poisson Subsampled Rényi Differential Privacy", ICML,
 * http://proceedings.mlr.press/v97/zhu19c/zhu19c.pdf, Theorem 5 as Google's reference code numbers
 * it). For an integer order alpha >= 2, sampling rate gamma and a mechanism that is (l, eps(l))-RDP
 * at every integer l <= alpha,
 *
 *   eps_sampled(alpha) <= 1/(alpha-1) log( (1-gamma)^(alpha-1) (alpha gamma - gamma + 1)
 *                          + C(alpha, 2) gamma^2 (1-gamma)^(alpha-2) e^(eps(2))
 *                          + 3 sum_{l=3..alpha} C(alpha, l) gamma^l (1-gamma)^(alpha-l) e^((l-1) eps(l)) ).
 *
 * This is the bound google-research/federated `distributed_dp/accounting_utils.py` applies to the
 * Skellam and distributed discrete Gaussian mechanisms (`_compute_rdp_subsampled`, upper_bound=True),
 * taking the minimum with the unsampled RDP as this function does. It holds for any mechanism, so it
 * is looser than the exact sampled-Gaussian analysis in rdp.ts (the factor 3 on l >= 3): applied to
 * the Gaussian's eps(l) = l / (2 sigma^2) it is >= that analysis, and equal to it at alpha = 2.
 */
import { HearthError } from '../errors.js';
import { logAdd, logComb } from './log-math.js';

const LOG_3 = Math.log(3);

/**
 * The RDP at integer order `order` >= 2 of the mechanism `rdp` run on a Poisson sample with rate q
 * (each record in with probability q, independently), add/remove-one neighbours. Never more than
 * rdp(order): subsampling cannot make a mechanism less private. q = 0 gives 0, q = 1 gives
 * rdp(order). `rdp` is called at the integer orders 2..order. Throws HEARTH_E_PRIVACY_PARAMS on an
 * order that is not an integer >= 2 or q outside [0, 1].
 */
export function poissonSubsampledRdp(
  order: number,
  q: number,
  rdp: (order: number) => number,
): number {
  if (!(Number.isSafeInteger(order) && order >= 2)) {
    throw new HearthError(
      'HEARTH_E_PRIVACY_PARAMS',
      `the subsampling bound needs an integer order >= 2, got ${order}`,
    );
  }
  if (!(typeof q === 'number' && q >= 0 && q <= 1)) {
    throw new HearthError('HEARTH_E_PRIVACY_PARAMS', `sample rate must be in [0, 1], got ${q}`);
  }
  const unsampled = rdp(order);
  if (q === 0) return 0;
  if (q === 1) return unsampled;
  const a = order;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  // (1-q)^(a-1) (a q - q + 1), i.e. the l = 0 and l = 1 terms of the binomial expansion together.
  let logSum = (a - 1) * log1mQ + Math.log1p((a - 1) * q);
  logSum = logAdd(logSum, logComb(a, 2) + 2 * logQ + (a - 2) * log1mQ + rdp(2));
  for (let l = 3; l <= a; l++) {
    const logWeight = LOG_3 + logComb(a, l) + l * logQ + (a - l) * log1mQ;
    logSum = logAdd(logSum, logWeight + (l - 1) * rdp(l));
  }
  return Math.min(unsampled, logSum / (a - 1));
}
