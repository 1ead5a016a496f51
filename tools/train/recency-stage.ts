/**
 * The recency stage after the main epochs: more epochs at a constant, lower learning rate over the
 * newest training sessions, the validation split included. The newest sessions are the closest to
 * the test period, and early stopping has already been decided by then. (Chosen on validation with
 * the stage over the newest sessions before the validation split; README has the figures.)
 */
import type { SessionModel } from '../../model/session-model.js';
import { trainSessions } from '../../model/train.js';
import { secondsSince } from '../lib/timing.js';
import type { Hyper } from './defaults.js';

/** What the stage did. */
export interface RecencyStageResult {
  readonly examples: number;
  readonly seconds: number;
}

/**
 * Trains `model` further on `recent` (none: nothing happens). Negatives are sampled by popularity
 * over all of `train`, not the stage's few sessions, as in the main epochs.
 */
export async function recencyStage(
  model: SessionModel,
  train: readonly number[][],
  recent: readonly number[][],
  hyper: Hyper,
  log: (line: string) => void,
): Promise<RecencyStageResult> {
  if (recent.length === 0) return { examples: 0, seconds: 0 };
  const started = performance.now();
  const popularity = new Float64Array(model.dims.items);
  for (const session of train) for (const item of session) popularity[item]! += 1;
  const stage = await trainSessions(
    model,
    recent.map((items) => ({ items })),
    {
      epochs: hyper.recentEpochs,
      batchSize: hyper.batch,
      learningRate: hyper.recentLr,
      seed: hyper.seed + 1,
      loss: hyper.loss,
      sampled: { negatives: hyper.negatives, alpha: hyper.alpha, logQ: hyper.logQ },
      popularity,
      dropout: hyper.dropout,
      schedule: 'constant',
    },
  );
  const seconds = secondsSince(started);
  log(
    `recency stage: ${stage.epochsDone} epochs over the newest ${recent.length} training ` +
      `sessions (validation split included) at lr ${hyper.recentLr}, mean loss ` +
      `${stage.meanLoss.toFixed(3)}, ${seconds.toFixed(1)} s`,
  );
  return { examples: stage.examples, seconds };
}
