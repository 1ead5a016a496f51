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
 *
 * With depth k > 1 the buckets are k tables of B, each with hashes of its own, and every item adds
 * its row times 1/√k into one bucket of each (so E‖sketch(u)‖² = ‖u‖² still). Reading back gives k
 * readings of each row with independent bucket mates; the row read is their mean, shrunk by how
 * much of it they agree on: ρ = p / (p + N), p the mean inner product of two readings (an estimate
 * of the row's squared norm, its mates' noise cancelling) and N the readings' spread around their
 * mean over k. A row no update touched, whose readings are only its mates', is read as nearly zero
 * instead of as its mates' noise. The reading is then biased toward zero and not linear (the server
 * reads the round's mean, a sum already aggregated and noised).
 *
 * With a dense stride k > 1 the sketch carries one in k of the dense tensors' values, every k-th
 * from an offset drawn from the key (so a different set each round, the same for every device),
 * and the others read back as zero: a round moves a k-th of the dense model, and every value is
 * sent once in k rounds on average. The dense part is then k times shorter.
 */
import {
  denseLength,
  MAX_DENSE_STRIDE,
  MAX_SKETCH_DEPTH,
  type ItemSketch,
  type ModelDims,
} from './manifest.js';

export type { ItemSketch } from './manifest.js';

/**
 * The sketch of version `version`'s round: its hashes (and its dense offset) are drawn from the
 * version number; `depth` tables of `buckets` buckets, one in `denseStride` dense values carried.
 */
export function roundSketch(
  buckets: number,
  version: number,
  depth = 1,
  denseStride = 1,
): ItemSketch {
  if (!(Number.isInteger(buckets) && buckets >= 1)) {
    throw new RangeError(`a sketch needs a whole number of buckets >= 1, not ${buckets}`);
  }
  if (!(Number.isInteger(depth) && depth >= 1 && depth <= MAX_SKETCH_DEPTH)) {
    throw new RangeError(
      `a sketch's depth is a whole number in 1..${MAX_SKETCH_DEPTH}, not ${depth}`,
    );
  }
  if (!(Number.isInteger(denseStride) && denseStride >= 1 && denseStride <= MAX_DENSE_STRIDE)) {
    throw new RangeError(
      `a sketch's dense stride is a whole number in 1..${MAX_DENSE_STRIDE}, not ${denseStride}`,
    );
  }
  const key = mix(version * 7919 + 1);
  return {
    buckets,
    key,
    ...(depth > 1 ? { depth } : {}),
    ...(denseStride > 1 ? { denseStride } : {}),
  };
}

/** Tables of a sketch (1 where the manifest names none). */
export function sketchDepth(sketch: ItemSketch): number {
  return sketch.depth ?? 1;
}

/**
 * Which of the model's `dense` values a sketch carries: those at offset, offset + stride, ... (all
 * of them with stride 1), the offset drawn from the sketch's key.
 */
export function sentDense(
  dense: number,
  sketch: ItemSketch,
): { offset: number; stride: number; count: number } {
  const stride = sketch.denseStride ?? 1;
  const offset = stride > 1 ? mix(sketch.key ^ 0x2545f491) % stride : 0;
  return { offset, stride, count: offset < dense ? Math.ceil((dense - offset) / stride) : 0 };
}

/** The key of table `table`'s hashes: the sketch's own for the first. */
function tableKey(sketch: ItemSketch, table: number): number {
  return table === 0 ? sketch.key : mix(sketch.key ^ Math.imul(table, 0x85ebca6b));
}

/** A 32-bit integer finaliser (lowbias32: Wellons 2018), for the bucket and sign hashes. */
function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Item `item`'s bucket and sign in table `table` of `sketch`, as one signed number: bucket + 1 when
 * the sign is +1, -(bucket + 1) when it is -1 (the bucket counted within the table).
 */
export function sketchSlot(item: number, sketch: ItemSketch, table = 0): number {
  return slotUnder(item, tableKey(sketch, table), sketch.buckets);
}

/** sketchSlot with the table's key given (the loops below draw it once a table). */
function slotUnder(item: number, key: number, buckets: number): number {
  const h = mix(Math.imul(item, 0x9e3779b1) ^ key);
  const bucket = (h >>> 1) % buckets;
  return h & 1 ? bucket + 1 : -(bucket + 1);
}

