/**
 * The simulation's stand-in for a secure round against the real protocol on a small round: the
 * same sum to the fixed-point rounding without noise, and noise of the same variance with it.
 */
import { describe, expect, it } from 'vitest';
import { addSkellamNoise } from '../protocol/privacy/index.js';
import { mulberry32, normal } from '../protocol/prng.js';
import {
  decodeFixedPointSum,
  runRoundInProcess,
  wordBytes,
  type SecAggParams,
} from '../protocol/secagg/index.js';
import { seededRandomBytes, testParams } from '../protocol/secagg/testing.js';
import {
  coordinateBound,
  encodeInput,
  roundInfo,
  roundingSensitivity,
  roundPrivacy,
  sumInUpdate,
  type SecureRoundInfo,
} from '../protocol/secagg/http.js';
import { rotatedCoordinateBound, rotatedLength } from '../protocol/secagg/rotation.js';
import {
  ROTATED_NOISE_SIGMAS,
  ROTATED_SENSITIVITY_SHARE,
  ROUNDING_SHARE,
  secureEncoding,
  type SecureEncoding,
} from './secure-rounds.js';
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

/** The round's public parameters as a device receives them, for `encoding`. */
function infoOf(encoding: SecureEncoding, params: SecAggParams): SecureRoundInfo {
  return roundInfo(params, { version: 1, layoutHash: 0, clipNorm: S }, encoding);
}

/**
 * The decoded sum of a real in-process round whose devices encode as a device does
 * (protocol/secagg/http.ts encodeInput: rotated where the round rotates), back in the update's
 * coordinates as the server publishes it.
 */
async function realRound(
  deltas: Float64Array[],
  z: number,
): Promise<{ sum: Float64Array; encoding: SecureEncoding }> {
  const encoding = secureEncoding(S, z, n, n, L);
  const params = testParams(n, { length: encoding.length, threshold: n });
  const info = infoOf(encoding, params);
  const random = seededRandomBytes(2);
  const uniform = mulberry32(5);
  const bound = coordinateBound(info);
  const inputs = new Map(
    params.devices.map((id, i) => {
      const words = encodeInput(deltas[i]!, info, random);
      addSkellamNoise(words, encoding.noiseVariance, uniform);
      return [id, words];
    }),
  );
  // Each device's masked input reaches the server in the round's ring, as over HTTP.
  const width = wordBytes(encoding.bits);
  const { result } = await runRoundInProcess({ params, inputs, random, wordBytes: width });
  const decoded = decodeFixedPointSum(result.sum, bound, encoding.summands, encoding.bits);
  return { sum: sumInUpdate(decoded, info, L), encoding };
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(total);
}

const config = (z: number) => ({ clipNorm: S, noiseMultiplier: z, minCohort: n });

describe('the stand-in for a secure round', () => {
  it('gives the sum the real protocol unmasks, to the fixed-point rounding, without noise', async () => {
    const { deltas, sum } = updates();
    const { sum: real, encoding: realEncoding } = await realRound(deltas, 0);
    const { sum: stand, encoding } = standInSum(sum, n, config(0));
    // The round is rotated in a 16-bit ring, in the blocks that pad least (4,000 = 125 x 32).
    expect(encoding).toEqual(realEncoding);
    expect(encoding).toMatchObject({ bits: 16, rotation: 32, length: L });
    const step = 1 / encoding.scale;
    // The rotation is orthogonal, so rounding errors keep their norm through it: each device's
    // rounding is off by less than a step a coordinate, the stand-in's by half of one.
    expect(distance(real, sum)).toBeLessThan(n * Math.sqrt(encoding.length) * step);
    expect(distance(stand, sum)).toBeLessThanOrEqual(Math.sqrt(encoding.length) * (step / 2));
    // On average within the rounding's spread (variance at most 1/4 step^2 a device), far from
    // what a wrong rotation would give.
    expect(distance(real, sum) / Math.sqrt(L)).toBeLessThan(Math.sqrt(n / 4) * step);
    expect(distance(stand, sum) / Math.sqrt(L)).toBeLessThan(step);
  });

  it("carries noise of the variance the devices' shares add up to", async () => {
    const z = 1;
    const { deltas, sum } = updates();
    const variance = (values: ArrayLike<number>) => {
      let total = 0;
      for (let i = 0; i < L; i++) total += (values[i]! - sum[i]!) ** 2;
      return total / L;
    };
    const real = variance((await realRound(deltas, z)).sum);
    const stand = variance(standInSum(sum, n, config(z), mulberry32(6)).sum);
    // t = n devices each add (z S)^2 / t in update units: (z S)^2 on the sum.
    for (const v of [real, stand]) {
      expect(v).toBeGreaterThan(0.9 * (z * S) ** 2);
      expect(v).toBeLessThan(1.1 * (z * S) ** 2);
    }
  });
});

