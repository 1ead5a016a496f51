import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { computeEpsilon } from './rdp.js';
import {
  computeSkellamEpsilon,
  computeSkellamRdp,
  SKELLAM_ORDERS,
  skellamRdp,
  skellamSensitivity,
  type SkellamPrivacyParams,
} from './skellam.js';

function relErr(actual: number, expected: number): number {
  return Math.abs(actual / expected - 1);
}

/**
 * Reference values: google-research/federated `distributed_dp/accounting_utils.py` (commit
 * 5e27a86323a35c2018fb97fbbe755c7ade9370ab), `skellam_epsilon(scale, central_stddev, l2_sens, beta,
 * dim, q, steps, delta)` with its default RDP_ORDERS, its `_skellam_rdp`, `_compute_rdp_subsampled`,
 * `rounded_l2_norm_bound` and `rounded_l1_norm_bound` transcribed line for line into Python and run
 * with numpy 2.4 / scipy 1.17 (scipy's logsumexp, comb and gammaln), and TF Privacy's current
 * RDP -> (eps, delta) conversion (the one rdp.ts reproduces). The paper publishes its privacy results
 * as figures only, so these are computed from the reference code, not copied from a table. mu is the
 * reference's (central_stddev * scale)^2; l1 and l2 are its scaled, rounded sensitivities.
 */
const REFERENCE: {
  name: string;
  params: SkellamPrivacyParams;
  l1: number;
  l2: number;
  epsilon: number;
  order: number;
  rdp: Record<number, number>;
}[] = [
  {
    name: 'one unsampled round (scale 64, sigma 1, L 1024, q 1, plain rounding)',
    params: {
      clip: 1,
      scale: 64,
      dimension: 1024,
      mu: 64 ** 2,
      sampleRate: 1,
      steps: 1,
      delta: 1e-5,
    },
    l1: 3072,
    l2: 96,
    epsilon: 7.589097590745728,
    order: 4,
    rdp: {
      2: 2.2506866455078125,
      8: 9.0023345947265625,
      32: 36.00892639160156,
      256: 288.07044982910156,
    },
  },
  {
    name: 'q 0.01, 1000 rounds, L 2^16, conditional rounding beta e^-0.5',
    params: {
      clip: 1,
      scale: 1000,
      dimension: 65536,
      beta: Math.exp(-0.5),
      mu: (1.2 * 1000) ** 2,
      sampleRate: 0.01,
      steps: 1000,
      delta: 1e-6,
    },
    l1: 258231.80755282647,
    l2: 1008.7179982532284,
    epsilon: 2.002549658786419,
    order: 10,
    rdp: { 2: 0.10270470747597571, 8: 0.5912864149779017, 32: 6587.411878671573 },
  },
  {
    name: 'coarse scale 16, L 64: rounding and discreteness matter (q 0.1, 100 rounds)',
    params: {
      clip: 1,
      scale: 16,
      dimension: 64,
      mu: (2 * 16) ** 2,
      sampleRate: 0.1,
      steps: 100,
      delta: 1e-5,
    },
    l1: 192,
    l2: 24,
    epsilon: 6.275493329900474,
    order: 4,
    rdp: { 2: 0.753414860254864, 8: 16.529615539786654, 256: 6976.314327412976 },
  },
  {
    name: 'the paper-style FL setting: 100 of 3400 clients, 1500 rounds, delta 1/3400, S 0.5',
    params: {
      clip: 0.5,
      scale: 1024,
      dimension: 2 ** 14,
      beta: Math.exp(-0.5),
      mu: (0.8 * 1024) ** 2,
      sampleRate: 100 / 3400,
      steps: 1500,
      delta: 1 / 3400,
    },
    l1: 66117.42088133807,
    l2: 516.5423506354537,
    epsilon: 3.602443872471211,
    order: 4,
    rdp: { 2: 0.6333826785335783, 8: 4.760495177783247, 32: 4135.3126161994605 },
  },
  {
    name: 'ten unsampled rounds with conditional rounding (scale 256, sigma 3, L 4096)',
    params: {
      clip: 1,
      scale: 256,
      dimension: 4096,
      beta: Math.exp(-0.5),
      mu: (3 * 256) ** 2,
      sampleRate: 1,
      steps: 10,
      delta: 1e-5,
    },
    l1: 16547.187313860926,
    l2: 258.549801779077,
    epsilon: 5.086120960493262,
    order: 5,
    rdp: { 2: 1.1333571893192047, 8: 4.533428058027674, 256: 145.06969063131106 },
  },
  {
    name: 'very coarse (scale 4, mu 64, L 16): the min takes 3 Delta1 / (2 mu) from order 96 up',
    params: {
      clip: 1,
      scale: 4,
      dimension: 16,
      mu: (2 * 4) ** 2,
      sampleRate: 0.5,
      steps: 10,
      delta: 1e-5,
    },
    l1: 32,
    l2: 8,
    epsilon: 13.812470639916665,
    order: 2,
    rdp: {
      2: 3.685839536066328,
      100: 500.6094842659266,
      128: 640.6004545808657,
      256: 1280.5844287868754,
    },
  },
];

