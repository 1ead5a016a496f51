/**
 * Honest sampling: whether this device takes part in a round. The server's accountant assumes every
 * device takes part in a round independently with probability q (the manifest's
 * `federation.sampleRate`), so the device flips exactly that coin itself, with its own randomness,
 * before any request, and once per round, keyed on what the server's rounds are counted in:
 *
 * - Count mode (the manifest names no `roundWindowSeconds`; a round closes on its m-th update): one
 *   coin per model VERSION (`drawForVersion`). Tails means no request at all for that version,
 *   however often the device syncs.
 * - Window mode (`federation.roundWindowSeconds` = T; rounds close on a clock): one coin per
 *   round WINDOW r = floor(t / T) (`drawForWindow`; protocol/manifest.ts' `roundWindowAt`). Tails
 *   means no request in that window; the next window flips a new coin. Each coin's update stands
 *   on its own: nothing trained for one window is sent in another (worker/local-training.ts keeps
 *   no outbox then).
 *
 * Each key keeps its own outcome in the store's meta (`coinVersion` / `coinJoins`, `coinWindow` /
 * `coinWindowJoins`), so a reload or another tab does not flip again, and a manifest that switches
 * between the modes never reads one key's outcome as the other's.
 */
import type { StoreMeta } from './store-schema.js';

/** The meta that keeps the coin of a model version. */
export type VersionCoin = Pick<StoreMeta, 'coinVersion' | 'coinJoins'>;
/** The meta that keeps the coin of a round window. */
export type WindowCoin = Pick<StoreMeta, 'coinWindow' | 'coinWindowJoins'>;

/** What the coin decided, and the meta to keep when it was flipped just now. */
export interface Draw<Kept extends VersionCoin | WindowCoin = VersionCoin | WindowCoin> {
  readonly joins: boolean;
  readonly patch?: Kept;
}

/**
 * The coin for model `version` at rate `q`: the one already flipped for it (kept in `meta`), or a
 * new flip of `coin` (uniform in [0, 1)) that joins when it falls below q.
 */
export function drawForVersion(
  meta: VersionCoin,
  version: number,
  q: number,
  coin: () => number,
): Draw<VersionCoin> {
  if (meta.coinVersion === version) return { joins: meta.coinJoins };
  const joins = flip(q, coin);
  return { joins, patch: { coinVersion: version, coinJoins: joins } };
}

/**
 * The coin for round window `window` (an index from `roundWindowAt`) at rate `q`: the one already
 * flipped for it (kept in `meta`), or a new flip of `coin` that joins when it falls below q.
 */
export function drawForWindow(
  meta: WindowCoin,
  window: number,
  q: number,
  coin: () => number,
): Draw<WindowCoin> {
  if (meta.coinWindow === window) return { joins: meta.coinWindowJoins };
  const joins = flip(q, coin);
  return { joins, patch: { coinWindow: window, coinWindowJoins: joins } };
}

/** One flip: joins with probability q. */
function flip(q: number, coin: () => number): boolean {
  return coin() < q;
}

/**
 * A uniform draw in [0, 1) from the platform's cryptographic generator: the server must not be able
 * to predict (or, from other devices, infer) who is sampled, as it could with Math.random's state.
 */
export function cryptoCoin(): number {
  const word = new Uint32Array(1);
  crypto.getRandomValues(word);
  return word[0]! / 2 ** 32;
}
