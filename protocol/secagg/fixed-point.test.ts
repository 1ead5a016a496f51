import { describe, expect, it } from 'vitest';
import { l2Norm } from '../clip.js';
import { mulberry32, normal } from '../prng.js';
import { thrownCode } from '../testing.js';
import {
  decodeFixedPointSum,
  encodeFixedPoint,
  fixedPointScale,
  ROUNDING_BETA,
  type Rounding,
} from './fixed-point.js';
import { seededRandomBytes } from './testing.js';

/** Sums encoded vectors mod 2^32, as the unmasked secure aggregate is. */
function sumMod(vectors: readonly Uint32Array[]): Uint32Array {
  const sum = new Uint32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i]! + v[i]!) >>> 0;
  return sum;
}

/** A random vector of L2 norm exactly `norm`. */
function onSphere(length: number, norm: number, rng: () => number): Float64Array {
  const v = Float64Array.from({ length }, () => normal(rng));
  const scale = norm / l2Norm(v);
  return v.map((x) => x * scale);
}

const ROUNDINGS: Rounding[] = ['nearest', 'stochastic'];

describe('fixed-point encoding into Z_2^32', () => {
  it('picks the largest scale at which m coordinates of magnitude S stay below 2^(bits-1)', () => {
    expect(fixedPointScale(1, 1)).toBe(2 ** 31 - 1);
    expect(fixedPointScale(2, 1000)).toBe(Math.floor((2 ** 31 - 1) / 1000) / 2);
    expect(fixedPointScale(1, 10, 16)).toBe(Math.floor((2 ** 15 - 1) / 10));
  });

  it.each([
    [1, 32],
    [7, 32],
    [1000, 32],
    [100_000, 32],
    [100, 20],
    [3, 8],
  ])('m = %i updates of norm exactly S on one coordinate never wrap (bits = %i)', (m, bits) => {
    for (const rounding of ROUNDINGS) {
      for (const [clip, sign] of [
        [1, 1],
        [0.37, -1],
        [1e4, 1],
      ] as const) {
        const random = seededRandomBytes(m);
        const update = [sign * clip, 0, 0];
        const encoded = Array.from({ length: m }, () =>
          encodeFixedPoint(update, clip, m, bits, { rounding, random }),
        );
        const sum = sumMod(encoded);
        expect(Math.abs(sum[0]! | 0)).toBeLessThanOrEqual(2 ** (bits - 1) - 1);
        const decoded = decodeFixedPointSum(sum, clip, m, bits);
        expect(Math.sign(decoded[0]!)).toBe(sign);
        expect(Math.abs(decoded[0]! - sign * m * clip)).toBeLessThanOrEqual(
          m / fixedPointScale(clip, m, bits),
        );
        expect([...decoded.subarray(1)]).toEqual([0, 0]);
      }
    }
  });

  it('clamps coordinates beyond S, so even an unclipped update cannot wrap the sum', () => {
    const m = 50;
    const encoded = Array.from({ length: m }, () => encodeFixedPoint([1e9, -1e9], 1, m, 32));
    const decoded = decodeFixedPointSum(sumMod(encoded), 1, m, 32);
    expect(decoded[0]).toBeCloseTo(m, 4);
    expect(decoded[1]).toBeCloseTo(-m, 4);
  });

  it.each(ROUNDINGS)(
    '%s rounding: the decoded sum of m = 100 updates has a small, bounded relative error',
    (rounding) => {
      const [m, length, clip] = [100, 1000, 0.5];
      const rng = mulberry32(4);
      const random = seededRandomBytes(4);
      const updates = Array.from({ length: m }, () => onSphere(length, clip, rng));
      const exact = new Float64Array(length);
      for (const u of updates) for (let i = 0; i < length; i++) exact[i] = exact[i]! + u[i]!;
      const encoded = updates.map((u) => encodeFixedPoint(u, clip, m, 32, { rounding, random }));
      const decoded = decodeFixedPointSum(sumMod(encoded), clip, m, 32);
      const error = l2Norm(decoded.map((x, i) => x - exact[i]!));
      const relative = error / l2Norm(exact);
      // Worst case: every device off by a full step (stochastic) or half a step (nearest) everywhere.
      const step = 1 / fixedPointScale(clip, m);
      const bound = (Math.sqrt(length) * m * step) / (rounding === 'nearest' ? 2 : 1);
      expect(error).toBeLessThanOrEqual(bound);
      expect(relative).toBeLessThan(1e-5); // measured: 4e-7 nearest, 6e-7 stochastic
      expect(relative).toBeGreaterThan(0);
    },
  );

  it('stochastic rounding is unbiased: the mean of many encodings is the value', () => {
    const [clip, m, bits] = [1, 3, 4]; // scale 2: a coarse grid, so the bias would show
    const random = seededRandomBytes(9);
    const value = 0.3;
    const draws = encodeFixedPoint(new Array(20_000).fill(value), clip, m, bits, { random });
    const mean = draws.reduce((sum, word) => sum + (word | 0), 0) / draws.length;
    expect(mean / fixedPointScale(clip, m, bits)).toBeCloseTo(value, 2);
    const nearest = encodeFixedPoint([value], clip, m, bits, { rounding: 'nearest' });
    expect((nearest[0]! | 0) / fixedPointScale(clip, m, bits)).toBe(0.5);
  });

  it("decodes a sum known only in a narrower ring, Z_2^24, from its words' low bits", () => {
    const [clip, m, bits, length] = [1, 50, 24, 2000];
    const rng = mulberry32(17);
    const random = seededRandomBytes(4);
    const updates = Array.from({ length: m }, () => onSphere(length, clip, rng));
    // Every device's mass on the first coordinate, either sign: the sum's extremes.
    updates.forEach((u, k) => (u[0] = k % 5 === 0 ? clip : -clip));
    const encoded = updates.map((u) => encodeFixedPoint(u, clip, m, bits, { random }));
    const full = sumMod(encoded);
    // What a server of a 24-bit ring learns: each word's low 24 bits (masks, summed mod 2^32,
    // cancel in them too).
    const low = full.map((w) => w & 0xffffff);
    expect(low.some((w, i) => w !== full[i])).toBe(true); // negative sums lose their high bits
    const decoded = decodeFixedPointSum(low, clip, m, bits);
    const exact = new Float64Array(length);
    for (const u of updates) for (let i = 0; i < length; i++) exact[i]! += u[i]!;
    const step = 1 / fixedPointScale(clip, m, bits);
    for (let i = 0; i < length; i++)
      expect(Math.abs(decoded[i]! - exact[i]!)).toBeLessThan(m * step);
    expect(decoded[0]).toBeCloseTo(10 - 40, 3);
  });

  it('rounds conditionally: every draw kept is within maxNorm, which plain rounding breaks', () => {
    const [clip, m, bits, length] = [1, 1000, 24, 400];
    const scale = fixedPointScale(clip, m, bits);
    // Every fractional part 1/2, so the rounding's spread is largest, and the norm just below S.
    const k = Math.floor(scale / Math.sqrt(length)) - 1;
    const last = Math.floor(Math.sqrt(scale ** 2 - (length - 1) * (k + 0.5) ** 2) - 0.5) + 0.5;
    const values = Array.from(
      { length },
      (_, i) => ((i % 2 ? -1 : 1) * (i === length - 1 ? last : k + 0.5)) / scale,
    );
    expect(l2Norm(values)).toBeLessThanOrEqual(clip);
    // The bound the accountant prices at ROUNDING_BETA (skellamSensitivity's conditional one).
    const scaled = clip * scale;
    const bound = Math.sqrt(scaled ** 2 + length / 4 + scaled + Math.sqrt(length) / 2);
    const norms = (maxNorm?: number) => {
      const random = seededRandomBytes(8);
      return Array.from({ length: 100 }, () => {
        const words = encodeFixedPoint(values, clip, m, bits, {
          random,
          ...(maxNorm ? { maxNorm } : {}),
        });
        return Math.hypot(...Array.from(words, (w) => (w << 8) >> 8));
      });
    };
    const plain = norms().filter((n) => n > bound).length;
    expect(plain).toBeGreaterThan(3);
    expect(norms(bound).every((n) => n <= bound)).toBe(true);
    expect(ROUNDING_BETA).toBeCloseTo(Math.exp(-0.5), 12);
    expect(thrownCode(() => encodeFixedPoint(values, clip, m, bits, { maxNorm: 1 }))).toBe(
      'HEARTH_E_SECAGG_PARAMS',
    );
  });

  it('refuses non-finite values and impossible ranges', () => {
    expect(thrownCode(() => encodeFixedPoint([0, NaN], 1, 10))).toBe('HEARTH_E_UPDATE_NONFINITE');
    expect(thrownCode(() => encodeFixedPoint([Infinity], 1, 10))).toBe('HEARTH_E_UPDATE_NONFINITE');
    for (const [clip, m, bits] of [
      [0, 10, 32],
      [1, 0, 32],
      [1, 10, 33],
      [1, 200, 8],
    ] as const) {
      expect(thrownCode(() => fixedPointScale(clip, m, bits))).toBe('HEARTH_E_SECAGG_PARAMS');
    }
  });
});
