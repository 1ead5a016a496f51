/**
 * The binary model-update format (POST /v1/updates, content type `application/vnd.hearth.update`).
 * It carries a clipped weight delta and nothing else a device knows: no item ids, no timestamps, no
 * counts beyond a clamped example count. All integers little-endian.
 *
 *   offset size field
 *    0      4   magic        ASCII "HRTU"
 *    4      1   format       format version, currently 1
 *    5      1   dtype        1 = float32, 2 = float16 (IEEE 754 binary16), 3 = int8, 4 = int4,
 *                              5 = int2
 *    6      2   layoutAhead  u16, how many versions after baseVersion the payload's layout is of:
 *                              0 (every SDK before it) for baseVersion's own; k when a device trained
 *                              on baseVersion sends its training in the layout (item sketch) of
 *                              baseVersion + k, published meanwhile (`federation.layoutAhead`)
 *    8      4   baseVersion  u32, the global model version the delta is relative to
 *   12      4   layoutHash   u32, protocol/manifest.ts layoutHash() of the layout version's tensors
 *                              (baseVersion + layoutAhead)
 *   16      4   paramCount   u32, number of values in the payload
 *   20      4   examples     u32, local training examples (server clamps to maxExamples)
 *   24      4   clipNorm     f32, the bound S the device clipped to
 *   28     16   roundToken   single-use token from POST /v1/rounds/join
 *   44      -   payload      paramCount values in `dtype`, in manifest tensor order
 *
 * int8, int4 and int2 (update-quant.ts) are block-scaled: the payload is ceil(paramCount / 64)
 * float32 scales, then paramCount levels (int8: one signed byte each, -127..127; int4: two per byte,
 * the first in the low nibble, -7..7; int2: four per byte, the first in the lowest two bits, -1..1),
 * each value level * scale / L for its block of 64.
 *
 * The total length must be exactly 44 + payloadBytes(dtype, paramCount): a short body is truncated, a
 * long one is rejected rather than partially read.
 */
import { HearthError } from './errors.js';
import { decodeFloat16, encodeFloat16 } from './float16.js';
import {
  capNorm,
  QUANT_FORMS,
  quantize,
  quantizedBytes,
  readQuantized,
  writeQuantized,
  type QuantForm,
} from './update-quant.js';

export const UPDATE_MAGIC = 0x55545248; // "HRTU" read as a little-endian u32
export const UPDATE_FORMAT_VERSION = 1;
export const UPDATE_HEADER_BYTES = 44;
export const UPDATE_CONTENT_TYPE = 'application/vnd.hearth.update';
export const ROUND_TOKEN_BYTES = 16;

export const DTYPE_FLOAT32 = 1;
export const DTYPE_FLOAT16 = 2;
export const DTYPE_INT8 = 3;
export const DTYPE_INT4 = 4;
export const DTYPE_INT2 = 5;
export type UpdateDtype =
  | typeof DTYPE_FLOAT32
  | typeof DTYPE_FLOAT16
  | typeof DTYPE_INT8
  | typeof DTYPE_INT4
  | typeof DTYPE_INT2;

/** The dtypes by name, as the manifest's `federation.updateDtype` names them. */
export const UPDATE_DTYPES = {
  float32: DTYPE_FLOAT32,
  float16: DTYPE_FLOAT16,
  int8: DTYPE_INT8,
  int4: DTYPE_INT4,
  int2: DTYPE_INT2,
} as const;
export type UpdateDtypeName = keyof typeof UPDATE_DTYPES;

/** What a manifest may ask devices to send (float32 is for tools and tests). */
export const DEVICE_UPDATE_DTYPES: readonly UpdateDtypeName[] = ['float16', 'int8', 'int4', 'int2'];

/**
 * The block-scaled form of an integer dtype code, or null for a float one: each form
 * (update-quant.ts QUANT_FORMS) has its dtype's name.
 */
function quantForm(dtype: UpdateDtype): QuantForm | null {
  const name = (Object.keys(UPDATE_DTYPES) as UpdateDtypeName[]).find(
    (key) => UPDATE_DTYPES[key] === dtype,
  );
  return name !== undefined && name in QUANT_FORMS ? (name as QuantForm) : null;
}

