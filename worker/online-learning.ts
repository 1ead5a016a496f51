/**
 * Online learning on the device: a few optimiser steps on the visitor's recent sessions plus a small
 * replay of older stored history, shortly after interactions (debounced), starting from the weights
 * being served and pulled toward the global weights (sparse steps: online-step.ts).
 * When a new global version arrives the local copy is re-derived from it by replaying the history,
 * so personalisation survives model updates. Nothing here uploads anything.
 */
import type { UpdateTiming } from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import { toTrainingSessions, type IndexedSession } from './sessions.js';
import { diffLocal, type LocalCopy } from './local-copy.js';
import type { LoadedModel } from './model-source.js';
import { SessionModel } from '../model/session-model.js';
import { SparseLearner, type SparseStepOptions } from './online-step.js';
import type { ServingSlot } from './serving-slot.js';
import type { InteractionStore } from './store.js';
import { settingsOver } from './settings.js';

const log = createLogger('online');

/**
 * Online-learning settings. The engine merges what its options pass over ONLINE_LEARNING once
 * (onlineLearningSettings) and hands the result down; nothing writes settings afterwards.
 */
export interface OnlineLearningSettings {
  /** Quiet time after the last interaction before a learning step runs. */
  readonly debounceMs: number;
  /** Optimiser steps per online update (the local copy already has the earlier ones). */
  readonly maxSteps: number;
  /** Optimiser steps when re-deriving the local copy from a new global version. */
  readonly rederiveSteps: number;
  /** Newest sessions always trained on. */
  readonly recentSessions: number;
  /** Older sessions replayed with them (a random sample) against forgetting. */
  readonly replaySessions: number;
  /** Sessions replayed when re-deriving (the newest ones). */
  readonly rederiveSessions: number;
  /** Adam step size of the sparse steps (online-step.ts); Adam restarts with every update. */
  readonly learningRate: number;
  /** Proximal pull toward the global weights, on the parameters a step trains. */
  readonly mu: number;
  /** Negatives sampled per update (the whole catalogue below this size). */
  readonly negatives: number;
  /** Trains the LSTM too (backpropagation through time); else the LSTM is held. */
  readonly trainLstm: boolean;
  /** Trains the output projection, which every session's vector goes through; else holds it. */
  readonly trainProjection: boolean;
  /** Trains the rows of the visitor's items and their biases too; else every item row is held. */
  readonly trainItems: boolean;
  /** Learns only from clicks on items new to their session (returns are never shown). */
  readonly newTargetsOnly: boolean;
  /**
   * Corrects the sampled negatives' scores to stand for the whole catalogue (online-step.ts).
   * Without it the session's own items weigh as much in the softmax as the rest of the catalogue
   * together, and an update mostly reorders them, which the shown list never includes.
   */
  readonly correctNegatives: boolean;
  /** Interactions stored on the device before online updates start. */
  readonly minInteractions: number;
}

/** The engine's online-learning settings unless its options say otherwise (frozen). */
export const ONLINE_LEARNING: OnlineLearningSettings = Object.freeze({
  debounceMs: 1500,
  maxSteps: 4,
  rederiveSteps: 8,
  recentSessions: 2,
  replaySessions: 6,
  rederiveSessions: 64,
  // 0.01 with the item rows held: 0.01 / 0.02 / 0.05 on Beauty's tuning set gave +7.2% / +7.8% /
  // +1.6% HR@10, 0.01 cost YOOCHOOSE's least (README, "Simulating visitors").
  learningRate: 0.01,
  mu: 0.1,
  // 1,024 scored as 2,048 did on both tuning sets and halves the steps' largest cost (the products
  // and softmax over them).
  negatives: 1024,
  // Held by default: on a 43k-item model an update that trains the LSTM costs about four times as
  // long, for a gain only YOOCHOOSE's tuning set showed.
  trainLstm: false,
  trainProjection: true,
  // Held by default: trained, the visitor's item rows rose above the rest of the catalogue for the
  // visitor, and the shown list never includes the session's own items; held, the projection alone
  // learns, and what it learns reaches every item like the visitor's.
  trainItems: false,
  newTargetsOnly: false,
  correctNegatives: true,
  // A few clicks are already in the session's LSTM state, and fine-tuning on them cost YOOCHOOSE's
  // short sessions 5%.
  minInteractions: 6,
});

/** `overrides` over ONLINE_LEARNING (an undefined value keeps the default), frozen. */
export function onlineLearningSettings(
  overrides: Partial<OnlineLearningSettings> = {},
): OnlineLearningSettings {
  return settingsOver(ONLINE_LEARNING, overrides);
}

/**
 * The sessions one update trains on, oldest first: the newest `recentSessions` plus up to
 * `replaySessions` older ones drawn at random (`rng` in [0, 1)); re-deriving takes the newest
 * `rederiveSessions` instead.
 */
export function pickSessions(
  sessions: readonly IndexedSession[],
  rederive: boolean,
  settings: Pick<OnlineLearningSettings, 'recentSessions' | 'replaySessions' | 'rederiveSessions'>,
  rng: () => number = Math.random,
): IndexedSession[] {
  const { recentSessions, replaySessions, rederiveSessions } = settings;
  if (rederive) return sessions.slice(-rederiveSessions);
  const cut = Math.max(0, sessions.length - recentSessions);
  const older = sessions.slice(0, cut);
  const replay: IndexedSession[] = [];
  while (replay.length < replaySessions && older.length > 0) {
    replay.push(older.splice(Math.floor(rng() * older.length), 1)[0]!);
  }
  return [...replay, ...sessions.slice(cut)];
}

