import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16, fromFloat16Bits, toFloat16Bits } from './float16.js';

describe('float16', () => {
  it('matches known bit patterns', () => {
    expect(toFloat16Bits(1)).toBe(0x3c00);
    expect(toFloat16Bits(-2)).toBe(0xc000);
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7c00); // rounds up to Infinity
    expect(toFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toFloat16Bits(0.1)).toBe(0x2e66);
    expect(toFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });

  it('round-trips every finite half value exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = fromFloat16Bits(bits);
      if (Number.isNaN(value)) continue;
      expect(toFloat16Bits(value)).toBe(bits);
    }
  });

  it('rounds to nearest even', () => {
    // 1 + 2^-11 is exactly halfway between 1 and the next half; ties go to the even mantissa (1).
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

describe('float16 arrays', () => {
  it('encode like the scalar encoder, for every float32 exponent and at the edges', () => {
    const bits: number[] = [];
    let state = 12345;
    for (let i = 0; i < 200_000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      bits.push(state);
    }
    // Every exponent with mantissas at the rounding boundaries, signed.
    for (let e = 0; e < 256; e++) {
      for (const m of [0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x7fe000, 0x7ff000, 0x7fffff]) {
        bits.push((e << 23) | m, (0x80000000 | (e << 23) | m) >>> 0);
      }
    }
    const host = new Uint32Array(bits.length + 1);
    host.set(bits, 1);
    // A view at an offset, as a delta inside a larger buffer would be.
    const values = new Float32Array(host.buffer, 4, bits.length);
    const fast = encodeFloat16(values);
    for (let i = 0; i < values.length; i++) {
      if (fast[i] !== toFloat16Bits(values[i]!)) {
        expect([i, bits[i]!.toString(16), fast[i]]).toEqual([
          i,
          bits[i]!.toString(16),
          toFloat16Bits(values[i]!),
        ]);
      }
    }
  });

  it('decode every bit pattern like the scalar decoder (NaN stays NaN)', () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
    const decoded = decodeFloat16(all);
    for (let bits = 0; bits < 0x10000; bits++) {
      const want = fromFloat16Bits(bits);
      if (Number.isNaN(want)) expect(decoded[bits]).toBeNaN();
      else expect(decoded[bits]).toBe(want);
    }
    expect(Array.from(decodeFloat16(encodeFloat16(Float32Array.of(1, -2, 0.5))))).toEqual([
      1, -2, 0.5,
    ]);
  });
});
