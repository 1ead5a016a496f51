/**
 * Rollback on a validation drop (`--validation <file>` with `--rollback-drop <f>`): each published
 * version is evaluated in the background (validation.ts), and when the current one's HR@20 is more
 * than a fraction f below the best of the ROLLBACK_WINDOW versions before it, the server publishes
 * that best version's weights again as a new version (Store.republish). Devices move to it at their
 * next manifest check, and later rounds build on it. A round that poisons or breaks the model is
 * thereby undone within one evaluation; a slow drift of less than f per window is not.
 */
import type { ServerConfig } from './config.js';
import type { Store } from './store.js';
import { layoutFieldsOf } from './versions.js';

/** Versions before the current one its HR@20 is compared against. */
export const ROLLBACK_WINDOW = 10;

/**
 * The version to roll `current` back to: the best of the ROLLBACK_WINDOW versions before it, when
 * `current`'s HR@20 is more than `drop` (a fraction) below that one's; else undefined.
 */
export function rollbackTarget(
  hitRates: ReadonlyMap<number, number>,
  current: number,
  drop: number,
): number | undefined {
  const now = hitRates.get(current);
  if (now === undefined || !Number.isFinite(now) || !(drop > 0)) return undefined;
  let best: number | undefined;
  for (let v = current - 1; v >= Math.max(1, current - ROLLBACK_WINDOW); v--) {
    const rate = hitRates.get(v);
    if (
      rate !== undefined &&
      Number.isFinite(rate) &&
      (best === undefined || rate > hitRates.get(best)!)
    ) {
      best = v;
    }
  }
  if (best === undefined) return undefined;
  return now < (1 - drop) * hitRates.get(best)! ? best : undefined;
}

/** What a rollback did, for the log. */
export interface Rollback {
  readonly from: number;
  readonly to: number;
  readonly version: number;
}

/**
 * After an evaluation: rolls the current version back when rollbackTarget says so and it is still
 * current. Resolves with what it published, or undefined.
 */
export async function rollBackIfWorse(
  store: Store,
  config: Pick<
    ServerConfig,
    'rollbackDrop' | 'updateRows' | 'rowChoice' | 'itemSketch' | 'sketchDepth' | 'sketchDenseStride'
  >,
  hitRates: ReadonlyMap<number, number>,
): Promise<Rollback | undefined> {
  const current = await store.latestVersion();
  if (current === undefined) return undefined;
  const to = rollbackTarget(hitRates, current, config.rollbackDrop);
  if (to === undefined) return undefined;
  const version = await store.republish(to, current, layoutFieldsOf(config));
  return version === undefined ? undefined : { from: current, to, version };
}
