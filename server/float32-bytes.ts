/**
 * Float32 weights <-> raw bytes, as stored in the database and served at `/v1/model/:version/weights`.
 * The wire and the database are little-endian; typed arrays use the host's byte order, so the server
 * refuses to run on a big-endian host rather than silently serve byte-swapped weights.
 */
import { endianness } from 'node:os';

/** Throws on a big-endian host (every platform Node ships for today is little-endian). */
export function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('the Hearth server needs a little-endian host');
}

/** The bytes of a Float32Array as a Buffer view (no copy). */
export function float32ToBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * A Float32Array over raw little-endian bytes: a view when the bytes are 4-byte aligned, else a copy
 * (Node's pooled Buffers can start at any offset, and Float32Array views must be aligned).
 */
export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new RangeError(`float32 data must be a multiple of 4 bytes, got ${bytes.byteLength}`);
  }
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Float32Array(bytes.slice().buffer);
}
