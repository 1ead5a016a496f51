/**
 * `npm run attack`: what the server can read off one upload today, measured on real visitors.
 *
 *   npm run attack -- --dataset diginetica [--data ../shared/data] [--visitors 200]
 *     [--item-sketch <buckets> [--sketch-depth <k>] [--sketch-dense-stride <k>] | --rows <n>|full]
 *     [--cohorts 1,10,100,1000]
 *     [--update-dtype float16|int8|int4|int2, default: the server's]
 *
 * The layout is the server's default unless one is given: the device sends its item rows as the
 * count sketch of version 1 (`--item-sketch`, protocol/item-sketch.ts; the server reads it back
 * into rows, and the rows attack ranks a bucket's mates by popularity), or the rows `--rows` names.
 *
 * The global model is the federated simulation's seed model (trained centrally on the oldest 10%
 * of training sessions, cached in .hearth/federate/ by `npm run federate`). Each visitor is one of
 * the other training sessions (evenly spaced, at least two distinct items). For each, the worker's
 * own local learning (worker/local-training.ts learnLocally, the function the Web Worker calls
 * before it uploads) computes the update in the version's layout (`--rows`: the dense tensors and
 * that many rows, named by the server's versionLayout; `full`: the whole model; `--item-sketch`:
 * the dense tensors and the sketch), the federated
 * client encodes the body it posts, and the server's decoder reads it back: the attacks
 * (tools/attack/attacks.ts) see exactly what the server receives. Each guesses the visitor's items
 * as the |items| rows it ranks highest; printed against guessing the most popular items.
 *
 * `--cohorts`: what secure aggregation reveals instead, the sum of m updates. For each m, the
 * visitor's update plus the updates of m - 1 other visitors (training sessions that are not among
 * the targets, the same ones for every target) is attacked the same way.
 */
