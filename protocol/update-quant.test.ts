import { describe, expect, it } from 'vitest';
import { l2Norm } from './clip.js';
import { mulberry32, normal } from './prng.js';
import { thrownCode as code } from './testing.js';
import {
  DTYPE_INT2,
  DTYPE_INT4,
  DTYPE_INT8,
  UPDATE_HEADER_BYTES,
  decodeUpdate,
  encodeUpdate,
  payloadBytes,
  type ModelUpdate,
} from './update-format.js';
import { QUANT_BLOCK, QUANT_FORMS, capNorm, dequantize, quantize } from './update-quant.js';

const token = new Uint8Array(16).fill(3);

function update(dtype: 3 | 4 | 5, delta: Float32Array, clipNorm = 1e9): ModelUpdate {
  return { dtype, baseVersion: 2, layoutHash: 9, examples: 5, clipNorm, roundToken: token, delta };
}

/** Gaussian values with whole blocks of zeros (rows a device did not touch), odd length. */
function sample(length: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const block = Math.floor(i / QUANT_BLOCK);
    out[i] = block % 3 === 1 ? 0 : normal(rng) * 0.01 * (1 + (block % 5));
  }
  return out;
}

/** Largest |value| of each value's block. */
function blockMax(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += QUANT_BLOCK) {
    const end = Math.min(start + QUANT_BLOCK, values.length);
    let max = 0;
    for (let i = start; i < end; i++) max = Math.max(max, Math.abs(values[i]!));
    out.fill(max, start, end);
  }
  return out;
}

