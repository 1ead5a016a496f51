import { afterEach, describe, expect, it, vi } from 'vitest';
import { HearthError } from '../errors.js';
import { mulberry32 } from '../prng.js';
import { logPoissonPmf } from './poisson.js';
import { addSkellamNoise, MAX_SKELLAM_VARIANCE, sampleSkellam } from './skellam-sampler.js';
import { cryptoUniform } from './uniform.js';

/**
 * Statistical bounds: 5 standard errors of each estimator (two-sided ~6e-7 for a correct sampler);
 * seeded sources make these tests deterministic. Skellam with variance v (Poisson(v/2) - Poisson(v/2))
 * has every even cumulant v and odd ones 0, so its fourth central moment is v + 3 v^2 and
 * Var(sample variance) ~ (v + 2 v^2) / n; Var(sample mean) = v / n. Symmetry: given N non-zero
 * draws, the number of positive ones is Binomial(N, 1/2), so |#positive - #negative| has standard
 * deviation sqrt(N).
 */
function summary(draws: ArrayLike<number>) {
  const n = draws.length;
  let sum = 0;
  let positive = 0;
  let negative = 0;
  for (let i = 0; i < n; i++) {
    const x = draws[i]!;
    sum += x;
    if (x > 0) positive++;
    else if (x < 0) negative++;
  }
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (draws[i]! - mean) ** 2;
  return { n, mean, variance: squares / (n - 1), positive, negative };
}

function expectSkellamMoments(draws: ArrayLike<number>, v: number): void {
  const { n, mean, variance, positive, negative } = summary(draws);
  expect(Math.abs(mean)).toBeLessThan(5 * Math.sqrt(v / n));
  expect(Math.abs(variance - v)).toBeLessThan(5 * Math.sqrt((v + 2 * v * v) / n));
  expect(Math.abs(positive - negative)).toBeLessThan(5 * Math.sqrt(positive + negative));
}

/** P(D = k) for D ~ Skellam with variance v: sum over j of P(X = j + |k|) P(Y = j), X, Y ~ Poisson(v/2). */
function skellamPmf(k: number, v: number): number {
  const lambda = v / 2;
  const top = Math.ceil(lambda + 15 * Math.sqrt(lambda) + 30);
  let p = 0;
  for (let j = 0; j <= top; j++) {
    p += Math.exp(logPoissonPmf(j + Math.abs(k), lambda) + logPoissonPmf(j, lambda));
  }
  return p;
}

describe('Skellam noise: one device', () => {
  it.each([0.5, 7, 40, 1e6])('has mean 0, variance v and symmetric signs at v = %s', (v) => {
    const noise = sampleSkellam(200_000, v, mulberry32(2024));
    expect(noise).toBeInstanceOf(Int32Array);
    expectSkellamMoments(noise, v);
  });

  it('is reproducible from a seeded source', () => {
    expect(sampleSkellam(1000, 30, mulberry32(5))).toEqual(sampleSkellam(1000, 30, mulberry32(5)));
    expect(sampleSkellam(1000, 30, mulberry32(5))).not.toEqual(
      sampleSkellam(1000, 30, mulberry32(6)),
    );
  });

  it('adds modulo 2^32: the same bits in a Uint32Array as in an Int32Array', () => {
    const start = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff, 12345];
    const unsigned = Uint32Array.from(start);
    addSkellamNoise(unsigned, 1e4, mulberry32(11));
    const noise = sampleSkellam(start.length, 1e4, mulberry32(11));
    start.forEach((x, i) => expect(unsigned[i]).toBe((x + noise[i]!) >>> 0));
    const signed = Int32Array.from(start.map((x) => x | 0));
    addSkellamNoise(signed, 1e4, mulberry32(11));
    expect(new Uint32Array(signed.buffer)).toEqual(unsigned);
  });

  it('leaves the vector unchanged at variance 0 (plaintext test mode)', () => {
    const v = Int32Array.from([3, -4, 5]);
    addSkellamNoise(v, 0, mulberry32(1));
    expect(Array.from(v)).toEqual([3, -4, 5]);
  });
});

