/**
 * The operator dashboard: `GET /dashboard` (a static page), its script, and uPlot's ESM build and CSS
 * straight from node_modules (no CDN: the dashboard must work on a closed network and tell no third
 * party who looks at it). The data comes from `GET /v1/stats` (stats.ts). Files are read once, when
 * the app is built, so a request never touches the disk.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** URL of the dashboard page. */
export const DASHBOARD_PATH = '/dashboard';

/** The page's assets, by path under /dashboard/: file and content type. */
function assets(): Map<string, { body: Buffer; type: string }> {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'dashboard');
  // Resolved through Node, not a fixed path: npm may hoist uplot anywhere up the tree.
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
  const js = 'text/javascript; charset=utf-8';
  return new Map([
    ['', { body: readFileSync(join(here, 'index.html')), type: 'text/html; charset=utf-8' }],
    ['dashboard.js', { body: readFileSync(join(here, 'dashboard.js')), type: js }],
    ['uplot.esm.js', { body: readFileSync(join(uplot, 'uPlot.esm.js')), type: js }],
    [
      'uplot.min.css',
      { body: readFileSync(join(uplot, 'uPlot.min.css')), type: 'text/css; charset=utf-8' },
    ],
  ]);
}

/** Registers the dashboard's routes on `app`, each with its schema by path (openapi.ts). */
export function registerDashboard(
  app: FastifyInstance,
  schemas: Readonly<Record<string, object>>,
): void {
  for (const [name, asset] of assets()) {
    const url = name === '' ? DASHBOARD_PATH : `${DASHBOARD_PATH}/${name}`;
    app.get(url, { schema: schemas[url]! }, async (_request, reply) =>
      // no-cache: a redeployed server's page and script are picked up at once.
      reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body),
    );
  }
}
