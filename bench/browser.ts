/**
 * `npm run bench:browser`: the SDK as a page uses it, in headless Chromium, per tfjs backend.
 *
 *   npm run bench:browser -- [--runs 30] [--items 10000 | --model <dir>]
 *                            [--backends webgpu,webgl,wasm,cpu] [--learn-runs 20]
 *
 * Serves a random model of the given size (`--items 43097` is Diginetica's catalogue), scored as
 * the trained Diginetica model is (tools/train/defaults.ts), or a trained model directory, through
 * the real server and the built demo site, forces one backend per fresh browser context (the
 * documented `window.hearth = { backends }` override), and times `hearth.recommend({ k: 20 })`
 * round trips after a new click (comlink hop, one recurrent step and one scoring of the whole
 * catalogue included) and one `hearth.sync()` (local optimiser steps, clipping, encoding, upload):
 * from a bare page holding only the SDK's script tag, and again from the demo page, whose own list
 * and status panel re-render on every click and so share the worker with the timed call. Then, in another fresh context, it starts the built worker itself and times one online
 * learning update after an interaction (`learnPending()`: what runs once the debounce fires, from
 * the page, so the message hop is included) `--learn-runs` times. Medians and p90 over the runs,
 * with each backend's ratio against wasm measured in the same run. GPU backends here run on
 * SwiftShader (software): they show plumbing and correctness, not what a visitor's GPU does.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumPath } from '../tools/ensure-chromium-path.js';
import { buildAll } from '../tools/build.js';
import { exportModel } from '../tools/model-io.js';
import { startSystem } from '../tools/system.js';
import { DEFAULTS, scoringDims } from '../tools/train/index.js';
import { initNodeBackend } from '../tools/tf-node.js';
import { SessionModel } from '../model/session-model.js';
import { quantile } from '../tools/lib/stats.js';
import { markdownTable } from '../tools/lib/table.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    items: { type: 'string', default: '10000' },
    model: { type: 'string' },
    backends: { type: 'string', default: 'webgpu,webgl,wasm,cpu' },
    'learn-runs': { type: 'string', default: '20' },
  },
});
const runs = Number(values.runs);
const learnRuns = Number(values['learn-runs']);
const backends = values.backends.split(',');

const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
let modelDir = join(dir, 'model');
let ids: string[];
if (values.model) {
  modelDir = values.model;
  ids = (JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as { itemIds: string[] })
    .itemIds;
} else {
  await initNodeBackend('wasm');
  const items = Number(values.items);
  // Scored as the trained Diginetica model is (cosine, item mean, repeat bonus): what ships.
  const dims = {
    items: items + 1,
    embedding: 64,
    hidden: 128,
    maxSessionLength: 20,
    ...scoringDims(DEFAULTS.diginetica),
  };
  const model = SessionModel.random(dims, 1);
  ids = ['', ...Array.from({ length: items }, (_, i) => `i-${i + 1}`)];
  await exportModel(modelDir, model, {
    itemIds: ids,
    popular: Array.from({ length: Math.min(100, items) }, (_, i) => i + 1),
    version: 1,
  });
  model.dispose();
}
const items = ids.length - 1;
/** Item ids spread over the catalogue, for the clicks the benchmark makes. */
const pickIds = (count: number, salt: number) =>
  Array.from({ length: count }, (_, i) => ids[1 + ((i * 7919 + salt * 104_729) % items)]!);
await buildAll();
const system = await startSystem(
  // A cohort no benchmark reaches, so every sync measures the same model version.
  {
    port: 0,
    dbPath: join(dir, 'bench.sqlite'),
    modelDir,
    minCohort: 1_000_000,
    // Every sync joins, so each one measures the whole path to the upload.
    sampleRate: 1,
  },
  { port: 0, host: '127.0.0.1', strictPort: false },
);
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: [...CHROMIUM_ARGS],
});

