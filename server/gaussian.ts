/**
 * Standard normal draws for central DP noise. The privacy argument assumes the noise is unpredictable
 * to whoever sees the published model, so the uniforms come from node:crypto (a CSPRNG), not
 * Math.random (xorshift128+, whose state can be recovered from a few outputs). Box-Muller in float64:
 * both uniforms carry 53 random bits, and u1 is kept away from 0 so log(u1) is finite.
 */
import { randomBytes } from 'node:crypto';

/** A source of independent N(0, 1) draws; tests inject a recording or deterministic one. */
export type GaussianRng = () => number;

/** Bytes fetched from the CSPRNG at a time: one syscall per 8192 uniforms rather than per draw. */
const POOL_BYTES = 64 * 1024;

/** A N(0, 1) source seeded from node:crypto (`randomBytes`), via the Box-Muller transform. */
export function cryptoGaussian(): GaussianRng {
  let pool = Buffer.alloc(0);
  let offset = 0;
  let spare: number | undefined;
  // A uniform in [0, 1) with 53 random bits (a float64 mantissa's worth).
  const uniform = (): number => {
    if (offset + 8 > pool.length) {
      pool = randomBytes(POOL_BYTES);
      offset = 0;
    }
    const hi = pool.readUInt32LE(offset) >>> 5; // 27 bits
    const lo = pool.readUInt32LE(offset + 4) >>> 6; // 26 bits
    offset += 8;
    return (hi * 67108864 + lo) / 9007199254740992; // (hi * 2^26 + lo) / 2^53
  };
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    const u1 = 1 - uniform(); // (0, 1]: log(u1) is finite
    const u2 = uniform();
    const radius = Math.sqrt(-2 * Math.log(u1));
    spare = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  };
}

/**
 * Adds N(0, sigma^2) to every coordinate of `values` in place, one draw per coordinate. Called once
 * per round: every extra draw would be a fresh release the accountant does not count, and every
 * missing one a coordinate published without noise.
 */
export function addGaussianNoise(values: Float64Array, sigma: number, rng: GaussianRng): void {
  if (!(Number.isFinite(sigma) && sigma >= 0)) throw new RangeError(`bad noise std ${sigma}`);
  for (let i = 0; i < values.length; i++) values[i] = values[i]! + sigma * rng();
}
