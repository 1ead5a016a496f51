/**
 * One training run end to end: load a dataset, train (main epochs with early stopping and
 * checkpoints, then the recency stage), test against POP, write the model directory.
 */
import type { RankingMetrics } from '../../model/metrics.js';
import { SessionModel } from '../../model/session-model.js';
import type { TrainResult } from '../../model/train.js';
import {
  DEFAULT_DATA_DIR,
  loadDataset,
  type DatasetName,
  type LoadedDataset,
} from '../data/datasets.js';
import { readSiteLog, siteDataset } from '../data/site-log.js';
import { readCatalog } from '../../server/catalog-source.js';
import type { LoadedCheckpoint } from '../model-io.js';
import { secondsSince } from '../lib/timing.js';
import { initNodeBackend, type NodeBackend } from '../tf-node.js';
import {
  checkpointToResume,
  checkpointWriter,
  resumedHyper,
  type CheckpointOptions,
} from './checkpoints.js';
import { hyperFor, modelDims, type Hyper } from './defaults.js';
import { mainEpochs } from './epochs.js';
import { exportTrained } from './export.js';
import { recencyStage } from './recency-stage.js';
import { formatTable, runLine, summaryLine, testMetrics } from './report.js';
import { trainingSplits, type TrainingSplits } from './splits.js';

/** Options that shape a run but are not model hyper-parameters. */
export interface RunOptions {
  /**
   * Trains on only the oldest share of the training sessions (after the validation split), for quick
   * hyper-parameter sweeps whose relative ranking is what matters; 1 = all.
   */
  trainFraction?: number;
}

/** Options of trainAndExport; unset hyper-parameters take DEFAULTS[dataset]. */
export interface TrainAndExportOptions extends Partial<Hyper>, RunOptions, CheckpointOptions {
  dataset: DatasetName;
  /** Model directory to write. */
  out: string;
  /** Data directory holding the dataset folders (default ../shared/data next to the repo). */
  data?: string;
  backend?: NodeBackend;
  /** No progress bar and no table (for programmatic callers). */
  quiet?: boolean;
  /**
   * A site's own click log (tools/data/site-log.ts) to train on instead of `dataset`, whose
   * defaults it takes (with full softmax below 20,000 items, `loss: 'auto'`).
   */
  sessions?: string;
  /** With `sessions`: the site's catalogue (file or URL); its ids are the model's items. */
  catalog?: string;
}

/** What a run produced. */
export interface TrainAndExportResult {
  dir: string;
  hr20: number;
  mrr20: number;
  seconds: number;
  model: RankingMetrics;
  pop: RankingMetrics;
  examplesPerSecond: number;
}

/** Trains on `dataset`, evaluates against POP, writes the model directory. */
export async function trainAndExport(
  options: TrainAndExportOptions,
): Promise<TrainAndExportResult> {
  const log = options.quiet ? () => {} : (line: string) => console.log(line);
  const resumed = await checkpointToResume(options, log);
  const hyper = runHyper(options, resumed);
  await initNodeBackend(options.backend ?? 'wasm');
  const loaded = options.sessions
    ? await loadSiteLog(options.sessions, options.catalog, log)
    : await loadDataset(options.dataset, options.data ?? DEFAULT_DATA_DIR);
  const dims = modelDims(loaded.data.itemIds.length, hyper);
  const splits = trainingSplits(loaded, hyper, options.trainFraction);
  const counts = {
    name: loaded.data.name,
    fit: splits.fit.length,
    validationPairs: splits.validationPairs.length,
    testPairs: loaded.testPairs.length,
  };
  log(runLine(counts, dims, hyper, resumed?.checkpoint.step));
  const model = resumed
    ? SessionModel.fromFlat(dims, resumed.checkpoint.weights)
    : SessionModel.random(dims, hyper.seed);
  try {
    const trained = await train(model, loaded, splits, hyper, options, resumed, log);
    const test = await testMetrics(model, loaded.data, loaded.testPairs);
    log(formatTable(test.pairs, test.model, test.pop));
    await exportTrained(options.out, model, { loaded, splits, hyper, test, ...trained }, log);
    return {
      dir: options.out,
      hr20: test.model.hr[20]!,
      mrr20: test.model.mrr[20]!,
      seconds: trained.seconds,
      model: test.model,
      pop: test.pop,
      examplesPerSecond: trained.examplesPerSecond,
    };
  } finally {
    model.dispose();
  }
}

/** DEFAULTS[dataset] with the options' hyper-parameters, or the resumed checkpoint's settings. */
function runHyper(options: TrainAndExportOptions, resumed: LoadedCheckpoint | null): Hyper {
  const hyper = hyperFor(options.dataset, options);
  return resumed ? resumedHyper(hyper, options, resumed.extra.hyper as Partial<Hyper>) : hyper;
}

/** The main epochs, then the recency stage; logs the summary. */
async function train(
  model: SessionModel,
  loaded: LoadedDataset,
  splits: TrainingSplits,
  hyper: Hyper,
  options: TrainAndExportOptions,
  resumed: LoadedCheckpoint | null,
  log: (line: string) => void,
): Promise<{ result: TrainResult; seconds: number; examplesPerSecond: number }> {
  const started = performance.now();
  const main = await mainEpochs(model, splits.fit, hyper, {
    validationPairs: splits.validationPairs,
    ...(resumed ? { resume: resumed.checkpoint } : {}),
    checkpoints: checkpointWriter(options, model.dims, { dataset: options.dataset, hyper }),
    quiet: options.quiet ?? false,
    log,
  });
  const stage = await recencyStage(model, loaded.data.train, splits.recent, hyper, log);
  const examples = main.examples + stage.examples;
  const trainSeconds = main.trainSeconds + stage.seconds;
  const run = {
    examples,
    seconds: secondsSince(started),
    trainSeconds,
    validationSeconds: main.validationSeconds,
    examplesPerSecond: examples / Math.max(trainSeconds, 1e-9),
  };
  log(summaryLine(main.result, run));
  return { result: main.result, seconds: run.seconds, examplesPerSecond: run.examplesPerSecond };
}

/** A site's log as a dataset, mapped through its catalogue when given; logs what was left out. */
async function loadSiteLog(
  file: string,
  catalogSource: string | undefined,
  log: (line: string) => void,
): Promise<LoadedDataset> {
  const catalog = catalogSource === undefined ? undefined : await readCatalog(catalogSource);
  const { loaded, report } = siteDataset(
    await readSiteLog(file),
    catalog?.map((item) => item.id),
  );
  log(
    `${file}: ${report.events} events, ${report.sessions} sessions of two or more` +
      (catalog
        ? `, ${loaded.data.itemIds.length - 1} items (the catalogue's ${catalog.length})`
        : ''),
  );
  if (report.unknownEvents > 0) {
    log(
      `left out ${report.unknownEvents} events of items the catalogue does not list (${report.unknownIds.join(', ')}${report.unknownIds.length === 5 ? ', …' : ''})`,
    );
  }
  return loaded;
}