// The bare page: only the SDK's script tag, as the demo serves it (same origin, same endpoint), so
// nothing else on the page asks the worker for anything while a call is timed. The demo page
// re-renders its own list and status panel on every click, and those calls queue in the same worker.
const demoHtml = await (await fetch(system.demoUrl)).text();
const sdkTag = /<script[^>]*\/sdk\/hearth\.js[^>]*><\/script>/.exec(demoHtml)?.[0];
if (!sdkTag) throw new Error('the demo page has no Hearth script tag');
const bareUrl = new URL('bench-bare.html', system.demoUrl).href;
const bareHtml = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title>${sdkTag}</head><body></body></html>`;
const rows: string[][] = [];
const medians: Record<string, number> = {};
const learnRows: string[][] = [];
const learnMedians: Record<string, number> = {};
try {
  for (const backend of backends) {
    const bare = await timeRecommend(backend, bareUrl);
    if (bare.chosen !== backend) {
      rows.push([backend, bare.chosen, '-', '-', '-', '-', '-']);
      continue;
    }
    const demo = await timeRecommend(backend, system.demoUrl);
    const sorted = bare.recommend.sort((a, b) => a - b);
    const onDemo = demo.recommend.sort((a, b) => a - b);
    medians[backend] = quantile(sorted, 0.5);
    rows.push([
      backend,
      backend,
      bare.startMs.toFixed(0),
      quantile(sorted, 0.5).toFixed(2),
      quantile(sorted, 0.9).toFixed(2),
      onDemo.length ? quantile(onDemo, 0.5).toFixed(2) : '-',
      `${bare.sync.toFixed(0)} (${bare.syncStatus})`,
    ]);
    const { times: learn, phases } = await timeLearning(backend);
    learnMedians[backend] = learn[0] ? quantile(learn, 0.5) : NaN;
    // The worker's own account of each update, phase by phase (status().learning.lastUpdate).
    const phase = (key: keyof LearnTimes['phases'][number]) =>
      phases.length
        ? quantile(
            phases.map((p) => p[key]).sort((a, b) => a - b),
            0.5,
          ).toFixed(1)
        : '-';
    learnRows.push([
      backend,
      String(learn.length),
      learn.length ? quantile(learn, 0.5).toFixed(1) : '-',
      learn.length ? quantile(learn, 0.9).toFixed(1) : '-',
      phase('readMs'),
      phase('learnMs'),
      phase('serveMs'),
    ]);
  }
} finally {
  await browser.close();
  await system.close();
  rmSync(dir, { recursive: true, force: true });
}

for (const row of rows) {
  const median = medians[row[0]!];
  row.push(median && medians.wasm ? `${(medians.wasm / median).toFixed(2)}x` : '-');
}
for (const row of learnRows) {
  const median = learnMedians[row[0]!];
  row.push(median && learnMedians.wasm ? `${(learnMedians.wasm / median).toFixed(2)}x` : '-');
}
console.log(
  `\n${items} items${values.model ? ` (${values.model})` : ', random'}, d=64, h=128; ` +
    `${runs} recommend calls per backend\n`,
);
console.log(
  markdownTable(
    [
      'forced',
      'chosen',
      'start ms',
      'recommend p50 ms',
      'p90 ms',
      'on demo page p50',
      'sync ms',
      'speed vs wasm',
    ],
    rows,
  ),
);
console.log(`\nOne online learning update after a click (learnPending), ${learnRuns} runs\n`);
console.log(
  markdownTable(
    [
      'backend',
      'runs',
      'learn p50 ms',
      'p90 ms',
      'read p50',
      'steps p50',
      'serve p50',
      'speed vs wasm',
    ],
    learnRows,
  ),
);

/** What timing `recommend()` from one page gave. */
interface RecommendTimes {
  chosen: string;
  startMs: number;
  recommend: number[];
  sync: number;
  syncStatus: string;
}

/**
 * Times `recommend({ k: 20 })` round trips from a page at `url` in a fresh context with `backend`
 * forced: a click before every timed call (the engine caches the scores of an unchanged session, so
 * each timed call pays one recurrent step and one scoring of the whole catalogue), then one sync.
 */
async function timeRecommend(backend: string, url: string): Promise<RecommendTimes> {
  const context = await browser.newContext();
  try {
    await context.addInitScript(`window.hearth = { backends: ['${backend}'] };`);
    const page = await context.newPage();
    if (url === bareUrl) {
      await page.route(bareUrl, (route) =>
        route.fulfill({ contentType: 'text/html', body: bareHtml }),
      );
    }
    const started = performance.now();
    await page.goto(url);
    const chosen = await page.evaluate(() =>
      (window as unknown as { hearth: { ready: Promise<{ backend: string | null }> } }).hearth.ready
        .then((s) => String(s.backend))
        .catch((e: Error) => `failed: ${e.message}`),
    );
    const startMs = performance.now() - started;
    if (chosen !== backend) return { chosen, startMs, recommend: [], sync: NaN, syncStatus: '-' };
    const timings = await page.evaluate(
      async ([n, clicks]: [number, string[]]) => {
        const h = (
          window as unknown as { hearth: Record<string, (...a: unknown[]) => Promise<unknown>> }
        ).hearth;
        for (const item of clicks.slice(0, 4)) await h.track!({ type: 'click', item });
        const recommend: number[] = [];
        for (let i = 0; i < n + 3; i++) {
          await h.track!({ type: 'click', item: clicks[4 + i]! });
          const t = performance.now();
          await h.recommend!({ k: 20 });
          if (i >= 3) recommend.push(performance.now() - t);
        }
        const t = performance.now();
        const sync = (await h.sync!()) as { status: string };
        return { recommend, sync: performance.now() - t, syncStatus: sync.status };
      },
      [runs, pickIds(runs + 7, 1)] as [number, string[]],
    );
    return { chosen, startMs, ...timings };
  } finally {
    await context.close();
  }
}

/** Round trips of the timed updates (sorted) and each update's own phases (status()). */
interface LearnTimes {
  times: number[];
  phases: { readMs: number; learnMs: number; serveMs: number; totalMs: number }[];
}

/**
 * Times online learning updates in a fresh context: the built worker started directly on the
 * demo origin and driven over comlink's wire format (the page SDK exposes no such call). A first
 * update (re-deriving the local copy) and two more warm up; then each run is one click followed by
 * `learnPending()`, the update the debounce would otherwise start 1.5 s later.
 */
async function timeLearning(backend: string): Promise<LearnTimes> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(new URL('robots.txt', system.demoUrl).href);
    const config = {
      endpoint: system.server.url,
      backends: [backend],
      uploads: false,
      uploadEvery: 1_000_000,
      wasmPath: new URL('sdk/', system.demoUrl).href,
      debug: false,
      learn: true,
    };
    const args = JSON.stringify([
      new URL('sdk/hearth-worker.js', system.demoUrl).href,
      config,
      pickIds(learnRuns + 6, 2),
      learnRuns,
    ]);
    // A string, not a function: the page must not see the helpers tsx adds to compiled functions.
    return await page.evaluate<LearnTimes>(`(async ([workerUrl, config, clicks, n]) => {
      const worker = new Worker(workerUrl, { type: 'module' });
      let id = 0;
      const call = (method, ...args) => new Promise((resolve, reject) => {
        const me = ++id;
        const listen = ({ data }) => {
          if (!data || data.id !== me) return;
          worker.removeEventListener('message', listen);
          if (data.type === 'RAW') resolve(data.value);
          else reject(new Error(JSON.stringify(data.value)));
        };
        worker.addEventListener('message', listen);
        const argumentList = args.map((value) => ({ type: 'RAW', value }));
        worker.postMessage({ id: me, type: 'APPLY', path: [method], argumentList });
      });
      await call('init', config);
      const times = [];
      const phases = [];
      for (const [i, item] of clicks.entries()) {
        await call('track', { type: 'click', item });
        const t = performance.now();
        await call('learnPending');
        if (i < clicks.length - n) continue;
        times.push(performance.now() - t);
        phases.push((await call('status')).learning.lastUpdate);
      }
      worker.terminate();
      return { times: times.sort((a, b) => a - b), phases };
    })(${args})`);
  } catch (error) {
    console.warn(`learning on ${backend} failed: ${String(error)}`);
    return { times: [], phases: [] };
  } finally {
    await context.close();
  }
}
