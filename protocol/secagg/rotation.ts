/**
 * A random rotation of a round's vector before it is encoded, so that a narrow ring holds it: the
 * randomized Hadamard transform of the distributed discrete Gaussian mechanism (Kairouz, Liu,
 * Steinke 2021, "The Distributed Discrete Gaussian Mechanism", section 4: "flattening").
 *
 * A device's clipped update may put much of its norm S on a few coordinates, so an encoding that
 * never wraps must let every coordinate reach S (fixed-point.ts). Rotated, each coordinate of a
 * block of B is a random-signed sum of the block's values over sqrt(B): about N(0, |x_b|^2 / B),
 * so it is within ROTATION_CLAMP S / sqrt(B) but with negligible probability, and the ring only
 * has to hold that. The vector is padded with zeros to whole blocks, multiplied by random signs
 * and transformed block by block with the orthonormal Walsh-Hadamard matrix: an orthogonal map, so
 * norms, the clip bound S and i.i.d. noise added afterwards are unchanged by it. The signs come
 * from the round's public graph seed (domain-separated), so every device and the server draw the
 * same ones, and the server undoes the rotation on the unmasked sum (post-processing: privacy is
 * untouched).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { HearthError } from '../errors.js';
import { prgUint32 } from './masks.js';

/** The largest rotation block: 2^14 values (the default sketch's 240,212 pad to 245,760). */
export const MAX_ROTATION_BLOCK = 2 ** 14;

/**
 * A rotated coordinate is clamped to ROTATION_CLAMP S / sqrt(B) before encoding: 6 standard
 * deviations of a block that holds the whole norm S (reached with probability about 2e-9 a
 * coordinate), far more for a block holding a share of it. Clamping only shrinks a vector, so its
 * norm stays within S.
 */
export const ROTATION_CLAMP = 6;

const LABEL = utf8ToBytes('hearth secagg rotation v1');

function invalid(detail: string): never {
  throw new HearthError('HEARTH_E_SECAGG_PARAMS', detail);
}

/** The block a vector of `length` values is rotated in: the next power of two, at most 2^14. */
export function rotationBlock(length: number): number {
  if (!(Number.isSafeInteger(length) && length > 0)) invalid(`length must be positive`);
  let block = 1;
  while (block < length && block < MAX_ROTATION_BLOCK) block *= 2;
  return block;
}

/** Whether `block` is a power of two within [1, MAX_ROTATION_BLOCK]. */
export function isRotationBlock(block: unknown): block is number {
  return (
    typeof block === 'number' &&
    Number.isSafeInteger(block) &&
    block >= 1 &&
    block <= MAX_ROTATION_BLOCK &&
    (block & (block - 1)) === 0
  );
}

/** `length` padded with zeros to whole blocks: the length of the rotated vector. */
export function rotatedLength(length: number, block: number): number {
  if (!isRotationBlock(block)) invalid(`rotation block ${block} is not a power of two up to 2^14`);
  return Math.ceil(length / block) * block;
}

/** The largest magnitude a rotated coordinate is given (update units), for clip S and block B. */
export function rotatedCoordinateBound(clip: number, block: number): number {
  return (ROTATION_CLAMP * clip) / Math.sqrt(block);
}

/** The rotation's signs for `length` rotated values, from the round's 32-byte graph seed. */
export function rotationSigns(seed: Uint8Array, length: number): Int8Array {
  const words = prgUint32(sha256(concatBytes(LABEL, seed)), length);
  const signs = new Int8Array(length);
  for (let i = 0; i < length; i++) signs[i] = 1 - 2 * (words[i]! & 1);
  return signs;
}

/** In place: the orthonormal Walsh-Hadamard transform of each block of `values`. */
function hadamardBlocks(values: Float64Array, block: number): void {
  const norm = 1 / Math.sqrt(block);
  for (let start = 0; start < values.length; start += block) {
    for (let half = 1; half < block; half *= 2) {
      for (let i = start; i < start + block; i += 2 * half) {
        for (let j = i; j < i + half; j++) {
          const a = values[j]!;
          const b = values[j + half]!;
          values[j] = a + b;
          values[j + half] = a - b;
        }
      }
    }
    for (let i = start; i < start + block; i++) values[i] = values[i]! * norm;
  }
}

/** The rotated vector: `values` padded to whole blocks, times `signs`, each block transformed. */
export function rotate(values: ArrayLike<number>, signs: Int8Array, block: number): Float64Array {
  const out = new Float64Array(rotatedLength(values.length, block));
  if (signs.length !== out.length) invalid(`${signs.length} signs for ${out.length} values`);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! * signs[i]!;
  hadamardBlocks(out, block);
  return out;
}

/** The rotation undone: the first `length` values of signs times each block's transform. */
export function unrotate(
  rotated: ArrayLike<number>,
  signs: Int8Array,
  block: number,
  length: number,
): Float64Array {
  if (rotated.length !== rotatedLength(length, block) || signs.length !== rotated.length) {
    invalid(`${rotated.length} rotated values do not hold ${length} in blocks of ${block}`);
  }
  const work = Float64Array.from(rotated);
  hadamardBlocks(work, block);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = work[i]! * signs[i]!;
  return out;
}
