import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16 } from '../protocol/float16.js';
import { mulberry32 } from '../protocol/prng.js';
import {
  DTYPE_INT2,
  DTYPE_INT4,
  DTYPE_INT8,
  decodeUpdate,
  encodeUpdate,
} from '../protocol/update-format.js';
import { bytesToDelta, deltaToBytes } from './store-codecs.js';

describe('an update vector at rest', () => {
  it('is float16 (2n + 1 bytes) when every value is one exactly, and reads back the same', () => {
    const sent = decodeFloat16(
      encodeFloat16(Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) / 3)),
    );
    const bytes = deltaToBytes(sent);
    expect(bytes.length).toBe(2 * 1000 + 1);
    expect(bytesToDelta(bytes)).toEqual(sent);
    // A view at an odd offset of a larger buffer (how a database driver may hand it back).
    const shifted = Buffer.concat([Buffer.from([7]), bytes]).subarray(1);
    expect(bytesToDelta(shifted)).toEqual(sent);
  });

  it('stays float32 (4n bytes) when a value is not a float16, so nothing is ever rounded', () => {
    const precise = Float32Array.from({ length: 10 }, (_, i) => 0.1 * (i + 1));
    const bytes = deltaToBytes(precise);
    expect(bytes.length).toBe(40);
    expect(bytesToDelta(bytes)).toEqual(precise);
    expect(bytesToDelta(deltaToBytes(new Float32Array(0)))).toEqual(new Float32Array(0));
    expect(() => bytesToDelta(new Uint8Array([1, 2, 3]))).toThrow(RangeError);
  });

  for (const [form, dtype, ratio] of [
    ['int4', DTYPE_INT4, 7],
    ['int8', DTYPE_INT8, 3.7],
    ['int2', DTYPE_INT2, 12],
  ] as const) {
    it(`is ${form} block-scaled when a device sent it so, and reads back bit for bit`, () => {
      const values = Float32Array.from({ length: 1001 }, (_, i) =>
        Math.floor(i / 64) % 3 === 1 ? 0 : Math.sin(i) * 0.01,
      );
      const body = encodeUpdate(
        {
          dtype,
          baseVersion: 1,
          layoutHash: 1,
          examples: 1,
          clipNorm: 1,
          roundToken: new Uint8Array(16),
          delta: values,
        },
        mulberry32(3),
      );
      const sent = decodeUpdate(body, 2000).delta;
      const bytes = deltaToBytes(sent);
      expect(bytes.length % 2).toBe(1);
      expect(bytes.length).toBeLessThan((4 * 1001) / ratio);
      expect(Array.from(bytesToDelta(bytes))).toEqual(Array.from(sent));
      const shifted = Buffer.concat([Buffer.from([7]), bytes]).subarray(1);
      expect(Array.from(bytesToDelta(shifted))).toEqual(Array.from(sent));
      // A stored vector whose count or tail does not add up is refused, never misread.
      const wrongCount = Buffer.from(bytes);
      wrongCount.writeUInt32LE(1000, wrongCount.length - 5);
      expect(() => bytesToDelta(wrongCount)).toThrow(RangeError);
      const badTag = Buffer.from(bytes);
      badTag[badTag.length - 1] = 0x99;
      expect(() => bytesToDelta(badTag)).toThrow(RangeError);
    });
  }

  it('keeps values that only look block-scaled in the form that holds them exactly', () => {
    // -0 is not what a zero block decodes to: float16 holds it exactly.
    const signed = Float32Array.of(-0, 0.5, 0.25);
    expect(Object.is(bytesToDelta(deltaToBytes(signed))[0], -0)).toBe(true);
    // Whole int4 levels of one block, but not float16 values: int4, exactly.
    const levels = Float32Array.from([7, -3, 0, 1], (l) => Math.fround((l * 0.1) / 7));
    const stored = deltaToBytes(levels);
    expect(stored[stored.length - 1]).toBe(0x24);
    expect(Array.from(bytesToDelta(stored))).toEqual(Array.from(levels));
  });
});
