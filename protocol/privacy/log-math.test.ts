import { describe, expect, it } from 'vitest';
import {
  logAbsBinomial,
  logAdd,
  logComb,
  logErfc,
  logGamma,
  logSub,
  normalCdf,
} from './log-math.js';

describe('log-space numerics', () => {
  it('computes log Gamma to ~1e-15, including reflection and large arguments', () => {
    let logFactorial = 0;
    for (let n = 1; n <= 600; n++) {
      if (n > 1) logFactorial += Math.log(n);
      expect(Math.abs(logGamma(n + 1) - logFactorial)).toBeLessThanOrEqual(
        1e-14 * Math.max(1, logFactorial),
      );
    }
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 14);
    expect(logGamma(-0.5)).toBeCloseTo(Math.log(2 * Math.sqrt(Math.PI)), 14);
    expect(logGamma(0)).toBe(Infinity);
    expect(logGamma(-3)).toBe(Infinity);
  });

  it('gives binomials and their signs, generalised to real alpha', () => {
    expect(Math.exp(logComb(10, 3))).toBeCloseTo(120, 10);
    // C(2.5, 4) = 2.5 * 1.5 * 0.5 * (-0.5) / 24 < 0; C(2.5, 5) > 0.
    const four = logAbsBinomial(2.5, 4);
    expect(four.sign).toBe(-1);
    expect(Math.exp(four.logAbs)).toBeCloseTo((2.5 * 1.5 * 0.5 * 0.5) / 24, 14);
    expect(logAbsBinomial(2.5, 5).sign).toBe(1);
    expect(logAbsBinomial(3, 4)).toEqual({ logAbs: -Infinity, sign: 0 });
  });

  it('computes log erfc with relative accuracy far into the tail', () => {
    const reference: [number, number][] = [
      [-1, 1.8427007929497148],
      [0.1, 0.887537083981715],
      [0.5, 0.4795001221869535],
      [1.5, 0.033894853524689274],
      [2, 0.004677734981047266],
      [3, 2.209049699858544e-5],
      [5, 1.5374597944280349e-12],
      [10, 2.088487583762545e-45],
    ];
    for (const [x, value] of reference) {
      expect(Math.abs(logErfc(x) - Math.log(value))).toBeLessThan(1e-13);
    }
    // Far past underflow: the asymptotic series -x^2 - log(x sqrt(pi)) - 1/(2x^2) + 5/(8x^4).
    const x = 40;
    const asymptotic = -x * x - Math.log(x * Math.sqrt(Math.PI)) - 0.5 / x ** 2 + 0.625 / x ** 4;
    expect(logErfc(x)).toBeCloseTo(asymptotic, 9);
  });

  it('adds and subtracts in log space without overflow', () => {
    expect(logAdd(-Infinity, 2)).toBe(2);
    expect(logAdd(1000, 1000)).toBeCloseTo(1000 + Math.LN2, 12);
    expect(Math.exp(logSub(Math.log(5), Math.log(3)))).toBeCloseTo(2, 12);
    expect(logSub(3, 3)).toBe(-Infinity);
    expect(logSub(2000, 1)).toBe(2000);
    expect(() => logSub(1, 2)).toThrow(RangeError);
  });
});

describe('normalCdf', () => {
  it('matches scipy.stats.norm.cdf, with full relative accuracy far in the lower tail', () => {
    for (const [t, expected] of [
      [0, 0.5],
      [1, 0.8413447460685429],
      [-1.96, 0.024997895148220435],
      [-10, 7.61985302416047e-24],
      [-30, 4.906713927147908e-198],
    ] as const) {
      expect(Math.abs(normalCdf(t) / expected - 1)).toBeLessThan(1e-12);
    }
  });
});
