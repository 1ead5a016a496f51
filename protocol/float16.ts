/**
 * IEEE 754 binary16 conversion. Float16Array is not in every browser Hearth supports (nor in Node 20),
 * so weights and updates are packed by hand. Rounds to nearest even, keeps subnormals, maps overflow
 * to Infinity (callers validate finiteness after decoding).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Encodes one number to its binary16 bit pattern. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is exactly right (up to Infinity).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Decodes a binary16 bit pattern to a number. */
export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Packs a Float32Array into binary16 (little-endian) in a new Uint16Array. */
export function encodeFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  // The float32 bit patterns, read in place: a device encodes ~100k values per update, and a
  // function call plus a scratch write per value was most of the cost. Values whose half is a
  // normal number (the common case) are rounded here, to nearest even as toFloat16Bits does; the
  // rest (zero, subnormal, overflow, Inf, NaN) go through toFloat16Bits.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const abs = x & 0x7fffffff;
    // 2^-14 (smallest normal half) <= |v| < 65520 (rounds below the half's Infinity).
    if (abs >= 0x38800000 && abs < 0x477ff000) {
      let half = (abs - 0x38000000) >>> 13;
      const rem = abs & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
      out[i] = ((x >>> 16) & 0x8000) | half;
    } else {
      out[i] = toFloat16Bits(values[i]!);
    }
  }
  return out;
}

let table: Float32Array | undefined;

/** Unpacks binary16 values into a new Float32Array. */
export function decodeFloat16(bits: Uint16Array): Float32Array {
  // Every half value is exact in float32, so a 65,536-entry table (256 KiB, built on first use)
  // turns decoding a whole update into one lookup per value: the server decodes every update.
  if (!table) {
    table = new Float32Array(0x10000);
    for (let b = 0; b < 0x10000; b++) table[b] = fromFloat16Bits(b);
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}
