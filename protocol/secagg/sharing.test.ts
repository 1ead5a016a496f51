import { describe, expect, it } from 'vitest';
import { HearthError } from '../errors.js';
import { combineShares, SECRET_BYTES, SHARE_BYTES, splitSecret } from './sharing.js';
import { seededRandomBytes } from './testing.js';

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as HearthError).code;
  }
  return undefined;
}

/** Every subset of `items` of `size` elements (small inputs only). */
function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  return items.flatMap((item, i) =>
    subsets(items.slice(i + 1), size - 1).map((rest) => [item, ...rest]),
  );
}

describe('threshold secret sharing (shamir-secret-sharing)', () => {
  const random = seededRandomBytes(7);

  it('rebuilds the secret from every subset of t shares, and from all of them', async () => {
    const secret = random(SECRET_BYTES);
    const shares = await splitSecret(secret, 6, 4);
    expect(shares).toHaveLength(6);
    for (const share of shares) expect(share).toHaveLength(SHARE_BYTES);
    for (const subset of subsets(shares, 4)) expect(await combineShares(subset)).toEqual(secret);
    expect(await combineShares(shares)).toEqual(secret);
  });

  it('does not rebuild it from any t - 1 shares (the library returns other bytes, silently)', async () => {
    const secret = random(SECRET_BYTES);
    const shares = await splitSecret(secret, 6, 4);
    for (const subset of subsets(shares, 3)) {
      const wrong = await combineShares(subset);
      expect(wrong).toHaveLength(SECRET_BYTES);
      expect(wrong).not.toEqual(secret);
    }
  });

  it('draws fresh coefficients: one share of a fixed secret takes many values', async () => {
    // With t = 2 a single share is t - 1 shares: its bytes must not follow the secret.
    const secret = new Uint8Array(SECRET_BYTES);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const [share] = await splitSecret(secret, 3, 2);
      seen.add(share![0]!);
    }
    expect(seen.size).toBeGreaterThan(100);
  });

  it('works at the library limit of 255 holders', async () => {
    const secret = random(SECRET_BYTES);
    const shares = await splitSecret(secret, 255, 128);
    expect(new Set(shares.map((share) => share[SECRET_BYTES])).size).toBe(255);
    expect(await combineShares(shares.slice(100, 228))).toEqual(secret);
  });

  it('refuses impossible splits with HEARTH_E_SECAGG_PARAMS', async () => {
    const secret = random(SECRET_BYTES);
    expect(await codeOf(splitSecret(secret, 256, 200))).toBe('HEARTH_E_SECAGG_PARAMS');
    expect(await codeOf(splitSecret(secret, 5, 1))).toBe('HEARTH_E_SECAGG_PARAMS');
    expect(await codeOf(splitSecret(secret, 3, 4))).toBe('HEARTH_E_SECAGG_PARAMS');
    expect(await codeOf(splitSecret(secret.subarray(1), 3, 2))).toBe('HEARTH_E_SECAGG_PARAMS');
  });

  it('refuses malformed or duplicate shares with HEARTH_E_SECAGG_RECONSTRUCT', async () => {
    const shares = await splitSecret(random(SECRET_BYTES), 4, 3);
    const code = 'HEARTH_E_SECAGG_RECONSTRUCT';
    expect(await codeOf(combineShares([shares[0]!]))).toBe(code);
    expect(await codeOf(combineShares([shares[0]!, shares[0]!, shares[1]!]))).toBe(code);
    expect(await codeOf(combineShares([shares[0]!, shares[1]!.subarray(1)]))).toBe(code);
  });
});
