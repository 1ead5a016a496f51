/**
 * What a Node program running the engine directly (a replay, an integration test) may give it and
 * read back. The worker builds its engine with the defaults, and the page sees neither: it gets only
 * the `EngineApi` object worker/index.ts exposes.
 */
import type { LocalTrainingSettings } from './local-training.js';
import type { LoadedModel } from './model-source.js';
import type { OnlineLearningSettings } from './online-learning.js';
import type { InteractionStore } from './store.js';
import type { LockManagerLike } from './tabs.js';

/** What a replay or a test may inject; the worker uses the defaults. */
export interface EngineOptions {
  /** The clock interactions are stamped with (sessions split on its gaps) and windows read on. */
  readonly now?: () => number;
  /** Randomness of online learning (replay sample, negatives) and of the exploration slot. */
  readonly random?: () => number;
  /** The participation coin, uniform in [0, 1) (default: crypto.getRandomValues; participation.ts). */
  readonly coin?: () => number;
  /** Online-learning settings over ONLINE_LEARNING's (online-learning.ts), for this engine. */
  readonly learning?: Partial<OnlineLearningSettings>;
  /** Local-training settings over LOCAL_TRAINING's (local-training.ts), for this engine. */
  readonly localTraining?: Partial<LocalTrainingSettings>;
  /** Opens the device's store (default: IndexedDB; null falls back to memory). */
  readonly openStore?: () => Promise<InteractionStore | null>;
  /** The Web Locks the trainer lock is taken from (default: this worker's; null: none). */
  readonly locks?: LockManagerLike | null;
}

/**
 * What an engine holds, read by Node programs that run it directly (replays, integration tests).
 * The page never sees it: worker/index.ts exposes only `EngineApi`.
 */
export interface EngineSnapshot {
  /** The global model with its local copy, if any (null before one loads). */
  readonly global: LoadedModel | null;
  /** The weights recommendations come from now, flat (null before a model loads). */
  readonly served: Float32Array | null;
  /** The current session, as model indices. */
  readonly sessionItems: readonly number[];
  /** The device's store. */
  readonly store: InteractionStore;
}
