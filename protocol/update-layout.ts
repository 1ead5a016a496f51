/**
 * What a device's update holds, as a fixed-length vector whose layout never depends on what the
 * visitor did: a list of touched rows would itself name the visitor's items.
 *
 *   full    every tensor, manifest order (the whole model: ~2.8M values on Diginetica)
 *   rows    the dense tensors (LSTM, projection, repeat bonus; manifest order), then for each item
 *           row the round names, its embedding (d values) and its bias: the same rows for every
 *           device of the round, whichever items it saw. An empty list sends the dense part only.
 *   sketch  the dense tensors, then every item row added with a sign into one of B buckets of a
 *           count sketch drawn for the round (protocol/item-sketch.ts)
 *
 * The server folds updates in the model's coordinates that the layout stands for (modelLayout:
 * gather the current weights there, aggregate, scatter back), so nothing outside them changes in a
 * round; a sketch stands for the whole model and is read back into it after aggregation.
 */
import { clipFactor, l2Norm } from './clip.js';
import {
  sentDense,
  sketchDenseLength,
  sketchLength,
  sketchUpdate,
  unsketchUpdate,
} from './item-sketch.js';
import { denseLength, type FederationParams, type ItemSketch, type ModelDims } from './manifest.js';

/** A layout in the model's own coordinates: the whole model, or the dense tensors and some rows. */
export type ModelLayout =
  { readonly kind: 'full' } | { readonly kind: 'rows'; readonly rows: readonly number[] };

/** A round's update layout. */
export type UpdateLayout = ModelLayout | { readonly kind: 'sketch'; readonly sketch: ItemSketch };

const FULL: ModelLayout = { kind: 'full' };

/**
 * The layout of updates on a version: the sketch or the rows its manifest names
 * (`federation.itemSketch`, `federation.updateRows`), or the whole model where it names neither
 * (servers that send the full model, older manifests).
 */
export function manifestLayout(
  federation: Pick<FederationParams, 'updateRows' | 'itemSketch'>,
): UpdateLayout {
  if (federation.itemSketch) return { kind: 'sketch', sketch: federation.itemSketch };
  const rows = federation.updateRows;
  return rows === undefined ? FULL : { kind: 'rows', rows };
}

/**
 * The model's coordinates an update in `layout` moves: a sketch's are the whole model's (every
 * item row is read back from its bucket), any other layout's its own. A device trains in them and a
 * server folds a round in them.
 */
export function modelLayout(layout: UpdateLayout): ModelLayout {
  return layout.kind === 'sketch' ? FULL : layout;
}

/**
 * An update trained in modelLayout(layout)'s coordinates as a device sends it in `layout`: its item
 * sketch, or the update itself. The device clips what this returns.
 */
export function sentUpdate(
  delta: Float32Array,
  dims: ModelDims,
  layout: UpdateLayout,
): Float32Array {
  if (layout.kind !== 'sketch') return delta;
  return sketchUpdate(
    delta,
    dims,
    layout.sketch,
    new Float32Array(sketchLength(dims, layout.sketch)),
  );
}

/**
 * A whole-model update (every tensor, as a sketching device trains) as a device sends it in `to`,
 * on `toDims` (whose rows beyond `dims` are zero): its sketch with `to`'s hashes, the rows `to`
 * names, or itself. Exact, unlike carrying an update already sent in another layout (fitUpdate).
 * The device clips what this returns.
 */
export function wholeUpdateIn(
  delta: Float32Array,
  dims: ModelDims,
  to: UpdateLayout,
  toDims: ModelDims = dims,
): Float32Array {
  const grown = fitUpdate(delta, dims, FULL, FULL, toDims);
  return to.kind === 'sketch' ? sentUpdate(grown, toDims, to) : fitUpdate(grown, toDims, FULL, to);
}

/**
 * An update in layout `from` carried into layout `to` (a stale update folded into the current
 * round): the dense tensors as they are, each row `to` names from `from` where `from` has it, zero
 * where it does not; rows only `from` names are dropped. Only values are dropped, never added, so
 * the L2 norm never grows and a clipped update stays within S. `dims` is the model `from` belongs
 * to; `toDims`, the one `to` belongs to, may have more item rows (grownFrom), which start at zero.
 *
 * A sketch on either side goes through the whole model: read back with `from`'s hashes, sketched
 * again with `to`'s. Reading back copies a bucket into each of its items, so the item part's norm
 * would grow (by about the square root of items per bucket); it is scaled back to its norm in
 * `from`, and the update stays within S. Over the draw of hashes a stale sketch still pulls its
 * items the right way on average, shrunk by about that factor. Under a dense stride only the dense
 * values both sketches carry are kept (item-sketch.ts sentDense).
 */
