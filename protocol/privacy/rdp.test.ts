import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import {
  computeEpsilon,
  computeRdp,
  DEFAULT_ORDERS,
  epsilonFromRdp,
  OPACUS_ORDERS,
  type PrivacyParams,
} from './rdp.js';

function relErr(actual: number, expected: number): number {
  return Math.abs(actual / expected - 1);
}

describe('RDP accountant: published reference values', () => {
  it('reproduces TF Privacy: N 60000, batch 150, noise 1.3, 15 epochs, delta 1e-5', () => {
    const n = 60000;
    const batch = 150;
    const { epsilon, order } = computeEpsilon({
      noise: 1.3,
      sampleRate: batch / n,
      steps: Math.ceil((15 * n) / batch),
      delta: 1e-5,
    });
    expect(relErr(epsilon, 0.7242234026109595)).toBeLessThan(1e-6);
    expect(order).toBe(19);
  });

  it('reproduces TF Privacy: N 100000, batch 100, noise 1.0, 30 epochs, delta 1e-7', () => {
    const n = 100000;
    const batch = 100;
    const { epsilon } = computeEpsilon({
      noise: 1.0,
      sampleRate: batch / n,
      steps: Math.ceil((30 * n) / batch),
      delta: 1e-7,
    });
    expect(relErr(epsilon, 1.4154988495444842)).toBeLessThan(1e-6);
  });

  it("reproduces Opacus' RDPAccountant test with its default alphas (fractional optimum 3.9)", () => {
    const { epsilon, order } = computeEpsilon({
      noise: 1.5,
      sampleRate: 0.04,
      steps: 2250,
      delta: 1e-5,
      orders: OPACUS_ORDERS,
    });
    expect(relErr(epsilon, 7.32911117143)).toBeLessThan(1e-6);
    expect(order).toBeCloseTo(3.9, 12);
  });
});

describe('RDP accountant: properties', () => {
  it('costs nothing at q = 0: no device ever takes part', () => {
    expect(computeRdp(0, 1, 1000, [2, 8, 64])).toEqual([0, 0, 0]);
    expect(computeRdp(1e-9, 1, 1000, [2])[0]).toBeGreaterThan(0);
  });

  it('gives the plain Gaussian RDP alpha / (2 sigma^2) per step at q = 1', () => {
    const orders = [1.5, 2, 7.25, 64];
    const rdp = computeRdp(1, 2, 3, orders);
    orders.forEach((a, k) => expect(rdp[k]).toBeCloseTo((3 * a) / 8, 12));
  });

  it('matches the closed form of the sampled Gaussian at alpha = 2', () => {
    // A_2 = (1-q)^2 + 2q(1-q) + q^2 e^(1/sigma^2) = 1 + q^2 (e^(1/sigma^2) - 1).
    const q = 0.1;
    const sigma = 1.7;
    const [rdp] = computeRdp(q, sigma, 1, [2]);
    expect(rdp).toBeCloseTo(Math.log1p(q * q * Math.expm1(1 / (sigma * sigma))), 14);
  });

  it('agrees between the integer and fractional series as alpha approaches an integer', () => {
    const [near, at] = computeRdp(0.01, 1.1, 1, [5 + 1e-9, 5]);
    expect(relErr(near!, at!)).toBeLessThan(1e-6);
  });

  it('stays finite at large orders where the terms overflow float64', () => {
    const rdp = computeRdp(0.5, 0.5, 1, [512, 1024]);
    expect(rdp.every(Number.isFinite)).toBe(true);
    expect(rdp[1]!).toBeGreaterThan(rdp[0]!);
  });

  it('gives epsilon 0 for zero steps, and the conversion floor just above the KL shortcut', () => {
    const base = { noise: 1, sampleRate: 0.01, delta: 1e-5 };
    expect(computeEpsilon({ ...base, steps: 0 })).toEqual({ epsilon: 0, order: 1.25 });
    // The floor of the conversion: epsilon at rdp ~ 0 is min over orders of
    // log((a-1)/a) - (log(delta) + log(a)) / (a - 1), attained at the largest order.
    const rdp = DEFAULT_ORDERS.map(() => 1e-9);
    const floor = epsilonFromRdp(DEFAULT_ORDERS, rdp, 1e-5);
    const a = 512;
    expect(floor.order).toBe(a);
    expect(floor.epsilon).toBeCloseTo(
      1e-9 + Math.log((a - 1) / a) - Math.log(1e-5 * a) / (a - 1),
      12,
    );
    expect(floor.epsilon).toBeGreaterThan(0.008);
    expect(floor.epsilon).toBeLessThan(0.009);
  });

  it('is monotonic in steps and in 1 / noise', () => {
    let previous = 0;
    for (const steps of [1, 2, 5, 10, 100, 1000, 10000]) {
      const { epsilon } = computeEpsilon({ noise: 1.1, sampleRate: 0.02, steps, delta: 1e-6 });
      expect(epsilon).toBeGreaterThan(previous);
      previous = epsilon;
    }
    const loud = computeEpsilon({ noise: 2, sampleRate: 0.02, steps: 100, delta: 1e-6 });
    const quiet = computeEpsilon({ noise: 0.8, sampleRate: 0.02, steps: 100, delta: 1e-6 });
    expect(loud.epsilon).toBeLessThan(quiet.epsilon);
  });

  it('reports infinite epsilon for infinite RDP', () => {
    const result = epsilonFromRdp([2, 3], [Infinity, Infinity], 1e-5);
    expect(result.epsilon).toBe(Infinity);
    expect(result.order).toBeNaN();
  });
});

describe('RDP accountant: parameter validation', () => {
  const good: PrivacyParams = { noise: 1, sampleRate: 0.01, steps: 10, delta: 1e-5 };
  it.each<[string, Partial<PrivacyParams>]>([
    ['q < 0', { sampleRate: -0.1 }],
    ['q > 1', { sampleRate: 1.5 }],
    ['q NaN', { sampleRate: NaN }],
    ['noise 0', { noise: 0 }],
    ['noise < 0', { noise: -1 }],
    ['noise Infinity', { noise: Infinity }],
    ['delta 0', { delta: 0 }],
    ['delta 1', { delta: 1 }],
    ['steps < 0', { steps: -1 }],
    ['fractional steps', { steps: 1.5 }],
    ['order 1', { orders: [1, 2] }],
    ['no orders', { orders: [] }],
  ])('rejects %s with HEARTH_E_PRIVACY_PARAMS', (_name, change) => {
    let caught: unknown;
    try {
      computeEpsilon({ ...good, ...change });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HearthError);
    expect((caught as HearthError).code).toBe('HEARTH_E_PRIVACY_PARAMS');
  });

  it('rejects mismatched and negative RDP lists', () => {
    expect(() => epsilonFromRdp([2, 3], [0.1], 1e-5)).toThrow(HearthError);
    expect(() => epsilonFromRdp([2], [-0.1], 1e-5)).toThrow(/non-negative/);
  });
});
