/**
 * `npm run bench:load`: the aggregation server under concurrent devices.
 *
 *   npm run bench:load -- [--clients 64] [--seconds 20] [--min-cohort 16] [--max-staleness <s>]
 *                          [--round-window <s>]
 *
 * Starts the real server binary (`server/main.ts`, its own process, so the load generator does not
 * share its event loop) on loopback, a port of its choosing, a temp SQLite file and a small model
 * (1,000 items, ~24k parameters). Each client loops until the deadline: GET /v1/model, POST join,
 * POST a valid float16 update of norm 0.5. Prints throughput, p50/p99 latency per route, replies by
 * status and the rounds published, as markdown. A 409/403 on an update is the protocol working (the
 * round closed, more than s versions ago, between a device's join and its post), counted apart from
 * real errors; every client is honest, so the share of updates refused as stale
 * (HEARTH_E_UPDATE_STALE) is work wasted by the staleness bound s, printed on its own line.
 * `--max-staleness` is passed to the server; left out, the server's default applies. With
 * `--round-window`, rounds close on the clock (server/round-windows.ts): each client names the window
 * when it joins, and an update whose window closed between its join and its post is refused
 * (HEARTH_E_UPDATE_STALE when the window published, else HEARTH_E_ROUND_TOKEN), the work windows
 * waste, printed on its own line.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ErrorReply, JoinReply } from '../protocol/api.js';
import { layoutHash, parameterCount, tensorLayout, type ModelDims } from '../protocol/manifest.js';
import {
  DTYPE_FLOAT16,
  encodeUpdate,
  tokenFromHex,
  UPDATE_CONTENT_TYPE,
} from '../protocol/update-format.js';
import { positiveInteger } from '../tools/lib/args.js';
import { quantile } from '../tools/lib/stats.js';
import { markdownTable } from '../tools/lib/table.js';
import { secondsSince } from '../tools/lib/timing.js';
import { exited, spawnServerCli } from '../server/cli-process.js';
import { writeSeedModel } from './seed-model.js';

const DIMS: ModelDims = { items: 1000, embedding: 16, hidden: 32, maxSessionLength: 10 };

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '20' },
    'min-cohort': { type: 'string', default: '16' },
    'max-staleness': { type: 'string' },
    'round-window': { type: 'string' },
  },
});
const clients = positiveInteger('clients', args.clients);
const seconds = positiveInteger('seconds', args.seconds);
const minCohort = positiveInteger('min-cohort', args['min-cohort']);
// Checked by the server's own flag parser (an integer >= 0); passed on as given.
const maxStaleness = args['max-staleness'];
const roundWindow =
  args['round-window'] === undefined
    ? undefined
    : positiveInteger('round-window', args['round-window']);

/** Starts the CLI and resolves with its URL and a stop function. */
async function startServer(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const { url, child } = await spawnServerCli([
    '--port',
    '0',
    '--db',
    join(dir, 'load.db'),
    '--model',
    join(dir, 'model'),
    '--min-cohort',
    String(minCohort),
    // Every client shares one loopback address; the per-client limit would throttle the bench.
    '--rate-limit',
    '0',
    '--joins-per-round',
    '0',
    // Each client posts its own update: the plaintext mode is what this bench loads.
    '--aggregation',
    'plaintext',
    ...(maxStaleness === undefined ? [] : ['--max-staleness', maxStaleness]),
    ...(roundWindow === undefined ? [] : ['--round-window', String(roundWindow)]),
  ]);
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}

type Route = 'GET /v1/model' | 'POST /v1/rounds/join' | 'POST /v1/updates';

const latencies = new Map<Route, number[]>();
const statuses = new Map<string, number>();
/** Refused updates by error code (HEARTH_E_UPDATE_STALE, HEARTH_E_ROUND_TOKEN, ...). */
const refusals = new Map<string, number>();
let networkErrors = 0;

/** A request that takes longer than this counts as a network error, so the run stays bounded. */
const REQUEST_TIMEOUT_MS = 10_000;

