/**
 * Block-scaled integer updates: the compact dtypes of the update format (update-format.ts). The
 * payload's values are cut into blocks of QUANT_BLOCK in order; each block has one float32 scale,
 * the largest |value| in it, and each value becomes an integer level in [-L, L] (L = 127 for int8,
 * 7 for int4, 1 for int2: ternary, as in TernGrad, Wen et al. 2017), decoded as level * scale / L.
 *
 * The rounding is stochastic (QSGD: Alistarh et al., NeurIPS 2017): a value between two levels goes
 * to the upper one with probability equal to its distance from the lower, so every decoded value's
 * expectation is the value itself and a round's mean stays unbiased; the rounding adds at most
 * (scale / L)^2 / 4 of variance per value, and a value of 0 stays exactly 0 (a row a device did not
 * touch costs no noise). Blocks do not follow the layout's rows: a block is just 64 consecutive
 * values, so the payload never depends on what the device saw.
 */

/** Values per scale. */
export const QUANT_BLOCK = 64;

/** The integer dtypes: their largest level and bits per value. */
export const QUANT_FORMS = {
  int8: { levels: 127, bits: 8 },
  int4: { levels: 7, bits: 4 },
  int2: { levels: 1, bits: 2 },
} as const;
export type QuantForm = keyof typeof QUANT_FORMS;

/** A quantised payload: a scale per block and a level per value. */
export interface Quantized {
  readonly scales: Float32Array;
  readonly levels: Int8Array;
}

/** Number of blocks (scales) for `count` values. */
export function blockCount(count: number): number {
  return Math.ceil(count / QUANT_BLOCK);
}

/** Payload bytes for `count` values in `form`: the scales, then the packed levels. */
export function quantizedBytes(form: QuantForm, count: number): number {
  return 4 * blockCount(count) + Math.ceil((count * QUANT_FORMS[form].bits) / 8);
}

/** The largest |value| of each block: its scale. */
function blockMaxima(values: Float32Array): Float32Array {
  const maxima = new Float32Array(blockCount(values.length));
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(i / QUANT_BLOCK);
    maxima[b] = Math.max(maxima[b]!, Math.abs(values[i]!));
  }
  return maxima;
}

/**
 * Each value's level: `choose(y, i, scale)` picks it from y, the value in units of its block's
 * step (in [-L, L]), or returns NaN to give up (null). Levels are kept within [-L, L].
 */
function toLevels(
  values: Float32Array,
  form: QuantForm,
  choose: (y: number, i: number, scale: number) => number,
): Quantized | null {
  const top = QUANT_FORMS[form].levels;
  const scales = blockMaxima(values);
  const levels = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const scale = scales[Math.floor(i / QUANT_BLOCK)]!;
    const level = choose(scale > 0 ? (values[i]! / scale) * top : 0, i, scale);
    if (Number.isNaN(level)) return null;
    // The float32 scale can round below the block's max: keep the level in range.
    levels[i] = Math.max(-top, Math.min(top, level));
  }
  return { scales, levels };
}

/**
 * Rounds `values` stochastically to `form`'s levels, one scale per block; `random` gives uniform
 * draws in [0, 1) (crypto-backed on a device, seeded in the simulation).
 */
export function quantize(values: Float32Array, form: QuantForm, random: () => number): Quantized {
  return toLevels(values, form, (y, _i, scale) => {
    if (!(scale > 0)) return 0;
    const low = Math.floor(y);
    return random() < y - low ? low + 1 : low;
  })!;
}

/** The values a quantised payload stands for. */
export function dequantize(quantized: Quantized, form: QuantForm): Float32Array {
  const top = QUANT_FORMS[form].levels;
  const { scales, levels } = quantized;
  const out = new Float32Array(levels.length);
  for (let i = 0; i < levels.length; i++) {
    out[i] = (levels[i]! * scales[Math.floor(i / QUANT_BLOCK)]!) / top;
  }
  return out;
}

/** The L2 norm of what a quantised payload decodes to, without decoding it. */
export function quantizedNorm(quantized: Quantized, form: QuantForm): number {
  const top = QUANT_FORMS[form].levels;
  let sum = 0;
  for (let b = 0; b < quantized.scales.length; b++) {
    let levelSquares = 0;
    const end = Math.min((b + 1) * QUANT_BLOCK, quantized.levels.length);
    for (let i = b * QUANT_BLOCK; i < end; i++) levelSquares += quantized.levels[i]! ** 2;
    sum += levelSquares * (quantized.scales[b]! / top) ** 2;
  }
  return Math.sqrt(sum);
}