import { parseArgs } from 'node:util';
import { learnLocally } from '../worker/local-training.js';
import { unsketchUpdate } from '../protocol/item-sketch.js';
import { encodeDeviceUpdate } from '../worker/federated-client.js';
import { manifestFor } from '../protocol/manifest.js';
import { setLogLevel } from '../protocol/logger.js';
import { DEVICE_UPDATE_DTYPES, decodeUpdate } from '../protocol/update-format.js';
import { manifestLayout, modelLayout, updateLength } from '../protocol/update-layout.js';
import { DEFAULT_CONFIG, resolveConfig } from '../server/config.js';
import { versionLayout } from '../server/versions.js';
import { projectionAttack, rowsAttack, scoreGuess, type Ranking } from './attack/attacks.js';
import { loadDataset, parseDatasetName } from './data/datasets.js';
import { centralWeights } from './federate.js';
import { populationOf } from './federate/population.js';
import { oneOf, positiveInteger } from './lib/args.js';
import { isEntryPoint, runMain } from './lib/entry.js';
import { markdownTable } from './lib/table.js';
import { initNodeBackend } from './tf-node.js';
import { DEFAULTS, modelDims } from './train/defaults.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string', default: 'diginetica' },
      data: { type: 'string', default: '../shared/data' },
      visitors: { type: 'string', default: '200' },
      rows: { type: 'string' },
      // What a plaintext device sends by default (the server's --update-dtype).
      'update-dtype': { type: 'string', default: DEFAULT_CONFIG.updateDtype },
      cohorts: { type: 'string' },
      'item-sketch': { type: 'string' },
      'sketch-depth': { type: 'string' },
      'sketch-dense-stride': { type: 'string' },
    },
    strict: true,
  });
  const dataset = parseDatasetName(values.dataset);
  const cohorts = (values.cohorts ?? '')
    .split(',')
    .filter((c) => c !== '')
    .map((c) => positiveInteger('cohorts', c));
  const visitors = positiveInteger('visitors', values.visitors);
  // The layout as the server resolves it: its default (a sketch) unless rows are asked for.
  const { updateRows, itemSketch, sketchDepth, sketchDenseStride } = resolveConfig({
    ...(values.rows === undefined
      ? {}
      : { updateRows: values.rows === 'full' ? 'full' : positiveInteger('rows', values.rows) }),
    ...(values['item-sketch'] === undefined
      ? {}
      : { itemSketch: positiveInteger('item-sketch', values['item-sketch']) }),
    ...(values['sketch-depth'] === undefined
      ? {}
      : { sketchDepth: positiveInteger('sketch-depth', values['sketch-depth']) }),
    ...(values['sketch-dense-stride'] === undefined
      ? {}
      : {
          sketchDenseStride: positiveInteger('sketch-dense-stride', values['sketch-dense-stride']),
        }),
  });
  setLogLevel('silent');
  await initNodeBackend('wasm');
  const loaded = await loadDataset(dataset, values.data);
  const dims = modelDims(loaded.data.itemIds.length, DEFAULTS[dataset]);
  const population = populationOf(loaded, 'seed', 'test');
  const key = `seed-test-${population.central.length}`;
  const weights = await centralWeights(dataset, dims, population.central, key);
  const fields = versionLayout(
    { updateRows, rowChoice: 'window', itemSketch, sketchDepth, sketchDenseStride },
    dims,
    1,
    weights,
    1,
  );
  const manifest = manifestFor(dims, {
    itemIds: loaded.data.itemIds,
    federation: {
      clipNorm: DEFAULT_CONFIG.clipNorm,
      minCohort: DEFAULT_CONFIG.minCohort,
      maxExamples: DEFAULT_CONFIG.maxExamples,
      ...fields,
      updateDtype: oneOf('update-dtype', values['update-dtype'], DEVICE_UPDATE_DTYPES),
    },
  });
  const sent = manifestLayout(manifest.federation);
  // What the attacks read: the rows the server has, a sketch read back into them.
  const layout = modelLayout(sent);
  // Popularity among the central sessions: the guess that needs no upload.
  const counts = new Float64Array(dims.items);
  for (const session of population.central) for (const item of session) counts[item]! += 1;
  const popular = Array.from({ length: dims.items - 1 }, (_, i) => i + 1).sort(
    (a, b) => counts[b]! - counts[a]! || a - b,
  );
  const popularity = new Float64Array(dims.items);
  popular.forEach((item, place) => (popularity[item] = place));
  const candidates = population.devices.filter((items) => new Set(items).size >= 2);
  const step = Math.max(1, Math.floor(candidates.length / visitors));
  const chosen = candidates.filter((_, i) => i % step === 0).slice(0, visitors);
  const tally = { rows: [] as Score[], projection: [] as Score[], popular: [] as Score[] };
  let inLayout = 0;
  let items = 0;
  let bytes = 0;
  /** The body the device posts for `session`'s update, as the server decodes it. */
  const upload = async (session: readonly number[]): Promise<Float32Array> => {
    const { update, model } = await learnLocally({ manifest, weights }, [{ items: [...session] }]);
    model.dispose();
    const body = encodeDeviceUpdate(manifest, update.delta, update.examples, new Uint8Array(16));
    bytes = body.length;
    const received = decodeUpdate(body, update.delta.length).delta;
    if (sent.kind !== 'sketch') return received;
    const rows = new Float32Array(updateLength(dims, layout));
    return unsketchUpdate(received, dims, sent.sketch, rows);
  };
  // The other devices of a secure round: sums of the first m - 1 non-target visitors' updates.
  const targets = new Set(chosen);
  const others = candidates.filter((session) => !targets.has(session));
  const backgrounds = new Map<number, Float32Array>();
  if (cohorts.length > 0) {
    const running = new Float32Array(updateLength(dims, layout));
    const largest = Math.max(...cohorts);
    if (largest - 1 > others.length) throw new Error(`only ${others.length} other visitors`);
    for (let j = 0; j <= largest - 1; j++) {
      if (cohorts.includes(j + 1)) backgrounds.set(j + 1, running.slice());
      if (j === largest - 1) break;
      const received = await upload(others[j]!);
      for (let k = 0; k < running.length; k++) running[k]! += received[k]!;
    }
  }
  const summed = new Map(
    cohorts.map((m) => [m, { rows: [] as Score[], projection: [] as Score[] }]),
  );
  for (const session of chosen) {
    const truth = new Set(session);
    items += truth.size;
    const received = await upload(session);
    for (const [m, background] of backgrounds) {
      const sum = received.map((x, k) => x + background[k]!);
      summed.get(m)!.rows.push(scoreGuess(rowsAttack(sum, dims, layout, popularity), truth));
      summed
        .get(m)!
        .projection.push(scoreGuess(projectionAttack(sum, dims, layout, weights), truth));
    }
    const visible = new Set(
      layout.kind === 'full' ? truth : layout.rows.filter((r) => truth.has(r)),
    );
    inLayout += visible.size;
    tally.rows.push(scoreGuess(rowsAttack(received, dims, layout, popularity), truth));
    tally.projection.push(scoreGuess(projectionAttack(received, dims, layout, weights), truth));
    tally.popular.push(scoreGuess(popular as Ranking, truth));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const layoutName =
    sent.kind === 'sketch'
      ? `sketch ${sent.sketch.buckets}`
      : layout.kind === 'full'
        ? 'full'
        : `${layout.rows.length} rows`;
  const line = (name: string, scores: Score[]) => [
    name,
    `${(100 * mean(scores.map((s) => (s.top1 ? 1 : 0)))).toFixed(1)}%`,
    mean(scores.map((s) => s.recall)).toFixed(3),
  ];
  console.log(
    `${chosen.length} ${dataset} visitors (${(items / chosen.length).toFixed(1)} distinct items each, ` +
      `${((100 * inLayout) / items).toFixed(1)}% of them among the update's rows); ` +
      `layout ${layoutName}, ${bytes} bytes an upload\n`,
  );
  console.log(
    markdownTable(
      ["guess of the visitor's n items", 'top row is one of them', 'recall of the top n'],
      [
        line('rows moved most (rows attack)', tally.rows),
        line('projection change x item table', tally.projection),
        line('most popular items (no upload)', tally.popular),
      ],
    ),
  );
  if (cohorts.length === 0) return;
  const recall = (scores: Score[]) => mean(scores.map((s) => s.recall)).toFixed(3);
  console.log(
    `\nFrom the sum of m updates (what secure aggregation reveals), recall of the top n:\n`,
  );
  console.log(
    markdownTable(
      ['m', 'rows attack', 'projection attack', 'most popular items'],
      [...summed].map(([m, s]) => [
        String(m),
        recall(s.rows),
        recall(s.projection),
        recall(tally.popular),
      ]),
    ),
  );
}

type Score = ReturnType<typeof scoreGuess>;

if (isEntryPoint(import.meta.url)) runMain(main);