describe('Skellam accountant: values computed with the reference implementation', () => {
  it.each(REFERENCE)('reproduces $name', ({ params, l1, l2, epsilon, order, rdp }) => {
    const sensitivity = skellamSensitivity(params);
    expect(relErr(sensitivity.l2, l2)).toBeLessThan(1e-12);
    expect(relErr(sensitivity.l1, l1)).toBeLessThan(1e-12);
    const rdpValues = computeSkellamRdp(sensitivity, params.mu, params.sampleRate, params.steps);
    for (const [a, expected] of Object.entries(rdp)) {
      expect(relErr(rdpValues[SKELLAM_ORDERS.indexOf(Number(a))]!, expected)).toBeLessThan(1e-9);
    }
    const result = computeSkellamEpsilon(params);
    expect(relErr(result.epsilon, epsilon)).toBeLessThan(1e-9);
    expect(result.order).toBe(order);
  });

  it("evaluates the paper's bound by hand at alpha 2 (first reference case)", () => {
    // 2 * 96^2 / (2 * 4096) + min((3 * 96^2 + 6 * 3072) / (4 * 4096^2), 3 * 3072 / (2 * 4096)).
    const value = skellamRdp(2, { l1: 3072, l2: 96 }, 4096);
    expect(value).toBe(2.25 + 46080 / 67108864);
    // Small mu takes the other branch: 2 * 16 / 2 + min((3 * 16 + 48) / 4, 3 * 8 / 2) = 16 + 12.
    expect(skellamRdp(2, { l1: 8, l2: 4 }, 1)).toBe(28);
  });
});

describe('Skellam accountant: quantisation sensitivities', () => {
  it('adds sqrt(L) for plain randomized rounding', () => {
    expect(skellamSensitivity({ clip: 0.5, scale: 100, dimension: 400 })).toEqual({
      l2: 70,
      l1: 70 * 20,
    });
  });

  it('uses L1 <= L2^2 once conditional rounding brings L2 below sqrt(L)', () => {
    const { l1, l2 } = skellamSensitivity({ clip: 1, scale: 1, dimension: 10000, beta: 0.5 });
    const expected = Math.sqrt(1 + 2500 + Math.sqrt(2 * Math.log(2)) * (1 + 50));
    expect(relErr(l2, expected)).toBeLessThan(1e-14);
    expect(l2).toBeLessThan(100);
    expect(l1).toBe(l2 * l2);
  });

  it('never lets conditional rounding loosen the plain bound', () => {
    for (const beta of [1e-300, 1e-9, 0.01, 0.5, 0.99]) {
      const plain = skellamSensitivity({ clip: 3, scale: 10, dimension: 16 });
      const conditional = skellamSensitivity({ clip: 3, scale: 10, dimension: 16, beta });
      expect(conditional.l2).toBeLessThanOrEqual(plain.l2);
    }
  });
});