/** Payload bytes of `count` values in a dtype. */
export function payloadBytes(dtype: UpdateDtype, count: number): number {
  const form = quantForm(dtype);
  if (form) return quantizedBytes(form, count);
  return count * (dtype === DTYPE_FLOAT16 ? 2 : 4);
}

/** Bytes of a whole body of `count` values in a dtype: the header and the payload. */
export function bodyBytes(dtype: UpdateDtype, count: number): number {
  return UPDATE_HEADER_BYTES + payloadBytes(dtype, count);
}

/** A decoded update. `delta` is always float32, whatever travelled on the wire. */
export interface ModelUpdate {
  readonly dtype: UpdateDtype;
  readonly baseVersion: number;
  /**
   * The payload is in the layout of version baseVersion + layoutAhead (the header's layoutHash is
   * that version's): 0, or absent, for baseVersion's own.
   */
  readonly layoutAhead?: number;
  readonly layoutHash: number;
  readonly examples: number;
  readonly clipNorm: number;
  readonly roundToken: Uint8Array;
  readonly delta: Float32Array;
}

/** True where typed arrays are little-endian, as the wire is (every platform Hearth runs on). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The payload's values as a typed array. On little-endian hosts the bytes already are the values:
 * a view when aligned, an aligned copy otherwise (one pass instead of a DataView read per value,
 * which dominated decoding a 100k-value update). Big-endian hosts read value by value.
 */
function payload<T extends Uint16Array | Float32Array>(
  body: Uint8Array,
  count: number,
  size: 2 | 4,
  Type: { new (buffer: ArrayBuffer, offset: number, length: number): T; new (length: number): T },
): T {
  const start = body.byteOffset + UPDATE_HEADER_BYTES;
  if (LITTLE_ENDIAN) {
    if (start % size === 0) return new Type(body.buffer as ArrayBuffer, start, count);
    const copy = body.slice(UPDATE_HEADER_BYTES, UPDATE_HEADER_BYTES + count * size);
    return new Type(copy.buffer, 0, count);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out = new Type(count);
  for (let i = 0; i < count; i++) {
    const at = UPDATE_HEADER_BYTES + size * i;
    out[i] = size === 2 ? view.getUint16(at, true) : view.getFloat32(at, true);
  }
  return out;
}

/**
 * Serialises an update. Float values are written as given: clip before encoding. An integer dtype
 * rounds stochastically with `random` (required for them), and its blocks are scaled down where
 * the rounding lifted the norm above the header's clipNorm, so a clipped update stays within S.
 */
export function encodeUpdate(update: ModelUpdate, random?: () => number): Uint8Array<ArrayBuffer> {
  if (update.roundToken.length !== ROUND_TOKEN_BYTES) {
    throw new RangeError(`round token must be ${ROUND_TOKEN_BYTES} bytes`);
  }
  const count = update.delta.length;
  const bytes = new Uint8Array(bodyBytes(update.dtype, count));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, UPDATE_MAGIC, true);
  view.setUint8(4, UPDATE_FORMAT_VERSION);
  view.setUint8(5, update.dtype);
  const ahead = update.layoutAhead ?? 0;
  if (!Number.isInteger(ahead) || ahead < 0 || ahead > 0xffff) {
    throw new RangeError(`layoutAhead must be an integer in 0..65535, got ${ahead}`);
  }
  view.setUint16(6, ahead, true);
  view.setUint32(8, update.baseVersion, true);
  view.setUint32(12, update.layoutHash, true);
  view.setUint32(16, count, true);
  view.setUint32(20, update.examples, true);
  view.setFloat32(24, update.clipNorm, true);
  bytes.set(update.roundToken, 28);
  const form = quantForm(update.dtype);
  if (form) {
    if (!random) throw new RangeError(`dtype ${update.dtype} needs a random source`);
    const quantized = quantize(update.delta, form, random);
    capNorm(quantized, form, update.clipNorm);
    writeQuantized(quantized, form, bytes.subarray(UPDATE_HEADER_BYTES));
  } else if (update.dtype === DTYPE_FLOAT16) {
    const half = encodeFloat16(update.delta);
    for (let i = 0; i < count; i++) view.setUint16(UPDATE_HEADER_BYTES + 2 * i, half[i]!, true);
  } else {
    for (let i = 0; i < count; i++)
      view.setFloat32(UPDATE_HEADER_BYTES + 4 * i, update.delta[i]!, true);
  }
  return bytes;
}

