/**
 * A small seeded PRNG. tfjs' own random initialisers are not reproducible across backends (each backend
 * seeds differently), and the federated protocol needs every device and the server to be able to rebuild
 * the same initial model from one seed, so all randomness in the model code comes from here.
 */

/** Returns a generator of uniform floats in [0, 1) (mulberry32: 32-bit state, fast, good enough for ML). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sample (Box-Muller); `1 - u` keeps the log argument away from 0. */
export function normal(rng: () => number): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Fisher-Yates shuffle in place, driven by `rng`. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** A mulberry32 generator whose 32-bit state can be read and restored (for training checkpoints). */
export interface SeededRng {
  /** The next uniform float in [0, 1). */
  (): number;
  /** The current state: `seededRng(rng.state())` continues exactly where `rng` is now. */
  state(): number;
}

/**
 * mulberry32 with an inspectable state. Same sequence as `mulberry32(seed)`: the state after n draws
 * is seed + n * 0x6d2b79f5 (mod 2^32), so a checkpoint restores the stream bit-exactly.
 */
export function seededRng(seed: number): SeededRng {
  let a = seed >>> 0;
  const next = (() => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as SeededRng;
  next.state = () => a;
  return next;
}
