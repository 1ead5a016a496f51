/**
 * The main epochs of a training run: trainSessions over the fit sessions with a progress bar, early
 * stopping on the validation cases, checkpoints, and the timings the summary reports.
 */
import type { SingleBar } from 'cli-progress';
import { batchesPerEpoch, toWindows } from '../../model/batches.js';
import { evaluateNext, type NextItemPair } from '../../model/metrics.js';
import type { SessionModel } from '../../model/session-model.js';
import {
  trainSessions,
  type TrainCheckpoint,
  type TrainOptions,
  type TrainResult,
} from '../../model/train.js';
import { progressBar } from '../lib/progress.js';
import { secondsSince } from '../lib/timing.js';
import type { Hyper } from './defaults.js';
import { evenlySpaced } from './splits.js';

/** Validation pairs scored after each epoch, at most (evenly spaced): keeps a check to seconds. */
export const MAX_VALIDATION_PAIRS = 20_000;

/** How the main epochs run besides the hyper-parameters. */
export interface MainEpochsOptions {
  /** Cases early stopping scores (at most MAX_VALIDATION_PAIRS of them); none: no early stopping. */
  readonly validationPairs: readonly NextItemPair[];
  /** The checkpoint the run continues from; the model must already hold its weights. */
  readonly resume?: TrainCheckpoint;
  /** Checkpoint writing (checkpointWriter). */
  readonly checkpoints: Pick<TrainOptions, 'checkpointEvery' | 'onCheckpoint'>;
  /** No progress bar. */
  readonly quiet: boolean;
  readonly log: (line: string) => void;
}

/** What the main epochs did, and how long they took in this process. */
export interface MainEpochsResult {
  readonly result: TrainResult;
  /** Examples trained on in this process (a resumed run's earlier steps not included). */
  readonly examples: number;
  /** Seconds of training, validation excluded. */
  readonly trainSeconds: number;
  /** Seconds spent scoring the validation cases. */
  readonly validationSeconds: number;
}

/** Running totals the callbacks update while trainSessions runs. */
interface Timing {
  examples: number;
  trainSeconds: number;
  validationSeconds: number;
}

/** Trains `model` on `fit` for hyper.epochs epochs (fewer when early stopping ends the run). */
export async function mainEpochs(
  model: SessionModel,
  fit: readonly number[][],
  hyper: Hyper,
  options: MainEpochsOptions,
): Promise<MainEpochsResult> {
  const sessions = fit.map((items) => ({ items }));
  const validationPairs = evenlySpaced(options.validationPairs, MAX_VALIDATION_PAIRS);
  const windows = toWindows(sessions, model.dims.maxSessionLength).length;
  const bar = options.quiet ? null : epochBar();
  const payload = { epoch: 1, epochs: hyper.epochs, loss: '-', speed: '-', val: '-' };
  bar?.start(
    batchesPerEpoch(windows, hyper.batch) * hyper.epochs,
    options.resume?.step ?? 0,
    payload,
  );
  const started = performance.now();
  const timing: Timing = { examples: 0, trainSeconds: 0, validationSeconds: 0 };
  const lines = epochLines(options.log);
  const result = await trainSessions(model, sessions, {
    epochs: hyper.epochs,
    batchSize: hyper.batch,
    learningRate: hyper.lr,
    seed: hyper.seed,
    loss: hyper.loss,
    sampled: { negatives: hyper.negatives, alpha: hyper.alpha, logQ: hyper.logQ },
    patience: hyper.patience,
    dropout: hyper.dropout,
    schedule: hyper.schedule,
    ...(options.resume ? { resume: options.resume } : {}),
    ...(validationPairs.length > 0 ? { validate: validator(validationPairs, timing) } : {}),
    onEpoch: (info) => {
      if (info.validation !== undefined) bar?.update({ val: info.validation.toFixed(4) });
      lines.add(epochLine(info, started));
    },
    ...options.checkpoints,
    onStep: stepReporter(bar, hyper, started, timing),
  });
  bar?.stop();
  lines.flush();
  return { result, ...timing };
}

/** The training progress bar: steps over all epochs, smoothed loss, validation score, speed. */
function epochBar(): SingleBar {
  return progressBar({
    format:
      'train |{bar}| {percentage}% | epoch {epoch}/{epochs} | loss {loss} | val {val} | ' +
      '{speed} ex/s | ETA {eta_formatted}',
    hideCursor: true,
    // Length-bucketed batches vary a lot in cost: average the ETA over many steps.
    etaBuffer: 100,
  });
}

/** Early stopping's score: HR@20 + MRR@20 on `pairs`, its time added to the validation seconds. */
function validator(
  pairs: readonly NextItemPair[],
  timing: Timing,
): (model: SessionModel) => Promise<number> {
  return async (model) => {
    const started = performance.now();
    const metrics = await evaluateNext(model, pairs, [20]);
    timing.validationSeconds += secondsSince(started);
    return metrics.hr[20]! + metrics.mrr[20]!;
  };
}

/** Counts examples and training time after every step and moves the bar. */
function stepReporter(
  bar: SingleBar | null,
  hyper: Hyper,
  started: number,
  timing: Timing,
): NonNullable<TrainOptions['onStep']> {
  let smoothLoss = NaN;
  return ({ step, epoch, loss, examples }) => {
    timing.examples += examples;
    smoothLoss = Number.isNaN(smoothLoss) ? loss : 0.95 * smoothLoss + 0.05 * loss;
    timing.trainSeconds = secondsSince(started) - timing.validationSeconds;
    bar?.update(step, {
      epoch: epoch + 1,
      epochs: hyper.epochs,
      loss: smoothLoss.toFixed(3),
      speed: (timing.examples / timing.trainSeconds).toFixed(0),
    });
  };
}

/** One finished epoch: mean loss, validation score, whether it is the best, seconds so far. */
function epochLine(
  info: Parameters<NonNullable<TrainOptions['onEpoch']>>[0],
  started: number,
): string {
  const { epoch, meanLoss, validation, best } = info;
  return (
    `epoch ${epoch + 1}: mean loss ${meanLoss.toFixed(4)}` +
    (validation === undefined ? '' : `, validation HR@20+MRR@20 ${validation.toFixed(4)}`) +
    (best ? ' (best)' : '') +
    `, ${secondsSince(started).toFixed(0)} s`
  );
}

/**
 * Where epoch lines go: without a terminal the bar draws nothing (logs, CI), so they are printed as
 * they come; on a terminal they wait until the bar is done, which would overdraw them.
 */
function epochLines(log: (line: string) => void): { add(line: string): void; flush(): void } {
  const live = !process.stderr.isTTY;
  const held: string[] = [];
  return {
    add: (line) => {
      if (live) log(line);
      else held.push(line);
    },
    flush: () => held.forEach((line) => log(line)),
  };
}
