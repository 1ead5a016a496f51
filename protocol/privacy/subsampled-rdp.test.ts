import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { computeRdp } from './rdp.js';
import { poissonSubsampledRdp } from './subsampled-rdp.js';

function relErr(actual: number, expected: number): number {
  return Math.abs(actual / expected - 1);
}

const gaussian = (sigma: number) => (alpha: number) => alpha / (2 * sigma * sigma);

describe('Poisson subsampling bound (Zhu and Wang 2019, general upper bound)', () => {
  it("reproduces the reference's _compute_rdp_subsampled on the Gaussian's RDP curve", () => {
    // google-research/federated distributed_dp/accounting_utils.py `_compute_rdp_subsampled(alpha,
    // gamma, eps, upper_bound=True)` with eps(l) = l / (2 sigma^2), transcribed into Python and run
    // with scipy 1.17 (logsumexp with weights b).
    const cases: [number, number, number, number][] = [
      [0.01, 1, 3, 0.00028471208055425024],
      [0.01, 1, 10, 0.08858837384068331],
      [0.1, 2, 3, 0.00646782937025292],
      [0.1, 2, 10, 0.05067015332825416],
    ];
    for (const [q, sigma, alpha, expected] of cases) {
      expect(relErr(poissonSubsampledRdp(alpha, q, gaussian(sigma)), expected)).toBeLessThan(1e-10);
    }
  });

  it('equals the exact sampled Gaussian at alpha = 2: log(1 + q^2 (e^eps(2) - 1))', () => {
    for (const [q, sigma] of [
      [0.001, 0.8],
      [0.01, 1],
      [0.3, 3],
    ] as const) {
      const bound = poissonSubsampledRdp(2, q, gaussian(sigma));
      const closedForm = Math.log1p(q * q * Math.expm1(1 / (sigma * sigma)));
      expect(relErr(bound, closedForm)).toBeLessThan(1e-12);
      // rdp.ts sums the binomial expansion from its l = 0 term, ~1, so its value carries ~1e-16
      // absolute error from log Gamma: compare absolutely.
      expect(Math.abs(bound - computeRdp(q, sigma, 1, [2])[0]!)).toBeLessThan(1e-15);
    }
  });

  it('upper-bounds the exact sampled-Gaussian RDP of rdp.ts and never exceeds the unsampled RDP', () => {
    const orders = Array.from({ length: 63 }, (_, i) => 2 + i);
    for (const q of [0.001, 0.01, 0.1, 0.5, 0.9]) {
      for (const sigma of [0.7, 1, 2, 5]) {
        const exact = computeRdp(q, sigma, 1, orders);
        orders.forEach((alpha, k) => {
          const bound = poissonSubsampledRdp(alpha, q, gaussian(sigma));
          // 1e-15 absolute: the rounding of rdp.ts's sum, whose first term is ~1 (see above).
          expect(bound).toBeGreaterThanOrEqual(exact[k]! * (1 - 1e-12) - 1e-15);
          expect(bound).toBeLessThanOrEqual(gaussian(sigma)(alpha));
        });
      }
    }
  });

  it('is 0 at q = 0, the unsampled RDP at q = 1, and grows with q', () => {
    const eps = gaussian(1.3);
    expect(poissonSubsampledRdp(16, 0, eps)).toBe(0);
    expect(poissonSubsampledRdp(16, 1, eps)).toBe(eps(16));
    let previous = 0;
    for (const q of [1e-6, 1e-4, 0.01, 0.05, 0.2, 0.6]) {
      const value = poissonSubsampledRdp(16, q, eps);
      expect(value).toBeGreaterThan(previous);
      previous = value;
    }
  });

  it('stays finite at order 256 with RDP values that overflow float64 when exponentiated', () => {
    const value = poissonSubsampledRdp(256, 0.02, gaussian(0.5));
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeLessThanOrEqual(gaussian(0.5)(256));
  });

  it.each([
    ['fractional order', 2.5, 0.1],
    ['order 1', 1, 0.1],
    ['q > 1', 2, 1.5],
    ['q NaN', 2, NaN],
  ])('rejects %s with HEARTH_E_PRIVACY_PARAMS', (_name, order, q) => {
    expect(() => poissonSubsampledRdp(order, q, gaussian(1))).toThrow(HearthError);
    try {
      poissonSubsampledRdp(order, q, gaussian(1));
    } catch (error) {
      expect((error as HearthError).code).toBe('HEARTH_E_PRIVACY_PARAMS');
    }
  });
});
