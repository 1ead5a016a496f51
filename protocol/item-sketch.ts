/**
 * Item rows sent as a count sketch (Charikar, Chen and Farach-Colton 2002; a sketched update as in
 * FetchSGD, Rothchild et al. 2020): instead of the few item rows a round names (update-layout.ts
 * `rows`), an update holds the dense tensors and `buckets` rows of d + 1 values (embedding and bias),
 * and every catalogue item i adds its row, times a sign s(i) = ±1, into bucket h(i). The server
 * reads item i's row back as s(i) times its bucket: its own row plus the signed rows of the items
 * that share the bucket, which average out over rounds because (h, s) are drawn afresh every round
 * from the round's key (public, the same for every device). So every item row moves every round,
 * the length never depends on what the visitor did, and the map is linear: the sum of the devices'
 * sketches is the sketch of their sum, which is what secure aggregation reveals.
 *
 *   sketch   [dense tensors (manifest order)] [bucket 0: d embedding values, bias] ... [bucket B-1]
 *
 * E[decode(sketch(u))] = u over the draw of (h, s), and E‖sketch(u)‖² = ‖u‖², but one round's
 * decoded rows carry the bucket mates' rows as noise (about (items - 1) / B of them each).
 */
import { denseLength, type ItemSketch, type ModelDims } from './manifest.js';

export type { ItemSketch } from './manifest.js';

/** The sketch of version `version`'s round: its hashes are drawn from the version number. */
export function roundSketch(buckets: number, version: number): ItemSketch {
  if (!(Number.isInteger(buckets) && buckets >= 1)) {
    throw new RangeError(`a sketch needs a whole number of buckets >= 1, not ${buckets}`);
  }
  return { buckets, key: mix(version * 7919 + 1) };
}

/** A 32-bit integer finaliser (lowbias32: Wellons 2018), for the bucket and sign hashes. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Item `item`'s bucket and sign under `sketch`, as one signed number: bucket + 1 when the sign is
 * +1, -(bucket + 1) when it is -1.
 */
export function sketchSlot(item: number, sketch: ItemSketch): number {
  const h = mix(Math.imul(item, 0x9e3779b1) ^ sketch.key);
  const bucket = (h >>> 1) % sketch.buckets;
  return h & 1 ? bucket + 1 : -(bucket + 1);
}

/** Values of a sketched update: the dense tensors, then d + 1 values a bucket. */
export function sketchLength(dims: ModelDims, sketch: ItemSketch): number {
  return denseLength(dims) + sketch.buckets * (dims.embedding + 1);
}

/**
 * Moves values between a full (manifest-order) vector and a sketch: into the sketch, each item row
 * is added with its sign into its bucket; out of it, each item row is its sign times its bucket.
 * The dense tensors are copied as they are; the target is zeroed first, row 0 stays zero.
 */
function transfer(
  full: Float32Array | Float64Array,
  compact: Float32Array | Float64Array,
  dims: ModelDims,
  sketch: ItemSketch,
  into: 'sketch' | 'rows',
): void {
  const d = dims.embedding;
  const n = dims.items;
  const dense = denseLength(dims);
  const offset = n * d + n;
  const target = into === 'sketch' ? compact : full;
  target.fill(0);
  if (into === 'sketch') compact.set(full.subarray(offset, offset + dense), 0);
  else full.set(compact.subarray(0, dense), offset);
  // Embedding values, then the bias (stored after the whole table in the full vector).
  for (let item = 1; item < n; item++) {
    const slot = sketchSlot(item, sketch);
    const sign = slot > 0 ? 1 : -1;
    const at = dense + (Math.abs(slot) - 1) * (d + 1);
    const row = item * d;
    if (into === 'sketch') {
      for (let c = 0; c < d; c++) compact[at + c]! += sign * full[row + c]!;
      compact[at + d]! += sign * full[n * d + item]!;
    } else {
      for (let c = 0; c < d; c++) full[row + c] = sign * compact[at + c]!;
      full[n * d + item] = sign * compact[at + d]!;
    }
  }
}

/**
 * The sketch of a full (manifest-order) vector `full` into `out` (sketchLength values, overwritten).
 * Row 0 is padding and never enters a bucket.
 */
export function sketchUpdate<T extends Float32Array | Float64Array>(
  full: Float32Array | Float64Array,
  dims: ModelDims,
  sketch: ItemSketch,
  out: T,
): T {
  transfer(full, out, dims, sketch, 'sketch');
  return out;
}

/**
 * A full (manifest-order) vector read back from sketch `compact` into `full` (overwritten): the
 * dense tensors as they are, each item row its sign times its bucket, row 0 zero. Linear, and
 * unbiased over the round's draw of hashes.
 */
export function unsketchUpdate<T extends Float32Array | Float64Array>(
  compact: Float32Array | Float64Array,
  dims: ModelDims,
  sketch: ItemSketch,
  full: T,
): T {
  transfer(full, compact, dims, sketch, 'rows');
  return full;
}
