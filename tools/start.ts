/**
 * `npm start`: the whole system on its embedded defaults. Trains a first model when there is none
 * (on YOOCHOOSE 100k when ../shared/data has it, else on the synthetic click log), builds the SDK and
 * demo, starts the aggregation server with a SQLite file and the demo site, and prints both URLs.
 *
 *   npm start -- [--port 8787] [--demo-port 5173] [--data ../shared/data] [--config <file>]
 *                [--catalog <file|url> [--sessions <log>]] [--fresh] [--no-build]
 *
 * `--config` is the server's site file (per-site keys and origins, server/sites.ts). `--catalog` runs
 * the server on a site's own items (server/catalog-parse.ts formats) instead of the demo's model:
 * its own database, `.hearth/site.sqlite`, and a model that starts cold over those items, or, with
 * `--sessions`, one trained once on the site's own click log (`.hearth/models/site/`).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HearthError } from '../protocol/errors.js';
import type { ServerConfig } from '../server/config.js';
import { isCatalogUrl } from '../server/catalog-source.js';
import { loadConfigFile } from '../server/sites.js';
import { buildAll } from './build.js';
import { writeDemoCatalog } from './demo-catalog.js';
import { closeOnSignals, startSystem } from './system.js';
import { trainAndExport } from './train/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    'demo-port': { type: 'string', default: '5173' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string', default: join(root, '..', 'shared', 'data') },
    fresh: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    config: { type: 'string' },
    catalog: { type: 'string' },
    sessions: { type: 'string' },
  },
});
const catalog =
  values.catalog && (isCatalogUrl(values.catalog) ? values.catalog : resolve(values.catalog));
// Read first: a bad site file stops the start, with its reason, before any training or build.
const sites = values.config === undefined ? undefined : readSites(resolve(values.config));

function readSites(path: string): ServerConfig['sites'] {
  try {
    return loadConfigFile(path).sites;
  } catch (error) {
    if (!(error instanceof HearthError)) throw error;
    console.error(`npm start: ${error.message}`);
    process.exit(2);
  }
}

const state = join(root, '.hearth');
const modelDir = join(state, 'models', 'default');
// A site's own catalogue gets its own database: the demo's model knows none of its items.
const dbPath = join(state, catalog ? 'site.sqlite' : 'hearth.sqlite');
if (values.fresh) rmSync(state, { recursive: true, force: true });

if (values.sessions && !catalog) {
  console.error('npm start: --sessions goes with --catalog (the items its ids name)');
  process.exit(2);
}
const siteModelDir = join(state, 'models', 'site');
if (catalog && values.sessions && !existsSync(join(siteModelDir, 'manifest.json'))) {
  console.log(`Training the site's first model on ${values.sessions} (once; cached in .hearth/)…`);
  const result = await trainAndExport({
    dataset: 'diginetica',
    loss: 'auto',
    sessions: resolve(values.sessions),
    catalog,
    out: siteModelDir,
  });
  console.log(
    result.model.count > 0
      ? `Model ready: HR@20 ${result.hr20.toFixed(3)} on ${result.model.count} cases of the log's newest sessions`
      : 'Model ready (the log is too small to hold out test cases: no HR@20 to report)',
  );
}

if (!catalog && !existsSync(join(modelDir, 'manifest.json'))) {
  const real = existsSync(join(values.data, 'yoochoose-rsc15-100k'));
  console.log(
    real
      ? `Training the first model on YOOCHOOSE 100k from ${values.data} (once; cached in .hearth/)…`
      : `No dataset at ${values.data}: training the first model on a synthetic click log…`,
  );
  const result = await trainAndExport({
    dataset: real ? 'yoochoose-rsc15-100k' : 'synthetic',
    data: values.data,
    out: modelDir,
  });
  console.log(`Model ready: HR@20 ${result.hr20.toFixed(3)}, MRR@20 ${result.mrr20.toFixed(3)}`);
}
// The demo's own catalogue (generated titles for the model's items), served like a site's.
const demoCatalogFile = join(state, 'demo-catalog.json');
if (!catalog) await writeDemoCatalog(modelDir, demoCatalogFile);
if (!values['no-build']) {
  console.log('Building the SDK and the demo…');
  await buildAll();
}

// The operator's token (the catalogue, the dashboard's full view, the metrics): the one given, or a
// fresh one for this run, printed below with the dashboard's address.
const operatorToken = process.env.HEARTH_OPERATOR_TOKEN ?? randomBytes(24).toString('hex');

const system = await startSystem(
  // The demo preset, not private: one visitor on a laptop. Every device takes part (q = 1), or
  // "Share" would rarely do anything; a round is 3 updates; and no noise, which at m = 3 would drown
  // the model (std z S / 3). The manifest and the server's accountant both say so (ε is infinite).
  // `npm run server` starts with the private defaults (server/config.ts).
  {
    port: Number(values.port),
    host: values.host,
    dbPath,
    ...(catalog
      ? { catalogSource: catalog, ...(values.sessions ? { modelDir: siteModelDir } : {}) }
      : { modelDir, catalogSource: demoCatalogFile }),
    operatorToken,
    minCohort: 3,
    sampleRate: 1,
    noiseMultiplier: 0,
    // One visitor can see learning happen: each update is posted in the clear (the server sees it).
    aggregation: 'plaintext',
    // One laptop fills a round of 3 on its own: no per-client budget.
    joinsPerRound: 0,
    ...(sites ? { sites } : {}),
  },
  { port: Number(values['demo-port']), host: values.host, strictPort: true },
);
console.log(`\nHearth is running (demo preset: every visit joins, rounds of 3 from any one client, updates in plaintext, no noise: not private).
  Demo site:          ${system.demoUrl}
  Aggregation server: ${system.server.url}  (model v${system.server.version}, SQLite ${dbPath})
  On your own pages:  <script defer src="${system.demoUrl}sdk/hearth.js" data-endpoint="${system.server.url}"></script>
                      <script type="module" src="${system.demoUrl}sdk/hearth-recs.js"></script>
  Operator dashboard: ${system.server.url}/dashboard#token=${operatorToken}
                      (the operator token${process.env.HEARTH_OPERATOR_TOKEN ? ', from HEARTH_OPERATOR_TOKEN' : ' of this run; set HEARTH_OPERATOR_TOKEN to keep one'}: the catalogue PUT, /metrics, the full /v1/stats)
Press Ctrl+C to stop.`);
if (system.server.catalog) {
  const { version, items, warning } = system.server.catalog;
  console.log(
    `Catalogue v${version} (${items} items) at ${system.server.url}/v1/catalog${warning ? `\nWarning: ${warning}` : ''}`,
  );
}
closeOnSignals(system);