describe('Skellam noise: the sum over m devices carries Skellam(mu)', () => {
  it.each([
    [1000, 25, 40_000],
    [50, 100, 20_000],
  ])('mu %s from %s devices: variance mu per coordinate', (mu, m, length) => {
    const rng = mulberry32(99);
    const sum = new Int32Array(length);
    const device = new Int32Array(length);
    for (let d = 0; d < m; d++) {
      device.fill(0);
      addSkellamNoise(device, mu / m, rng);
      if (d === 0) expectSkellamMoments(device, mu / m);
      for (let i = 0; i < length; i++) sum[i]! += device[i]!;
    }
    expectSkellamMoments(sum, mu);
  });

  it('matches the Skellam(mu) pmf by a chi-square test (mu 50 from 100 devices of variance 0.5)', () => {
    const mu = 50;
    const length = 40_000;
    const rng = mulberry32(4242);
    const sum = new Int32Array(length);
    for (let d = 0; d < 100; d++) addSkellamNoise(sum, mu / 100, rng);
    const counts = new Map<number, number>();
    for (const x of sum) counts.set(x, (counts.get(x) ?? 0) + 1);
    // Cells k = -60..60 (8.5 sd) merged until the expected count reaches 20; the tails go to the end cells.
    const cells: { expected: number; observed: number }[] = [];
    let expected = 0;
    let observed = 0;
    for (let k = -60; k <= 60; k++) {
      expected += length * skellamPmf(k, mu);
      observed += counts.get(k) ?? 0;
      if (expected >= 20) {
        cells.push({ expected, observed });
        expected = 0;
        observed = 0;
      }
    }
    cells[cells.length - 1]!.expected += expected;
    cells[cells.length - 1]!.observed += observed;
    expect([...counts.keys()].every((k) => Math.abs(k) <= 60)).toBe(true);
    let statistic = 0;
    for (const c of cells) statistic += (c.observed - c.expected) ** 2 / c.expected;
    const df = cells.length - 1;
    // Upper 1e-6 quantile of chi-square(df) by Wilson-Hilferty (within 2.5% above the exact one).
    const c = 2 / (9 * df);
    expect(df).toBeGreaterThan(20);
    expect(statistic).toBeLessThan(df * (1 - c + 4.7534243088 * Math.sqrt(c)) ** 3);
  });
});

describe('Skellam noise: the cryptographic source', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('gives 53-bit uniforms in [0, 1) across several refills', () => {
    const uniform = cryptoUniform();
    const n = 50_000; // about six blocks of 8,192
    let sum = 0;
    let below32Bits = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = uniform();
      if (!(u >= 0 && u < 1)) outside++;
      sum += u;
      // A 32-bit uniform is a multiple of 2^-32; a 53-bit one almost never is (chance 2^-21).
      if (Number.isInteger(u * 2 ** 32)) below32Bits++;
    }
    // Not seeded: 5 standard errors (sd 1/sqrt(12)) means a false alarm about once in 10^6 runs.
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(below32Bits).toBeLessThan(5);
  });

  it('is the default source of the noise', () => {
    const noise = sampleSkellam(100_000, 200);
    // Not seeded: the same 5-standard-error bounds, a false alarm about once in 10^6 runs.
    expectSkellamMoments(noise, 200);
  });

  it('fails with HEARTH_E_CONFIG where the runtime has no crypto.getRandomValues', () => {
    vi.stubGlobal('crypto', undefined);
    let caught: unknown;
    try {
      cryptoUniform();
    } catch (error) {
      caught = error;
    }
    expect((caught as HearthError).code).toBe('HEARTH_E_CONFIG');
  });
});

describe('Skellam noise: validation', () => {
  it.each([-1, NaN, Infinity, MAX_SKELLAM_VARIANCE * 2])(
    'rejects variance %s with HEARTH_E_PRIVACY_PARAMS',
    (variance) => {
      let caught: unknown;
      try {
        sampleSkellam(4, variance, mulberry32(1));
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(HearthError);
      expect((caught as HearthError).code).toBe('HEARTH_E_PRIVACY_PARAMS');
    },
  );

  it.each([-1, 1.5, NaN, 2 ** 31])('rejects length %s with HEARTH_E_ARGUMENT', (length) => {
    let caught: unknown;
    try {
      sampleSkellam(length, 1, mulberry32(1));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HearthError);
    expect((caught as HearthError).code).toBe('HEARTH_E_ARGUMENT');
  });
});
