/**
 * Trains the global base model and writes it as a model directory.
 *
 *   npm run train -- --data <dir> --dataset <yoochoose-rsc15-100k|diginetica|amazon-beauty|synthetic>
 *                    --out <dir>
 *                    [--epochs n] [--batch b] [--lr x] [--dim d] [--hidden h] [--max-len L] [--seed s]
 *                    [--loss auto|full|sampled] [--negatives n] [--alpha a] [--logq true|false]
 *                    [--val-fraction f] [--patience p] [--dropout r] [--schedule constant|linear]
 *                    [--normalize true|false] [--scale s] [--last-item true|false]
 *                    [--train-fraction f] [--recent-fraction f] [--recent-epochs n] [--recent-lr x]
 *                    [--checkpoint-dir <dir>] [--checkpoint-every steps] [--resume]
 *                    [--backend wasm|cpu]
 *
 * Every prefix of every training session predicts its next item; afterwards every prefix of every test
 * session is ranked against the full catalogue (HR@K, MRR@K) next to the POP baseline. Amazon Beauty
 * is a user-sequence dataset with the leave-one-out protocol (tools/data/amazon-beauty.ts): it trains
 * on each user's sequence minus its last two items, validates on the second-to-last item (input
 * S[:-2]) and tests on the last (input S[:-1]), ranking all items, as tools/eval.ts does.
 *
 * With --val-fraction f > 0 the last f of the training sessions (file order = time order for
 * YOOCHOOSE and Diginetica) are held out as a validation split (never the test split): after every
 * epoch HR@20 + MRR@20 on it decides early stopping (--patience), and the best epoch's weights are
 * exported. --checkpoint-dir writes weights, Adam state and the data/RNG position after every epoch
 * (and every --checkpoint-every steps); --resume continues from there with the checkpoint's settings
 * (but --epochs, if given, wins: more extends the run, the number already done just exports; so does
 * --negatives, which changes no weight's shape).
 *
 * With --recent-fraction f > 0 (Diginetica's default 0.1) a recency stage follows the main epochs:
 * --recent-epochs more epochs at a constant --recent-lr over the newest f of all training sessions,
 * the validation split included: the newest sessions are the closest to the test period, and early
 * stopping has already been decided by then. (Chosen on validation with the stage over the newest
 * sessions before the validation split; README has the figures.) It reruns after a --resume.
 */
import { realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { batchesPerEpoch, toWindows } from '../model/batches.js';
import {
  evaluateNext,
  evaluatePopularity,
  prefixPairs,
  type NextItemPair,
  type RankingMetrics,
} from '../model/metrics.js';
import { SessionModel } from '../model/session-model.js';
import {
  trainSessions,
  type LossKind,
  type TrainCheckpoint,
  type TrainResult,
} from '../model/train.js';
import { loadAmazonBeauty } from './data/amazon-beauty.js';
import { loadDiginetica } from './data/diginetica.js';
import { syntheticDataset } from './data/synthetic.js';
import { loadYoochoose, type SessionDataset } from './data/yoochoose.js';
import type { ModelDims } from '../protocol/manifest.js';
import { exportModel, loadCheckpoint, saveCheckpoint } from './model-io.js';
import { trendingItems } from './recency.js';
import { initNodeBackend, type NodeBackend } from './tf-node.js';

/** Datasets the trainer knows. */
export const DATASETS = [
  'yoochoose-rsc15-100k',
  'diginetica',
  'amazon-beauty',
  'synthetic',
] as const;
/** One of DATASETS. */
export type DatasetName = (typeof DATASETS)[number];

/** Hyper-parameters of one run. */
export interface Hyper {
  epochs: number;
  batch: number;
  lr: number;
  dim: number;
  hidden: number;
  maxLen: number;
  seed: number;
  /** Output loss: 'auto' = sampled softmax above 20,000 items, full softmax below. */
  loss: LossKind;
  /** Sampled softmax: shared popularity-sampled negatives per batch, sampling exponent, logQ. */
  negatives: number;
  alpha: number;
  logQ: boolean;
  /** Share of training sessions (the latest) held out for early stopping; 0 = none. */
  valFraction: number;
  /** Epochs without validation improvement before stopping. */
  patience: number;
  /** Training-only dropout on input embeddings and final LSTM states. */
  dropout: number;
  /** Learning-rate schedule: constant, or linear decay to 10% over the planned steps. */
  schedule: 'constant' | 'linear';
  /** Cosine scoring (manifest dims.scoring): normalised session vector and item rows, times `scale`. */
  normalize: boolean;
  scale: number;
  /** Adds the last item's embedding to the session vector (manifest dims.scoring.lastItem). */
  lastItem: boolean;
  /** Adds the decay-weighted mean of the session's item embeddings (dims.scoring.itemMean); <0 = off. */
  itemMean: number;
  /** A learned bonus for the session's own items by recency (dims.scoring.repeat). */
  repeat: boolean;
  /**
   * The recency stage after the main epochs: `recentEpochs` more epochs at a constant `recentLr` over
   * the newest `recentFraction` of all training sessions, the validation split included (it is the
   * newest data, closest to what the model will be asked about); 0 = none. Session datasets only.
   */
  recentFraction: number;
  recentEpochs: number;
  recentLr: number;
}

/** Options that shape a run but are not model hyper-parameters. */
export interface RunOptions {
  /**
   * Trains on only the oldest share of the training sessions (after the validation split), for quick
   * hyper-parameter sweeps whose relative ranking is what matters; 1 = all.
   */
  trainFraction?: number;
}

/**
 * Defaults per dataset, measured with the wasm backend in Node, one thread, on a 2-core machine
 * shared with other jobs (timings are noisy). All three use cosine scoring (dims.scoring): on
 * Diginetica, one epoch on half the training sessions gave validation HR@20+MRR@20 0.300 for the
 * dot-product model, 0.354 with the last-item skip, 0.396 cosine (scale 16), 0.449 cosine (scale 12)
 * + skip at lr 0.01, and logQ correction helped cosine further (0.377 -> 0.438 at scale 16).
 * YOOCHOOSE 100k (N = 2,934, full softmax): 6 epochs of batch 64 at lr 0.01 decaying linearly,
 * dropout 0.3 on inputs and final states, cosine scale 12 + last-item skip: HR@20 0.6898 /
 * MRR@20 0.3771 (V-SKNN 0.6820 / 0.3608; the same set-up with dot-product scoring 0.6811 / 0.3637).
 * Diginetica (N = 43,098): sampled softmax (2048 negatives, alpha 0.75, logQ), batch 256, lr 0.01
 * decaying linearly over 5 epochs, cosine scale 8 with the session's item mean instead of the
 * last-item skip, the learned repeat bonus, early stopping on the last 5% of training sessions,
 * then the recency stage (2 epochs at lr 0.001 over the newest 10% of the training sessions)
 * (one epoch on half the sessions: 0.434 for scale 12 + skip, 0.477 scale 8 + item mean, 0.516 with
 * the repeat bonus too; README has the test figures). Amazon Beauty (N = 54,543, leave-one-out):
 * cosine scale 10 with the item mean, no skip and no repeat bonus (a user rarely buys the item just
 * bought), batch 128, lr 0.005 over 8 epochs, logQ, dropout 0.3. Synthetic (120 items, d=16,
 * h=32): ~3 s.
 */
export const DEFAULTS: Readonly<Record<DatasetName, Hyper>> = {
  'yoochoose-rsc15-100k': {
    epochs: 6,
    batch: 64,
    lr: 0.01,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'auto',
    negatives: 2048,
    alpha: 0.75,
    logQ: false,
    valFraction: 0,
    patience: 2,
    dropout: 0.3,
    schedule: 'linear',
    normalize: true,
    scale: 12,
    lastItem: true,
    itemMean: -1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  // d = 64 keeps the float16 model under 6 MB (43,098 x 64 x 2 bytes = 5.5 MB for the item table).
  diginetica: {
    epochs: 5,
    batch: 256,
    lr: 0.01,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'sampled',
    negatives: 2048,
    alpha: 0.75,
    logQ: true,
    valFraction: 0.05,
    patience: 2,
    dropout: 0,
    schedule: 'linear',
    normalize: true,
    scale: 8,
    lastItem: false,
    itemMean: 1,
    repeat: true,
    recentFraction: 0.1,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  // Leave-one-out: the validation split is each user's second-to-last item, so valFraction is unused.
  // 54,543 items: sampled softmax, like Diginetica.
  'amazon-beauty': {
    epochs: 8,
    batch: 128,
    lr: 0.005,
    dim: 64,
    hidden: 128,
    maxLen: 20,
    seed: 1,
    loss: 'sampled',
    negatives: 2048,
    alpha: 0.75,
    logQ: true,
    valFraction: 0,
    patience: 2,
    dropout: 0.3,
    schedule: 'linear',
    normalize: true,
    scale: 10,
    lastItem: false,
    itemMean: 1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
  synthetic: {
    epochs: 3,
    batch: 32,
    lr: 0.01,
    dim: 16,
    hidden: 32,
    maxLen: 20,
    seed: 1,
    loss: 'auto',
    negatives: 2048,
    alpha: 0.75,
    logQ: false,
    valFraction: 0,
    patience: 2,
    dropout: 0,
    schedule: 'constant',
    normalize: false,
    scale: 1,
    lastItem: false,
    itemMean: -1,
    repeat: false,
    recentFraction: 0,
    recentEpochs: 2,
    recentLr: 0.001,
  },
};

/** Validation pairs scored after each epoch, at most (evenly spaced): keeps a check to seconds. */
export const MAX_VALIDATION_PAIRS = 20_000;

/** How many most popular items the manifest lists for cold start. */
export const POPULAR_IN_MANIFEST = 100;

/**
 * The manifest's dims.scoring for `hyper`: absent unless asked for, so a dot-product model's
 * manifest stays what it always was.
 */
export function scoringDims(
  hyper: Pick<Hyper, 'normalize' | 'scale' | 'lastItem' | 'itemMean' | 'repeat'>,
): Pick<ModelDims, 'scoring'> {
  if (!hyper.normalize && !hyper.lastItem) return {};
  return {
    scoring: {
      normalize: hyper.normalize,
      scale: hyper.normalize ? hyper.scale : 1,
      lastItem: hyper.lastItem,
      ...(hyper.itemMean >= 0 ? { itemMean: hyper.itemMean } : {}),
      ...(hyper.repeat ? { repeat: true } : {}),
    },
  };
}

/** Options of trainAndExport; unset hyper-parameters take DEFAULTS[dataset]. */
export interface TrainAndExportOptions extends Partial<Hyper>, RunOptions {
  dataset: DatasetName;
  /** Model directory to write. */
  out: string;
  /** Data directory holding the dataset folders (default ../shared/data next to the repo). */
  data?: string;
  backend?: NodeBackend;
  /** No progress bar and no table (for programmatic callers). */
  quiet?: boolean;
  /** Writes a checkpoint here after every epoch (and every checkpointEvery steps). */
  checkpointDir?: string;
  checkpointEvery?: number;
  /**
   * Continue from checkpointDir's checkpoint: its hyper-parameters win over these options, except
   * epochs and negatives.
   */
  resume?: boolean;
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

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The default data directory: ../shared/data relative to the repository root. */
export const DEFAULT_DATA_DIR = join(root, '..', 'shared', 'data');

/** A dataset as the trainer sees it: catalogue and training sessions, test and validation cases. */
export interface TrainData {
  readonly data: SessionDataset;
  /** Test cases: every prefix of every test session, or one leave-one-out case per user. */
  readonly testPairs: NextItemPair[];
  /**
   * Validation cases fixed by the protocol (leave-one-out: S[:-2] -> S[-2]); when absent, a
   * validation split is carved from the training sessions by time (--val-fraction).
   */
  readonly validationPairs?: NextItemPair[];
}

/** Loads a dataset by name. */
export async function loadDataset(name: DatasetName, dataDir: string): Promise<TrainData> {
  const sessions = (data: SessionDataset): TrainData => ({
    data,
    testPairs: prefixPairs(data.test),
  });
  switch (name) {
    case 'synthetic':
      return sessions(syntheticDataset());
    case 'diginetica':
      return sessions(await loadDiginetica(dataDir));
    case 'yoochoose-rsc15-100k':
      return sessions(await loadYoochoose(dataDir));
    case 'amazon-beauty': {
      const loo = await loadAmazonBeauty(dataDir);
      return { data: loo.data, testPairs: loo.test, validationPairs: loo.validation };
    }
  }
}

/**
 * Splits training sessions by time: the last `fraction` of them (file order, which is time order for
 * the session datasets here) become the validation split. Early stopping must never look at the test
 * split, or the reported test numbers would be tuned on themselves.
 */
export function splitValidation(
  train: readonly number[][],
  fraction: number,
): { fit: number[][]; validation: number[][] } {
  if (!(fraction > 0)) return { fit: [...train], validation: [] };
  const cut = train.length - Math.max(1, Math.round(train.length * Math.min(fraction, 0.5)));
  return { fit: train.slice(0, cut), validation: train.slice(cut) };
}

/** The newest `fraction` of `sessions` (file order = time order), none for fraction <= 0. */
export function newestShare(sessions: readonly number[][], fraction: number): number[][] {
  if (!(fraction > 0)) return [];
  return sessions.slice(
    sessions.length - Math.max(1, Math.round(sessions.length * Math.min(fraction, 1))),
  );
}

/** At most `max` items of `items`, evenly spaced (deterministic, keeps the time spread). */
function evenlySpaced<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  return Array.from({ length: max }, (_, i) => items[Math.floor((i * items.length) / max)]!);
}

/** Trains on `dataset`, evaluates against POP, writes the model directory. */
export async function trainAndExport(
  options: TrainAndExportOptions,
): Promise<TrainAndExportResult> {
  const hyper: Hyper = { ...DEFAULTS[options.dataset] };
  const given = hyper as unknown as Record<string, unknown>;
  for (const key of Object.keys(hyper) as (keyof Hyper)[]) {
    const value = options[key];
    if (value !== undefined) given[key] = value;
  }
  const log = options.quiet ? () => {} : (line: string) => console.log(line);
  const resumed =
    options.resume && options.checkpointDir ? await loadCheckpoint(options.checkpointDir) : null;
  if (options.resume && !resumed) log('no checkpoint found: starting from scratch');
  // The checkpoint's settings win, except an explicit epoch count: it extends a run, or cuts it short
  // (--epochs <done> exports the best weights so far without training further); and an explicit
  // number of sampled negatives (a later stage of a run may sample more).
  if (resumed) {
    Object.assign(hyper, resumed.extra.hyper as Hyper);
    if (options.epochs !== undefined) hyper.epochs = options.epochs;
    if (options.negatives !== undefined) hyper.negatives = options.negatives;
    // The recency stage runs after the checkpointed epochs: it may be added or changed on resume.
    for (const key of ['recentFraction', 'recentEpochs', 'recentLr'] as const) {
      hyper[key] = options[key] ?? (resumed.extra.hyper as Partial<Hyper>)[key] ?? hyper[key];
    }
  }
  await initNodeBackend(options.backend ?? 'wasm');
  const loaded = await loadDataset(options.dataset, options.data ?? DEFAULT_DATA_DIR);
  const { data } = loaded;
  const dims: ModelDims = {
    items: data.itemIds.length,
    embedding: hyper.dim,
    hidden: hyper.hidden,
    maxSessionLength: hyper.maxLen,
    ...scoringDims(hyper),
  };
  const split = loaded.validationPairs
    ? { fit: data.train, validation: [] }
    : splitValidation(data.train, hyper.valFraction);
  const { validation } = split;
  const fraction = Math.min(1, options.trainFraction ?? 1);
  const fit = split.fit.slice(0, Math.max(1, Math.round(split.fit.length * fraction)));
  const allValidationPairs = loaded.validationPairs ?? prefixPairs(validation);
  log(
    `${data.name}: ${dims.items - 1} items, ${fit.length} train sessions, ` +
      `${allValidationPairs.length} validation / ${loaded.testPairs.length} test cases; ` +
      `d=${dims.embedding} h=${dims.hidden} ` +
      `L=${dims.maxSessionLength}, ${hyper.epochs} epochs, batch ${hyper.batch}, lr ${hyper.lr}, ` +
      `loss ${hyper.loss} (${hyper.negatives} negatives, alpha ${hyper.alpha}, logQ ${hyper.logQ}), ` +
      `dropout ${hyper.dropout}, ${hyper.schedule} lr, scoring ` +
      (dims.scoring ? JSON.stringify(dims.scoring) : 'dot') +
      (resumed ? `; resuming at step ${resumed.checkpoint.step}` : ''),
  );

  const model = resumed
    ? SessionModel.fromFlat(dims, resumed.checkpoint.weights)
    : SessionModel.random(dims, hyper.seed);
  try {
    const sessions = fit.map((items) => ({ items }));
    const validationPairs = evenlySpaced(allValidationPairs, MAX_VALIDATION_PAIRS);
    const perEpoch = batchesPerEpoch(
      toWindows(sessions, dims.maxSessionLength).length,
      hyper.batch,
    );
    const bar = options.quiet
      ? null
      : new cliProgress.SingleBar(
          {
            format:
              'train |{bar}| {percentage}% | epoch {epoch}/{epochs} | loss {loss} | val {val} | ' +
              '{speed} ex/s | ETA {eta_formatted}',
            hideCursor: true,
            // Length-bucketed batches vary a lot in cost: average the ETA over many steps.
            etaBuffer: 100,
          },
          cliProgress.Presets.shades_classic,
        );
    const payload = { epoch: 1, epochs: hyper.epochs, loss: '-', speed: '-', val: '-' };
    const startStep = resumed?.checkpoint.step ?? 0;
    bar?.start(perEpoch * hyper.epochs, startStep, payload);
    const started = performance.now();
    let examples = 0;
    let smoothLoss = NaN;
    let trainSeconds = 0;
    let validationSeconds = 0;
    const epochLines: string[] = [];
    // Without a terminal the bar draws nothing (logs, CI): epoch lines are printed as they come.
    const liveLog = !process.stderr.isTTY;
    const liveLines = { push: (line: string) => log(line) };
    const result: TrainResult = await trainSessions(model, sessions, {
      epochs: hyper.epochs,
      batchSize: hyper.batch,
      learningRate: hyper.lr,
      seed: hyper.seed,
      loss: hyper.loss,
      sampled: { negatives: hyper.negatives, alpha: hyper.alpha, logQ: hyper.logQ },
      patience: hyper.patience,
      dropout: hyper.dropout,
      schedule: hyper.schedule,
      ...(resumed ? { resume: resumed.checkpoint } : {}),
      ...(validationPairs.length > 0
        ? {
            validate: async (m: SessionModel) => {
              const t0 = performance.now();
              const metrics = await evaluateNext(m, validationPairs, [20]);
              validationSeconds += (performance.now() - t0) / 1000;
              return metrics.hr[20]! + metrics.mrr[20]!;
            },
          }
        : {}),
      onEpoch: ({ epoch, meanLoss, validation: score, best }) => {
        if (score !== undefined) bar?.update({ val: score.toFixed(4) });
        (liveLog ? liveLines : epochLines).push(
          `epoch ${epoch + 1}: mean loss ${meanLoss.toFixed(4)}` +
            (score === undefined ? '' : `, validation HR@20+MRR@20 ${score.toFixed(4)}`) +
            (best ? ' (best)' : '') +
            `, ${((performance.now() - started) / 1000).toFixed(0)} s`,
        );
      },
      ...(options.checkpointDir
        ? {
            checkpointEvery: options.checkpointEvery,
            onCheckpoint: (checkpoint: TrainCheckpoint) =>
              saveCheckpoint(options.checkpointDir!, dims, checkpoint, {
                dataset: options.dataset,
                hyper,
              }),
          }
        : {}),
      onStep: ({ step, epoch, loss, examples: n }) => {
        examples += n;
        smoothLoss = Number.isNaN(smoothLoss) ? loss : 0.95 * smoothLoss + 0.05 * loss;
        const seconds = (performance.now() - started) / 1000 - validationSeconds;
        trainSeconds = seconds;
        bar?.update(step, {
          epoch: epoch + 1,
          epochs: hyper.epochs,
          loss: smoothLoss.toFixed(3),
          speed: (examples / seconds).toFixed(0),
        });
      },
    });
    bar?.stop();
    epochLines.forEach((line) => log(line));
    const recent = loaded.validationPairs ? [] : newestShare(data.train, hyper.recentFraction);
    if (recent.length > 0) {
      const stageStarted = performance.now();
      const popularity = new Float64Array(dims.items);
      for (const session of data.train) for (const item of session) popularity[item]! += 1;
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
      examples += stage.examples;
      trainSeconds += (performance.now() - stageStarted) / 1000;
      log(
        `recency stage: ${stage.epochsDone} epochs over the newest ${recent.length} training ` +
          `sessions (validation split included) at lr ${hyper.recentLr}, mean loss ` +
          `${stage.meanLoss.toFixed(3)}, ${((performance.now() - stageStarted) / 1000).toFixed(1)} s`,
      );
    }
    const seconds = (performance.now() - started) / 1000;
    const examplesPerSecond = examples / Math.max(trainSeconds, 1e-9);
    log(
      `trained ${result.steps} steps, ${examples} examples in ${seconds.toFixed(1)} s ` +
        `(${validationSeconds.toFixed(1)} s of it validating; ${examplesPerSecond.toFixed(0)} ex/s, ` +
        `${(trainSeconds / Math.max(result.epochsDone, 1)).toFixed(1)} s/epoch), ` +
        `mean loss ${result.meanLoss.toFixed(3)}` +
        (result.bestEpoch >= 0
          ? `; best epoch ${result.bestEpoch + 1}${result.stoppedEarly ? ' (stopped early)' : ''}`
          : ''),
    );

    const pairs = loaded.testPairs;
    const modelMetrics = await evaluateNext(model, pairs, [5, 10, 20]);
    const pop = evaluatePopularity(data.popularity, pairs, [5, 10, 20]);
    log(formatTable(pairs.length, modelMetrics, pop));

    const hr20 = modelMetrics.hr[20]!;
    const mrr20 = modelMetrics.mrr[20]!;
    const exported = await exportModel(options.out, model, {
      // model.dims carries dims.scoring into the manifest.
      itemIds: data.itemIds,
      popular: Array.from(
        { length: Math.min(POPULAR_IN_MANIFEST, dims.items - 1) },
        (_, i) => i + 1,
      ),
      // Cold start's recency list: what trended in the newest training sessions. Session datasets
      // are in time order; leave-one-out user sequences have no global order, so none there.
      ...(loaded.validationPairs ? {} : { recent: trendingItems(data.train) }),
      version: 1,
      training: {
        dataset: data.name,
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
        scoring: dims.scoring ? JSON.stringify(dims.scoring) : 'dot',
        validationSessions: validation.length,
        recentSessions: recent.length,
        recentEpochs: recent.length > 0 ? hyper.recentEpochs : 0,
        recentLr: hyper.recentLr,
        validationPairs: allValidationPairs.length,
        examples: result.examples,
        seconds: Number(seconds.toFixed(1)),
        testPairs: pairs.length,
        hr20: Number(hr20.toFixed(4)),
        mrr20: Number(mrr20.toFixed(4)),
        popHr20: Number(pop.hr[20]!.toFixed(4)),
        popMrr20: Number(pop.mrr[20]!.toFixed(4)),
      },
    });
    log(
      `wrote ${exported.manifestPath} (weights ${(exported.weightsBytes / 1024).toFixed(0)} KiB float32, ` +
        `${(exported.weightsF16Bytes / 1024).toFixed(0)} KiB float16)`,
    );
    return {
      dir: options.out,
      hr20,
      mrr20,
      seconds,
      model: modelMetrics,
      pop,
      examplesPerSecond,
    };
  } finally {
    model.dispose();
  }
}

/** A small fixed-width table of model vs POP metrics. */
export function formatTable(pairs: number, model: RankingMetrics, pop: RankingMetrics): string {
  const cols = ['HR@5', 'HR@10', 'HR@20', 'MRR@5', 'MRR@10', 'MRR@20'];
  const row = (name: string, m: RankingMetrics) =>
    [
      name.padEnd(8),
      ...[5, 10, 20].map((k) => m.hr[k]!.toFixed(4).padStart(7)),
      ...[5, 10, 20].map((k) => m.mrr[k]!.toFixed(4).padStart(7)),
    ].join(' ');
  return [
    `test: ${pairs} next-item cases, full-catalogue ranking`,
    ['', ...cols].map((c, i) => (i === 0 ? ''.padEnd(8) : c.padStart(7))).join(' '),
    row('model', model),
    row('POP', pop),
  ].join('\n');
}

function isDatasetName(name: string): name is DatasetName {
  return (DATASETS as readonly string[]).includes(name);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: DEFAULT_DATA_DIR },
      dataset: { type: 'string', default: 'yoochoose-rsc15-100k' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      dim: { type: 'string' },
      hidden: { type: 'string' },
      'max-len': { type: 'string' },
      seed: { type: 'string' },
      loss: { type: 'string' },
      negatives: { type: 'string' },
      alpha: { type: 'string' },
      logq: { type: 'string' },
      'val-fraction': { type: 'string' },
      patience: { type: 'string' },
      dropout: { type: 'string' },
      schedule: { type: 'string' },
      normalize: { type: 'string' },
      scale: { type: 'string' },
      'last-item': { type: 'string' },
      'item-mean': { type: 'string' },
      repeat: { type: 'string' },
      'train-fraction': { type: 'string' },
      'recent-fraction': { type: 'string' },
      'recent-epochs': { type: 'string' },
      'recent-lr': { type: 'string' },
      'checkpoint-dir': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      resume: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const loss = values.loss;
  if (loss !== undefined && loss !== 'auto' && loss !== 'full' && loss !== 'sampled') {
    throw new Error('--loss auto|full|sampled');
  }
  const flag = (name: string, text: string | undefined): boolean | undefined => {
    if (text !== undefined && text !== 'true' && text !== 'false') {
      throw new Error(`--${name} true|false`);
    }
    return text === undefined ? undefined : text === 'true';
  };
  const schedule = values.schedule;
  if (schedule !== undefined && schedule !== 'constant' && schedule !== 'linear') {
    throw new Error('--schedule constant|linear');
  }
  if (values.resume && !values['checkpoint-dir'])
    throw new Error('--resume needs --checkpoint-dir');
  const dataset = values.dataset!;
  if (!isDatasetName(dataset)) throw new Error(`--dataset must be one of ${DATASETS.join(', ')}`);
  if (!values.out) throw new Error('--out <model-dir> is required');
  if (values.backend !== 'wasm' && values.backend !== 'cpu') throw new Error('--backend wasm|cpu');
  const num = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`--${flag} must be a positive number`);
    return value;
  };
  const int = (flag: string, text: string | undefined): number | undefined => {
    const value = num(flag, text);
    if (value !== undefined && !Number.isInteger(value))
      throw new Error(`--${flag} must be an integer`);
    return value;
  };
  const recentFraction = values['recent-fraction'];
  if (
    recentFraction !== undefined &&
    !(Number(recentFraction) >= 0 && Number(recentFraction) <= 1)
  ) {
    throw new Error('--recent-fraction must be a number in 0..1');
  }
  await trainAndExport({
    dataset,
    out: resolve(values.out),
    data: resolve(values.data!),
    backend: values.backend,
    epochs: int('epochs', values.epochs),
    batch: int('batch', values.batch),
    lr: num('lr', values.lr),
    dim: int('dim', values.dim),
    hidden: int('hidden', values.hidden),
    maxLen: int('max-len', values['max-len']),
    seed: values.seed === undefined ? undefined : Number(values.seed),
    loss,
    negatives: int('negatives', values.negatives),
    // alpha 0 (uniform sampling) and val-fraction 0 (no early stopping) are meaningful: not num().
    alpha: values.alpha === undefined ? undefined : Number(values.alpha),
    logQ: flag('logq', values.logq),
    normalize: flag('normalize', values.normalize),
    scale: num('scale', values.scale),
    lastItem: flag('last-item', values['last-item']),
    repeat: flag('repeat', values.repeat),
    itemMean: values['item-mean'] === undefined ? undefined : Number(values['item-mean']),
    valFraction: values['val-fraction'] === undefined ? undefined : Number(values['val-fraction']),
    patience: int('patience', values.patience),
    dropout: values.dropout === undefined ? undefined : Number(values.dropout),
    schedule,
    trainFraction: num('train-fraction', values['train-fraction']),
    // 0 turns the recency stage off: not num().
    recentFraction:
      values['recent-fraction'] === undefined ? undefined : Number(values['recent-fraction']),
    recentEpochs: int('recent-epochs', values['recent-epochs']),
    recentLr: num('recent-lr', values['recent-lr']),
    checkpointDir: values['checkpoint-dir'] ? resolve(values['checkpoint-dir']) : undefined,
    checkpointEvery: int('checkpoint-every', values['checkpoint-every']),
    resume: values.resume,
  });
}

const entry = process.argv[1];
if (entry && realpathSync(resolve(entry)) === realpathSync(fileURLToPath(import.meta.url))) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
