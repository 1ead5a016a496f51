/**
 * The round deadline (`--round-deadline`): a collecting round older than the deadline and still short
 * of m updates is abandoned, so a site too quiet to reach m does not keep devices' updates waiting on
 * one base version forever. Checked lazily when a device joins or posts, and once at start-up; no
 * timers, so nothing runs while nobody is asking.
 */
import type { ServerConfig } from './config.js';
import type { RoundExpiry, Store } from './store.js';

/** The expiry the store applies at `nowMs` (epoch milliseconds) under `config`. */
export function roundExpiry(config: ServerConfig, nowMs: number): RoundExpiry {
  return {
    now: new Date(nowMs),
    openedBefore: new Date(nowMs - config.roundDeadlineSeconds * 1000),
    minCohort: config.minCohort,
  };
}

/** Abandons the collecting round if its deadline passed while the server was down. */
export async function expireRoundsAtStart(
  store: Store,
  config: ServerConfig,
  nowMs: number,
): Promise<number | undefined> {
  return store.abandonExpiredRound(roundExpiry(config, nowMs));
}
