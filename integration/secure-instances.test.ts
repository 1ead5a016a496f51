/**
 * Secure aggregation with two server instances on one PostgreSQL database, behind a load balancer
 * that sends each request to the next instance in turn: a round lives in the memory of the instance
 * that formed it, and the other forwards its joins and steps there (server/peers.ts). Devices run the
 * worker's client (worker/secure-client.ts) on real sockets. Set HEARTH_SKIP_PG=1 to skip it on a
 * machine that cannot run PostgreSQL (pg-cluster.ts installs it when missing).
 */
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PATHS, secureStepPath, weightsPath } from '../protocol/routes.js';
import { SECURE_DEVICE_HEADER } from '../protocol/secagg/http.js';
import { takePartSecurely } from '../worker/secure-client.js';
import { resolveConfig } from '../server/config.js';
import { bytesToFloat32 } from '../server/float32-bytes.js';
import { freePort, startPgCluster, type PgCluster } from '../server/pg-cluster.js';
import { INSTANCE_ID_CHARS } from '../server/peers.js';
import { secureEncoding } from '../server/secure-rounds.js';
import { startServer, type RunningServer } from '../server/start.js';
import { makeDelta, seedWeights, writeSeedDir } from '../server/test-helpers.js';

const SKIP = process.env.HEARTH_SKIP_PG === '1';
const S = 1;
const OPERATOR_TOKEN = 'peer-test-operator-token-0123456789';

let cluster: PgCluster | undefined;
let seed: Awaited<ReturnType<typeof writeSeedDir>> | undefined;
let servers: RunningServer[] = [];
let balancer: Balancer | undefined;
let db: pg.Client | undefined;

/** A round-robin load balancer: each request goes to the next backend; it logs who got what. */
interface Balancer {
  readonly url: string;
  readonly log: { backend: number; path: string }[];
  close(): Promise<void>;
}

