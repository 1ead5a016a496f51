/**
 * The negatives of an online update: a uniform sample of the items outside its sessions, scored
 * against every session vector beside the sessions' own items (a sampled softmax) and held by the
 * update. Optionally their scores are corrected so the sample stands for the whole catalogue.
 */

/**
 * Up to `count` distinct items of a catalogue of `items` (index 0 the padding) outside `taken`,
 * uniformly from `random` ([0, 1)); every other item when no more than `count` are left.
 */
export function sampleNegatives(
  items: number,
  taken: ReadonlyMap<number, unknown>,
  count: number,
  random: () => number,
): number[] {
  if (items - 1 - taken.size <= count) {
    return Array.from({ length: items - 1 }, (_, i) => i + 1).filter((i) => !taken.has(i));
  }
  const picked = new Set<number>();
  // Rejection sampling: the sample is small against the catalogue here, so this ends fast.
  while (picked.size < count) {
    const item = 1 + Math.floor(random() * (items - 1));
    if (!taken.has(item)) picked.add(item);
  }
  return [...picked];
}

/**
 * What the `sampled` negatives' scores get added so the softmax over the sample estimates the one
 * over their whole `pool` (the items they were drawn from): log(pool / sampled). 0 without
 * `correct`, or without negatives; the sample then stands for itself, and the session's own items
 * weigh as much as the rest of the catalogue together.
 */
export function negativeShift(pool: number, sampled: number, correct: boolean): number {
  return correct && sampled > 0 ? Math.log(pool / sampled) : 0;
}