export function fitUpdate(
  delta: Float32Array,
  dims: ModelDims,
  from: UpdateLayout,
  to: UpdateLayout,
  toDims: ModelDims = dims,
): Float32Array {
  if (sameLayout(from, to) && toDims.items === dims.items) return delta;
  if (from.kind === 'sketch' || to.kind === 'sketch')
    return fitThroughModel(delta, dims, from, to, toDims);
  const out = new Float32Array(updateLength(toDims, to));
  const d = dims.embedding;
  const dense = denseLength(dims);
  const fromAt = denseStart(dims, from);
  out.set(delta.subarray(fromAt, fromAt + dense), denseStart(toDims, to));
  const source = rowOffsets(dims, from);
  const target = rowOffsets(toDims, to);
  const held = from.kind === 'full' ? null : new Set(from.rows);
  const rows =
    to.kind === 'full' ? Array.from({ length: toDims.items - 1 }, (_, i) => i + 1) : to.rows;
  for (const row of rows) {
    if (held ? !held.has(row) : row >= dims.items) continue;
    const at = source.embedding(row);
    out.set(delta.subarray(at, at + d), target.embedding(row));
    out[target.bias(row)] = delta[source.bias(row)]!;
  }
  return out;
}

/** fitUpdate with a sketch on either side: through the whole model, item norm kept (see there). */
function fitThroughModel(
  delta: Float32Array,
  dims: ModelDims,
  from: UpdateLayout,
  to: UpdateLayout,
  toDims: ModelDims,
): Float32Array {
  const whole =
    from.kind === 'sketch'
      ? unsketchUpdate(delta, dims, from.sketch, new Float32Array(updateLength(dims, FULL)))
      : fitUpdate(delta, dims, from, FULL);
  const grown = fitUpdate(whole, dims, FULL, FULL, toDims);
  const out =
    to.kind === 'sketch'
      ? sketchUpdate(grown, toDims, to.sketch, new Float32Array(sketchLength(toDims, to.sketch)))
      : fitUpdate(grown, toDims, FULL, to);
  const before = itemSpan(dims, from);
  const after = itemSpan(toDims, to);
  const scale = clipFactor(
    l2Norm(out.subarray(after.start, after.end)),
    Math.max(l2Norm(delta.subarray(before.start, before.end)), Number.MIN_VALUE),
  );
  for (let i = after.start; i < after.end; i++) out[i] = out[i]! * scale;
  return out;
}

/**
 * An update in `layout` (a sketch with a dense stride) as a device whose SDK predates the stride
 * sends it: such a device reads the sketch without the stride and sends every dense value before
 * the buckets. Returns it as the stride sends it, the dense values the stride carries and the
 * buckets, or null when `layout` has no stride or `delta` is not of the unstrided length. Values
 * are only dropped, so a clipped update stays within S.
 */
export function strideOfOlderSdk(
  delta: Float32Array,
  dims: ModelDims,
  layout: UpdateLayout,
): Float32Array | null {
  if (layout.kind !== 'sketch' || (layout.sketch.denseStride ?? 1) === 1) return null;
  const dense = denseLength(dims);
  const buckets = sketchLength(dims, layout.sketch) - sketchDenseLength(dims, layout.sketch);
  if (delta.length !== dense + buckets) return null;
  const { offset, stride, count } = sentDense(dense, layout.sketch);
  const out = new Float32Array(count + buckets);
  for (let i = 0; i < count; i++) out[i] = delta[offset + i * stride]!;
  out.set(delta.subarray(dense), count);
  return out;
}

