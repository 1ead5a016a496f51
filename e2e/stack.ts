/**
 * Starts the whole system for the browser tests, in this process: a tiny model trained on the
 * synthetic click log, the real aggregation server on a free port with a fresh SQLite file, and the
 * built demo served by Vite. Run as a child by global-setup.ts; prints one JSON line when ready.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preview } from 'vite';
import { resolveConfig } from '../server/config.js';
import { startServer } from '../server/start.js';
import { trainAndExport } from '../tools/train.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
const model = await trainAndExport({ dataset: 'synthetic', out: join(dir, 'model'), quiet: true });
const minCohort = Number(process.env.HEARTH_E2E_MIN_COHORT ?? 2);
const server = await startServer(
  resolveConfig({
    port: 0,
    host: '127.0.0.1',
    dbPath: join(dir, 'hearth.sqlite'),
    modelDir: model.dir,
    minCohort,
  }),
);
process.env.HEARTH_ENDPOINT = server.url;
const demo = await preview({
  configFile: join(import.meta.dirname, '..', 'vite.config.ts'),
  logLevel: 'warn',
  preview: { port: 0, host: '127.0.0.1', strictPort: false },
});
const demoUrl = demo.resolvedUrls?.local[0];
console.log(`HEARTH_E2E ${JSON.stringify({ server: server.url, demo: demoUrl, dir, minCohort })}`);

const stop = async (): Promise<void> => {
  await demo.close();
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
