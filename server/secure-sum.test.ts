/**
 * The simulation's stand-in for a secure round against the real protocol on a small round: the
 * same sum to the fixed-point rounding without noise, and noise of the same variance with it.
 */
import { describe, expect, it } from 'vitest';
import { addSkellamNoise } from '../protocol/privacy/index.js';
import { mulberry32, normal } from '../protocol/prng.js';
import {
  decodeFixedPointSum,
  encodeFixedPoint,
  runRoundInProcess,
  wordBytes,
} from '../protocol/secagg/index.js';
import { seededRandomBytes, testParams } from '../protocol/secagg/testing.js';
import { roundPrivacy, type SecureRoundInfo } from '../protocol/secagg/http.js';
import { ROUNDING_SHARE, secureEncoding } from './secure-rounds.js';
import { standInSum } from './secure-sum.js';

const n = 8;
const L = 4000;
const S = 1;

/** n updates of norm S, and their float sum. */
function updates(): { deltas: Float64Array[]; sum: Float64Array } {
  const rng = mulberry32(9);
  const deltas = Array.from({ length: n }, () => {
    const raw = Float64Array.from({ length: L }, () => normal(rng));
    const norm = Math.hypot(...raw);
    return raw.map((x) => (x / norm) * S);
  });
  const sum = new Float64Array(L);
  for (const d of deltas) for (let i = 0; i < L; i++) sum[i]! += d[i]!;
  return { deltas, sum };
}

/** The decoded sum of a real in-process round whose devices encode as secure-rounds.ts says. */
async function realRound(deltas: Float64Array[], z: number): Promise<Float64Array> {
  const params = testParams(n, { length: L, threshold: n });
  const encoding = secureEncoding(S, z, n, params.threshold, L);
  const random = seededRandomBytes(2);
  const uniform = mulberry32(5);
  const inputs = new Map(
    params.devices.map((id, i) => {
      const words = encodeFixedPoint(deltas[i]!, S, encoding.summands, encoding.bits, { random });
      addSkellamNoise(words, encoding.noiseVariance, uniform);
      return [id, words];
    }),
  );
  // Each device's masked input reaches the server in the round's ring, as over HTTP.
  const width = wordBytes(encoding.bits);
  const { result } = await runRoundInProcess({ params, inputs, random, wordBytes: width });
  return decodeFixedPointSum(result.sum, S, encoding.summands, encoding.bits);
}

const config = (z: number) => ({ clipNorm: S, noiseMultiplier: z, minCohort: n });

describe('the stand-in for a secure round', () => {
  it('gives the sum the real protocol unmasks, to the fixed-point rounding, without noise', async () => {
    const { deltas, sum } = updates();
    const real = await realRound(deltas, 0);
    const { sum: stand, encoding } = standInSum(sum, n, config(0));
    const step = 1 / encoding.scale;
    for (let i = 0; i < L; i++) {
      // Each device's rounding is off by less than a step, the stand-in's by half of one.
      expect(Math.abs(real[i]! - sum[i]!)).toBeLessThan(n * step);
      expect(Math.abs(stand[i]! - sum[i]!)).toBeLessThanOrEqual(
        step / 2 + 1e-7 * Math.abs(sum[i]!),
      );
    }
  });

  it("carries noise of the variance the devices' shares add up to", async () => {
    const z = 1;
    const { deltas, sum } = updates();
    const variance = (values: ArrayLike<number>) => {
      let total = 0;
      for (let i = 0; i < L; i++) total += (values[i]! - sum[i]!) ** 2;
      return total / L;
    };
    const real = variance(await realRound(deltas, z));
    const stand = variance(standInSum(sum, n, config(z), mulberry32(6)).sum);
    // t = n devices each add (z S)^2 / t in update units: (z S)^2 on the sum.
    for (const v of [real, stand]) {
      expect(v).toBeGreaterThan(0.9 * (z * S) ** 2);
      expect(v).toBeLessThan(1.1 * (z * S) ** 2);
    }
  });
});

