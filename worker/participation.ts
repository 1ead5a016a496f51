/**
 * Honest sampling: whether this device takes part in the round of the model version it holds. The
 * server's accountant assumes every device takes part in a round independently with probability q
 * (the manifest's `federation.sampleRate`), so the device flips exactly that coin itself: once per
 * version, with its own randomness, before any request. Tails means no request at all for that
 * version, however often the device syncs; the outcome is kept in the store's meta, so a reload or
 * another tab does not flip again.
 */
import type { StoreMeta } from './store-schema.js';

/** What the coin decided for `version`, and the meta to keep when it was flipped just now. */
export interface Draw {
  readonly joins: boolean;
  readonly patch?: Pick<StoreMeta, 'coinVersion' | 'coinJoins'>;
}

/**
 * The coin for `version` at rate `q`: the one already flipped for it (kept in `meta`), or a new
 * flip of `coin` (uniform in [0, 1)) that joins when it falls below q.
 */
export function drawForVersion(
  meta: Pick<StoreMeta, 'coinVersion' | 'coinJoins'>,
  version: number,
  q: number,
  coin: () => number,
): Draw {
  if (meta.coinVersion === version) return { joins: meta.coinJoins };
  const joins = coin() < q;
  return { joins, patch: { coinVersion: version, coinJoins: joins } };
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