/**
 * Parses an untrusted body. Checks framing only (magic, version, dtype, exact length, at most
 * `maxParams` values); the server checks meaning (versions, layout, finiteness, norm, token).
 */
export function decodeUpdate(body: Uint8Array, maxParams: number): ModelUpdate {
  if (body.length < UPDATE_HEADER_BYTES) {
    throw new HearthError('HEARTH_E_UPDATE_TRUNCATED', `${body.length} bytes, header needs 44`);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0, true) !== UPDATE_MAGIC) throw new HearthError('HEARTH_E_UPDATE_MAGIC');
  const format = view.getUint8(4);
  if (format !== UPDATE_FORMAT_VERSION) {
    throw new HearthError('HEARTH_E_UPDATE_FORMAT_VERSION', `got ${format}`);
  }
  const dtype = view.getUint8(5);
  if (dtype < DTYPE_FLOAT32 || dtype > DTYPE_INT2) {
    throw new HearthError('HEARTH_E_UPDATE_DTYPE', `got ${dtype}`);
  }
  const count = view.getUint32(16, true);
  if (count > maxParams) {
    throw new HearthError('HEARTH_E_UPDATE_TOO_LARGE', `${count} values, at most ${maxParams}`);
  }
  const expected = bodyBytes(dtype as UpdateDtype, count);
  if (body.length < expected) {
    throw new HearthError(
      'HEARTH_E_UPDATE_TRUNCATED',
      `${body.length} bytes, expected ${expected}`,
    );
  }
  if (body.length > expected) {
    throw new HearthError(
      'HEARTH_E_UPDATE_TOO_LARGE',
      `${body.length} bytes, expected ${expected}`,
    );
  }
  const clipNorm = view.getFloat32(24, true);
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
    throw new HearthError('HEARTH_E_UPDATE_HEADER', 'clipNorm must be positive and finite');
  }
  let delta: Float32Array;
  const form = quantForm(dtype as UpdateDtype);
  if (form) {
    delta = decodeQuantized(body, form, count);
  } else if (dtype === DTYPE_FLOAT16) {
    delta = decodeFloat16(payload(body, count, 2, Uint16Array));
  } else {
    delta = payload(body, count, 4, Float32Array).slice();
  }
  return {
    dtype: dtype as UpdateDtype,
    baseVersion: view.getUint32(8, true),
    layoutAhead: view.getUint16(6, true),
    layoutHash: view.getUint32(12, true),
    examples: view.getUint32(20, true),
    clipNorm,
    roundToken: body.slice(28, 28 + ROUND_TOKEN_BYTES),
    delta,
  };
}

/** A block-scaled payload's values; HEARTH_E_UPDATE_PAYLOAD for a scale or level no encoder writes. */
function decodeQuantized(body: Uint8Array, form: QuantForm, count: number): Float32Array {
  const values = readQuantized(body.subarray(UPDATE_HEADER_BYTES), form, count);
  if (!values) {
    throw new HearthError('HEARTH_E_UPDATE_PAYLOAD', `a scale or level outside ${form}'s range`);
  }
  return values;
}

/** Hex form of a round token, as the server stores it and as `/v1/rounds/join` returns it. */
export function tokenToHex(token: Uint8Array): string {
  return Array.from(token, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Parses a 32-hex-digit round token. */
export function tokenFromHex(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new HearthError('HEARTH_E_ROUND_TOKEN', 'malformed token');
  const out = new Uint8Array(ROUND_TOKEN_BYTES);
  for (let i = 0; i < ROUND_TOKEN_BYTES; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
