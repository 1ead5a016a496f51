/** Summary statistics of measured values for the command-line programs (tools/ and bench/). */

/**
 * The q-quantile (0..1) of sorted values, nearest rank: always one of the measured values, never an
 * interpolation between two (q = 0.5 is the median, 0.9 the p90).
 */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
