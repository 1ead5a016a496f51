/**
 * The bytes of a model's weights in each dtype a manifest may name, written and read in one place
 * for the server (serving), the device (loading) and the tools (export, evaluation).
 *
 * - `float32`, `float16`: every value in tensor order, little-endian.
 * - `int8`: symmetric per-row quantisation. A row is a tensor's last axis (an item's embedding, a
 *   kernel row); a 1-D tensor is cut into rows of INT8_BLOCK values (manifest.ts `int8Rows`, with
 *   the byte lengths). First a float32 scale per row,
 *   all rows in tensor order, then one int8 per value in tensor order: value = q * scale, with
 *   scale = max |row| / 127 and q = round(value / scale). So each value is off by at most scale / 2,
 *   half a step of its own row, and a 43k-item model downloads in about a quarter of its float32 size.
 */
import { decodeFloat16, encodeFloat16 } from './float16.js';
import { int8Rows, weightsByteLength, type TensorSpec, type WeightsDtype } from './manifest.js';

/** Encodes flat float32 weights (tensor order) in `dtype`. */
export function encodeWeights(
  flat: Float32Array,
  layout: readonly TensorSpec[],
  dtype: WeightsDtype,
): Uint8Array {
  const out = new Uint8Array(weightsByteLength(layout, dtype));
  const view = new DataView(out.buffer);
  if (dtype === 'float32') {
    flat.forEach((v, i) => view.setFloat32(4 * i, v, true));
  } else if (dtype === 'float16') {
    encodeFloat16(flat).forEach((h, i) => view.setUint16(2 * i, h, true));
  } else {
    const rows = int8Rows(layout);
    const values = new Int8Array(out.buffer, 4 * rows.length);
    let at = 0;
    rows.forEach((width, r) => {
      let max = 0;
      for (let i = at; i < at + width; i++) max = Math.max(max, Math.abs(flat[i]!));
      const scale = max / 127;
      view.setFloat32(4 * r, scale, true);
      for (let i = at; i < at + width; i++) {
        values[i] = scale > 0 ? Math.round(flat[i]! / scale) : 0;
      }
      at += width;
    });
  }
  return out;
}

/**
 * Decodes weights over `layout` from `bytes` in `dtype`. The caller checks the byte length against
 * the manifest first (weightsByteLength) and finiteness after.
 */
export function decodeWeights(
  bytes: Uint8Array,
  layout: readonly TensorSpec[],
  dtype: WeightsDtype,
): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'float16') {
    const half = new Uint16Array(bytes.byteLength / 2);
    for (let i = 0; i < half.length; i++) half[i] = view.getUint16(2 * i, true);
    return decodeFloat16(half);
  }
  if (dtype === 'float32') {
    const flat = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < flat.length; i++) flat[i] = view.getFloat32(4 * i, true);
    return flat;
  }
  const rows = int8Rows(layout);
  const head = 4 * rows.length;
  const values = new Int8Array(bytes.buffer, bytes.byteOffset + head, bytes.byteLength - head);
  const flat = new Float32Array(values.length);
  let at = 0;
  rows.forEach((width, r) => {
    const scale = view.getFloat32(4 * r, true);
    for (let i = at; i < at + width; i++) flat[i] = values[i]! * scale;
    at += width;
  });
  return flat;
}
