/**
 * `npm run simulate`: does learning on the device help? Replays held-out visitors through the
 * worker's engine (tools/simulate/replay.ts) with online learning off and on, and reports HR@10 and
 * NDCG@10 of every next item (full-catalogue ranking, the item ranked before the engine sees it).
 *
 *   npm run simulate -- [--data <dir>] [--datasets amazon-beauty,yoochoose-rsc15-100k]
 *                       [--users 1000] [--tune-users 1000] [--subset report|tune] [--seed 1]
 *                       [--modes off,on] [--visit 0] [--json <file>] [--beauty-model <dir>]
 *                       [--yoochoose-model <dir>] [--online key=value,...] [--local key=value,...]
 *
 * Amazon Beauty: users are split 80/20 (seeded); the global model trains on the 80% (trained here on
 * first use, cached under .hearth/simulate/) and the 20% are replayed. YOOCHOOSE 100k: the global
 * model is trained on the training days (`--yoochoose-model`, default the `npm start` model), and the
 * test day's sessions are replayed. In both, the replayed visitors are shuffled (seeded) and the first
 * `--tune-users` are a tuning set, kept apart from the `--users` reported ones: `--subset tune` runs
 * the tuning set. `--online` / `--local` give the replay engines settings over ONLINE_LEARNING /
 * LOCAL_TRAINING for tuning (numbers; the train* and other switches take true / false or 1 / 0).
 * `--visit n` replays each history as visits of n items a day apart (a returning visitor, the LSTM
 * state reset every visit) instead of one session; the first item of a visit is not ranked.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { setLogLevel } from '../protocol/logger.js';
import { markdownTable } from './lib/table.js';
import { LOCAL_TRAINING, localTrainingSettings } from '../worker/local-training.js';
import { mulberry32, shuffleInPlace } from '../protocol/prng.js';
import { ONLINE_LEARNING, onlineLearningSettings } from '../worker/online-learning.js';
import { loadYoochoose } from './data/yoochoose.js';
import { beautyModel, splitBeauty } from './simulate/beauty.js';
import { hitAndNdcg, pairedChange, Replayer, serveModel, type Visitor } from './simulate/replay.js';
import { initNodeBackend } from './tf-node.js';
import { DEFAULT_DATA_DIR } from './data/datasets.js';
import { trainAndExport } from './train/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: DEFAULT_DATA_DIR },
    datasets: { type: 'string', default: 'amazon-beauty,yoochoose-rsc15-100k' },
    users: { type: 'string', default: '1000' },
    'tune-users': { type: 'string', default: '1000' },
    subset: { type: 'string', default: 'report' },
    seed: { type: 'string', default: '1' },
    modes: { type: 'string', default: 'off,on' },
    visit: { type: 'string', default: '0' },
    json: { type: 'string' },
    'beauty-model': { type: 'string' },
    'yoochoose-model': { type: 'string' },
    online: { type: 'string', default: '' },
    local: { type: 'string', default: '' },
  },
});
const seed = Number(values.seed);
const visit = Number(values.visit);
const users = Number(values.users);
const tuneUsers = Number(values['tune-users']);
const subset = values.subset;
if (subset !== 'report' && subset !== 'tune') throw new Error('--subset is report or tune');
const modes = values.modes.split(',').map((m) => {
  if (m !== 'on' && m !== 'off') throw new Error(`--modes takes on and off, not ${m}`);
  return m;
});

/** `text` as a setting of the type of `like` (a number, or a switch); undefined if it is none. */
function parseSetting(like: unknown, text: string): number | boolean | undefined {
  if (typeof like === 'boolean') {
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    return undefined;
  }
  const value = Number(text);
  return text !== '' && Number.isFinite(value) ? value : undefined;
}

/** `key=value,...` as settings over `defaults`: known keys only, each of its default's type. */
function overrides<T extends object>(defaults: T, spec: string, flag: string): Partial<T> {
  const known = new Map<string, unknown>(Object.entries(defaults));
  const given: Record<string, number | boolean> = {};
  for (const pair of spec.split(',').filter(Boolean)) {
    const [key = '', text = ''] = pair.split('=');
    const value = known.has(key) ? parseSetting(known.get(key), text) : undefined;
    if (value === undefined) {
      throw new Error(`${flag} ${pair}: expected one of ${[...known.keys()].join(', ')}=<value>`);
    }
    given[key] = value;
  }
  return given as Partial<T>;
}