async function startBalancer(backends: readonly string[]): Promise<Balancer> {
  const log: Balancer['log'] = [];
  let next = 0;
  const server: Server = createServer((req, res) => {
    const backend = next++ % backends.length;
    log.push({ backend, path: req.url ?? '' });
    const target = new URL(req.url ?? '/', backends[backend]);
    const upstream = httpRequest(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  if (SKIP) return;
  cluster = await startPgCluster();
  seed = await writeSeedDir();
  db = new pg.Client({ connectionString: cluster.url });
  await db.connect();
}, 180_000);

afterAll(async () => {
  await db?.end();
  await seed?.cleanup();
  await cluster?.stop();
});

afterEach(async () => {
  await balancer?.close();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  balancer = undefined;
  // Each test starts from an empty database.
  await db?.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
});

/** Two instances on the cluster, each registered at its own URL, behind a balancer. */
async function startInstances(): Promise<{ url: string; instances: RunningServer[] }> {
  const ports = [await freePort(), await freePort()];
  servers = await Promise.all(
    ports.map((port) =>
      startServer(
        resolveConfig({
          port,
          dbPath: cluster!.url,
          modelDir: seed!.dir,
          weightsDtype: 'float32',
          noiseMultiplier: 0,
          clipNorm: S,
          aggregation: 'secure',
          minCohort: 4,
          secureCohort: 6,
          secureStageSeconds: 4,
          secureJoinSeconds: 60,
          // Every device of this test is one loopback client.
          joinsPerRound: 0,
          operatorToken: OPERATOR_TOKEN,
          instanceUrl: `http://127.0.0.1:${port}`,
        }),
      ),
    ),
  );
  balancer = await startBalancer(servers.map((s) => s.url));
  return { url: balancer.url, instances: servers };
}

async function instanceIds(): Promise<string[]> {
  const { rows } = await db!.query<{ id: string }>('SELECT id FROM instances ORDER BY url');
  return rows.map((r) => r.id);
}

describe.skipIf(SKIP)('secure rounds across two instances on PostgreSQL', () => {
  it('runs one round over both: every join reaches it, and it publishes once', async () => {
    const { url, instances } = await startInstances();
    expect(await instanceIds()).toHaveLength(2);
    // Six devices, every request to the next instance in turn; one leaves after sending its keys.
    const deltas = [1, 2, 3, 4, 5, 6].map((salt) => makeDelta(0.9 * S, salt));
    const outcomes = await Promise.all(
      deltas.map((delta, i) =>
        takePartSecurely({
          endpoint: url,
          expected: { minimum: 4, clipNorm: S },
          input: () => delta,
          ...(i === 1 ? { leaveAfter: 'keys' as const } : {}),
        }),
      ),
    );
    expect(outcomes[1]).toMatchObject({ left: 'keys' });
    for (const i of [0, 2, 3, 4, 5]) {
      expect(outcomes[i]).toMatchObject({ status: 'published', version: 2, survivors: 5 });
    }
    // The joins went to both instances and still made one round; so did its steps.
    const joins = balancer!.log.filter((r) => r.path === PATHS.secureJoin);
    expect(new Set(joins.map((r) => r.backend))).toEqual(new Set([0, 1]));
    const steps = balancer!.log.filter((r) => r.path.startsWith('/v1/secure/rounds/'));
    const rounds = new Set(steps.map((r) => r.path.split('/')[4]));
    expect(rounds.size).toBe(1);
    expect(new Set(steps.map((r) => r.backend))).toEqual(new Set([0, 1]));

    // Published once, the survivors' mean, seen by both instances.
    const expected = seedWeights();
    const survivors = deltas.filter((_, i) => i !== 1);
    for (const delta of survivors) {
      for (let j = 0; j < expected.length; j++) expected[j]! += delta[j]! / survivors.length;
    }
    // To the round's rounding: the mean of 5 is off by a standard deviation of at most
    // sqrt(5 / 4) / (5 scale) a coordinate (integration/secure-rounds.test.ts says why).
    const { scale } = secureEncoding(S, 0, 6, 4, expected.length);
    const spread = Math.sqrt(5 / 4) / (5 * scale);
    for (const instance of instances) {
      const health = await (await fetch(`${instance.url}${PATHS.health}`)).json();
      expect(health.version).toBe(2);
      const res = await fetch(`${instance.url}${weightsPath(2)}`);
      const published = bytesToFloat32(new Uint8Array(await res.arrayBuffer()));
      let worst = 0;
      for (let j = 0; j < expected.length; j++) {
        worst = Math.max(worst, Math.abs(published[j]! - expected[j]!));
      }
      expect(worst).toBeLessThan(5 * spread);
    }
    const stored = await db!.query(
      "SELECT participants FROM rounds WHERE status = 'published' ORDER BY id",
    );
    expect(stored.rows).toEqual([{ participants: 5 }]);
    expect((await db!.query('SELECT COUNT(*)::int AS n FROM updates')).rows).toEqual([{ n: 0 }]);
    // The round formed: no instance claims a forming round any more.
    expect((await db!.query('SELECT * FROM secure_forming')).rows).toEqual([]);
  }, 60_000);

  it('takes over from an instance that is gone, whose rounds are then unknown', async () => {
    const { instances } = await startInstances();
    const [a] = instances as [RunningServer, RunningServer];
    // A crashed instance: its row and its claim on a forming round outlive it.
    const dead = 'deadbeef';
    expect(dead).toHaveLength(INSTANCE_ID_CHARS);
    const port = await freePort(); // nothing listens there
    await db!.query('INSERT INTO instances (id, url, seen_at) VALUES ($1, $2, $3)', [
      dead,
      `http://127.0.0.1:${port}`,
      new Date().toISOString(),
    ]);
    const deadRound = `${dead}${'0'.repeat(24)}`;
    await db!.query('INSERT INTO secure_forming (id, round, instance) VALUES (1, $1, $2)', [
      deadRound,
      dead,
    ]);
    const step = await fetch(`${a.url}${secureStepPath(deadRound, 'params')}`, {
      method: 'POST',
      headers: { [SECURE_DEVICE_HEADER]: 'ab'.repeat(16) },
    });
    expect(step.status).toBe(404);
    expect((await step.json()).error.code).toBe('HEARTH_E_SECAGG_ROUND');

    // A join finds the claim's instance silent, drops the claim, and opens a round of its own.
    const join = await fetch(`${a.url}${PATHS.secureJoin}`, { method: 'POST' });
    expect(join.status).toBe(200);
    const { round } = (await join.json()) as { round: string };
    const ids = await instanceIds();
    const own = round.slice(0, INSTANCE_ID_CHARS);
    expect(ids).toContain(own);
    expect(own).not.toBe(dead);
    await expect
      .poll(async () => (await db!.query('SELECT round FROM secure_forming')).rows)
      .toEqual([{ round }]);
  }, 60_000);
});