/** Whether two layouts hold the same coordinates in the same order. */
export function sameLayout(a: UpdateLayout, b: UpdateLayout): boolean {
  if (a.kind === 'sketch' || b.kind === 'sketch') {
    return (
      a.kind === 'sketch' &&
      b.kind === 'sketch' &&
      a.sketch.buckets === b.sketch.buckets &&
      a.sketch.key === b.sketch.key &&
      (a.sketch.depth ?? 1) === (b.sketch.depth ?? 1) &&
      (a.sketch.denseStride ?? 1) === (b.sketch.denseStride ?? 1)
    );
  }
  if (a.kind === 'full' || b.kind === 'full') return a.kind === b.kind;
  return a.rows.length === b.rows.length && a.rows.every((row, i) => row === b.rows[i]);
}

/** Offset of the dense tensors in the full (manifest-order) vector: after the table and biases. */
function denseOffset(dims: ModelDims): number {
  return dims.items * dims.embedding + dims.items;
}

/** Values in an update of this layout. */
export function updateLength(dims: ModelDims, layout: UpdateLayout): number {
  if (layout.kind === 'full') return denseOffset(dims) + denseLength(dims);
  if (layout.kind === 'sketch') return sketchLength(dims, layout.sketch);
  return denseLength(dims) + layout.rows.length * (dims.embedding + 1);
}

/** Where the dense tensors start in an update of this layout (after the table and biases in 'full'). */
export function denseStart(dims: ModelDims, layout: UpdateLayout): number {
  return layout.kind === 'full' ? denseOffset(dims) : 0;
}

/** Where a catalogue row's embedding (d values) and bias sit in an update of this layout. */
export interface RowOffsets {
  readonly embedding: (row: number) => number;
  readonly bias: (row: number) => number;
}

/**
 * The offsets of the layout's rows; a row the layout does not hold is a RangeError, and so is a
 * sketch, which holds buckets (read it back with unsketchUpdate).
 */
export function rowOffsets(dims: ModelDims, layout: UpdateLayout): RowOffsets {
  const d = dims.embedding;
  if (layout.kind === 'full') return { embedding: (r) => r * d, bias: (r) => dims.items * d + r };
  if (layout.kind === 'sketch') throw new RangeError('a sketch holds buckets, not rows');
  const dense = denseLength(dims);
  const at = new Map(layout.rows.map((r, i) => [r, dense + i * (d + 1)]));
  const of = (r: number) => {
    const offset = at.get(r);
    if (offset === undefined) throw new RangeError(`row ${r} is not in the update layout`);
    return offset;
  };
  return { embedding: of, bias: (r) => of(r) + d };
}

/** The coordinates [start, end) of an update in this layout that hold item rows and biases. */
export function itemSpan(dims: ModelDims, layout: UpdateLayout): { start: number; end: number } {
  if (layout.kind === 'full') return { start: 0, end: denseOffset(dims) };
  const start =
    layout.kind === 'sketch' ? sketchDenseLength(dims, layout.sketch) : denseLength(dims);
  return { start, end: updateLength(dims, layout) };
}

/**
 * The layout's coordinates of a full vector (weights or a delta), in a new array of `out`'s type.
 * For 'full' a copy. A layout in the model's coordinates only: a sketch is formed by sketchUpdate.
 */
export function gatherLayout<T extends Float32Array | Float64Array>(
  full: T,
  dims: ModelDims,
  layout: ModelLayout,
  out: T,
): T {
  if (layout.kind === 'full') {
    out.set(full);
    return out;
  }
  const d = dims.embedding;
  const dense = denseLength(dims);
  out.set(full.subarray(denseOffset(dims), denseOffset(dims) + dense), 0);
  let at = dense;
  for (const row of layout.rows) {
    out.set(full.subarray(row * d, row * d + d), at);
    out[at + d] = full[dims.items * d + row]!;
    at += d + 1;
  }
  return out;
}

/** Writes the layout's coordinates back into a full vector (the inverse of gatherLayout). */
export function scatterLayout(
  compact: Float32Array | Float64Array,
  dims: ModelDims,
  layout: ModelLayout,
  full: Float32Array | Float64Array,
): void {
  if (layout.kind === 'full') {
    full.set(compact);
    return;
  }
  const d = dims.embedding;
  const dense = denseLength(dims);
  full.set(compact.subarray(0, dense), denseOffset(dims));
  let at = dense;
  for (const row of layout.rows) {
    full.set(compact.subarray(at, at + d), row * d);
    full[dims.items * d + row] = compact[at + d]!;
    at += d + 1;
  }
}

