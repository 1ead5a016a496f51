import { describe, expect, it } from 'vitest';
import { thrownCode as code } from './testing.js';
import {
  DTYPE_FLOAT16,
  DTYPE_FLOAT32,
  UPDATE_HEADER_BYTES,
  decodeUpdate,
  encodeUpdate,
  tokenFromHex,
  tokenToHex,
  type ModelUpdate,
} from './update-format.js';

const token = Uint8Array.from({ length: 16 }, (_, i) => i * 7 + 1);

function update(dtype: 1 | 2, delta: Float32Array): ModelUpdate {
  return {
    dtype,
    baseVersion: 7,
    layoutHash: 0xdeadbeef,
    examples: 42,
    clipNorm: 1.5,
    roundToken: token,
    delta,
  };
}

describe('update format', () => {
  it('round-trips float32 exactly', () => {
    const delta = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 0.01);
    const bytes = encodeUpdate(update(DTYPE_FLOAT32, delta));
    expect(bytes.length).toBe(UPDATE_HEADER_BYTES + 4 * 1000);
    const back = decodeUpdate(bytes, 10_000);
    expect(back.baseVersion).toBe(7);
    expect(back.layoutHash).toBe(0xdeadbeef);
    expect(back.examples).toBe(42);
    expect(back.clipNorm).toBe(1.5);
    expect(Array.from(back.roundToken)).toEqual(Array.from(token));
    expect(Array.from(back.delta)).toEqual(Array.from(delta));
    expect(back.layoutAhead).toBe(0);
  });

  it('carries how far ahead of the base version the layout is, and nothing it cannot hold', () => {
    const delta = Float32Array.of(0.5, -0.25);
    for (const ahead of [1, 2, 0xffff]) {
      const bytes = encodeUpdate({ ...update(DTYPE_FLOAT32, delta), layoutAhead: ahead });
      expect(new DataView(bytes.buffer).getUint16(6, true)).toBe(ahead);
      const back = decodeUpdate(bytes, 10);
      expect(back.layoutAhead).toBe(ahead);
      expect(back.baseVersion).toBe(7);
    }
    for (const ahead of [-1, 0.5, 0x10000]) {
      expect(() => encodeUpdate({ ...update(DTYPE_FLOAT32, delta), layoutAhead: ahead })).toThrow(
        RangeError,
      );
    }
  });

  it('round-trips float16 within half precision', () => {
    const delta = Float32Array.from({ length: 500 }, (_, i) => Math.cos(i) * 0.05);
    const bytes = encodeUpdate(update(DTYPE_FLOAT16, delta));
    expect(bytes.length).toBe(UPDATE_HEADER_BYTES + 2 * 500);
    const back = decodeUpdate(bytes, 10_000);
    delta.forEach((v, i) =>
      expect(Math.abs(back.delta[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 1e-7),
    );
  });

  it('decodes from a view into a larger buffer (as a server body can be)', () => {
    const bytes = encodeUpdate(update(DTYPE_FLOAT32, Float32Array.of(1, 2, 3)));
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expect(Array.from(decodeUpdate(padded.subarray(3), 10).delta)).toEqual([1, 2, 3]);
  });

  it('decodes a body at any byte offset, and never aliases it', () => {
    const delta = Float32Array.from({ length: 300 }, (_, i) => Math.cos(i) * 0.02);
    for (const dtype of [DTYPE_FLOAT32, DTYPE_FLOAT16] as const) {
      const bytes = encodeUpdate(update(dtype, delta));
      const aligned = decodeUpdate(bytes, 1000).delta;
      for (const offset of [1, 2, 3]) {
        const host = new Uint8Array(bytes.length + offset);
        host.set(bytes, offset);
        const body = host.subarray(offset);
        const back = decodeUpdate(body, 1000).delta;
        expect(Array.from(back)).toEqual(Array.from(aligned));
        body.fill(0, UPDATE_HEADER_BYTES);
        expect(Array.from(back)).toEqual(Array.from(aligned));
      }
    }
  });

  it('rejects every framing error with its own code', () => {
    const good = encodeUpdate(update(DTYPE_FLOAT32, Float32Array.of(0.1, 0.2, 0.3, 0.4)));
    const mutate = (at: number, value: number): Uint8Array => {
      const copy = good.slice();
      copy[at] = value;
      return copy;
    };
    expect(code(() => decodeUpdate(good.subarray(0, 43), 10))).toBe('HEARTH_E_UPDATE_TRUNCATED');
    expect(code(() => decodeUpdate(good.subarray(0, good.length - 1), 10))).toBe(
      'HEARTH_E_UPDATE_TRUNCATED',
    );
    expect(code(() => decodeUpdate(new Uint8Array([...good, 0]), 10))).toBe(
      'HEARTH_E_UPDATE_TOO_LARGE',
    );
    expect(code(() => decodeUpdate(good, 3))).toBe('HEARTH_E_UPDATE_TOO_LARGE');
    expect(code(() => decodeUpdate(mutate(0, 0x58), 10))).toBe('HEARTH_E_UPDATE_MAGIC');
    expect(code(() => decodeUpdate(mutate(4, 2), 10))).toBe('HEARTH_E_UPDATE_FORMAT_VERSION');
    expect(code(() => decodeUpdate(mutate(5, 9), 10))).toBe('HEARTH_E_UPDATE_DTYPE');
    expect(code(() => decodeUpdate(good, 10))).toBeUndefined();
    // Bytes 6-7 are the layout's distance from the base version, which only the server can judge.
    expect(decodeUpdate(good, 10).layoutAhead).toBe(0);
    expect(decodeUpdate(mutate(6, 2), 10).layoutAhead).toBe(2);
    expect(decodeUpdate(mutate(7, 1), 10).layoutAhead).toBe(256);
  });

  it('round-trips round tokens through hex and rejects malformed ones', () => {
    expect(Array.from(tokenFromHex(tokenToHex(token)))).toEqual(Array.from(token));
    expect(code(() => tokenFromHex('xyz'))).toBe('HEARTH_E_ROUND_TOKEN');
  });
});
