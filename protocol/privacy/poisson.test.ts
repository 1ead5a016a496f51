import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { mulberry32 } from '../prng.js';
import { logGamma } from './log-math.js';
import { logPoissonPmf, MAX_POISSON_MEAN, poissonSampler, samplePoisson } from './poisson.js';

/**
 * Statistical bounds: every check below allows 5 standard errors of its estimator (two-sided
 * probability ~6e-7 for a correct sampler), and the seeds are fixed, so each test is deterministic
 * and fails only if the sampler's distribution is off by several standard errors.
 * For Poisson(lambda): Var(sample mean) = lambda / n; Var(sample variance) ~ (mu4 - sigma^4) / n =
 * (lambda + 2 lambda^2) / n (fourth central moment lambda + 3 lambda^2).
 */
function moments(draws: Float64Array): { mean: number; variance: number } {
  let sum = 0;
  for (const x of draws) sum += x;
  const mean = sum / draws.length;
  let squares = 0;
  for (const x of draws) squares += (x - mean) ** 2;
  return { mean, variance: squares / (draws.length - 1) };
}

function draw(lambda: number, n: number, seed: number): Float64Array {
  const poisson = poissonSampler(lambda, mulberry32(seed));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = poisson();
  return out;
}

/**
 * Upper 1e-6 quantile of chi-square with df degrees of freedom, by the Wilson-Hilferty cube
 * approximation (z = 4.7534, the normal 1e-6 quantile); for df >= 10 it lies within 2.5% above
 * scipy's exact chi2.ppf(1 - 1e-6, df) (e.g. 66.15 against 65.42 at df 20).
 */
function chiSquareCritical(df: number): number {
  const c = 2 / (9 * df);
  return df * (1 - c + 4.7534243088 * Math.sqrt(c)) ** 3;
}

/** Pearson's chi-square of draws against the exact pmf, cells with expected count >= 20. */
function chiSquare(draws: Float64Array, lambda: number): { statistic: number; df: number } {
  const n = draws.length;
  const counts = new Map<number, number>();
  for (const x of draws) counts.set(x, (counts.get(x) ?? 0) + 1);
  const lo = Math.max(0, Math.floor(lambda - 12 * Math.sqrt(lambda) - 10));
  const hi = Math.ceil(lambda + 12 * Math.sqrt(lambda) + 10);
  // Cells: merge neighbouring k until the expected count reaches 20; tails folded into the ends.
  const cells: { expected: number; observed: number }[] = [];
  let expected = 0;
  let observed = 0;
  let tailMass = 1;
  for (let k = lo; k <= hi; k++) {
    const p = Math.exp(logPoissonPmf(k, lambda));
    tailMass -= p;
    expected += n * p;
    observed += counts.get(k) ?? 0;
    if (expected >= 20) {
      cells.push({ expected, observed });
      expected = 0;
      observed = 0;
    }
  }
  const last = cells[cells.length - 1]!;
  last.expected += expected + n * Math.max(0, tailMass);
  last.observed += observed;
  let statistic = 0;
  for (const cell of cells) statistic += (cell.observed - cell.expected) ** 2 / cell.expected;
  return { statistic, df: cells.length - 1 };
}

describe('Poisson sampler (inversion below 10, Hörmann PTRS from 10)', () => {
  it.each([0.05, 0.5, 3.7, 9.99, 10, 42.5, 1e4, 1e9, 1e13])(
    'has mean and variance lambda within 5 standard errors at lambda %s',
    (lambda) => {
      const n = 200_000;
      const draws = draw(lambda, n, 12345);
      expect(draws.every(Number.isInteger)).toBe(true);
      expect(draws.every((x) => x >= 0)).toBe(true);
      const { mean, variance } = moments(draws);
      expect(Math.abs(mean - lambda)).toBeLessThan(5 * Math.sqrt(lambda / n));
      expect(Math.abs(variance - lambda)).toBeLessThan(
        5 * Math.sqrt((lambda + 2 * lambda ** 2) / n),
      );
    },
  );

  it.each([0.8, 3.7, 9.5, 10, 25, 300, 1e6])(
    'matches the Poisson pmf by a chi-square test at lambda %s (reject above the 1e-6 quantile)',
    (lambda) => {
      const { statistic, df } = chiSquare(draw(lambda, 200_000, 777), lambda);
      expect(df).toBeGreaterThanOrEqual(5);
      expect(statistic).toBeLessThan(chiSquareCritical(df));
    },
  );

  it('evaluates log P(X = k) stably where the textbook form cancels', () => {
    // Moderate lambda: the stable form equals -lambda + k log lambda - log k! to rounding.
    for (const k of [10, 17, 50, 80, 200]) {
      const direct = -50 + k * Math.log(50) - logGamma(k + 1);
      expect(Math.abs(logPoissonPmf(k, 50) - direct)).toBeLessThan(1e-12 * Math.max(1, -direct));
    }
    // lambda = 1e13: successive log ratios must be log(lambda / (k + 1)) (the stable form is within
    // ~3e-9 out to 9.5 sd, the rounding of its terms of size 3e7; the textbook form is off by 0.06).
    // At lambda = 1e10 the pmf over +-10 sd must sum to 1 (stable: within 5e-13; textbook: 2.9e-6).
    const lambda = 1e13;
    for (const k of [lambda - 3e7, lambda - 12345, lambda, lambda + 1, lambda + 4e6]) {
      const step = logPoissonPmf(k + 1, lambda) - logPoissonPmf(k, lambda);
      expect(Math.abs(step - Math.log(lambda / (k + 1)))).toBeLessThan(1e-8);
    }
    const small = 1e10;
    const sd = Math.sqrt(small);
    let total = 0;
    for (let k = small - 10 * sd; k <= small + 10 * sd; k++)
      total += Math.exp(logPoissonPmf(k, small));
    expect(Math.abs(total - 1)).toBeLessThan(1e-9);
  });

  it('is deterministic for a seeded source and gives 0 for lambda 0', () => {
    expect(draw(123.4, 50, 9)).toEqual(draw(123.4, 50, 9));
    expect(draw(123.4, 50, 9)).not.toEqual(draw(123.4, 50, 10));
    expect(samplePoisson(0, () => 0.5)).toBe(0);
  });

  it.each([-1, NaN, Infinity, MAX_POISSON_MEAN * 2])(
    'rejects lambda %s with HEARTH_E_PRIVACY_PARAMS',
    (lambda) => {
      let caught: unknown;
      try {
        poissonSampler(lambda, Math.random);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(HearthError);
      expect((caught as HearthError).code).toBe('HEARTH_E_PRIVACY_PARAMS');
    },
  );

  it('refuses to spin on a broken uniform source', () => {
    expect(() => samplePoisson(100, () => 0.9999999)).toThrow(/uniform source looks broken/);
  });
});