/** What the replay engines learn with: these over the engine's defaults. */
const settings = {
  learning: overrides(ONLINE_LEARNING, values.online, '--online'),
  localTraining: overrides(LOCAL_TRAINING, values.local, '--local'),
};
/** The same settings in full, as reported. */
const online = onlineLearningSettings(settings.learning);
const local = localTrainingSettings(settings.localTraining);

/** The replayed visitors of one dataset and the model directory that never saw them. */
interface Workload {
  readonly dataset: string;
  readonly modelDir: string;
  readonly visitors: Visitor[];
}

/** The tuning set is the first `tuneUsers` of the shuffled visitors, the reported set follows. */
function pick<T>(all: T[]): T[] {
  shuffleInPlace(all, mulberry32(seed ^ 0x9e3779b9));
  return subset === 'tune' ? all.slice(0, tuneUsers) : all.slice(tuneUsers, tuneUsers + users);
}

async function beautyWorkload(): Promise<Workload> {
  const split = await splitBeauty(values.data, seed);
  const dir = values['beauty-model'] ?? join(root, '.hearth', 'simulate', `amazon-beauty-${seed}`);
  const modelDir = await beautyModel(split, dir, seed, (m) =>
    console.log(
      `Beauty global model, held-out users' last item: HR@10 ${m.hr[10]!.toFixed(4)}` +
        ` (${m.count} users)`,
    ),
  );
  const ids = split.itemIds;
  const visitors = pick(split.heldOut).map((s): Visitor => ({
    items: s.map((i) => ids[i]!),
    type: 'purchase',
  }));
  return { dataset: 'amazon-beauty', modelDir, visitors };
}

async function yoochooseWorkload(): Promise<Workload> {
  const data = await loadYoochoose(values.data);
  let modelDir = values['yoochoose-model'] ?? join(root, '.hearth', 'models', 'default');
  if (!existsSync(join(modelDir, 'manifest.json'))) {
    modelDir = join(root, '.hearth', 'simulate', 'yoochoose-rsc15-100k');
    if (!existsSync(join(modelDir, 'manifest.json'))) {
      await trainAndExport({ dataset: 'yoochoose-rsc15-100k', data: values.data, out: modelDir });
    }
  }
  const visitors = pick(data.test).map((s): Visitor => ({
    items: s.map((i) => data.itemIds[i]!),
    type: 'click',
  }));
  return { dataset: 'yoochoose-rsc15-100k', modelDir, visitors };
}

/** One reported line. */
interface Row {
  dataset: string;
  subset: string;
  learning: string;
  visitors: number;
  cases: number;
  hr10: number;
  ndcg10: number;
  /** The same with the session's own items ranked too (repeats can hit). */
  allItemsHr10: number;
  allItemsNdcg10: number;
  lastHr10: number;
  lastNdcg10: number;
  seconds: number;
}

