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
 */
import type { ModelDims } from '../../protocol/manifest.js';
import { topRows } from '../../protocol/update-layout.js';
import type { SentCoordinates } from '../../server/aggregate.js';

/** How many of `devices` hold each item row (index: row; row 0, padding, stays 0). */
export function heldCounts(devices: readonly (readonly number[])[], items: number): Uint32Array {
  const counts = new Uint32Array(items);
  const seen = new Uint8Array(items);
  for (const history of devices) {
    for (const row of history) {
      if (row <= 0 || row >= items || seen[row]) continue;
      seen[row] = 1;
      counts[row]!++;
    }
    for (const row of history) if (row > 0 && row < items) seen[row] = 0;
  }
  return counts;
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