describe('Skellam accountant: properties', () => {
  const sensitivity = { l1: 1000 * 31.6, l2: 1000 };

  it('approaches the Gaussian RDP alpha Delta2^2 / (2 mu) as mu grows, the excess falling like 1/mu', () => {
    let previous = Infinity;
    for (const mu of [1e3, 1e4, 1e5, 1e6, 1e7, 1e8]) {
      const gaussian = (8 * sensitivity.l2 ** 2) / (2 * mu);
      const excess = skellamRdp(8, sensitivity, mu) / gaussian - 1;
      expect(excess).toBeGreaterThan(0);
      expect(excess).toBeLessThan(previous);
      // For mu > ((2a-1) D2^2 + 6 D1) / (6 D1) (about 80 here) the first branch of the min applies:
      // excess = ((2a-1) D2^2 + 6 D1) / (2a D2^2 mu), at a = 8.
      const predicted =
        (15 * sensitivity.l2 ** 2 + 6 * sensitivity.l1) / (16 * sensitivity.l2 ** 2 * mu);
      expect(relErr(excess, predicted)).toBeLessThan(1e-6);
      previous = excess;
    }
    expect(previous).toBeLessThan(2e-8);
  });

  it('equals the Gaussian accountant at q = 1 in the large-mu limit (fixed noise multiplier)', () => {
    // Noise z S in update units, i.e. mu = (z S scale)^2, quantised ever more finely: the rounding
    // inflation sqrt(L) / (S scale) and the discreteness term (~1 / mu) both vanish, and epsilon
    // tends to the Gaussian mechanism's with noise multiplier z.
    const z = 1.1;
    let previous = Infinity;
    for (const scale of [2 ** 6, 2 ** 10, 2 ** 14, 2 ** 20, 2 ** 26]) {
      const dimension = 1024;
      const mu = (z * scale) ** 2;
      const common = { sampleRate: 1, steps: 50, delta: 1e-6, orders: SKELLAM_ORDERS };
      const skellam = computeSkellamEpsilon({ clip: 1, scale, dimension, mu, ...common });
      const gaussian = computeEpsilon({ noise: z, ...common });
      const gap = skellam.epsilon / gaussian.epsilon - 1;
      expect(gap).toBeGreaterThan(0);
      expect(gap).toBeLessThan(previous);
      previous = gap;
    }
    // Measured: 0.96 at scale 2^6, 4.9e-2 at 2^10, 3.0e-3 at 2^14, 4.7e-5 at 2^20, 7.3e-7 at 2^26.
    expect(previous).toBeLessThan(2e-6);
  });

  it('is never below the exact sampled Gaussian (rdp.ts), and pays for the general subsampling bound', () => {
    // Noise z Delta2 with fine quantisation, so the unsampled Skellam RDP is the Gaussian's up to
    // ~1e-12. What remains is the subsampling analysis: the Zhu-Wang bound holds for any mechanism
    // and is looser than the exact sampled-Gaussian one (equal at alpha = 2 only).
    const z = 1.1;
    const quantisation = { clip: 1, scale: 2 ** 20, dimension: 1024 };
    const { l2 } = skellamSensitivity(quantisation);
    const mu = (z * l2) ** 2;
    const both = (sampleRate: number, steps: number) => {
      const common = { sampleRate, steps, delta: 1e-6, orders: SKELLAM_ORDERS };
      return {
        skellam: computeSkellamEpsilon({ ...quantisation, mu, ...common }).epsilon,
        gaussian: computeEpsilon({ noise: z, ...common }).epsilon,
      };
    };
    for (const sampleRate of [1e-4, 1e-3, 0.01, 0.1]) {
      for (const steps of [1, 100, 1000, 10000]) {
        const { skellam, gaussian } = both(sampleRate, steps);
        expect(skellam).toBeGreaterThanOrEqual(gaussian * (1 - 1e-12));
      }
    }
    // Hearth-like: q 0.01, 1000 rounds. Measured: 2.3140 against 1.9814, 16.8% more epsilon.
    const { skellam, gaussian } = both(0.01, 1000);
    expect(skellam / gaussian).toBeGreaterThan(1.1);
    expect(skellam / gaussian).toBeLessThan(1.2);
    // At alpha = 2 the bound is exact for the Gaussian, so one round's RDP agrees there.
    const rdp = computeSkellamRdp({ l1: l2 * 32, l2 }, mu, 0.01, 1, [2]);
    const exact = Math.log1p(1e-4 * Math.expm1(1 / (z * z)));
    expect(relErr(rdp[0]!, exact)).toBeLessThan(1e-9);
  });

  it('is monotonic: less epsilon with more noise, more with a higher sample rate or more rounds', () => {
    const base: SkellamPrivacyParams = {
      clip: 1,
      scale: 500,
      dimension: 4096,
      mu: 600 ** 2,
      sampleRate: 0.02,
      steps: 200,
      delta: 1e-6,
    };
    const eps = (change: Partial<SkellamPrivacyParams>) =>
      computeSkellamEpsilon({ ...base, ...change }).epsilon;
    let previous = Infinity;
    for (const sigma of [300, 450, 600, 900, 1500]) {
      const e = eps({ mu: sigma ** 2 });
      expect(e).toBeLessThan(previous);
      previous = e;
    }
    previous = 0;
    for (const sampleRate of [0.001, 0.005, 0.02, 0.1, 0.5, 1]) {
      const e = eps({ sampleRate });
      expect(e).toBeGreaterThan(previous);
      previous = e;
    }
    previous = 0;
    for (const steps of [1, 10, 100, 1000, 10000]) {
      const e = eps({ steps });
      expect(e).toBeGreaterThan(previous);
      previous = e;
    }
  });

  it('composes rounds additively and costs nothing at q = 0 or zero rounds', () => {
    const s = { l1: 5000, l2: 100 };
    const one = computeSkellamRdp(s, 2e4, 0.05, 1);
    const many = computeSkellamRdp(s, 2e4, 0.05, 37);
    one.forEach((r, k) => expect(relErr(many[k]!, 37 * r)).toBeLessThan(1e-12));
    expect(computeSkellamRdp(s, 2e4, 0, 100).every((r) => r === 0)).toBe(true);
    const zero = { clip: 1, scale: 10, dimension: 8, mu: 100, sampleRate: 0.1, delta: 1e-5 };
    expect(computeSkellamEpsilon({ ...zero, steps: 0 }).epsilon).toBe(0);
    expect(computeSkellamEpsilon({ ...zero, sampleRate: 0, steps: 10 }).epsilon).toBe(0);
  });
});

