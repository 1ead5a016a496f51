/**
 * `npm run bench`: the session model and the update codec in Node, per tfjs backend.
 *
 *   npm run bench -- [--runs 30] [--backends cpu,wasm] [--sizes yoochoose,diginetica]
 *
 * Times top-20 scoring, a dense training step, and one online learning update through the engine
 * (a click, then the update the debounce would start: `learnPending()`, against a real server on
 * loopback serving the model). Prints medians (and p90) over repeated runs and each backend's ratio
 * against cpu measured in the same process, because these machines are shared and absolute numbers drift. Browser numbers per
 * backend (WebGPU/WebGL need a browser) belong to a browser benchmark; this one is the Node floor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelDims } from '../protocol/manifest.js';
import {
  DTYPE_FLOAT16,
  DTYPE_INT4,
  DTYPE_INT8,
  decodeUpdate,
  encodeUpdate,
} from '../protocol/update-format.js';
import { cryptoRandom } from '../worker/federated-client.js';
import { exportModel } from '../tools/model-io.js';
import { serveModel } from '../tools/simulate/replay.js';
import { DEFAULTS, scoringDims } from '../tools/train/index.js';
import { initNodeBackend, wasmDistDir, type NodeBackend } from '../tools/tf-node.js';
import { Engine } from '../worker/engine.js';
import { SessionModel } from '../model/session-model.js';
import { trainSessions } from '../model/train.js';
import { quantile } from '../tools/lib/stats.js';
import { markdownTable } from '../tools/lib/table.js';
import { timeRuns } from '../tools/lib/timing.js';

const DIMS = { embedding: 64, hidden: 128, maxSessionLength: 20 };
const SIZES: Record<string, ModelDims> = {
  // Item counts of the YOOCHOOSE 100k sample and of Diginetica, each with its trainer defaults.
  yoochoose: { ...DIMS, items: 2934, ...scoringDims(DEFAULTS['yoochoose-rsc15-100k']) },
  diginetica: { ...DIMS, items: 43098, ...scoringDims(DEFAULTS.diginetica) },
};

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    backends: { type: 'string', default: 'cpu,wasm' },
    sizes: { type: 'string', default: 'yoochoose,diginetica' },
  },
});
const runs = Number(values.runs);
const backends = values.backends.split(',') as NodeBackend[];
const sizes = values.sizes.split(',');

/** Fixed pseudo-random sessions over a model's items (no dataset needed). */
function sessions(items: number, count: number, seed: number): number[][] {
  let s = seed;
  const next = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: count }, () =>
    Array.from({ length: 2 + (next() % 9) }, () => 1 + (next() % (items - 1))),
  );
}

/** Online learning updates on a `dims` model through the engine on `backend` (model served). */
async function timeOnlineUpdates(dims: ModelDims, backend: NodeBackend, n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
  const ids = ['', ...Array.from({ length: dims.items - 1 }, (_, i) => `i-${i + 1}`)];
  const model = SessionModel.random(dims, 1);
  await exportModel(dir, model, { itemIds: ids, popular: [1, 2, 3], version: 1 });
  model.dispose();
  const served = await serveModel(dir);
  const engine = new Engine();
  try {
    await engine.init({
      endpoint: served.server.url,
      ...{ backends: [backend], wasmPath: wasmDistDir(), uploads: false, uploadEvery: 1e6 },
      ...{ learn: true, debug: false },
    });
    const times: number[] = [];
    // The first updates re-derive the local copy and warm up; the rest are timed.
    for (let i = 0; i < n + 4; i++) {
      await engine.track({ type: 'click', item: ids[1 + ((i * 7919) % (dims.items - 1))]! });
      const start = performance.now();
      await engine.learnPending();
      if (i >= 4) times.push(performance.now() - start);
    }
    return times.sort((a, b) => a - b);
  } finally {
    await engine.dispose();
    await served.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[][] = [];
for (const size of sizes) {
  const dims = SIZES[size];
  if (!dims) throw new Error(`unknown size ${size}; expected ${Object.keys(SIZES).join(', ')}`);
  const baseline: Record<string, number> = {};
  for (const backend of backends) {
    await initNodeBackend(backend);
    const model = SessionModel.random(dims, 1);
    const session = sessions(dims.items, 1, 7)[0]!;
    const recommend = await timeRuns(() => model.topK(session, 20), runs);
    const batch = sessions(dims.items, 32, 11).map((items) => ({ items }));
    const step = await timeRuns(
      () =>
        trainSessions(model, batch, {
          epochs: 1,
          batchSize: 32,
          learningRate: 1e-3,
          seed: 1,
          maxSteps: 1,
        }),
      Math.max(3, Math.floor(runs / 5)),
      1,
    );
    model.dispose();
    const online = await timeOnlineUpdates(dims, backend, Math.max(5, Math.floor(runs / 2)));
    for (const [what, times] of [
      ['recommend top-20', recommend],
      ['train step (batch 32)', step],
      ['online update after a click', online],
    ] as const) {
      const median = quantile(times, 0.5);
      const key = `${what}`;
      if (backend === backends[0]) baseline[key] = median;
      rows.push([
        size,
        `${dims.items - 1}`,
        backend,
        what,
        median.toFixed(2),
        quantile(times, 0.9).toFixed(2),
        `${(baseline[key]! / median).toFixed(2)}x`,
      ]);
    }
  }
}
console.log(
  `\ntfjs ${tf.version_core}, ${runs} runs, speed-up against ${backends[0]} in this process\n`,
);
console.log(
  markdownTable(
    ['model', 'items', 'backend', 'operation', 'median ms', 'p90 ms', `vs ${backends[0]}`],
    rows,
  ),
);

// The update codec: what every device pays to encode and the server to decode, per update, in
// each dtype a manifest can name (int8 / int4 round with the device's CSPRNG, as a device does).
const codecRows: string[][] = [];
for (const [layout, params] of [
  ['YOOCHOOSE model, whole', 297_782], // d = 64, h = 128
  ['Diginetica, dense + 2,048 rows', 107_092 + 2048 * 65],
] as const) {
  const delta = Float32Array.from({ length: params }, (_, i) => Math.sin(i) * 1e-3);
  let float16Encode = 0;
  for (const [name, dtype] of [
    ['float16', DTYPE_FLOAT16],
    ['int8', DTYPE_INT8],
    ['int4', DTYPE_INT4],
  ] as const) {
    const update = {
      dtype,
      baseVersion: 1,
      layoutHash: 1,
      examples: 10,
      clipNorm: 1,
      roundToken: new Uint8Array(16),
      delta,
    } as const;
    const random = cryptoRandom();
    const body = encodeUpdate(update, random);
    const encode = quantile(await timeRuns(() => encodeUpdate(update, random), runs), 0.5);
    const decode = quantile(await timeRuns(() => decodeUpdate(body, params), runs), 0.5);
    if (dtype === DTYPE_FLOAT16) float16Encode = encode;
    codecRows.push([
      layout,
      name,
      body.length.toLocaleString('en-US'),
      encode.toFixed(2),
      decode.toFixed(2),
      `${(encode / float16Encode).toFixed(2)}x`,
    ]);
  }
}
console.log(`\nupdate codec, medians of ${runs} runs, against float16 in this process\n`);
console.log(
  markdownTable(
    ['update', 'dtype', 'bytes', 'encode ms', 'decode ms', 'encode vs float16'],
    codecRows,
  ),
);
