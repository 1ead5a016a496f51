/**
 * The round deadline (`--round-deadline`): a collecting round older than the deadline and still short
 * of m updates is abandoned, so a site too quiet to reach m does not keep devices' updates waiting on
 * one base version forever. Checked lazily when a device joins or posts, and once at start-up; no
 * timers, so nothing runs while nobody is asking.
 */
import type { ServerConfig } from './config.js';
import type { GaussianRng } from './gaussian.js';
import { roundWindows } from './round-windows.js';
import type { RoundExpiry, Store } from './store.js';

/**
 * The expiry the store applies at `nowMs` (epoch milliseconds) under `config`: the deadline, or with
 * round windows the windows to close instead (round-windows.ts; `rng` draws their noise, for tests).
 */
export function roundExpiry(config: ServerConfig, nowMs: number, rng?: GaussianRng): RoundExpiry {
  const windows = roundWindows(config, nowMs, rng);
  return {
    now: new Date(nowMs),
    openedBefore: new Date(nowMs - config.roundDeadlineSeconds * 1000),
    minCohort: config.minCohort,
    ...(windows ? { windows } : {}),
  };
}

/**
 * Abandons the collecting round if its deadline passed while the server was down (with round windows:
 * closes the windows that ended meanwhile).
 */
export async function expireRoundsAtStart(
  store: Store,
  config: ServerConfig,
  nowMs: number,
): Promise<number | undefined> {
  return store.abandonExpiredRound(roundExpiry(config, nowMs));
}
