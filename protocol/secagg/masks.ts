/**
 * Masks in Z_(2^32): a ChaCha20 keystream (RFC 8439, from `@noble/ciphers`) read as little-endian
 * uint32 words. Arithmetic is on plain Uint32Arrays with `>>> 0`, which is exact: the sum or
 * difference of two uint32 values stays far below 2^53, and `>>> 0` reduces it mod 2^32. A round
 * in a narrower ring, Z_(2^24), masks in Z_(2^32) all the same and sends each masked word's low
 * bits only (wire.ts): reduction mod 2^24 keeps the sums, and a uniform mask's low bits are
 * uniform, so they still hide the input.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';

/** Every mask key is used once per round, so a fixed all-zero nonce never repeats under a key. */
const NONCE = new Uint8Array(12);

/** True on little-endian hosts (every browser and Node platform in practice). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** `length` pseudo-random uint32 from a 32-byte key: the same on every host and runtime. */
export function prgUint32(key: Uint8Array, length: number): Uint32Array {
  const stream = chacha20(key, NONCE, new Uint8Array(length * 4));
  if (LITTLE_ENDIAN) return new Uint32Array(stream.buffer, stream.byteOffset, length);
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  return Uint32Array.from({ length }, (_, i) => view.getUint32(i * 4, true));
}

/** target += sign * mask (mod 2^32), in place. */
export function addMask(target: Uint32Array, mask: Uint32Array, sign: 1 | -1): void {
  if (sign === 1) for (let i = 0; i < target.length; i++) target[i] = (target[i]! + mask[i]!) >>> 0;
  else for (let i = 0; i < target.length; i++) target[i] = (target[i]! - mask[i]!) >>> 0;
}

/**
 * Sign of the pairwise mask of u and v in u's masked input: + when u < v, - when u > v (Bonawitz
 * et al., CCS 2017), so the two cancel in the sum.
 */
export function pairSign(u: number, v: number): 1 | -1 {
  return u < v ? 1 : -1;
}
