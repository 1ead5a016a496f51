/**
 * Turning stored interactions into sessions, on the device. A session ends after 30 minutes without
 * an interaction (the usual web-analytics convention, also what YOOCHOOSE's sessions follow).
 */
import { INTERACTION_WEIGHTS, type StoredInteraction } from '../protocol/api.js';

/** Inactivity after which the next interaction starts a new session. */
export const SESSION_GAP_MS = 30 * 60 * 1000;

/** The session id an interaction at `now` belongs to, given the previous interaction (if any). */
export function sessionFor(now: number, previous: StoredInteraction | undefined): number {
  if (previous && now - previous.ts < SESSION_GAP_MS && now >= previous.ts) return previous.session;
  return now;
}

/** A session of model indices with per-position sample weights, ready for training. */
export interface IndexedSession {
  readonly items: number[];
  readonly weights: number[];
}

/**
 * Groups interactions (any order) into sessions of model indices, oldest first. Items the model does
 * not know are dropped (they cannot be learned locally); sessions left with fewer than two items are
 * dropped, since they hold no next-item example.
 */
export function toTrainingSessions(
  rows: readonly StoredInteraction[],
  indexOf: ReadonlyMap<string, number>,
): IndexedSession[] {
  const bySession = new Map<number, StoredInteraction[]>();
  for (const row of [...rows].sort((a, b) => a.ts - b.ts || a.id - b.id)) {
    const list = bySession.get(row.session) ?? [];
    list.push(row);
    bySession.set(row.session, list);
  }
  const out: IndexedSession[] = [];
  for (const list of bySession.values()) {
    const known = list.filter((row) => indexOf.has(row.item));
    if (known.length < 2) continue;
    out.push({
      items: known.map((row) => indexOf.get(row.item)!),
      weights: known.map((row) => INTERACTION_WEIGHTS[row.type]),
    });
  }
  return out;
}
