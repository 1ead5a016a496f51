import { describe, expect, it } from 'vitest';
import { l2Norm } from '../protocol/clip.js';
import { fixedPointScale } from '../protocol/secagg/fixed-point.js';
import { roundingBound, roundPrivacy, type SecureRoundInfo } from '../protocol/secagg/http.js';
import { seededRandomBytes } from '../protocol/secagg/testing.js';
import { encodeInput } from './secure-client.js';

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
});
