/**
 * Layouts led by the round's item histogram: how many of the round's devices hold each item. A
 * server could learn it only as a sum over the round's devices, each adding a 0/1 indicator over
 * the catalogue through secure aggregation before the round's layout is drawn; that phase is not
 * built (a plaintext indicator names the visitor's items). The simulation computes the histogram
 * exactly, as such a sum without noise would reveal it, to measure what the layouts it leads are
 * worth before anyone builds it:
 *
 *   rows named by it    the rows held by the most devices (`--row-choice held`)
 *   sketch gated by it  a sketch read back as usual, then every row that no device holds and no
 *                       shared negative names set to zero, so the rows nobody touched stop taking
 *                       their bucket mates' rows as noise (`--sketch-gate held`)
 *
 * A gate needs only which rows some device holds, and a count-min sketch of the histogram
 * (Cormode and Muthukrishnan 2005: each device adds 1 into one bucket of each table for every item
 * it holds, hashes new every round) tells that from far fewer values than the catalogue, with
 * false positives only: `--sketch-gate count-min` keeps the rows whose every bucket some device
 * filled. Being a sum, it could travel in the same masked input as the update it gates, with no
 * phase before the round.
 */
import { roundSketch, sketchSlot } from '../../protocol/item-sketch.js';
import type { ModelDims } from '../../protocol/manifest.js';
import { topRows } from '../../protocol/update-layout.js';
import type { SentCoordinates } from '../../server/aggregate.js';

/**
 * How many of `devices` hold each item row (index: row; row 0, padding, stays 0). With `cap`, each
 * device counts only the last `cap` distinct items of its history, so that one device moves the
 * histogram by at most `cap` (what a noised gate's sensitivity needs).
 */
export function heldCounts(
  devices: readonly (readonly number[])[],
  items: number,
  cap = Infinity,
): Uint32Array {
  const counts = new Uint32Array(items);
  const seen = new Uint8Array(items);
  for (const history of devices) {
    const counted: number[] = [];
    for (let k = history.length - 1; k >= 0 && counted.length < cap; k--) {
      const row = history[k]!;
      if (row <= 0 || row >= items || seen[row]) continue;
      seen[row] = 1;
      counted.push(row);
      counts[row]!++;
    }
    for (const row of counted) seen[row] = 0;
  }
  return counts;
}

/**
 * Each row's smallest bucket in a count-min sketch of `counts` with `depth` tables of `buckets`
 * buckets drawn for `round`, every bucket starting at `start()` (index: row; row 0 stays 0).
 */
function countMinRead(
  counts: Uint32Array,
  buckets: number,
  depth: number,
  round: number,
  start: () => number,
): Float64Array {
  const sketch = roundSketch(buckets, (round * 104_729 + 17) >>> 0, depth);
  const tables = Array.from({ length: depth }, () => Float64Array.from({ length: buckets }, start));
  const slot = (row: number, t: number) => Math.abs(sketchSlot(row, sketch, t)) - 1;
  for (let row = 1; row < counts.length; row++) {
    if (counts[row] === 0) continue;
    for (let t = 0; t < depth; t++) tables[t]![slot(row, t)]! += counts[row]!;
  }
  const least = new Float64Array(counts.length);
  for (let row = 1; row < counts.length; row++) {
    let read = Infinity;
    for (let t = 0; t < depth; t++) read = Math.min(read, tables[t]![slot(row, t)]!);
    least[row] = read;
  }
  return least;
}

/**
 * The count-min estimate of `counts` from `depth` tables of `buckets` buckets drawn for `round`:
 * each row's smallest bucket, never below its count (index: row; row 0 stays 0).
 */
export function countMinCounts(
  counts: Uint32Array,
  buckets: number,
  depth: number,
  round: number,
): Uint32Array {
  return Uint32Array.from(countMinRead(counts, buckets, depth, round, () => 0));
}

/** A count-min gate: its sketch, and with `noise` > 0 its noise and the count a row must reach. */
export interface CountMinGate {
  readonly buckets: number;
  readonly depth: number;
  /** Std of the Gaussian noise on each bucket (0: none). */
  readonly noise: number;
  /** With noise, the smallest noised bucket a kept row reaches. */
  readonly threshold: number;
}

/**
 * The rows a gate keeps from `counts` (index: row; 1 kept, 0 not): without noise, those whose
 * every bucket some device filled; with it, each bucket first takes N(0, noise²) (`normal` draws
 * it) and a row is kept when its smallest bucket reaches the threshold.
 */
export function countMinGate(
  counts: Uint32Array,
  gate: CountMinGate,
  round: number,
  normal: () => number,
): Uint32Array {
  const { buckets, depth, noise, threshold } = gate;
  const start = noise > 0 ? () => noise * normal() : () => 0;
  const least = countMinRead(counts, buckets, depth, round, start);
  const bar = noise > 0 ? threshold : 1;
  return Uint32Array.from(least, (c, row) => (row > 0 && c >= bar ? 1 : 0));
}

/** The `count` rows held by the most devices, ties to the lower row; ascending. */
export function mostHeldRows(counts: Uint32Array, count: number): number[] {
  return topRows(counts, count);
}

/**
 * `sent` (a sketch's coordinates, layout-round.ts sketchCoordinates) read back with every item row
 * outside `held` or `negatives` set to zero (embedding and bias); the dense tensors as they are.
 */
export function gatedReading(
  sent: SentCoordinates,
  dims: ModelDims,
  counts: Uint32Array,
  negatives: ArrayLike<number>,
): SentCoordinates {
  const d = dims.embedding;
  const n = dims.items;
  const keep = Uint8Array.from(counts, (c) => (c > 0 ? 1 : 0));
  for (let k = 0; k < negatives.length; k++) keep[negatives[k]!] = 1;
  return {
    length: sent.length,
    decode: (mean) => {
      const rows = sent.decode(mean);
      for (let row = 1; row < n; row++) {
        if (keep[row]) continue;
        rows.fill(0, row * d, row * d + d);
        rows[n * d + row] = 0;
      }
      return rows;
    },
  };
}
