/**
 * `npm run bench:browser`: the SDK as a page uses it, in headless Chromium, per tfjs backend.
 *
 *   npm run bench:browser -- [--runs 30] [--items 10000] [--backends webgpu,webgl,wasm,cpu]
 *
 * Serves a random model of the given size through the real server and the built demo site, forces
 * one backend per fresh browser context (the documented `window.hearth = { backends }` override),
 * and times `hearth.recommend({ k: 20 })` round trips from the page (comlink hop included) and one
 * `hearth.sync()` (8 local optimiser steps, clipping, encoding, upload). Medians over `--runs`, with
 * each backend's ratio against wasm measured in the same run. GPU backends here run on SwiftShader
 * (software): they show plumbing and correctness, not what a visitor's GPU does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumPath } from '../tools/ensure-chromium-path.js';
import { buildAll } from '../tools/build.js';
import { exportModel } from '../tools/model-io.js';
import { startSystem } from '../tools/system.js';
import { initNodeBackend } from '../tools/tf-node.js';
import { SessionModel } from '../worker/model/session-model.js';
import { markdownTable, quantile } from './stats.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    items: { type: 'string', default: '10000' },
    backends: { type: 'string', default: 'webgpu,webgl,wasm,cpu' },
  },
});
const runs = Number(values.runs);
const items = Number(values.items);
const backends = values.backends.split(',');

const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-'));
await initNodeBackend('wasm');
const dims = { items: items + 1, embedding: 64, hidden: 128, maxSessionLength: 20 };
const model = SessionModel.random(dims, 1);
await exportModel(join(dir, 'model'), model, {
  itemIds: ['', ...Array.from({ length: items }, (_, i) => `i-${i + 1}`)],
  popular: Array.from({ length: 100 }, (_, i) => i + 1),
  version: 1,
});
model.dispose();
await buildAll();
const system = await startSystem(
  // A cohort no benchmark reaches, so every sync measures the same model version.
  {
    port: 0,
    dbPath: join(dir, 'bench.sqlite'),
    modelDir: join(dir, 'model'),
    minCohort: 1_000_000,
  },
  { port: 0, host: '127.0.0.1', strictPort: false },
);
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: [...CHROMIUM_ARGS],
});

const rows: string[][] = [];
const medians: Record<string, number> = {};
try {
  for (const backend of backends) {
    const context = await browser.newContext();
    await context.addInitScript(`window.hearth = { backends: ['${backend}'] };`);
    const page = await context.newPage();
    const started = performance.now();
    await page.goto(system.demoUrl);
    const status = await page.evaluate(() =>
      (window as unknown as { hearth: { ready: Promise<{ backend: string | null }> } }).hearth.ready
        .then((s) => s.backend)
        .catch((e: Error) => `failed: ${e.message}`),
    );
    const startMs = performance.now() - started;
    if (status !== backend) {
      rows.push([backend, String(status), '-', '-', '-', '-']);
      await context.close();
      continue;
    }
    const timings = await page.evaluate(async (n: number) => {
      const h = (
        window as unknown as { hearth: Record<string, (...a: unknown[]) => Promise<unknown>> }
      ).hearth;
      for (const item of ['i-1', 'i-20', 'i-300', 'i-4000'])
        await h.track!({ type: 'click', item });
      const recommend: number[] = [];
      for (let i = 0; i < n + 3; i++) {
        const t = performance.now();
        await h.recommend!({ k: 20 });
        if (i >= 3) recommend.push(performance.now() - t);
      }
      const t = performance.now();
      const sync = (await h.sync!()) as { status: string };
      return { recommend, sync: performance.now() - t, syncStatus: sync.status };
    }, runs);
    const sorted = timings.recommend.sort((a, b) => a - b);
    medians[backend] = quantile(sorted, 0.5);
    rows.push([
      backend,
      backend,
      startMs.toFixed(0),
      quantile(sorted, 0.5).toFixed(2),
      quantile(sorted, 0.9).toFixed(2),
      `${timings.sync.toFixed(0)} (${timings.syncStatus})`,
    ]);
    await context.close();
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
console.log(`\n${items} items, d=64, h=128; ${runs} recommend calls per backend\n`);
console.log(
  markdownTable(
    ['forced', 'chosen', 'start ms', 'recommend p50 ms', 'p90 ms', 'sync ms', 'speed vs wasm'],
    rows,
  ),
);