describe("a secure round's encoding", () => {
  it("never wraps on its devices' values, and leaves its noise the room its ring promises", () => {
    const rings = new Set<number>();
    for (const n of [2, 10, 100, 1000, 10_000]) {
      for (const z of [0, 0.5, 1.2, 5]) {
        for (const t of [2, Math.ceil(n / 2), n].filter((t) => t <= n && t >= 2)) {
          const encoding = secureEncoding(S, z, n, t, 100_000);
          const { bits, scale, noiseVariance, skellam, rotation, length } = encoding;
          rings.add(bits);
          const limit = 2 ** (bits - 1) - 1;
          const noise = Math.sqrt(n * noiseVariance);
          if (rotation === undefined) {
            // Worst case: every device's every coordinate at +S, and 64 deviations of the noise.
            expect(length).toBe(100_000);
            expect(n * S * scale + 64 * noise).toBeLessThanOrEqual(limit);
            // A narrower ring only where rounding adds at most ROUNDING_SHARE to the sensitivity.
            if (bits < 32)
              expect(Math.sqrt(length)).toBeLessThanOrEqual(ROUNDING_SHARE * S * scale);
          } else {
            // Rotated: every device's every coordinate at its clamp, and 8 deviations of the noise.
            expect(bits).toBe(16);
            expect(length).toBe(rotatedLength(100_000, rotation));
            const clamp = rotatedCoordinateBound(S, rotation) * scale;
            expect(n * clamp + ROTATED_NOISE_SIGMAS * noise).toBeLessThanOrEqual(limit);
            // With noise, rounding lifts the sensitivity by at most 1%; without, it moves a
            // vector by at most ROUNDING_SHARE of S, as in the unrotated rings.
            const l2 = roundingSensitivity(S, scale, length).l2;
            if (z > 0) expect(l2).toBeLessThanOrEqual((1 + ROTATED_SENSITIVITY_SHARE) * S * scale);
            else expect(Math.sqrt(length)).toBeLessThanOrEqual(ROUNDING_SHARE * S * scale);
          }
          if (z > 0) {
            // Any sum of at least t devices carries the variance the ledger records, (z S scale)^2.
            expect(Math.abs((t * noiseVariance) / skellam!.mu - 1)).toBeLessThan(1e-12);
            expect(Math.sqrt(skellam!.mu) / (S * scale)).toBeCloseTo(z, 9);
            expect(skellam!.l2).toBe(roundingSensitivity(S, scale, length).l2);
          }
        }
      }
    }
    expect([...rings].sort()).toEqual([16, 24, 32]);
  });

  it("takes 16 bits, rotated, for the default sketch's rounds of m = 100 and 32 for large cohorts", () => {
    const sketch = 240_212; // the Diginetica model's 2,048-bucket sketch
    const defaults = secureEncoding(S, 1.2, 100, 100, sketch);
    expect(defaults).toMatchObject({ bits: 16, rotation: 2 ** 14, length: 245_760 });
    expect(secureEncoding(S, 1.2, 185, 185, sketch).bits).toBe(16);
    // Beyond, rounding would lift the sensitivity by more than 1%: the unrotated rings as before.
    expect(secureEncoding(S, 1.2, 186, 186, sketch)).toMatchObject({ bits: 24, length: sketch });
    expect(secureEncoding(S, 1.2, 120, 60, sketch).bits).toBe(24);
    // Without noise, rounding must stay within 2% of S: small rounds only.
    expect(secureEncoding(S, 0, 28, 28, sketch).bits).toBe(16);
    expect(secureEncoding(S, 0, 29, 29, sketch)).toMatchObject({ bits: 24, length: sketch });
    expect(secureEncoding(S, 0, 400, 400, sketch).bits).toBe(32);
    expect(secureEncoding(S, 1.2, 1000, 1000, sketch).bits).toBe(32);
    expect(secureEncoding(S, 1.2, 1000, 1000, sketch).rotation).toBeUndefined();
    // The accountant's L2 sensitivity at the defaults: 0.61% above S scale, within the 1% allowed.
    const { scale, skellam } = defaults;
    expect(skellam!.l2 / (S * scale)).toBeGreaterThan(1.005);
    expect(skellam!.l2 / (S * scale)).toBeLessThan(1.007);
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
      const info = infoOf(encoding, testParams(n, { threshold: t, length: encoding.length }));
      const device = roundPrivacy(info);
      expect(device.sampleRate).toBe(1);
      expect(device.noiseMultiplier).toBeCloseTo(z, 9);
      expect(device.skellam!.mu / encoding.skellam!.mu).toBeCloseTo(1, 12);
      expect(device.skellam!.l1).toBeCloseTo(encoding.skellam!.l1, 6);
      expect(device.skellam!.l2).toBeCloseTo(encoding.skellam!.l2, 6);
    }
    const quiet = secureEncoding(S, 0, 10, 10, 50);
    expect(roundPrivacy(infoOf(quiet, testParams(10, { threshold: 10, length: 50 })))).toEqual({
      noiseMultiplier: 0,
      sampleRate: 1,
    });
  });
});