describe('block-scaled update dtypes', () => {
  for (const [form, dtype] of [
    ['int8', DTYPE_INT8],
    ['int4', DTYPE_INT4],
    ['int2', DTYPE_INT2],
  ] as const) {
    const top = QUANT_FORMS[form].levels;

    it(`${form}: the body has its exact size, and each value decodes within one step of its block`, () => {
      const delta = sample(1001, 1);
      const body = encodeUpdate(update(dtype, delta), mulberry32(2));
      const blocks = Math.ceil(1001 / QUANT_BLOCK);
      const levelBytes = Math.ceil((1001 * QUANT_FORMS[form].bits) / 8);
      expect(body.length).toBe(UPDATE_HEADER_BYTES + 4 * blocks + levelBytes);
      expect(payloadBytes(dtype, 1001)).toBe(4 * blocks + levelBytes);
      const back = decodeUpdate(body, 2000);
      expect(back.dtype).toBe(dtype);
      const max = blockMax(delta);
      let moved = 0;
      delta.forEach((v, i) => {
        const step = max[i]! / top;
        expect(Math.abs(back.delta[i]! - v)).toBeLessThanOrEqual(step * (1 + 1e-6));
        if (v === 0) expect(back.delta[i]).toBe(0);
        if (back.delta[i] !== v) moved++;
      });
      // Most values lie between two levels: the rounding really moves them.
      expect(moved).toBeGreaterThan(500);
    });

    it(`${form}: the rounding is unbiased (the mean of many encodings converges to the values)`, () => {
      const values = sample(256, 3);
      const draws = 4000;
      const sum = new Float64Array(values.length);
      const random = mulberry32(4);
      for (let d = 0; d < draws; d++) {
        const back = dequantize(quantize(values, form, random), form);
        for (let i = 0; i < values.length; i++) sum[i] = sum[i]! + back[i]!;
      }
      const max = blockMax(values);
      let worst = 0;
      values.forEach((v, i) => {
        // A draw's rounding has standard deviation at most half a step.
        const sd = max[i]! / top / 2 / Math.sqrt(draws);
        if (sd > 0) worst = Math.max(worst, Math.abs(sum[i]! / draws - v) / sd);
      });
      expect(worst).toBeGreaterThan(0);
      expect(worst).toBeLessThan(5);
      // Rounding to the nearest level instead would be off by up to half a step: far outside.
      const nearest = values.map((v, i) => (Math.round((v / max[i]!) * top) * max[i]!) / top || 0);
      const nearestWorst = Math.max(
        ...Array.from(values, (v, i) =>
          max[i]! > 0 ? Math.abs(nearest[i]! - v) / (max[i]! / top / 2 / Math.sqrt(draws)) : 0,
        ),
      );
      expect(nearestWorst).toBeGreaterThan(5);
    });

    it(`${form}: an update clipped to S decodes within S, however the rounding falls`, () => {
      for (let seed = 0; seed < 20; seed++) {
        const delta = sample(3000, 10 + seed);
        const norm = l2Norm(delta);
        for (let i = 0; i < delta.length; i++) delta[i]! /= norm; // exactly at S = 1
        const back = decodeUpdate(encodeUpdate(update(dtype, delta, 1), mulberry32(seed)), 4000);
        expect(l2Norm(back.delta)).toBeLessThanOrEqual(1);
        expect(l2Norm(back.delta)).toBeGreaterThan(0.95);
      }
    });
  }

  it('capNorm scales the blocks down only when the rounding lifted the norm above the bound', () => {
    const values = Float32Array.of(0.6, 0.8, 0, 0);
    const q = quantize(values, 'int4', () => 0.5);
    expect(capNorm(q, 'int4', 2)).toBe(1);
    const factor = capNorm(q, 'int4', 0.5);
    expect(factor).toBeLessThan(1);
    expect(l2Norm(dequantize(q, 'int4'))).toBeLessThanOrEqual(0.5);
  });

  it('refuses a scale or level no encoder writes, with HEARTH_E_UPDATE_PAYLOAD', () => {
    const delta = sample(129, 5);
    const int8 = encodeUpdate(update(DTYPE_INT8, delta), mulberry32(1));
    const int4 = encodeUpdate(update(DTYPE_INT4, delta), mulberry32(1));
    expect(code(() => decodeUpdate(int8, 200))).toBeUndefined();
    expect(code(() => decodeUpdate(int4, 200))).toBeUndefined();
    const levelsAt = UPDATE_HEADER_BYTES + 4 * 3;
    const set = (body: Uint8Array, at: number, value: number) => {
      const copy = body.slice();
      copy[at] = value;
      return copy;
    };
    expect(code(() => decodeUpdate(set(int8, levelsAt + 7, 0x80), 200))).toBe(
      'HEARTH_E_UPDATE_PAYLOAD',
    );
    expect(code(() => decodeUpdate(set(int4, levelsAt + 7, 0x08), 200))).toBe(
      'HEARTH_E_UPDATE_PAYLOAD',
    );
    // 129 int4 levels leave the last byte's high nibble as padding: it must be 0.
    expect(
      code(() => decodeUpdate(set(int4, int4.length - 1, int4[int4.length - 1]! | 0x10), 200)),
    ).toBe('HEARTH_E_UPDATE_PAYLOAD');
    // int2: -2 (binary 10) is no level; 129 levels use the last byte's lowest two bits only.
    const int2 = encodeUpdate(update(DTYPE_INT2, delta), mulberry32(1));
    expect(code(() => decodeUpdate(int2, 200))).toBeUndefined();
    expect(code(() => decodeUpdate(set(int2, levelsAt + 3, 0b10), 200))).toBe(
      'HEARTH_E_UPDATE_PAYLOAD',
    );
    expect(
      code(() => decodeUpdate(set(int2, int2.length - 1, int2[int2.length - 1]! | 0b100), 200)),
    ).toBe('HEARTH_E_UPDATE_PAYLOAD');
    const negative = int8.slice();
    new DataView(negative.buffer).setFloat32(UPDATE_HEADER_BYTES + 4, -1, true);
    expect(code(() => decodeUpdate(negative, 200))).toBe('HEARTH_E_UPDATE_PAYLOAD');
    const nan = int8.slice();
    new DataView(nan.buffer).setFloat32(UPDATE_HEADER_BYTES, NaN, true);
    expect(code(() => decodeUpdate(nan, 200))).toBe('HEARTH_E_UPDATE_PAYLOAD');
    expect(code(() => decodeUpdate(int4.subarray(0, int4.length - 1), 200))).toBe(
      'HEARTH_E_UPDATE_TRUNCATED',
    );
  });

  it('an integer dtype needs a random source', () => {
    expect(() => encodeUpdate(update(DTYPE_INT8, Float32Array.of(1)))).toThrow(/random/);
  });
});
