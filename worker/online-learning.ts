/**
 * Online learning on the device: a few optimiser steps on the visitor's recent sessions plus a small
 * replay of older stored history, shortly after interactions (debounced), starting from the weights
 * being served and pulled toward the global weights (the same proximal term as local-training.ts).
 * When a new global version arrives the local copy is re-derived from it by replaying the history,
 * so personalisation survives model updates. Nothing here uploads anything.
 */
import type { StoredInteraction } from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import { toTrainingSessions, type IndexedSession } from './sessions.js';
import { LOCAL_TRAINING } from './local-training.js';
import type { LoadedModel } from './model-source.js';
import { SessionModel } from './model/session-model.js';
import { trainSessions } from './model/train.js';

const log = createLogger('online');

/** Online-learning settings (tests shorten `debounceMs`). */
export const ONLINE_LEARNING = {
  /** Quiet time after the last interaction before a learning step runs. */
  debounceMs: 1500,
  /** Optimiser steps per online update (the local copy already holds the earlier ones). */
  maxSteps: 3,
  /** Optimiser steps when re-deriving the local copy from a new global version. */
  rederiveSteps: 8,
  /** Newest sessions always trained on. */
  recentSessions: 2,
  /** Older sessions replayed with them (a random sample) against forgetting. */
  replaySessions: 6,
  /** Sessions replayed when re-deriving (the newest ones). */
  rederiveSessions: 64,
};

/**
 * The sessions one update trains on, oldest first: the newest `recent` plus up to `replay` older
 * ones drawn at random (`rng` in [0, 1)); re-deriving takes the newest `rederiveSessions` instead.
 */
export function pickSessions(
  sessions: readonly IndexedSession[],
  rederive: boolean,
  rng: () => number = Math.random,
): IndexedSession[] {
  const { recentSessions, replaySessions, rederiveSessions } = ONLINE_LEARNING;
  if (rederive) return sessions.slice(-rederiveSessions);
  const cut = Math.max(0, sessions.length - recentSessions);
  const older = sessions.slice(0, cut);
  const replay: IndexedSession[] = [];
  while (replay.length < replaySessions && older.length > 0) {
    replay.push(older.splice(Math.floor(rng() * older.length), 1)[0]!);
  }
  return [...replay, ...sessions.slice(cut)];
}

/** What one online update produced (the caller owns `model`). */
export interface OnlineResult {
  readonly model: SessionModel;
  readonly weights: Float32Array;
}

/**
 * One online update of `global`'s local copy from the stored `rows`: a few steps from the served
 * local copy, or, with none yet (a new version), a re-derivation from the global weights over more
 * history; the proximal pull is anchored at the global weights. Null when there is nothing to learn.
 */
export async function learnOnline(
  global: LoadedModel,
  rows: readonly StoredInteraction[],
  indexOf: ReadonlyMap<string, number>,
): Promise<OnlineResult | null> {
  const rederive = !global.local;
  const sessions = pickSessions(toTrainingSessions(rows, indexOf), rederive);
  if (sessions.length === 0) return null;
  const model = SessionModel.fromFlat(global.manifest.dims, global.local ?? global.weights);
  try {
    await trainSessions(model, sessions, {
      ...LOCAL_TRAINING,
      maxSteps: rederive ? ONLINE_LEARNING.rederiveSteps : ONLINE_LEARNING.maxSteps,
      seed: Date.now() >>> 0,
      proximal: { anchor: global.weights, mu: LOCAL_TRAINING.mu },
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, weights: model.toFlat() };
}

/** Runs `task` once, `ONLINE_LEARNING.debounceMs` after the last `schedule()` call. */
export class Debouncer {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.task().catch((error: unknown) => log.warn('online learning failed', error));
    }, ONLINE_LEARNING.debounceMs);
    // Node would otherwise stay alive for a pending step; a worker lives as long as its page.
    (this.timer as { unref?: () => void }).unref?.();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