/**
 * Scales every block down so the decoded norm is at most `bound`: stochastic rounding can lift a
 * clipped update's norm a little above S (by about 1.2% at int4 on a Gaussian vector), and the server
 * refuses an update above S. Returns the factor applied (1: none needed).
 */
export function capNorm(quantized: Quantized, form: QuantForm, bound: number): number {
  const norm = quantizedNorm(quantized, form);
  if (!(norm > bound)) return 1;
  // A hair under bound / norm, so the float32 scales cannot round the norm back above it.
  const factor = (bound / norm) * (1 - 1e-6);
  for (let b = 0; b < quantized.scales.length; b++) quantized.scales[b]! *= factor;
  return factor;
}

/**
 * Writes the levels packed at `form`'s width, two's complement, the first value of a byte in its
 * lowest bits (int4: two per byte; int2: four); unused bits of a last byte are 0.
 */
export function packLevels(levels: Int8Array, form: QuantForm, into: Uint8Array): void {
  if (form === 'int8') {
    into.set(new Uint8Array(levels.buffer, levels.byteOffset, levels.length));
    return;
  }
  const { bits, perByte, shift, mask } = packing(form);
  into.fill(0, 0, Math.ceil(levels.length / perByte));
  for (let i = 0; i < levels.length; i++) {
    into[i >> shift]! |= (levels[i]! & mask) << ((i & (perByte - 1)) * bits);
  }
}

/** How `form`'s levels pack: bits each, levels per byte (a power of two), log2 of it, bit mask. */
function packing(form: Exclude<QuantForm, 'int8'>) {
  const bits = QUANT_FORMS[form].bits;
  const perByte = 8 / bits;
  return { bits, perByte, shift: Math.log2(perByte), mask: (1 << bits) - 1 };
}

/**
 * Reads `count` packed levels. Returns null when one is outside [-L, L] (int8's -128, int4's -8,
 * int2's -2) or unused bits of the last byte are not 0: no encoder writes them, so the body is
 * malformed.
 */
export function unpackLevels(bytes: Uint8Array, form: QuantForm, count: number): Int8Array | null {
  const top = QUANT_FORMS[form].levels;
  const levels = new Int8Array(count);
  if (form === 'int8') {
    levels.set(new Int8Array(bytes.buffer, bytes.byteOffset, count));
    for (let i = 0; i < count; i++) if (levels[i]! < -top) return null;
    return levels;
  }
  const { bits, perByte, shift, mask } = packing(form);
  // Sign-extends a field: shifted to the top of 32 bits and back.
  const extend = 32 - bits;
  for (let i = 0; i < count; i++) {
    const field = (bytes[i >> shift]! >> ((i & (perByte - 1)) * bits)) & mask;
    const level = (field << extend) >> extend;
    if (level < -top) return null;
    levels[i] = level;
  }
  const used = count & (perByte - 1);
  if (used > 0 && bytes[count >> shift]! >> (used * bits) !== 0) return null;
  return levels;
}

/**
 * The block-scaled payload `values` is exactly, if it is one: each block's scale is its largest
 * |value|, and every value is a whole level of it (what `dequantize` gives back, bit for bit).
 * Null otherwise. The server uses it to keep an int8 / int4 / int2 update at rest in its own size.
 */
export function exactQuantized(values: Float32Array, form: QuantForm): Quantized | null {
  const top = QUANT_FORMS[form].levels;
  return toLevels(values, form, (y, i, scale) => {
    // Only +0 decodes from a zero block.
    if (scale === 0) return Object.is(values[i], 0) ? 0 : NaN;
    const level = Math.round(y);
    return Object.is(Math.fround((level * scale) / top), values[i]) ? level : NaN;
  });
}

/** Writes a quantised payload as the update format lays it out: the scales, then the levels. */
export function writeQuantized(quantized: Quantized, form: QuantForm, into: Uint8Array): void {
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  const blocks = quantized.scales.length;
  for (let b = 0; b < blocks; b++) view.setFloat32(4 * b, quantized.scales[b]!, true);
  packLevels(quantized.levels, form, into.subarray(4 * blocks));
}

/**
 * Reads `count` values laid out as `writeQuantized` writes them; null for a scale (negative, not
 * finite) or a level no encoder writes.
 */
export function readQuantized(
  bytes: Uint8Array,
  form: QuantForm,
  count: number,
): Float32Array | null {
  const blocks = blockCount(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const scale = view.getFloat32(4 * b, true);
    if (!(scale >= 0) || !Number.isFinite(scale)) return null;
    scales[b] = scale;
  }
  const levels = unpackLevels(bytes.subarray(4 * blocks), form, count);
  return levels ? dequantize({ scales, levels }, form) : null;
}
