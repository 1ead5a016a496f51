/**
 * The device's fine-tuned copy of a global model as it is stored: only the blocks of the flat
 * weights where it differs from the global weights it was derived from. Online learning moves the
 * rows of the items a visitor touched and the small dense tensors, a few percent of the weights;
 * storing the whole copy next to the global weights made IndexedDB clone two full weight vectors on
 * every update (about 30 ms at 10,000 items in Chromium, inside the update, on the worker's thread).
 */

/** Floats per block: an item row of d = 64 spans four or five. */
export const LOCAL_BLOCK = 16;

/** A local copy of global version `version`: `values` holds block `blocks[b]` at b * blockSize. */
export interface LocalCopy {
  readonly version: number;
  /** Length of the flat weights it applies to. */
  readonly length: number;
  readonly blockSize: number;
  /** Indices of the blocks that differ, ascending. */
  readonly blocks: Int32Array;
  /** Their values, blockSize per block (the last block of the weights zero-padded). */
  readonly values: Float32Array;
}

/**
 * The blocks where `local` differs from `global` (same length), as a LocalCopy of `version`. With
 * `candidates` (block indices, e.g. what an optimiser wrote) only those blocks are compared; else
 * every weight is.
 */
export function diffLocal(
  version: number,
  global: Float32Array,
  local: Float32Array,
  candidates?: Iterable<number>,
): LocalCopy {
  if (global.length !== local.length) {
    throw new RangeError(`local copy has ${local.length} weights, the model ${global.length}`);
  }
  const n = global.length;
  const size = LOCAL_BLOCK;
  // Compared bit for bit (a NaN that stayed NaN is unchanged, -0 for +0 is a change), as integers.
  const a = new Int32Array(global.buffer, global.byteOffset, n);
  const b = new Int32Array(local.buffer, local.byteOffset, n);
  const differs = (block: number) => {
    for (let i = block * size, end = Math.min(n, i + size); i < end; i++) {
      if (a[i] !== b[i]) return true;
    }
    return false;
  };
  const changed: number[] = [];
  if (candidates) {
    const sorted = Int32Array.from(new Set(candidates)).sort();
    for (const block of sorted)
      if (block >= 0 && block * size < n && differs(block)) changed.push(block);
  } else {
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) {
        const block = Math.floor(i / size);
        changed.push(block);
        i = (block + 1) * size - 1; // on to the next block
      }
    }
  }
  const values = new Float32Array(changed.length * size);
  changed.forEach((block, k) => {
    const start = block * size;
    values.set(local.subarray(start, Math.min(n, start + size)), k * size);
  });
  return { version, length: n, blockSize: size, blocks: Int32Array.from(changed), values };
}

/** The blocks (of LOCAL_BLOCK floats) that weights [at, at + length) fall in, added to `into`. */
export function blocksOf(at: number, length: number, into: Set<number>): void {
  for (let block = Math.floor(at / LOCAL_BLOCK); block * LOCAL_BLOCK < at + length; block++) {
    into.add(block);
  }
}

/** `global` with `copy` applied (a new array), or null when the copy does not fit these weights. */
export function applyLocal(global: Float32Array, copy: LocalCopy): Float32Array | null {
  if (copy.length !== global.length) return null;
  const { blockSize, blocks, values } = copy;
  const local = global.slice();
  for (let b = 0; b < blocks.length; b++) {
    const start = blocks[b]! * blockSize;
    const end = Math.min(global.length, start + blockSize);
    local.set(values.subarray(b * blockSize, b * blockSize + (end - start)), start);
  }
  return local;
}

/**
 * True when a row read back from storage is a LocalCopy this version can apply: whole-number
 * fields, typed arrays of matching sizes, block indices ascending and inside `length`.
 */
export function isLocalCopy(row: unknown): row is LocalCopy {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  const { blockSize, length, blocks, values } = r;
  if (!Number.isInteger(r.version) || !Number.isInteger(length) || (length as number) < 0) {
    return false;
  }
  if (!Number.isInteger(blockSize) || (blockSize as number) < 1) return false;
  if (!(blocks instanceof Int32Array) || !(values instanceof Float32Array)) return false;
  if (values.length !== blocks.length * (blockSize as number)) return false;
  const count = Math.ceil((length as number) / (blockSize as number));
  for (let b = 0; b < blocks.length; b++) {
    if (blocks[b]! < 0 || blocks[b]! >= count || (b > 0 && blocks[b]! <= blocks[b - 1]!)) {
      return false;
    }
  }
  return true;
}

/**
 * `row` with `copy` as its `local` when `copy` is a valid copy of the row's version that fits its
 * weights; else `row` as it is (a copy of another version, or one that does not fit, is ignored:
 * the engine re-derives one from the stored history).
 */
export function withLocal<T extends { version: number; weights: Float32Array }>(
  row: T,
  copy: unknown,
): T {
  if (!isLocalCopy(copy) || copy.version !== row.version) return row;
  const local = applyLocal(row.weights, copy);
  return local ? { ...row, local } : row;
}

/** `row` without a local copy (one learned from data the visitor erased). */
export function withoutLocal<T extends { local?: Float32Array }>(row: T): T {
  const rest = { ...row };
  delete rest.local;
  return rest;
}