async function timed(
  route: Route,
  request: (signal: AbortSignal) => Promise<Response>,
): Promise<Response | null> {
  const start = performance.now();
  try {
    const res = await request(AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    // Read the body inside the timing: a reply is served when it has fully arrived.
    const body = new Uint8Array(await res.arrayBuffer());
    const list = latencies.get(route) ?? [];
    list.push(performance.now() - start);
    latencies.set(route, list);
    const key = `${route} ${res.status}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    return new Response(body, { status: res.status });
  } catch {
    networkErrors++;
    return null;
  }
}

async function client(url: string, id: number, deadline: number): Promise<void> {
  const count = parameterCount(tensorLayout(DIMS));
  const raw = Float32Array.from({ length: count }, (_, i) => Math.cos(i * 0.37 + id));
  const norm = Math.sqrt(raw.reduce((s, v) => s + v * v, 0));
  const delta = raw.map((v) => (v / norm) * 0.5);
  const hash = layoutHash(tensorLayout(DIMS));
  while (performance.now() < deadline) {
    await timed('GET /v1/model', (signal) => fetch(`${url}/v1/model`, { signal }));
    // With round windows a join names the window it is made in, as a device does.
    const window =
      roundWindow === undefined ? undefined : Math.floor(Date.now() / (roundWindow * 1000));
    const joined = await timed('POST /v1/rounds/join', (signal) =>
      fetch(`${url}/v1/rounds/join`, {
        method: 'POST',
        signal,
        ...(window === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ window }) }),
      }),
    );
    if (!joined || joined.status !== 200 || performance.now() >= deadline) continue;
    const ticket = (await joined.json()) as JoinReply;
    const body = encodeUpdate({
      dtype: DTYPE_FLOAT16,
      baseVersion: ticket.version,
      layoutHash: hash,
      examples: 20,
      clipNorm: 1,
      roundToken: tokenFromHex(ticket.token),
      delta,
    });
    const posted = await timed('POST /v1/updates', (signal) =>
      fetch(`${url}/v1/updates`, {
        method: 'POST',
        signal,
        headers: { 'content-type': UPDATE_CONTENT_TYPE },
        body,
      }),
    );
    if (posted && !posted.ok) {
      const reply = (await posted.json().catch(() => null)) as Partial<ErrorReply> | null;
      const code = reply?.error?.code ?? `HTTP ${posted.status}`;
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
    }
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-load-'));
  try {
    await mkdir(join(dir, 'model'));
    await writeSeedModel(join(dir, 'model'), DIMS, minCohort);
    const server = await startServer(dir);
    try {
      const version = async (): Promise<number> =>
        ((await (await fetch(`${server.url}/healthz`)).json()) as { version: number }).version;
      const before = await version();
      const start = performance.now();
      const deadline = start + seconds * 1000;
      await Promise.all(Array.from({ length: clients }, (_, i) => client(server.url, i, deadline)));
      const elapsed = secondsSince(start);
      const published = (await version()) - before;
      const total = [...latencies.values()].reduce((n, list) => n + list.length, 0);
      console.log(
        `\n${clients} clients, ${elapsed.toFixed(1)} s, m = ${minCohort}, ` +
          `${parameterCount(tensorLayout(DIMS))} parameters (float16 updates)\n`,
      );
      const rows = [...latencies].map(([route, list]) => {
        const sorted = [...list].sort((a, b) => a - b);
        return [
          route,
          String(list.length),
          (list.length / elapsed).toFixed(0),
          quantile(sorted, 0.5).toFixed(1),
          quantile(sorted, 0.99).toFixed(1),
          // The longest reply: a round window's close folds all its updates at once.
          sorted.at(-1)!.toFixed(1),
        ];
      });
      rows.push(['all', String(total), (total / elapsed).toFixed(0), '', '', '']);
      console.log(
        markdownTable(['route', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'max ms'], rows),
      );
      const expected = (key: string): boolean =>
        key.endsWith(' 200') ||
        key.endsWith(' 202') ||
        /updates (409|403)$/.test(key) ||
        // A join sent just before a window ends and received just after it names the old window.
        (roundWindow !== undefined && key === 'POST /v1/rounds/join 409');
      const errors =
        networkErrors +
        [...statuses].filter(([key]) => !expected(key)).reduce((n, [, c]) => n + c, 0);
      const uploads = latencies.get('POST /v1/updates')?.length ?? 0;
      const stale = refusals.get('HEARTH_E_UPDATE_STALE') ?? 0;
      // With windows an update posted after its window published is on an old version (stale);
      // after one that published nothing, its token's round is closed (HEARTH_E_ROUND_TOKEN).
      const closed = (refusals.get('HEARTH_E_ROUND_TOKEN') ?? 0) + (roundWindow ? stale : 0);
      const refused = [...refusals].sort().map(([code, n]) => `${code} ${n}`);
      console.log(
        `\n${markdownTable(
          ['route and status', 'replies'],
          [...statuses].sort().map(([key, n]) => [key, String(n)]),
        )}\n\nerrors (network or unexpected status): ${errors}\nrounds published: ${published}` +
          `\nupdates refused: ${refused.length > 0 ? refused.join(', ') : 'none'}` +
          `\nstale (max staleness ${maxStaleness ?? 'server default'}): ${stale} of ${uploads} ` +
          `honest uploads (${((100 * stale) / Math.max(1, uploads)).toFixed(1)}%)` +
          (roundWindow === undefined
            ? ''
            : `\nwindow closed before the post (round window ${roundWindow} s): ${closed} of ` +
              `${uploads} honest uploads (${((100 * closed) / Math.max(1, uploads)).toFixed(1)}%)`),
      );
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