describe("a secure round's encoding", () => {
  it('never wraps: n updates of norm S and 64 standard deviations of the noise fit in its ring', () => {
    const rings = new Set<number>();
    for (const n of [2, 10, 100, 1000, 10_000]) {
      for (const z of [0, 0.5, 1.2, 5]) {
        for (const t of [2, Math.ceil(n / 2), n].filter((t) => t <= n && t >= 2)) {
          const { bits, scale, noiseVariance, skellam } = secureEncoding(S, z, n, t, 100_000);
          rings.add(bits);
          // Worst case: every device's every coordinate at +S, and all n devices' noise.
          const signal = n * S * scale;
          const noise = 64 * Math.sqrt(n * noiseVariance);
          expect(signal + noise).toBeLessThanOrEqual(2 ** (bits - 1) - 1);
          // A narrower ring only where rounding adds at most ROUNDING_SHARE to the sensitivity.
          if (bits < 32) expect(Math.sqrt(100_000)).toBeLessThanOrEqual(ROUNDING_SHARE * S * scale);
          if (z > 0) {
            // Any sum of at least t devices carries the variance the ledger records, (z S scale)^2.
            expect(Math.abs((t * noiseVariance) / skellam!.mu - 1)).toBeLessThan(1e-12);
            expect(Math.sqrt(skellam!.mu) / (S * scale)).toBeCloseTo(z, 9);
          }
        }
      }
    }
    expect([...rings].sort()).toEqual([24, 32]);
  });

  it("takes 24 bits for the default sketch's rounds of m = 100 and 32 for large cohorts", () => {
    const sketch = 240_212; // the Diginetica model's 2,048-bucket sketch
    expect(secureEncoding(S, 1.2, 100, 100, sketch).bits).toBe(24);
    expect(secureEncoding(S, 1.2, 120, 60, sketch).bits).toBe(24);
    expect(secureEncoding(S, 0, 300, 300, sketch).bits).toBe(24);
    expect(secureEncoding(S, 1.2, 1000, 1000, sketch).bits).toBe(32);
    expect(secureEncoding(S, 0, 400, 400, sketch).bits).toBe(32);
    // Conditional rounding keeps the L2 sensitivity the accountant prices within 0.003% of S
    // scale there, where plain rounding's bound, S scale + sqrt(L), would add 1%.
    const { scale, skellam } = secureEncoding(S, 1.2, 100, 100, sketch);
    expect(skellam!.l2 / (S * scale)).toBeLessThan(1 + 3e-5);
    expect(Math.sqrt(sketch) / (S * scale)).toBeGreaterThan(0.01);
  });
});

describe("a device's view of a secure round's privacy", () => {
  it('is the noise and sensitivities the server records for the round, from the public parameters', () => {
    for (const [z, n, t, length] of [
      [1.2, 100, 100, 5000],
      [0.7, 10, 6, 123],
      [3, 1000, 800, 100_000],
    ] as const) {
      const encoding = secureEncoding(S, z, n, t, length);
      const info = {
        threshold: t,
        length,
        clipNorm: S,
        summands: encoding.summands,
        bits: encoding.bits,
        noiseVariance: encoding.noiseVariance,
      } as SecureRoundInfo;
      const device = roundPrivacy(info);
      expect(device.sampleRate).toBe(1);
      expect(device.noiseMultiplier).toBeCloseTo(z, 9);
      expect(device.skellam!.mu / encoding.skellam!.mu).toBeCloseTo(1, 12);
      expect(device.skellam!.l1).toBeCloseTo(encoding.skellam!.l1, 6);
      expect(device.skellam!.l2).toBeCloseTo(encoding.skellam!.l2, 6);
    }
    const quiet = secureEncoding(S, 0, 10, 10, 50);
    expect(
      roundPrivacy({
        threshold: 10,
        length: 50,
        clipNorm: S,
        summands: quiet.summands,
        bits: 32,
        noiseVariance: 0,
      } as SecureRoundInfo),
    ).toEqual({ noiseMultiplier: 0, sampleRate: 1 });
  });
});