/**
 * The item rows a round names: a window of `count` rows that moves by `count` every version
 * through a fixed public permutation of 1..items-1 (seeded), so every row is named once every
 * ceil((items-1)/count) versions whatever the visitors do. Ascending.
 */
export function roundRows(items: number, count: number, version: number, seed: number): number[] {
  const pool = items - 1;
  if (count >= pool) return Array.from({ length: pool }, (_, i) => i + 1);
  const order = rowOrder(pool, seed);
  const start = (((version * count) % pool) + pool) % pool;
  const rows: number[] = [];
  for (let i = 0; i < count; i++) rows.push(order[(start + i) % pool]!);
  return rows.sort((a, b) => a - b);
}

/**
 * The `count` catalogue rows (1..score.length - 1) of largest `score`, ties to the lower row;
 * ascending.
 */
export function topRows(score: ArrayLike<number>, count: number): number[] {
  const rows = Array.from({ length: score.length - 1 }, (_, i) => i + 1);
  rows.sort((a, b) => score[b]! - score[a]! || a - b);
  return rows.slice(0, count).sort((a, b) => a - b);
}

/**
 * The item rows a round names, half of them led by the published model itself: the `count / 2`
 * rows with the largest item bias in `bias` (the global model's, public: the bias tracks how often
 * an item is the next click), and the other half a window moving through the rest of the public
 * permutation, as roundRows does, so every row is still named now and then. The choice depends on
 * public weights only, never on what a visitor did. Ascending.
 */
export function biasLedRows(
  bias: ArrayLike<number>,
  count: number,
  version: number,
  seed: number,
): number[] {
  const pool = bias.length - 1;
  if (count >= pool) return Array.from({ length: pool }, (_, i) => i + 1);
  const lead = count >> 1;
  const chosen = new Set(topRows(bias, lead));
  const order = rowOrder(pool, seed);
  const rest = count - lead;
  const start = (((version * rest) % pool) + pool) % pool;
  for (let i = 0; chosen.size < count && i < pool; i++) {
    chosen.add(order[(start + i) % pool]!);
  }
  return [...chosen].sort((a, b) => a - b);
}

const orders = new Map<string, Int32Array>();

/** A seeded permutation of 1..pool (Fisher-Yates over a xorshift stream), memoised. */
function rowOrder(pool: number, seed: number): Int32Array {
  const key = `${pool}/${seed}`;
  let order = orders.get(key);
  if (order) return order;
  order = Int32Array.from({ length: pool }, (_, i) => i + 1);
  let state = seed >>> 0 || 0x9e3779b9;
  for (let i = pool - 1; i > 0; i--) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const j = (state >>> 0) % (i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  orders.set(key, order);
  return order;
}

/**
 * Whether `to` is `from` with more item rows and nothing else changed: the shape a new catalogue
 * item gives the next version. Item rows keep their numbers and the dense tensors their values, so
 * an update on `from` carries over (fitUpdate with `toDims`; the new rows are zero in it).
 */
export function grownFrom(from: ModelDims, to: ModelDims): boolean {
  return (
    to.items > from.items &&
    to.embedding === from.embedding &&
    to.hidden === from.hidden &&
    to.maxSessionLength === from.maxSessionLength &&
    JSON.stringify(to.scoring ?? null) === JSON.stringify(from.scoring ?? null)
  );
}

/**
 * A full vector of `dims` (weights, or FedAdam's moments) with `added` item rows appended: their
 * embeddings from `rows` (added * d values) and biases from `bias`, zeros where left out. Every other
 * value keeps its place in the tensor it belongs to.
 */
export function withAddedItems<T extends Float32Array | Float64Array>(
  full: T,
  dims: ModelDims,
  added: number,
  rows?: ArrayLike<number>,
  bias?: ArrayLike<number>,
): T {
  const d = dims.embedding;
  const n = dims.items;
  const out = new (full.constructor as new (length: number) => T)(full.length + added * (d + 1));
  out.set(full.subarray(0, n * d), 0);
  if (rows) out.set(rows, n * d);
  const biasAt = (n + added) * d;
  out.set(full.subarray(n * d, n * d + n), biasAt);
  if (bias) out.set(bias, biasAt + n);
  out.set(full.subarray(n * d + n), biasAt + n + added);
  return out;
}
