import { describe, expect, it } from 'vitest';
import { l2Norm } from '../protocol/clip.js';
import { decodeFixedPointSum, fixedPointScale } from '../protocol/secagg/fixed-point.js';
import {
  encodeInput,
  roundingBound,
  roundPrivacy,
  type SecureRoundInfo,
} from '../protocol/secagg/http.js';
import { rotatedCoordinateBound, rotationSigns, unrotate } from '../protocol/secagg/rotation.js';
import { seededRandomBytes } from '../protocol/secagg/testing.js';

/** A round's parameters as a device reads them: 400 coordinates in a 24-bit ring. */
const info = {
  roundId: 'r',
  devices: [1, 2, 3],
  threshold: 3,
  neighbours: 2,
  shareThreshold: 2,
  length: 400,
  graphSeed: '00'.repeat(32),
  version: 1,
  layoutHash: 1,
  clipNorm: 1,
  summands: 1000,
  bits: 24,
  noiseVariance: 50,
} satisfies SecureRoundInfo;

describe("a device's encoded input", () => {
  it('keeps within the L2 bound its privacy is priced at, however its rounding falls', () => {
    const scale = fixedPointScale(info.clipNorm, info.summands, info.bits);
    // Every fractional part 1/2 and the norm just below S: plain rounding's norm then passes the
    // bound in about 6% of draws (protocol/secagg/fixed-point.test.ts).
    const k = Math.floor(scale / Math.sqrt(info.length)) - 1;
    const last = Math.floor(Math.sqrt(scale ** 2 - (info.length - 1) * (k + 0.5) ** 2) - 0.5) + 0.5;
    const input = Float64Array.from(
      { length: info.length },
      (_, i) => ((i % 2 ? -1 : 1) * (i === info.length - 1 ? last : k + 0.5)) / scale,
    );
    expect(l2Norm(input)).toBeLessThanOrEqual(info.clipNorm);
    const bound = roundingBound(info);
    // The bound the device keeps to is the sensitivity it prices its ledger entry at.
    expect(roundPrivacy(info).skellam!.l2).toBe(bound);
    expect(bound).toBeLessThan(scale * info.clipNorm + Math.sqrt(info.length));
    const random = seededRandomBytes(8);
    for (let draw = 0; draw < 100; draw++) {
      const words = encodeInput(input, info, random);
      expect(Math.hypot(...Array.from(words, (w) => (w << 8) >> 8))).toBeLessThanOrEqual(bound);
    }
  });

  it("is its update rotated with the round's signs, in a 16-bit ring, when the round rotates", () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
    const rotated = {
      ...info,
      graphSeed: Array.from(seed, (b) => b.toString(16).padStart(2, '0')).join(''),
      bits: 16,
      summands: 10,
      noiseVariance: 0,
      rotation: 128,
      length: 512,
    } satisfies SecureRoundInfo;
    const input = Float64Array.from({ length: 400 }, (_, i) => Math.sin(i) / 15);
    expect(l2Norm(input)).toBeLessThan(1);
    const words = encodeInput(input, rotated, seededRandomBytes(3));
    expect(words.length).toBe(512);
    // Decoded at the rotated bound and rotated back with the round's signs: the update, to the
    // rounding of one device (a step of 6 / sqrt(128) / floor(32767 / 10) a coordinate).
    const bound = rotatedCoordinateBound(rotated.clipNorm, 128);
    const decoded = decodeFixedPointSum(words, bound, rotated.summands, 16);
    const back = unrotate(decoded, rotationSigns(seed, 512), 128, 400);
    const step = 1 / fixedPointScale(bound, rotated.summands, 16);
    let error = 0;
    for (let i = 0; i < 400; i++) error += (back[i]! - input[i]!) ** 2;
    expect(Math.sqrt(error)).toBeLessThan(Math.sqrt(512) * step);
    // Another round's signs do not give it back.
    const other = unrotate(decoded, rotationSigns(new Uint8Array(32), 512), 128, 400);
    let wrong = 0;
    for (let i = 0; i < 400; i++) wrong += (other[i]! - input[i]!) ** 2;
    expect(Math.sqrt(wrong)).toBeGreaterThan(0.5 * l2Norm(input));
    // An update whose padded length is not the round's is refused before anything is sent.
    expect(() => encodeInput(input.subarray(0, 380), { ...rotated, length: 640 })).toThrow(
      expect.objectContaining({ code: 'HEARTH_E_SECAGG_PARAMS' }),
    );
  });
});