describe('Skellam accountant: parameter validation', () => {
  const good: SkellamPrivacyParams = {
    clip: 1,
    scale: 100,
    dimension: 1000,
    mu: 1e4,
    sampleRate: 0.01,
    steps: 10,
    delta: 1e-5,
  };
  it.each<[string, Partial<SkellamPrivacyParams>]>([
    ['mu 0', { mu: 0 }],
    ['mu NaN', { mu: NaN }],
    ['mu Infinity', { mu: Infinity }],
    ['scale 0', { scale: 0 }],
    ['clip < 0', { clip: -1 }],
    ['fractional dimension', { dimension: 10.5 }],
    ['dimension 0', { dimension: 0 }],
    ['beta 1', { beta: 1 }],
    ['beta < 0', { beta: -0.1 }],
    ['q > 1', { sampleRate: 1.01 }],
    ['steps < 0', { steps: -1 }],
    ['delta 0', { delta: 0 }],
    ['fractional order', { orders: [2, 2.5] }],
    ['order 1', { orders: [1, 2] }],
    ['no orders', { orders: [] }],
  ])('rejects %s with HEARTH_E_PRIVACY_PARAMS', (_name, change) => {
    let caught: unknown;
    try {
      computeSkellamEpsilon({ ...good, ...change });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HearthError);
    expect((caught as HearthError).code).toBe('HEARTH_E_PRIVACY_PARAMS');
  });
});
