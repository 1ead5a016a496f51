/**
 * Coordinate-wise robust aggregators (Yin et al. 2018, "Byzantine-Robust Distributed Learning:
 * Towards Optimal Statistical Rates", https://arxiv.org/abs/1803.01498): per coordinate, the median
 * or the mean after cutting the largest and smallest values. Unweighted on purpose: example counts are
 * claims by the very devices these aggregators are meant to resist.
 */

/** Number of values the trimmed mean drops from each end of a column of `n`. */
export function trimCount(n: number, fraction: number): number {
  return Math.floor(fraction * n);
}

/**
 * Per coordinate, a statistic of the sorted column of the deltas' values. Holds every delta in memory
 * (n x P floats): robust statistics cannot be streamed the way a sum can.
 */
function columnwise(
  deltas: readonly Float32Array[],
  length: number,
  statistic: (sorted: Float64Array) => number,
): Float64Array {
  if (deltas.length === 0) throw new RangeError('cannot aggregate a round without updates');
  const out = new Float64Array(length);
  const column = new Float64Array(deltas.length);
  for (let i = 0; i < length; i++) {
    for (let k = 0; k < deltas.length; k++) column[k] = deltas[k]![i]!;
    column.sort();
    out[i] = statistic(column);
  }
  return out;
}

/** The median of ascending values; the mean of the two middle ones when the count is even. */
export function medianOfSorted(sorted: ArrayLike<number>): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of `values` (at least one), as medianOfSorted. */
export function median(values: readonly number[]): number {
  return medianOfSorted([...values].sort((a, b) => a - b));
}

/** Coordinate-wise median; the mean of the two middle values when the count is even. */
export function coordinateMedian(deltas: readonly Float32Array[], length: number): Float64Array {
  return columnwise(deltas, length, medianOfSorted);
}

/**
 * Coordinate-wise trimmed mean: drops floor(fraction * n) values from each end of every coordinate
 * and averages the rest. fraction must be in [0, 0.5), so at least one value always remains.
 */
export function trimmedMean(
  deltas: readonly Float32Array[],
  length: number,
  fraction: number,
): Float64Array {
  if (!(fraction >= 0 && fraction < 0.5)) throw new RangeError(`bad trim fraction ${fraction}`);
  const cut = trimCount(deltas.length, fraction);
  return columnwise(deltas, length, (sorted) => {
    let sum = 0;
    for (let k = cut; k < sorted.length - cut; k++) sum += sorted[k]!;
    return sum / (sorted.length - 2 * cut);
  });
}
