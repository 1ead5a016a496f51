/**
 * `npm run train`: trains the global base model and writes it as a model directory. The flags are
 * in USAGE below (`npm run train -- --help`); the trainer itself is tools/train/.
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
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DATA_DIR, DATASETS, parseDatasetName } from './data/datasets.js';
import { booleanFlag, oneOf, optionalNumber, positiveInteger, positiveNumber } from './lib/args.js';
import { runMain } from './lib/entry.js';
import { isCatalogUrl } from '../server/catalog-source.js';
import { trainAndExport, type Hyper, type TrainAndExportOptions } from './train/index.js';

const USAGE = `Usage: npm run train -- --out <dir> [--data <dir>] [--dataset <${DATASETS.join('|')}>]
                 [--sessions <log.csv|.tsv|.jsonl> [--catalog <file|url>]]
                 [--epochs n] [--batch b] [--lr x] [--dim d] [--hidden h] [--max-len L] [--seed s]
                 [--loss auto|full|sampled] [--negatives n] [--alpha a] [--logq true|false]
                 [--val-fraction f] [--patience p] [--dropout r] [--schedule constant|linear]
                 [--normalize true|false] [--scale s] [--last-item true|false] [--item-mean w]
                 [--repeat true|false] [--train-fraction f] [--recent-fraction f]
                 [--recent-epochs n] [--recent-lr x]
                 [--checkpoint-dir <dir>] [--checkpoint-every steps] [--resume]
                 [--backend wasm|cpu]
Unset hyper-parameters take the dataset's defaults (tools/train/defaults.ts); a site's own log
(--sessions: session or visitor, item, time, optional type) takes Diginetica's, with full softmax
below 20,000 items, and with --catalog the catalogue's ids are the model's items.`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h', default: false },
  data: { type: 'string', default: DEFAULT_DATA_DIR },
  dataset: { type: 'string', default: 'yoochoose-rsc15-100k' },
  out: { type: 'string' },
  sessions: { type: 'string' },
  catalog: { type: 'string' },
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
} as const;

/** The flags as parseArgs hands them over: strings (booleans for --help and --resume). */
function parseFlags(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS }).values;
}

type Values = ReturnType<typeof parseFlags>;

/** The flags that are not hyper-parameters: dataset, directories, backend, checkpoints. */
function runFlags(values: Values): Omit<TrainAndExportOptions, keyof Hyper> {
  if (values.resume && !values['checkpoint-dir']) {
    throw new Error('--resume needs --checkpoint-dir');
  }
  if (!values.out) throw new Error('--out <model-dir> is required');
  if (values.catalog && !values.sessions) throw new Error('--catalog goes with --sessions');
  // A site's log is session data: Diginetica's defaults, full softmax while the catalogue is small.
  const dataset = values.sessions ? 'diginetica' : parseDatasetName(values.dataset);
  return {
    dataset,
    ...(values.sessions ? { sessions: resolve(values.sessions) } : {}),
    ...(values.catalog
      ? { catalog: isCatalogUrl(values.catalog) ? values.catalog : resolve(values.catalog) }
      : {}),
    out: resolve(values.out),
    data: resolve(values.data),
    backend: oneOf('backend', values.backend, ['wasm', 'cpu']),
    trainFraction: positiveNumber('train-fraction', values['train-fraction']),
    checkpointDir: values['checkpoint-dir'] ? resolve(values['checkpoint-dir']) : undefined,
    checkpointEvery: positiveInteger('checkpoint-every', values['checkpoint-every']),
    resume: values.resume,
  };
}

/** The hyper-parameter flags; unset ones stay undefined and take the dataset's defaults. */
function hyperFlags(values: Values): Partial<Hyper> {
  const recentFraction = optionalNumber(values['recent-fraction']);
  if (recentFraction !== undefined && !(recentFraction >= 0 && recentFraction <= 1)) {
    throw new Error('--recent-fraction must be a number in 0..1');
  }
  return {
    epochs: positiveInteger('epochs', values.epochs),
    batch: positiveInteger('batch', values.batch),
    lr: positiveNumber('lr', values.lr),
    dim: positiveInteger('dim', values.dim),
    hidden: positiveInteger('hidden', values.hidden),
    maxLen: positiveInteger('max-len', values['max-len']),
    seed: optionalNumber(values.seed),
    loss: oneOf('loss', values.loss, ['auto', 'full', 'sampled']),
    negatives: positiveInteger('negatives', values.negatives),
    // alpha 0 (uniform sampling) and val-fraction 0 (no early stopping) are meaningful: not positive.
    alpha: optionalNumber(values.alpha),
    logQ: booleanFlag('logq', values.logq),
    normalize: booleanFlag('normalize', values.normalize),
    scale: positiveNumber('scale', values.scale),
    lastItem: booleanFlag('last-item', values['last-item']),
    repeat: booleanFlag('repeat', values.repeat),
    itemMean: optionalNumber(values['item-mean']),
    valFraction: optionalNumber(values['val-fraction']),
    patience: positiveInteger('patience', values.patience),
    dropout: optionalNumber(values.dropout),
    schedule: oneOf('schedule', values.schedule, ['constant', 'linear']),
    // 0 turns the recency stage off: not positive.
    recentFraction,
    recentEpochs: positiveInteger('recent-epochs', values['recent-epochs']),
    recentLr: positiveNumber('recent-lr', values['recent-lr']),
  };
}

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2));
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const hyper = hyperFlags(values);
  // Diginetica's sampled softmax suits 43,000 items; a site's log picks by its catalogue's size.
  if (values.sessions) hyper.loss ??= 'auto';
  await trainAndExport({ ...hyper, ...runFlags(values) });
}

runMain(main);
