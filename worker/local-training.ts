/**
 * Local learning before an upload: a few optimiser steps on the visitor's own sessions, starting
 * from the global weights and pulled back toward them (a proximal term, as in FedProx) so the local
 * copy neither drifts nor forgets, then the clipped delta that is all the server will see.
 */
import { createLogger } from '../protocol/logger.js';
import { clippedDelta } from './federated-client.js';
import type { GlobalModel } from './model-source.js';
import { SessionModel } from './model/session-model.js';
import { trainSessions, type TrainSession } from './model/train.js';
import type { InteractionStore, OutboxEntry } from './store.js';

const log = createLogger('learn');

/** Local fine-tuning per shared update: few steps, pulled toward the global weights. */
export const LOCAL_TRAINING = {
  epochs: 2,
  batchSize: 16,
  learningRate: 0.005,
  maxSteps: 8,
  mu: 0.1,
};

/** What one round of local learning produced. */
export interface LocalResult {
  /** The fine-tuned model (the caller owns it and disposes it). */
  readonly model: SessionModel;
  readonly weights: Float32Array;
  /** The update to send: clipped delta against `global`, with its base version and layout. */
  readonly update: Omit<OutboxEntry, 'createdAt'>;
}

/** Steps on top of a local copy that online learning already fine-tuned for this version. */
export const TOP_UP_STEPS = 2;

/**
 * Fine-tunes a copy of `global` on `sessions` and computes the clipped delta. With `local` (the
 * device's fine-tuned copy of this very version, from online learning) it starts from there and
 * only tops it up with a couple of steps; the delta is always against the global weights.
 */
export async function learnLocally(
  global: GlobalModel,
  sessions: readonly TrainSession[],
  local?: Float32Array,
): Promise<LocalResult> {
  const reuse = local !== undefined && local.length === global.weights.length;
  const model = SessionModel.fromFlat(global.manifest.dims, reuse ? local : global.weights);
  const trained = await trainSessions(model, sessions, {
    ...LOCAL_TRAINING,
    ...(reuse ? { maxSteps: TOP_UP_STEPS } : {}),
    seed: Date.now() >>> 0,
    proximal: { anchor: global.weights, mu: LOCAL_TRAINING.mu },
  });
  const weights = model.toFlat();
  return {
    model,
    weights,
    update: {
      baseVersion: global.manifest.version,
      layoutHash: global.manifest.layoutHash,
      delta: clippedDelta(weights, global.weights, global.manifest.federation.clipNorm),
      examples: trained.examples,
    },
  };
}

/** The pending (offline) update if it still applies to `global`; a stale one is dropped. */
export async function currentOutbox(
  store: InteractionStore,
  global: GlobalModel,
): Promise<OutboxEntry | undefined> {
  const pending = await store.getOutbox().catch(() => undefined);
  if (!pending) return undefined;
  const { version, layoutHash } = global.manifest;
  const fits =
    pending.baseVersion === version &&
    pending.layoutHash === layoutHash &&
    pending.delta.length === global.weights.length;
  if (fits) return pending;
  log.info(`dropping the pending update for v${pending.baseVersion} (now v${version})`);
  await store.setOutbox(null).catch(() => undefined);
  return undefined;
}
