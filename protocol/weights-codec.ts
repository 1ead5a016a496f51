/**
 * The bytes of a model's weights in each dtype a manifest may name, written and read in one place
 * for the server (serving), the device (loading) and the tools (export, evaluation).
 *
 * - `float32`, `float16`: every value in tensor order, little-endian.
 * - `int8e` and `int8`: symmetric per-row quantisation. A row is a tensor's last axis (an item's
 *   embedding, a kernel row); a 1-D tensor is cut into rows of INT8_BLOCK values (manifest.ts
 *   `int8Rows`, with the byte lengths). A row has a step; its values are one int8 each in tensor
 *   order, value = q * step with q = round(value / step), and the step is at least max |row| / 127,
 *   so each value is off by at most step / 2, half a step of its own row.
 * - `int8e` (the default) codes the steps in one byte a row: first a float32 base per tensor (the
 *   largest max |row| / 127 of its rows), then one code per row, all rows in tensor order, then the
 *   values. A row's step is base * 2^(-code / 8) (`int8Step`), the smallest such step at least
 *   max |row| / 127, so at most 2^(1/8) (9%) above it (a row more than 2^31 times smaller than its
 *   tensor's largest takes the smallest, 2^(-255/8) of the base).
 * - `int8` writes each row's step as a float32, max |row| / 127 exactly: 3 bytes more a row
 *   (132,306 bytes of a 43k-item model, 3,084,870 against 2,952,596), for steps up to 9% finer.
 *
 * A 43k-item model downloads in about a quarter of its float32 size either way.
 */
import { decodeFloat16, encodeFloat16 } from './float16.js';
import {
  int8Rows,
  parameterCount,
  weightsByteLength,
  type TensorSpec,
  type WeightsDtype,
} from './manifest.js';

/** Ratio between neighbouring int8e steps: a row's step is at most this much above its ideal. */
export const INT8E_STEP_RATIO = 2 ** (1 / 8);

/** The step of an int8e row coded `code` under its tensor's `base`. */
export function int8Step(base: number, code: number): number {
  return base * INT8E_STEP_RATIO ** -code;
}

/** The largest code (smallest step) whose step is at least `ideal`, under `base`. */
function int8Code(base: number, ideal: number): number {
  if (ideal <= 0) return 255;
  let code = Math.min(255, Math.max(0, Math.floor(-8 * Math.log2(ideal / base))));
  while (code > 0 && int8Step(base, code) < ideal) code--;
  return code;
}

/** The smallest float32 at least `x` (x finite, at least 0). */
function float32AtLeast(x: number): number {
  const word = new Float32Array([x]);
  const bits = new Uint32Array(word.buffer);
  if (word[0]! < x) bits[0]! += 1;
  return word[0]!;
}

/** Bytes before an int8 body's values: the steps (int8) or the bases and codes (int8e). */
function int8Head(layout: readonly TensorSpec[], dtype: 'int8' | 'int8e'): number {
  const rows = int8Rows(layout).length;
  return dtype === 'int8' ? 4 * rows : 4 * layout.length + rows;
}

/** Each tensor's rows, as [first, end) indices into int8Rows(layout). */
function tensorRows(layout: readonly TensorSpec[]): [number, number][] {
  let first = 0;
  return layout.map((tensor) => {
    const end = first + int8Rows([tensor]).length;
    const range: [number, number] = [first, end];
    first = end;
    return range;
  });
}

/**
 * Writes the head of an int8 or int8e body for `flat` into `view` and returns each row's step as
 * the decoder will read it.
 */
function writeSteps(
  view: DataView,
  layout: readonly TensorSpec[],
  flat: Float32Array,
  dtype: 'int8' | 'int8e',
): Float64Array {
  const rows = int8Rows(layout);
  const steps = new Float64Array(rows.length);
  let at = 0;
  rows.forEach((width, r) => {
    let max = 0;
    for (let i = at; i < at + width; i++) max = Math.max(max, Math.abs(flat[i]!));
    steps[r] = max / 127;
    at += width;
  });
  if (dtype === 'int8') {
    // A float32 each: at least max |row| / 127 only to float32 rounding.
    steps.forEach((step, r) => {
      view.setFloat32(4 * r, step, true);
      steps[r] = view.getFloat32(4 * r, true);
    });
    return steps;
  }
  tensorRows(layout).forEach(([first, end], t) => {
    let largest = 0;
    for (let r = first; r < end; r++) largest = Math.max(largest, steps[r]!);
    // The base as the body holds it, never below the largest row's ideal step.
    const base = float32AtLeast(largest);
    view.setFloat32(4 * t, base, true);
    for (let r = first; r < end; r++) {
      const code = int8Code(base, steps[r]!);
      view.setUint8(4 * layout.length + r, code);
      steps[r] = int8Step(base, code);
    }
  });
  return steps;
}

/** Each row's step as the head of an int8 or int8e body in `view` holds it. */
function readSteps(
  view: DataView,
  layout: readonly TensorSpec[],
  dtype: 'int8' | 'int8e',
): Float64Array {
  const steps = new Float64Array(int8Rows(layout).length);
  if (dtype === 'int8') {
    steps.forEach((_, r) => (steps[r] = view.getFloat32(4 * r, true)));
    return steps;
  }
  tensorRows(layout).forEach(([first, end], t) => {
    const base = view.getFloat32(4 * t, true);
    for (let r = first; r < end; r++) {
      steps[r] = int8Step(base, view.getUint8(4 * layout.length + r));
    }
  });
  return steps;
}

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
    return out;
  }
  if (dtype === 'float16') {
    encodeFloat16(flat).forEach((h, i) => view.setUint16(2 * i, h, true));
    return out;
  }
  const steps = writeSteps(view, layout, flat, dtype);
  const values = new Int8Array(out.buffer, int8Head(layout, dtype));
  let at = 0;
  int8Rows(layout).forEach((width, r) => {
    const step = steps[r]!;
    for (let i = at; i < at + width; i++) {
      values[i] = step > 0 ? Math.round(flat[i]! / step) : 0;
    }
    at += width;
  });
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
  const steps = readSteps(view, layout, dtype);
  const head = int8Head(layout, dtype);
  const values = new Int8Array(bytes.buffer, bytes.byteOffset + head, parameterCount(layout));
  const flat = new Float32Array(values.length);
  let at = 0;
  int8Rows(layout).forEach((width, r) => {
    const step = steps[r]!;
    for (let i = at; i < at + width; i++) flat[i] = values[i]! * step;
    at += width;
  });
  return flat;
}
