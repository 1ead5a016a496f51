/**
 * Starts the whole system for the browser tests the way `npm start` does (tools/system.ts): a tiny
 * model trained on the synthetic click log, the real aggregation server on a free port with a fresh
 * SQLite file, and the built demo served by Vite. Then the two origins of a real deployment
 * (e2e/static-server.ts): a CDN serving dist/sdk/ and a host site loading the SDK from it. Run as a
 * child by global-setup.ts; prints one JSON line when ready.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeOnSignals, startSystem } from '../tools/system.js';
import { writeDemoCatalog } from '../tools/demo-catalog.js';
import { trainAndExport } from '../tools/train/index.js';
import { startCdn, startHost } from './static-server.js';

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'hearth-e2e-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const model = await trainAndExport({ dataset: 'synthetic', out: join(dir, 'model'), quiet: true });
const minCohort = Number(process.env.HEARTH_E2E_MIN_COHORT ?? 2);
// The operator's token: specs read the full /v1/stats and /metrics with it (e2e/helpers.ts).
const operatorToken = randomBytes(24).toString('hex');
// The demo's catalogue, as npm start serves it.
const catalogFile = join(dir, 'demo-catalog.json');
await writeDemoCatalog(model.dir, catalogFile);
const system = await startSystem(
  {
    port: 0,
    host: '127.0.0.1',
    dbPath: join(dir, 'hearth.sqlite'),
    modelDir: model.dir,
    catalogSource: catalogFile,
    operatorToken,
    minCohort,
    // Every device takes part: the specs count uploads (e2e/sampling.spec.ts runs its own q = 0).
    sampleRate: 1,
    // npm start's demo preset: no noise at rounds of 2 (the specs read the published models),
    // updates in plaintext (e2e/secure.spec.ts runs a secure server of its own).
    noiseMultiplier: 0,
    aggregation: 'plaintext',
    // Every page of the suite is one loopback client.
    joinsPerRound: 0,
  },
  { port: 0, host: '127.0.0.1', strictPort: false },
);
const cdn = await startCdn(join(root, 'dist', 'sdk'), '127.0.0.1');
const host = await startHost(
  {
    distDir: join(root, 'dist'),
    pagesDir: join(root, 'e2e', 'pages'),
    cdnUrl: cdn.url,
    endpoint: system.server.url,
  },
  // Another port is another origin: the host page, the CDN and the demo are three origins.
  '127.0.0.1',
);
const ready = {
  server: system.server.url,
  demo: system.demoUrl,
  cdn: cdn.url,
  host: host.url,
  dir,
  minCohort,
  operatorToken,
};
console.log(`HEARTH_E2E ${JSON.stringify(ready)}`);
closeOnSignals({
  ...system,
  async close() {
    await Promise.all([cdn.close(), host.close()]);
    await system.close();
  },
});