/** Runs `task` once, `delayMs` after the last `schedule()` call. */
export class Debouncer {
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly delayMs: number,
  ) {}

  schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.task().catch((error: unknown) => log.warn('online learning failed', error));
    }, this.delayMs);
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

/** The sparse steps' options under `settings`, negatives drawn from `random`. */
function stepOptions(settings: OnlineLearningSettings, random: () => number): SparseStepOptions {
  const { learningRate, mu, negatives, trainLstm, trainProjection, trainItems } = settings;
  const { newTargetsOnly, correctNegatives } = settings;
  return {
    learningRate,
    mu,
    negatives,
    trainLstm,
    trainProjection,
    trainItems,
    newTargetsOnly,
    correctNegatives,
    random,
  };
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
  private readonly debouncer: Debouncer;
  private learner: SparseLearner | null = null;
  /** The background write of the local copy (keep()), and the newest copy waiting for it. */
  private keeping: Promise<void> | null = null;
  private waiting: { version: number; copy: LocalCopy; store: InteractionStore } | null = null;
  /** How long the newest update took, by phase (status().learning.lastUpdate). */
  lastUpdate: UpdateTiming | undefined;

  /**
   * Learns under `settings` (the engine's, merged once); `random` drives the replay sample and the
   * negatives (a replay passes a seeded one).
   */
  constructor(
    private readonly host: LearningHost,
    private readonly settings: OnlineLearningSettings,
    private readonly random: () => number = Math.random,
  ) {
    this.debouncer = new Debouncer(() => this.learnNow(), settings.debounceMs);
  }

  /** Asks for an update once interactions pause (`settings.debounceMs`). */
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

  /** Forgets the kept learner (the next update starts a fresh one from the served weights). */
  dropLearner(): void {
    this.learner = null;
  }

  /**
   * One online update (queued, under the trainer lock; another tab training: skipped): a few
   * sparse steps from the served local copy on the newest sessions plus a replay sample, or, with
   * no local copy of this version yet, a re-derivation from the global weights over more history.
   */
  learnNow(): Promise<void> {
    return this.host.exclusive(async () => {
      const global = this.host.global();
      if (!global) return;
      const started = performance.now();
      const rederive = !global.local;
      const rows = await this.host.store().all();
      const { settings } = this;
      if (rows.length < settings.minInteractions) return;
      const all = toTrainingSessions(rows, this.host.indexOf());
      const sessions = pickSessions(all, rederive, settings, this.random);
      if (sessions.length === 0 || this.host.global() !== global) return;
      const read = performance.now();
      const learner = this.learnerFor(global);
      const steps = rederive ? settings.rederiveSteps : settings.maxSteps;
      await learner.update(sessions, steps, stepOptions(settings, this.random));
      // A model swap or erasure meanwhile made the result stale.
      if (this.host.global() !== global) return;
      const learned = performance.now();
      const model = SessionModel.fromFlat(global.manifest.dims, learner.weights);
      await this.serveLocal(global, model, learner.weights);
      const served = performance.now();
      this.lastUpdate = {
        readMs: read - started,
        learnMs: learned - read,
        serveMs: served - learned,
        totalMs: served - started,
      };
      log.debug('online update', this.lastUpdate);
    });
  }

  /**
   * The learner for `global`: the kept one while its weights are still the served local copy (no
   * copy of the weights per update), else a fresh one from the local copy or the global weights.
   */
  private learnerFor(global: LoadedModel): SparseLearner {
    const kept = this.learner;
    if (kept && kept.anchor === global.weights && kept.weights === global.local) return kept;
    const { dims } = global.manifest;
    this.learner = new SparseLearner(dims, global.weights, global.local ?? global.weights);
    return this.learner;
  }

  /** Serves a local copy at once (SessionState rebuilds on the swap) and keeps it (keep()). */
  async serveLocal(global: LoadedModel, model: SessionModel, local: Float32Array): Promise<void> {
    this.host.serving.swap(model);
    this.host.setGlobal({ ...global, local });
    this.keep(global, local);
  }

  /** Resolves once the newest local copy served is stored (and announced). */
  kept(): Promise<void> {
    return this.keeping ?? Promise.resolve();
  }

  /**
   * Stores the local copy for reloads and other tabs, then tells them. Only the blocks where it
   * differs from the global weights are stored (local-copy.ts), taken now, as served; the write is
   * not awaited by an update. Writes go one at a time and only the newest waiting copy is written;
   * each goes to the store current when it was served, so a copy learned before `forget()` never
   * lands in the store opened after it.
   */
  private keep(global: LoadedModel, local: Float32Array): void {
    const { version } = global.manifest;
    // The learner knows which blocks its steps wrote; a copy from elsewhere is compared whole.
    const learner = this.learner;
    const copy =
      learner?.weights === local && learner.anchor === global.weights
        ? learner.localCopy(version)
        : diffLocal(version, global.weights, local);
    this.waiting = { version, copy, store: this.host.store() };
    this.keeping ??= (async () => {
      for (let next = this.waiting; next; next = this.waiting) {
        this.waiting = null;
        await next.store
          .putLocal(next.copy)
          .catch((error: unknown) => log.warn('could not keep the personalised model', error));
        this.host.announce(next.version);
      }
      this.keeping = null;
    })();
  }
}
