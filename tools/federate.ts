/**
 * `npm run federate`: does the federated loop learn, and what does privacy cost? Simulates a
 * population of devices made from a dataset (tools/federate/population.ts) through the devices' and
 * the server's own code (tools/federate/rounds.ts), and prints HR@20 / MRR@20 (full ranking, the
 * eval code), epsilon at delta, and bytes per participating device every few rounds.
 *
 *   npm run federate -- --dataset <name> --scenario new|seed|central --rounds <n> --json <file>
 *     [--data <dir>] [--sample-rate <q>] [--noise <z> | --epsilon <target>] [--clip <S>, default 1e9]
 *     [--delta 1e-6] [--seed 1] [--accountant rdp|pld] (pld: --epsilon's noise and the epsilon
 *     rows by the privacy loss distribution, protocol/privacy/pld.ts, tighter than the server's RDP
 *     ledger; Gaussian noise only, so not with --secure on)
 *     [--rows <per round> | --rows full] [--row-choice window|bias|held]
 *     [--item-sketch <buckets>] (with --rows full: the devices send their item rows as a count
 *     sketch of that many buckets, drawn afresh each round: protocol/item-sketch.ts; each device
 *     clips its sketch, summed or not) [--sketch-depth <k>] (k tables of
 *     that many buckets; each row read as the shrunk mean of its k readings)
 *     [--sketch-dense-stride <k>] (the sketch carries one in k of the dense values, drawn per
 *     round, the rest read as zero; a device clips by the values it sends, summed or not)
 *     [--round-window off|on] [--count-noise 10] [--window-min <m>] (on: each round is a round
 *     window of the server, server/round-windows.ts: it publishes only if its count plus
 *     N(0, count-noise²) reaches m, as the mean over that noised count, and is charged at the
 *     combined multiplier either way; m defaults to two standard deviations of that count below
 *     q n, run.ts windowGate)
 *     [--sketch-gate off|held|count-min] (held: a sketch's rows no device of the round holds read as
 *     zero; with --row-choice held, the rows held most: both from the round's item histogram, which
 *     the server has no way to learn yet, tools/federate/held.ts; count-min: the rows whose every
 *     bucket of a count-min sketch of that histogram is filled, [--gate-buckets 16384]
 *     [--gate-depth 2]; with [--gate-noise <σ> --gate-cap <K>] each device counts its last K
 *     items, every bucket takes N(0, σ²), a row is kept when its buckets reach
 *     [--gate-threshold 2] σ, and each round is charged with its gate as one Gaussian mechanism)
 *     [--stale <share> [--max-staleness 2] [--stale-layout newest|carried]] (that share of each
 *     round's devices trained on a version 1 to s behind, and send in the round's layout, as the
 *     worker does, or in their version's, carried over by fitUpdate as the server carries named
 *     rows (a stale sketch it now refuses); the rate priced is (s + 1) q, as the server prices it)
 *     [--local-steps 1] [--local-optimizer sgd|adam]
 *     [--local-lr 10] [--mu 0]
 *     [--negatives 512] [--negative-alpha 0] [--server-optimizer fedadam|fedavg] [--server-lr <lr>] [--item-lr <lr>] [--server-tau <t>] [--server-item-tau <t>]
 *     [--secure on|off] (on: the server learns each round's sum only, in fixed point with the devices'
 *     Skellam noise, and epsilon is the Skellam accountant's)
 *     [--eval-every 25] [--eval-cases 5000] [--eval test|validation] [--checkpoint <dir>]
 *     [--central-model <dir>] [--threads <n, default: one per core>] [--per-device on|off]
 *     [--update-dtype float16|int8|int4|int2] (int8 / int4 / int2: block-scaled, stochastically
 *     rounded bodies; needs --per-device on)
 *     [--new-items <fraction> [--new-items-at <round>] [--new-items-dated on|off]] (the newest items, by first appearance, held
 *     out of the starting model and added to the catalogue after that round: tools/federate/new-items.ts)
 *
 * 'seed' first trains centrally on the oldest 10% of the training sessions (the dataset's trainer
 * defaults; cached under .hearth/federate/), then federates over the rest; 'new' starts from
 * random weights with every training session a device; 'central' trains on all of them (or loads
 * --central-model) and measures once. `--eval validation` holds out the newest 5% of training
 * sessions and measures on them: settings are chosen there, never on the test split.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { SessionModel } from '../model/session-model.js';
import { MAX_DENSE_STRIDE, type ModelDims } from '../protocol/manifest.js';
import { setLogLevel } from '../protocol/logger.js';
import {
  DEFAULT_DATA_DIR,
  loadDataset,
  parseDatasetName,
  type DatasetName,
} from './data/datasets.js';
import { oneOf, positiveInteger, positiveNumber } from './lib/args.js';
import { DEVICE_UPDATE_DTYPES } from '../protocol/update-format.js';
import { isEntryPoint, runMain } from './lib/entry.js';
import { progressBar } from './lib/progress.js';
import { loadModel } from './model-io.js';
import { noiseForEpsilon, noiseForWindows } from './federate/calibrate.js';
import { effectiveSampleRate } from '../server/privacy.js';
import { DEFAULT_CONFIG } from '../server/config.js';
import { bytesOf, readFloats } from './federate/checkpoint.js';
import { devicePool } from './federate/device-pool.js';
import { newItemsPlan } from './federate/new-items.js';
import { populationOf, SCENARIOS } from './federate/population.js';
import { markdownReport, type FederateRow } from './federate/report.js';
import {
  gateMultiplier,
  runFederation,
  runLabel,
  type RunSettings,
  type SketchCountMinGate,
} from './federate/run.js';
import { initNodeBackend } from './tf-node.js';
import { DEFAULTS, modelDims } from './train/defaults.js';
import { mainEpochs } from './train/epochs.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const OPTIONS = {
  data: { type: 'string', default: DEFAULT_DATA_DIR },
  dataset: { type: 'string', default: 'yoochoose-rsc15-100k' },
  scenario: { type: 'string', default: 'seed' },
  rounds: { type: 'string', default: '100' },
  'sample-rate': { type: 'string', default: '0.01' },
  noise: { type: 'string', default: '0' },
  epsilon: { type: 'string' },
  accountant: { type: 'string', default: 'rdp' },
  // No clipping unless asked: the measured non-private runs; with noise, choose S near the median
  // update norm the run prints.
  clip: { type: 'string', default: '1e9' },
  delta: { type: 'string', default: '1e-6' },
  seed: { type: 'string', default: '1' },
  rows: { type: 'string', default: '512' },
  'row-choice': { type: 'string', default: 'window' },
  'item-sketch': { type: 'string' },
  'sketch-depth': { type: 'string' },
  'sketch-dense-stride': { type: 'string' },
  'sketch-gate': { type: 'string', default: 'off' },
  'gate-buckets': { type: 'string', default: '16384' },
  'gate-depth': { type: 'string', default: '2' },
  'gate-noise': { type: 'string', default: '0' },
  'gate-cap': { type: 'string' },
  'gate-threshold': { type: 'string', default: '2' },
  'round-window': { type: 'string', default: 'off' },
  'count-noise': { type: 'string', default: '10' },
  'window-min': { type: 'string' },
  stale: { type: 'string', default: '0' },
  'max-staleness': { type: 'string', default: String(DEFAULT_CONFIG.maxStaleness) },
  'stale-layout': { type: 'string', default: 'newest' },
  'local-steps': { type: 'string', default: '1' },
  'local-optimizer': { type: 'string', default: 'sgd' },
  'local-lr': { type: 'string', default: '10' },
  mu: { type: 'string', default: '0' },
  negatives: { type: 'string', default: '512' },
  'negative-alpha': { type: 'string', default: '0' },
  'server-optimizer': { type: 'string', default: 'fedadam' },
  'server-lr': { type: 'string', default: '0.01' },
  'item-lr': { type: 'string' },
  'server-tau': { type: 'string' },
  'server-item-tau': { type: 'string' },
  secure: { type: 'string', default: 'off' },
  'per-device': { type: 'string', default: 'off' },
  'update-dtype': { type: 'string', default: 'float16' },
  'eval-every': { type: 'string', default: '25' },
  'eval-cases': { type: 'string', default: '5000' },
  eval: { type: 'string', default: 'test' },
  checkpoint: { type: 'string' },
  threads: { type: 'string' },
  'central-model': { type: 'string' },
  'new-items': { type: 'string' },
  'new-items-at': { type: 'string' },
  'new-items-dated': { type: 'string', default: 'on' },
  json: { type: 'string' },
} as const;

/** Parses the flags into run settings (throws a clear message on a bad one). */
export function settingsFrom(values: Record<string, string | undefined>): RunSettings {
  const nonNegative = (flag: string) => {
    const x = Number(values[flag]);
    if (!(x >= 0) || !Number.isFinite(x)) throw new Error(`--${flag} must be a number >= 0`);
    return x;
  };
  const q = Number(values['sample-rate']);
  if (!(q > 0 && q <= 1)) throw new Error('--sample-rate must be in (0, 1]');
  const rounds = values.scenario === 'central' ? 0 : positiveInteger('rounds', values.rounds!);
  const perDevice = oneOf('per-device', values['per-device']!, ['on', 'off'] as const) === 'on';
  const secure = oneOf('secure', values.secure!, ['on', 'off'] as const) === 'on';
  const updateDtype = oneOf(
    'update-dtype',
    values['update-dtype'] ?? 'float16',
    DEVICE_UPDATE_DTYPES,
  );
  // A rounded body exists only where one is formed: the summed path never forms one, and a secure
  // round's input is its own fixed point.
  if (updateDtype !== 'float16' && (!perDevice || secure)) {
    throw new Error(`--update-dtype ${updateDtype} needs --per-device on and --secure off`);
  }
  const delta = positiveNumber('delta', values.delta!);
  const accountant = oneOf('accountant', values.accountant!, ['rdp', 'pld'] as const);
  // The PLD prices the server's Gaussian noise; a secure round's Skellam noise has its RDP bound only.
  if (accountant === 'pld' && secure) throw new Error('--accountant pld needs --secure off');
  const itemSketch =
    values['item-sketch'] === undefined
      ? undefined
      : positiveInteger('item-sketch', values['item-sketch']);
  const windowed = oneOf('round-window', values['round-window'] ?? 'off', ['on', 'off'] as const);
  const countNoise = positiveNumber('count-noise', values['count-noise'] ?? '10');
  // Round windows are plaintext rounds (server/config.ts checkWindows).
  if (windowed === 'on' && secure) throw new Error('--round-window on needs --secure off');
  const gated = oneOf('sketch-gate', values['sketch-gate'] ?? 'off', [
    'off',
    'held',
    'count-min',
  ] as const);
  const gate = gated === 'count-min' ? countMinGateOf(values) : undefined;
  if (gate && gate.noise > 0 && (secure || windowed === 'on')) {
    throw new Error('--gate-noise needs --secure off and --round-window off');
  }
  const stale = staleFrom(values);
  if (
    stale &&
    (secure || windowed === 'on' || gated !== 'off' || values['row-choice'] === 'held')
  ) {
    throw new Error(
      '--stale needs --secure off, --round-window off, --sketch-gate off and no --row-choice held',
    );
  }
  if (stale && values['new-items'] !== undefined) throw new Error('--stale needs no --new-items');
  // With stale updates taken, the server's rate is (s + 1) q (server/privacy.ts).
  const rate = effectiveSampleRate(q, stale?.maxStaleness ?? 0);
  // --epsilon: the noise that spends exactly that over the run's rounds, from the accountant; with
  // windows (or a noised gate), the noise on the sum whose multiplier combined with the count's
  // (or the gate's) spends it.
  const combined =
    values.epsilon === undefined
      ? undefined
      : noiseForEpsilon(positiveNumber('epsilon', values.epsilon), rate, rounds, delta, accountant);
  const noise =
    combined === undefined
      ? nonNegative('noise')
      : windowed === 'on'
        ? noiseForWindows(combined, countNoise)
        : gate && gate.noise > 0
          ? noiseForWindows(combined, gateMultiplier(gate))
          : combined;
  // The devices' sketch comes from the full update; each device, summed or not, clips its sketch.
  if (itemSketch !== undefined && values.rows !== 'full') {
    throw new Error('--item-sketch needs --rows full');
  }
  const sketchDepth =
    values['sketch-depth'] === undefined
      ? 1
      : positiveInteger('sketch-depth', values['sketch-depth']);
  if (sketchDepth > 1 && itemSketch === undefined)
    throw new Error('--sketch-depth needs --item-sketch');
  const sketchDenseStride =
    values['sketch-dense-stride'] === undefined
      ? 1
      : positiveInteger('sketch-dense-stride', values['sketch-dense-stride']);
  if (sketchDenseStride > MAX_DENSE_STRIDE)
    throw new Error(`--sketch-dense-stride: at most ${MAX_DENSE_STRIDE}`);
  if (sketchDenseStride > 1 && itemSketch === undefined)
    throw new Error('--sketch-dense-stride needs --item-sketch');
  if (gated !== 'off' && itemSketch === undefined)
    throw new Error('--sketch-gate needs --item-sketch');
  return {
    scenario: oneOf('scenario', values.scenario!, SCENARIOS),
    rounds,
    sampleRate: q,
    // Rounded up, so the run never spends more than the target.
    noise: Math.ceil(noise * 1e4) / 1e4,
    clip: positiveNumber('clip', values.clip!),
    delta,
    ...(accountant === 'pld' ? { accountant } : {}),
    seed: nonNegative('seed'),
    rowsPerRound: values.rows === 'full' ? null : Math.floor(nonNegative('rows')),
    rowChoice: oneOf('row-choice', values['row-choice']!, ['window', 'bias', 'held'] as const),
    ...(itemSketch === undefined ? {} : { itemSketch }),
    ...(gated === 'held' ? { sketchGate: 'held' as const } : {}),
    ...(gate ? { sketchGate: gate } : {}),
    ...(windowed === 'on'
      ? {
          roundWindow: {
            countNoise,
            ...(values['window-min'] === undefined
              ? {}
              : { minCohort: positiveInteger('window-min', values['window-min']) }),
          },
        }
      : {}),
    ...(sketchDepth > 1 ? { sketchDepth } : {}),
    ...(sketchDenseStride > 1 ? { sketchDenseStride } : {}),
    local: {
      steps: positiveInteger('local-steps', values['local-steps']!),
      learningRate: positiveNumber('local-lr', values['local-lr']!),
      mu: nonNegative('mu'),
      negatives: positiveInteger('negatives', values.negatives!),
      negativeAlpha: nonNegative('negative-alpha'),
      optimizer: oneOf('local-optimizer', values['local-optimizer']!, ['sgd', 'adam'] as const),
    },
    serverOptimizer: oneOf('server-optimizer', values['server-optimizer']!, [
      'fedadam',
      'fedavg',
    ] as const),
    serverLearningRate: positiveNumber('server-lr', values['server-lr']!),
    serverTau:
      values['server-tau'] === undefined
        ? null
        : positiveNumber('server-tau', values['server-tau']),
    serverItemTau:
      values['server-item-tau'] === undefined
        ? null
        : positiveNumber('server-item-tau', values['server-item-tau']),
    itemLearningRate:
      values['item-lr'] === undefined ? null : positiveNumber('item-lr', values['item-lr']),
    perDevice,
    updateDtype,
    secure,
    evalEvery: positiveInteger('eval-every', values['eval-every']!),
    evalCases: positiveInteger('eval-cases', values['eval-cases']!),
    ...(values['new-items'] === undefined ? {} : { newItems: newItemsFrom(values, rounds) }),
    ...(stale ? { stale } : {}),
  };
}

