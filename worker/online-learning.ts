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
import type { ServingSlot } from './serving-slot.js';
import type { InteractionStore } from './store.js';

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
  random: () => number = Math.random,
): Promise<OnlineResult | null> {
  const rederive = !global.local;
  const sessions = pickSessions(toTrainingSessions(rows, indexOf), rederive, random);
  if (sessions.length === 0) return null;
  const model = SessionModel.fromFlat(global.manifest.dims, global.local ?? global.weights);
  try {
    await trainSessions(model, sessions, {
      ...LOCAL_TRAINING,
      maxSteps: rederive ? ONLINE_LEARNING.rederiveSteps : ONLINE_LEARNING.maxSteps,
      seed: Math.floor(random() * 2 ** 32),
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

  /** Runs a scheduled task now instead of after the quiet time; resolves when it is done. */
  flush(): Promise<void> {
    if (!this.timer) return Promise.resolve();
    this.cancel();
    return this.task();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** What online learning reads from the engine and hands back to it. */
export interface LearningHost {
  /** The model recommendations come from. */
  readonly serving: ServingSlot;
  /** The global model served now, with the device's local copy of it when there is one. */
  global(): LoadedModel | null;
  /** Records `global` (now carrying its new local copy) as the one served. */
  setGlobal(global: LoadedModel): void;
  store(): InteractionStore;
  /** Site item id -> model index for the served model. */
  indexOf(): ReadonlyMap<string, number>;
  /** Tells the other tabs that a local copy of `version` is now served. */
  announce(version: number): void;
  /** Runs `task` after the engine's queued tasks, under the trainer lock (skipped when busy). */
  exclusive(task: () => Promise<void>): Promise<void>;
}

/**
 * The local copy's life on the device: debounced online updates after interactions (or a new global
 * version), and serving plus keeping whatever local copy was learned (here or before an upload).
 */
export class OnlineLearner {
  private readonly debouncer = new Debouncer(() => this.learnNow());

  /** `random` drives the replay sample and the training seed (a replay passes a seeded one). */
  constructor(
    private readonly host: LearningHost,
    private readonly random: () => number = Math.random,
  ) {}

  /** Asks for an update once interactions pause (`ONLINE_LEARNING.debounceMs`). */
  schedule(): void {
    this.debouncer.schedule();
  }

  /** Runs an update that is waiting for its quiet time now; resolves when it is served. */
  flush(): Promise<void> {
    return this.debouncer.flush();
  }

  cancel(): void {
    this.debouncer.cancel();
  }

  /** One online update (queued, under the trainer lock; another tab training: skipped). */
  learnNow(): Promise<void> {
    return this.host.exclusive(async () => {
      const global = this.host.global();
      const rows = global ? await this.host.store().all() : [];
      const learned = global && (await learnOnline(global, rows, this.host.indexOf(), this.random));
      // Nothing to learn; or a model swap or erasure meanwhile made the result stale.
      if (!learned || this.host.global() !== global) return learned?.model.dispose();
      await this.serveLocal(global, learned.model, learned.weights);
    });
  }

  /** Serves and keeps (reloads, other tabs) a local copy; SessionState rebuilds on the swap. */
  async serveLocal(global: LoadedModel, model: SessionModel, local: Float32Array): Promise<void> {
    const { manifest, weights } = global;
    this.host.serving.swap(model);
    this.host.setGlobal({ ...global, local });
    await this.host
      .store()
      .putModel({ version: manifest.version, manifest, weights, local, savedAt: Date.now() })
      .catch((error: unknown) => log.warn('could not keep the personalised model', error));
    this.host.announce(manifest.version);
  }
}