/**
 * Values of a sketched update: the dense values it carries (sentDense), then d + 1 values a bucket,
 * table by table.
 */
export function sketchLength(dims: ModelDims, sketch: ItemSketch): number {
  return (
    sketchDenseLength(dims, sketch) + sketchDepth(sketch) * sketch.buckets * (dims.embedding + 1)
  );
}

/** Dense values a sketched update carries before its buckets. */
export function sketchDenseLength(dims: ModelDims, sketch: ItemSketch): number {
  return sentDense(denseLength(dims), sketch).count;
}

/**
 * Moves values between a full (manifest-order) vector and a sketch: into the sketch, each item row
 * is added with its sign (over √depth) into its bucket of each table; out of it, each item row is
 * its sign times its bucket (with depth > 1: the shrunk mean of its tables' readings, see above).
 * The dense values the sketch carries are copied as they are (the others read as zero); the target
 * is zeroed first, row 0 stays zero.
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
  const carried = sentDense(denseLength(dims), sketch);
  const dense = carried.count;
  const offset = n * d + n;
  const depth = sketchDepth(sketch);
  const target = into === 'sketch' ? compact : full;
  target.fill(0);
  if (carried.stride === 1) {
    if (into === 'sketch') compact.set(full.subarray(offset, offset + dense), 0);
    else full.set(compact.subarray(0, dense), offset);
  } else {
    for (let j = 0, at = offset + carried.offset; j < dense; j++, at += carried.stride) {
      if (into === 'sketch') compact[j] = full[at]!;
      else full[at] = compact[j]!;
    }
  }
  if (into === 'rows' && depth > 1) {
    readShrunk(full, compact, dims, sketch);
    return;
  }
  const scale = 1 / Math.sqrt(depth);
  // Embedding values, then the bias (stored after the whole table in the full vector).
  for (let table = 0; table < depth; table++) {
    const base = dense + table * sketch.buckets * (d + 1);
    const key = tableKey(sketch, table);
    for (let item = 1; item < n; item++) {
      const slot = slotUnder(item, key, sketch.buckets);
      const sign = slot > 0 ? scale : -scale;
      const at = base + (Math.abs(slot) - 1) * (d + 1);
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
}

/**
 * Reads every item row of a sketch of depth k > 1 into `full` (zeroed, dense part set): the mean r̄
 * of its k readings r_t (sign times bucket times √k, each unbiased), times ρ = p / (p + N) where p
 * is the mean of r_a · r_b over pairs a < b (0 if negative) and N = Σ_t ‖r_t - r̄‖² / (k (k - 1)),
 * the squared error of r̄ the readings' spread shows; both over the d + 1 values of the row.
 */
function readShrunk(
  full: Float32Array | Float64Array,
  compact: Float32Array | Float64Array,
  dims: ModelDims,
  sketch: ItemSketch,
): void {
  const d = dims.embedding;
  const n = dims.items;
  const dense = sketchDenseLength(dims, sketch);
  const depth = sketchDepth(sketch);
  const width = d + 1;
  const gain = Math.sqrt(depth);
  const readings = new Float64Array(depth * width);
  const mean = new Float64Array(width);
  const keys = Array.from({ length: depth }, (_, table) => tableKey(sketch, table));
  for (let item = 1; item < n; item++) {
    mean.fill(0);
    for (let table = 0; table < depth; table++) {
      const slot = slotUnder(item, keys[table]!, sketch.buckets);
      const sign = slot > 0 ? gain : -gain;
      const at = dense + (table * sketch.buckets + Math.abs(slot) - 1) * width;
      for (let c = 0; c < width; c++) {
        const r = sign * compact[at + c]!;
        readings[table * width + c] = r;
        mean[c]! += r / depth;
      }
    }
    let pairs = 0;
    let spread = 0;
    for (let a = 0; a < depth; a++) {
      for (let c = 0; c < width; c++) {
        const ra = readings[a * width + c]!;
        spread += (ra - mean[c]!) ** 2;
        for (let b = a + 1; b < depth; b++) pairs += ra * readings[b * width + c]!;
      }
    }
    const p = Math.max(0, pairs / ((depth * (depth - 1)) / 2));
    const noise = spread / (depth * (depth - 1));
    const rho = p > 0 ? p / (p + noise) : 0;
    const row = item * d;
    for (let c = 0; c < d; c++) full[row + c] = rho * mean[c]!;
    full[n * d + item] = rho * mean[d]!;
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