/**
 * `--stale <share>` (0 to 1; 0, the default: nothing stale), `--max-staleness <s>` (the server's
 * default 2; at most 8 here, since the run keeps a copy of the weights of each of those versions)
 * and `--stale-layout newest|carried` (RunSettings stale).
 */
function staleFrom(values: Record<string, string | undefined>): RunSettings['stale'] {
  const share = Number(values.stale ?? '0');
  if (!(share >= 0 && share <= 1)) throw new Error('--stale must be a share from 0 to 1');
  if (share === 0) return undefined;
  const maxStaleness = positiveInteger(
    'max-staleness',
    values['max-staleness'] ?? String(DEFAULT_CONFIG.maxStaleness),
  );
  if (maxStaleness > 8) throw new Error('--max-staleness: at most 8');
  const layout = oneOf('stale-layout', values['stale-layout'] ?? 'newest', [
    'newest',
    'carried',
  ] as const);
  return { share, maxStaleness, layout };
}

/**
 * `--sketch-gate count-min`'s gate: its sketch, and with `--gate-noise` its noise, the count a kept
 * row must reach (`--gate-threshold`, in noise standard deviations) and the items each device
 * counts (`--gate-cap`, needed with noise: it bounds what one device moves).
 */
function countMinGateOf(values: Record<string, string | undefined>): SketchCountMinGate {
  const noise = Number(values['gate-noise'] ?? '0');
  if (!(noise >= 0))
    throw new Error(`--gate-noise must be a number >= 0, not ${values['gate-noise']}`);
  if (noise > 0 && values['gate-cap'] === undefined) {
    throw new Error('--gate-noise needs --gate-cap: the items one device counts');
  }
  return {
    buckets: positiveInteger('gate-buckets', values['gate-buckets'] ?? '16384'),
    depth: positiveInteger('gate-depth', values['gate-depth'] ?? '2'),
    noise,
    threshold: noise * positiveNumber('gate-threshold', values['gate-threshold'] ?? '2'),
    cap:
      values['gate-cap'] === undefined ? Infinity : positiveInteger('gate-cap', values['gate-cap']),
  };
}

