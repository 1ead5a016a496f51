/**
 * What a secure round reveals, computed without running one: the simulation's stand-in for
 * secure aggregation (tools/federate). A secure round of n devices unmasks the sum of their
 * encoded updates, each stochastically rounded to the round's fixed-point grid, plus each device's
 * Skellam noise of variance v (server/secure-rounds.ts secureEncoding); Skellam variables of one
 * centre add up to a Skellam variable, so that is the float sum on the same grid plus Skellam noise
 * of variance n v. The stand-in rounds the float sum once (to nearest) where the devices round
 * each of their updates (an error below one step a device, about 1e-9 of S at n = 1,000), and
 * draws the noise once. A rotated round (16 bits) is stood in for in the rotated coordinates, with
 * signs of its own; the devices' clamping of rotated coordinates, which a clipped update reaches
 * with negligible probability, is left out. `server/secure-sum.test.ts` checks it against the real
 * protocol.
 */
import { addSkellamNoise, type UniformSource } from '../protocol/privacy/index.js';
import { cryptoUniform } from '../protocol/privacy/uniform.js';
import { rotate, rotationSigns, unrotate } from '../protocol/secagg/rotation.js';
import { secureEncoding, type SecureEncoding } from './secure-rounds.js';
import type { ServerConfig } from './config.js';

/** What the stand-in reads of the server's settings. */
export type StandInConfig = Pick<ServerConfig, 'clipNorm' | 'noiseMultiplier' | 'minCohort'>;

/**
 * The encoding of the secure round standInSum stands in for: `count` devices (at least t =
 * max(2, m)) summing `length` coordinates. Its ring's bits / 8 are the bytes of each masked word
 * a device sends.
 */
export function standInEncoding(
  count: number,
  length: number,
  config: StandInConfig,
): SecureEncoding {
  const { n, t } = standInRound(count, config);
  return secureEncoding(config.clipNorm, config.noiseMultiplier, n, t, length);
}

/** The stand-in round's threshold t = max(2, m) and its devices n, at least t (see standInSum). */
function standInRound(count: number, config: StandInConfig): { n: number; t: number } {
  const t = Math.max(2, config.minCohort);
  return { n: Math.max(count, t), t };
}

/** The decoded sum a secure round of `count` devices would publish, and its encoding. */
export interface StandInSum {
  readonly sum: Float32Array;
  readonly encoding: SecureEncoding;
}

/**
 * The stand-in for the unmasked sum of `count` clipped updates whose float sum is `sum`, under
 * `config`'s clip bound, noise multiplier and threshold t = max(2, m) (no device drops out). A
 * simulated round of fewer than t devices (a real server would wait for more before forming it)
 * gets the noise of t devices, the least the accountant charges for.
 */
export function standInSum(
  sum: ArrayLike<number>,
  count: number,
  config: StandInConfig,
  uniform: UniformSource = cryptoUniform(),
): StandInSum {
  const { n } = standInRound(count, config);
  const encoding = standInEncoding(count, sum.length, config);
  const { rotation } = encoding;
  // A rotated round sums the rotated vectors (protocol/secagg/rotation.ts): its rounding and noise
  // land there, and the rotation is undone on the decoded sum. The signs stand for the round's.
  const signs = rotation === undefined ? undefined : standInSigns(encoding.length, uniform);
  const vector = signs ? rotate(sum, signs, rotation!) : sum;
  const words = new Int32Array(vector.length);
  for (let i = 0; i < vector.length; i++) words[i] = Math.round(vector[i]! * encoding.scale);
  addSkellamNoise(words, n * encoding.noiseVariance, uniform);
  const decoded = Float64Array.from(words, (w) => w / encoding.scale);
  return {
    sum: Float32Array.from(signs ? unrotate(decoded, signs, rotation!, sum.length) : decoded),
    encoding,
  };
}

/** Random signs for a stand-in round's rotation, from the stand-in's own uniforms. */
function standInSigns(length: number, uniform: UniformSource): Int8Array {
  const seed = Uint8Array.from({ length: 32 }, () => Math.floor(uniform() * 256));
  return rotationSigns(seed, length);
}