setLogLevel('silent');
await initNodeBackend('wasm');
const rows: Row[] = [];
/** Ranks of the shown list per dataset and mode, case by case, for the paired comparison. */
const shownRanks = new Map<string, number[]>();
for (const dataset of values.datasets.split(',')) {
  const workload =
    dataset === 'amazon-beauty'
      ? await beautyWorkload()
      : dataset === 'yoochoose-rsc15-100k'
        ? await yoochooseWorkload()
        : null;
  if (!workload) throw new Error(`unknown dataset ${dataset}`);
  const served = await serveModel(workload.modelDir);
  try {
    for (const mode of modes) {
      const replayer = await Replayer.start(served.server.url, mode === 'on', settings);
      const bar = new cliProgress.SingleBar(
        {
          format: `${dataset} learning ${mode} |{bar}| {value}/{total} visitors | ETA {eta_formatted}`,
          noTTYOutput: true,
          notTTYSchedule: 30_000,
        },
        cliProgress.Presets.shades_classic,
      );
      const started = performance.now();
      const shown: number[] = [];
      const all: number[] = [];
      const last: number[] = [];
      bar.start(workload.visitors.length, 0);
      try {
        for (const [n, visitor] of workload.visitors.entries()) {
          // The same seed and clock per visitor in both modes: only learning differs.
          const ranks = await replayer.replay(
            visitor,
            (seed * 1_000_003 + n) >>> 0,
            n * 1e11,
            visit,
          );
          shown.push(...ranks.shown);
          all.push(...ranks.all);
          if (ranks.shown.length > 0) last.push(ranks.shown[ranks.shown.length - 1]!);
          bar.increment();
        }
      } finally {
        bar.stop();
        await replayer.close();
      }
      shownRanks.set(`${dataset} ${mode}`, shown);
      const every = hitAndNdcg(shown, 10);
      const unmasked = hitAndNdcg(all, 10);
      const final = hitAndNdcg(last, 10);
      rows.push({
        dataset,
        subset,
        learning: mode,
        visitors: workload.visitors.length,
        cases: shown.length,
        hr10: every.hr,
        ndcg10: every.ndcg,
        allItemsHr10: unmasked.hr,
        allItemsNdcg10: unmasked.ndcg,
        lastHr10: final.hr,
        lastNdcg10: final.ndcg,
        seconds: (performance.now() - started) / 1000,
      });
    }
  } finally {
    await served.close();
  }
}

const fmt = (x: number) => x.toFixed(4);
const lines = rows.map((r) => {
  const off = rows.find((o) => o.dataset === r.dataset && o.learning === 'off');
  const change = (on: number, base: number | undefined) =>
    r.learning === 'on' && base
      ? ` (${on >= base ? '+' : ''}${((on / base - 1) * 100).toFixed(1)}%)`
      : '';
  return [
    r.dataset,
    r.subset,
    String(r.visitors),
    String(r.cases),
    r.learning,
    fmt(r.hr10) + change(r.hr10, off?.hr10),
    fmt(r.ndcg10) + change(r.ndcg10, off?.ndcg10),
    fmt(r.allItemsHr10) + change(r.allItemsHr10, off?.allItemsHr10),
    fmt(r.allItemsNdcg10) + change(r.allItemsNdcg10, off?.allItemsNdcg10),
    fmt(r.lastHr10) + change(r.lastHr10, off?.lastHr10),
    fmt(r.lastNdcg10) + change(r.lastNdcg10, off?.lastNdcg10),
    r.seconds.toFixed(0),
  ];
});
console.log(
  `\nseed ${seed}; visit ${visit || 'whole history'}; online ${JSON.stringify(online)}; local ${JSON.stringify(local)}\n`,
);
console.log(
  markdownTable(
    [
      'dataset',
      'subset',
      'visitors',
      'next-item cases',
      'online learning',
      'HR@10',
      'NDCG@10',
      'HR@10, all items',
      'NDCG@10, all items',
      'last item HR@10',
      'last item NDCG@10',
      'seconds',
    ],
    lines,
  ),
);
// The same next items ranked with learning off and on: what changed, case by case.
const paired = [...new Set(rows.map((r) => r.dataset))].flatMap((dataset) => {
  const off = shownRanks.get(`${dataset} off`);
  const on = shownRanks.get(`${dataset} on`);
  return off && on ? [{ dataset, ...pairedChange(off, on, 10) }] : [];
});
if (paired.length > 0) {
  console.log('\nLearning on against off, the same cases (shown list, k = 10):\n');
  console.log(
    markdownTable(
      ['dataset', 'hits only with learning', 'hits only without', 'sign test p', 'NDCG@10 change'],
      paired.map((c) => [
        c.dataset,
        String(c.onlyOn),
        String(c.onlyOff),
        c.p.toPrecision(2),
        `${c.ndcgDelta >= 0 ? '+' : ''}${c.ndcgDelta.toFixed(4)} ± ${c.ndcgSe.toFixed(4)}`,
      ]),
    ),
  );
}
if (values.json) {
  await writeFile(
    values.json,
    `${JSON.stringify({ seed, visit, online, local, rows, paired }, null, 2)}\n`,
  );
}