/** --new-items <fraction in (0, 0.5]> and --new-items-at <round> (default: a quarter of the run). */
function newItemsFrom(
  values: Record<string, string | undefined>,
  rounds: number,
): NonNullable<RunSettings['newItems']> {
  const fraction = Number(values['new-items']);
  if (!(fraction > 0 && fraction <= 0.5)) throw new Error('--new-items must be in (0, 0.5]');
  if (values.scenario === 'central') throw new Error('--new-items needs federated rounds');
  const at =
    values['new-items-at'] === undefined ? Math.floor(rounds / 4) : Number(values['new-items-at']);
  if (!Number.isInteger(at) || at < 0 || at > rounds) {
    throw new Error('--new-items-at must be a round from 0 to --rounds');
  }
  const dated = oneOf('new-items-dated', values['new-items-dated'] ?? 'on', ['on', 'off'] as const);
  return { fraction, at, dated: dated === 'on' };
}

/**
 * Weights trained centrally on `population.central` with the dataset's trainer defaults (no
 * validation split, no recency stage: nothing outside those sessions), cached by what decides them.
 */
export async function centralWeights(
  dataset: DatasetName,
  dims: ModelDims,
  sessions: readonly (readonly number[])[],
  key: string,
): Promise<Float32Array> {
  const file = join(root, '.hearth', 'federate', `${dataset}-${key}.f32`);
  try {
    const weights = await readFloats(file, Float32Array);
    console.log(`central weights from ${file}`);
    return weights;
  } catch {
    // not cached yet
  }
  const hyper = { ...DEFAULTS[dataset], valFraction: 0, recentFraction: 0 };
  const model = SessionModel.random(dims, hyper.seed);
  await mainEpochs(model, sessions as number[][], hyper, {
    validationPairs: [],
    checkpoints: {},
    quiet: false,
    log: (line) => console.log(line),
  });
  const weights = model.toFlat();
  model.dispose();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, bytesOf(weights));
  return weights;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: OPTIONS, strict: true });
  const settings = settingsFrom(values as Record<string, string | undefined>);
  const dataset = parseDatasetName(values.dataset!);
  const evalOn = oneOf('eval', values.eval!, ['test', 'validation'] as const);
  setLogLevel('silent');
  await initNodeBackend('wasm');
  const loaded = await loadDataset(dataset, values.data!);
  const population = populationOf(loaded, settings.scenario, evalOn);
  const plan = settings.newItems
    ? newItemsPlan(loaded.data, population, settings.newItems.fraction, settings.newItems.dated)
    : null;
  // With new items, the model starts without them (new-items.ts).
  const dims = modelDims(plan?.known ?? loaded.data.itemIds.length, DEFAULTS[dataset]);
  console.log(
    `${runLabel(settings)}: ${population.devices.length} devices, ` +
      `${population.central.length} central sessions, ${population.pairs.length} cases (${evalOn})`,
  );
  if (plan) {
    console.log(
      `new items: ${loaded.data.itemIds.length - plan.known} held out of ` +
        `${loaded.data.itemIds.length - 1}, added after round ${settings.newItems!.at}; ` +
        `${plan.newPairs.length} cases have one as their target`,
    );
  }
  let start: Float32Array | null = null;
  if (settings.scenario === 'central' && values['central-model']) {
    const { model } = await loadModel(values['central-model']);
    start = model.toFlat();
    model.dispose();
  } else if (population.central.length > 0) {
    const held = plan ? `-without-newest-${settings.newItems!.fraction}` : '';
    const key = `${settings.scenario}-${evalOn}-${population.central.length}${held}`;
    start = await centralWeights(dataset, dims, plan?.central ?? population.central, key);
  }
  const bar = progressBar({
    format:
      'rounds |{bar}| {value}/{total} | uploads {uploads} | HR@20 {hr} | ε {eps} | ETA {eta_formatted}',
    hideCursor: true,
  });
  bar.start(settings.rounds, 0, { uploads: '-', hr: '-', eps: '-' });
  const threads = values.threads
    ? positiveInteger('threads', values.threads)
    : availableParallelism();
  const pool = threads > 1 ? devicePool(threads) : null;
  // Rounds that published no version: a window whose noised count fell short, or nobody sampled.
  let unpublished = 0;
  const rows: FederateRow[] = await runFederation(
    loaded,
    population,
    dims,
    start,
    settings,
    values.checkpoint ?? null,
    {
      ...(pool ? { runner: (job, devices) => pool.run(job, devices) } : {}),
      onRound: (round, result) => {
        if (!result.published) unpublished++;
        bar.update(round, { uploads: result.uploads });
        if (!process.stdout.isTTY && round % settings.evalEvery === 0) {
          console.log(
            `round ${round}: ${result.uploads} uploads of ${result.uploadBytes} bytes, median ` +
              `norm ${result.medianNorm.toPrecision(3)}, ${(100 * result.clipped).toFixed(0)}% clipped, ` +
              `${unpublished} rounds so far published nothing` +
              (result.gateRows === undefined ? '' : `, the gate kept ${result.gateRows} rows`),
          );
        }
      },
      onMeasure: ({ hr, epsilon }) =>
        bar.update({ hr: hr.toFixed(4), eps: Number.isFinite(epsilon) ? epsilon.toFixed(2) : '∞' }),
    },
    plan,
  );
  bar.stop();
  await pool?.close();
  console.log(markdownReport(rows));
  if (values.json) {
    await mkdir(dirname(resolve(values.json)), { recursive: true });
    await writeFile(values.json, JSON.stringify(rows, null, 1) + '\n');
    console.log(`rows written to ${values.json}`);
  }
}

if (isEntryPoint(import.meta.url)) runMain(main);
