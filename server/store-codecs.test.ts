import { describe, expect, it } from 'vitest';
import { decodeFloat16, encodeFloat16 } from '../protocol/float16.js';
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
});
