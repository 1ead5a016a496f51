/**
 * Writing a trained model as a model directory: the weights, the cold-start lists, and a record of
 * how it was trained and how it scored, in the manifest's `training` block.
 */
import type { SessionModel } from '../../model/session-model.js';
import type { TrainResult } from '../../model/train.js';
import type { LoadedDataset } from '../data/datasets.js';
import { exportModel } from '../model-io.js';
import { trendingItems } from '../recency.js';
import type { Hyper } from './defaults.js';
import { scoringLabel, type TestMetrics } from './report.js';
import type { TrainingSplits } from './splits.js';

/** How many most popular items the manifest lists for cold start. */
export const POPULAR_IN_MANIFEST = 100;

/** A finished run: what it trained on, how, and how it scored. */
export interface TrainedRun {
  readonly loaded: LoadedDataset;
  readonly splits: TrainingSplits;
  readonly hyper: Hyper;
  readonly result: TrainResult;
  /** Wall-clock seconds of training (main epochs and recency stage, validation included). */
  readonly seconds: number;
  readonly test: TestMetrics;
}

/** The manifest's `training` record of a run. */
export function trainingRecord(
  run: TrainedRun,
  scoring: string,
): Readonly<Record<string, string | number>> {
  const { hyper, result, splits, test } = run;
  const recent = splits.recent.length;
  return {
    dataset: run.loaded.data.name,
    epochs: result.epochsDone,
    bestEpoch: result.bestEpoch + 1,
    batchSize: hyper.batch,
    learningRate: hyper.lr,
    seed: hyper.seed,
    loss: hyper.loss,
    negatives: hyper.negatives,
    alpha: hyper.alpha,
    logQ: String(hyper.logQ),
    dropout: hyper.dropout,
    schedule: hyper.schedule,
    scoring,
    validationSessions: splits.validation.length,
    recentSessions: recent,
    recentEpochs: recent > 0 ? hyper.recentEpochs : 0,
    recentLr: hyper.recentLr,
    validationPairs: splits.validationPairs.length,
    examples: result.examples,
    seconds: Number(run.seconds.toFixed(1)),
    testPairs: test.pairs,
    hr20: Number(test.model.hr[20]!.toFixed(4)),
    mrr20: Number(test.model.mrr[20]!.toFixed(4)),
    popHr20: Number(test.pop.hr[20]!.toFixed(4)),
    popMrr20: Number(test.pop.mrr[20]!.toFixed(4)),
  };
}

/** Writes `model` to `out` with its manifest (model.dims carries dims.scoring into it). */
export async function exportTrained(
  out: string,
  model: SessionModel,
  run: TrainedRun,
  log: (line: string) => void,
): Promise<void> {
  const { data } = run.loaded;
  const exported = await exportModel(out, model, {
    itemIds: data.itemIds,
    popular: Array.from(
      { length: Math.min(POPULAR_IN_MANIFEST, model.dims.items - 1) },
      (_, i) => i + 1,
    ),
    // Cold start's recency list: what trended in the newest training sessions. Session datasets
    // are in time order; leave-one-out user sequences have no global order, so none there.
    ...(run.loaded.validationPairs ? {} : { recent: trendingItems(data.train) }),
    version: 1,
    training: trainingRecord(run, scoringLabel(model.dims)),
  });
  log(
    `wrote ${exported.manifestPath} (weights ${(exported.weightsBytes / 1024).toFixed(0)} KiB float32, ` +
      `${(exported.weightsF16Bytes / 1024).toFixed(0)} KiB float16)`,
  );
}
