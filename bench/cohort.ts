/**
 * `npm run bench:cohort`: one call of the summed path (model/cohort-sum.ts clippedUpdateSum) for a
 * batch of devices of Diginetica's model, as the simulation makes it (`tools/federate`).
 *
 *   npm run bench:cohort -- [--runs 5] [--devices 128] [--backend wasm]
 *
 * Times the call with the whole update's norm (named rows), with a sketch whose norm no device can
 * reach S (so it is not computed), and with each device's sketch norm computed: 2,048 buckets, and
 * 2,048 buckets carrying one dense value in 10. Prints medians and p90 over repeated calls in one
 * process, and each against the call that computes no sketch norm.
 */
import { parseArgs } from 'node:util';
import { clippedUpdateSum } from '../model/cohort-sum.js';
import { initialWeights } from '../model/init.js';
import type { LocalUpdateSettings } from '../model/local-update.js';
import type { TrainSession } from '../model/train.js';
import { roundSketch } from '../protocol/item-sketch.js';
import type { ItemSketch, ModelDims } from '../protocol/manifest.js';
import type { ModelLayout } from '../protocol/update-layout.js';
import { quantile } from '../tools/lib/stats.js';
import { markdownTable } from '../tools/lib/table.js';
import { timeRuns } from '../tools/lib/timing.js';
import { initNodeBackend, type NodeBackend } from '../tools/tf-node.js';
import { DEFAULTS, scoringDims } from '../tools/train/index.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    devices: { type: 'string', default: '128' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const runs = Number(values.runs);
const count = Number(values.devices);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(count) || count < 1) {
  throw new RangeError('--runs and --devices take whole numbers of at least 1');
}
await initNodeBackend(values.backend as NodeBackend);

const dims: ModelDims = {
  items: 43098,
  embedding: 64,
  hidden: 128,
  maxSessionLength: 20,
  ...scoringDims(DEFAULTS.diginetica),
};
const weights = initialWeights(dims, 1);
// Fixed pseudo-random sessions of 2 to 10 items, as a round's devices hold.
let state = 12345;
const next = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31);
const devices: TrainSession[][] = Array.from({ length: count }, () => [
  { items: Array.from({ length: 2 + (next() % 9) }, () => 1 + (next() % (dims.items - 1))) },
]);
const settings: LocalUpdateSettings = {
  steps: 1,
  optimizer: 'sgd',
  learningRate: 10,
  mu: 0,
  negatives: 2048,
  negativeAlpha: 2,
  seed: 7,
};
const full: ModelLayout = { kind: 'full' };
const cases: { name: string; layout: ModelLayout; clip: number; sketch?: ItemSketch }[] = [
  { name: '4,096 named rows, whole norm', layout: { kind: 'rows', rows: rowsOf(4096) }, clip: 1 },
  { name: 'sketch 2,048, no device near S', layout: full, clip: 1e9, sketch: roundSketch(2048, 3) },
  { name: 'sketch 2,048, its norm', layout: full, clip: 1, sketch: roundSketch(2048, 3) },
  {
    name: 'sketch 2,048, dense stride 10, its norm',
    layout: full,
    clip: 1,
    sketch: roundSketch(2048, 3, 1, 10),
  },
];

function rowsOf(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % (dims.items - 1)));
}

const medians: number[] = [];
const rows: string[][] = [];
for (const c of cases) {
  const times = await timeRuns(
    () => clippedUpdateSum(dims, weights, devices, c.layout, settings, c.clip, c.sketch),
    runs,
    1,
  );
  medians.push(quantile(times, 0.5));
  rows.push([c.name, quantile(times, 0.5).toFixed(0), quantile(times, 0.9).toFixed(0)]);
}
const baseline = medians[1]!;
console.log(
  `clippedUpdateSum, ${count} devices of Diginetica's model, 2,048 negatives (${values.backend}, ${runs} runs)\n`,
);
console.log(
  markdownTable(
    ['call', 'median (ms)', 'p90 (ms)', 'against no sketch norm'],
    rows.map((row, i) => [...row, `${(medians[i]! / baseline).toFixed(2)}x`]),
  ),
);
