/**
 * What a device's update holds, as a fixed-length vector whose layout never depends on what the
 * visitor did: a list of touched rows would itself name the visitor's items.
 *
 *   full    every tensor, manifest order (the whole model: ~2.8M values on Diginetica)
 *   rows    the dense tensors (LSTM, projection, repeat bonus; manifest order), then for each item
 *           row the round names, its embedding (d values) and its bias: the same rows for every
 *           device of the round, whichever items it saw. An empty list sends the dense part only.
 *
 * The server folds updates in these coordinates (gather the current weights into the layout,
 * aggregate, scatter back), so nothing outside the layout changes in a round.
 */
import { tensorLayout, type FederationParams, type ModelDims } from './manifest.js';

/** A round's update layout. */
export type UpdateLayout =
  { readonly kind: 'full' } | { readonly kind: 'rows'; readonly rows: readonly number[] };

/**
 * The layout of updates on a version: the rows its manifest names (`federation.updateRows`), or
 * the whole model where it names none (servers that send the full model, older manifests).
 */
export function manifestLayout(federation: Pick<FederationParams, 'updateRows'>): UpdateLayout {
  const rows = federation.updateRows;
  return rows === undefined ? { kind: 'full' } : { kind: 'rows', rows };
}

/**
 * An update in layout `from` carried into layout `to` (a stale update folded into the current
 * round): the dense tensors as they are, each row `to` names from `from` where `from` has it, zero
 * where it does not; rows only `from` names are dropped. Only values are dropped, never added, so
 * the L2 norm never grows and a clipped update stays within S. `dims` is the model `from` belongs
 * to; `toDims`, the one `to` belongs to, may have more item rows (grownFrom), which start at zero.
 */
export function fitUpdate(
  delta: Float32Array,
  dims: ModelDims,
  from: UpdateLayout,
  to: UpdateLayout,
  toDims: ModelDims = dims,
): Float32Array {
  if (sameLayout(from, to) && toDims.items === dims.items) return delta;
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

/** Whether two layouts hold the same coordinates in the same order. */
export function sameLayout(a: UpdateLayout, b: UpdateLayout): boolean {
  if (a.kind === 'full' || b.kind === 'full') return a.kind === b.kind;
  return a.rows.length === b.rows.length && a.rows.every((row, i) => row === b.rows[i]);
}

/** Values of the dense tensors (everything but the item embedding and bias). */
export function denseLength(dims: ModelDims): number {
  return tensorLayout(dims)
    .filter((t) => t.name !== 'item_embedding' && t.name !== 'item_bias')
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** Offset of the dense tensors in the full (manifest-order) vector: after the table and biases. */
function denseOffset(dims: ModelDims): number {
  return dims.items * dims.embedding + dims.items;
}

/** Values in an update of this layout. */
export function updateLength(dims: ModelDims, layout: UpdateLayout): number {
  if (layout.kind === 'full') return denseOffset(dims) + denseLength(dims);
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

/** The offsets of the layout's rows; a row the layout does not hold is a RangeError. */
export function rowOffsets(dims: ModelDims, layout: UpdateLayout): RowOffsets {
  const d = dims.embedding;
  if (layout.kind === 'full') return { embedding: (r) => r * d, bias: (r) => dims.items * d + r };
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
  return { start: denseLength(dims), end: updateLength(dims, layout) };
}

/**
 * The layout's coordinates of a full vector (weights or a delta), in a new array of `out`'s type.
 * For 'full' a copy.
 */
export function gatherLayout<T extends Float32Array | Float64Array>(
  full: T,
  dims: ModelDims,
  layout: UpdateLayout,
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
  layout: UpdateLayout,
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
  const byBias = Array.from({ length: pool }, (_, i) => i + 1).sort(
    (a, b) => bias[b]! - bias[a]! || a - b,
  );
  const chosen = new Set(byBias.slice(0, lead));
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
