/**
 * Uniform random numbers for the device's DP noise. The noise protects the device's update from the
 * server, so by default it comes from the platform's cryptographic generator (crypto.getRandomValues,
 * present in every browser, Web Worker and Node >= 19): a predictable generator (Math.random, a seeded
 * PRNG) would let anyone who can reconstruct its state subtract the noise again. Tests inject a seeded
 * source (protocol/prng.ts) to be reproducible.
 */
import { HearthError } from '../errors.js';

/** A source of independent uniform numbers in [0, 1). */
export type UniformSource = () => number;

/** The one WebCrypto method the noise needs; declared here because protocol/ sees no DOM or Node types. */
interface RandomValues {
  getRandomValues(array: Uint32Array): Uint32Array;
}

/** getRandomValues fills at most 65,536 bytes per call; one call serves 8,192 doubles. */
const WORDS_PER_FILL = 16_384;
const TWO_POW_26 = 67_108_864;
const TWO_POW_53 = 9_007_199_254_740_992;

/**
 * A uniform source in [0, 1) with the full 53-bit resolution of a double, drawn from
 * crypto.getRandomValues: 27 bits of one 32-bit word and 26 of the next, (a * 2^26 + b) / 2^53,
 * the construction numpy's `next_double` uses. Words are fetched in blocks of 16,384 so that a noise
 * vector of 10^5 coordinates costs a few dozen platform calls, not hundreds of thousands.
 * Throws HEARTH_E_CONFIG where the runtime has no crypto.getRandomValues.
 */
export function cryptoUniform(): UniformSource {
  const platform = (globalThis as { crypto?: Partial<RandomValues> }).crypto;
  if (typeof platform?.getRandomValues !== 'function') {
    throw new HearthError(
      'HEARTH_E_CONFIG',
      'this runtime has no crypto.getRandomValues for the DP noise; pass a uniform source',
    );
  }
  const source = platform as RandomValues;
  const words = new Uint32Array(WORDS_PER_FILL);
  let next = WORDS_PER_FILL;
  return () => {
    if (next === WORDS_PER_FILL) {
      source.getRandomValues(words);
      next = 0;
    }
    const a = words[next]! >>> 5;
    const b = words[next + 1]! >>> 6;
    next += 2;
    return (a * TWO_POW_26 + b) / TWO_POW_53;
  };
}
