/**
 * Starts the whole system for the browser tests the way `npm start` does (tools/system.ts): a tiny
 * model trained on the synthetic click log, the real aggregation server on a free port with a fresh
 * SQLite file, and the built demo served by Vite. Run as a child by global-setup.ts; prints one JSON
 * line when ready.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeOnSignals, startSystem } from '../tools/system.js';
import { trainAndExport } from '../tools/train.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const model = await trainAndExport({ dataset: 'synthetic', out: join(dir, 'model'), quiet: true });
const minCohort = Number(process.env.HEARTH_E2E_MIN_COHORT ?? 2);
const system = await startSystem(
  {
    port: 0,
    host: '127.0.0.1',
    dbPath: join(dir, 'hearth.sqlite'),
    modelDir: model.dir,
    minCohort,
  },
  { port: 0, host: '127.0.0.1', strictPort: false },
);
const ready = { server: system.server.url, demo: system.demoUrl, dir, minCohort };
console.log(`HEARTH_E2E ${JSON.stringify(ready)}`);
closeOnSignals(system);
