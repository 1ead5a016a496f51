/**
 * Two server instances sharing one PostgreSQL database: updates posted to both at once, alternately,
 * must aggregate a round exactly once, lose and duplicate nothing, and publish bit for bit what the
 * SQLite store publishes from the same updates in the same order. The test starts its own cluster
 * (installing Debian's postgresql if missing) and fails when it cannot: set HEARTH_SKIP_PG=1 to skip
 * it on a machine that cannot run PostgreSQL (the only opt-out).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { UPDATE_CONTENT_TYPE } from '../protocol/update-format.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { startPgCluster, type PgCluster } from './pg-cluster.js';
import { isPostgresUrl } from './pg-store.js';
import { startServer, type RunningServer } from './start.js';
import {
  joinRound,
  makeApp,
  makeDelta,
  postUpdate,
  updateBody,
  writeSeedDir,
} from './test-helpers.js';

const SKIP = process.env.HEARTH_SKIP_PG === '1';
const M = 4;

let cluster: PgCluster | undefined;
let servers: RunningServer[] = [];
let seed: Awaited<ReturnType<typeof writeSeedDir>> | undefined;
let config: ServerConfig;

beforeAll(async () => {
  if (SKIP) return;
  cluster = await startPgCluster();
  seed = await writeSeedDir();
  config = resolveConfig({
    aggregation: 'plaintext',
    noiseMultiplier: 0,
    port: 0,
    dbPath: cluster.url,
    modelDir: seed.dir,
    minCohort: M,
    // Every device of this test is one loopback client.
    joinsPerRound: 0,
  });
  // Started together: both race to create the schema and seed version 1.
  servers = await Promise.all([startServer(config), startServer(config)]);
}, 180_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await seed?.cleanup();
  await cluster?.stop();
});

async function join(url: string): Promise<JoinReply> {
  const res = await fetch(`${url}/v1/rounds/join`, { method: 'POST' });
  expect(res.status).toBe(200);
  return (await res.json()) as JoinReply;
}

async function post(url: string, token: string, salt: number): Promise<Response> {
  return fetch(`${url}/v1/updates`, {
    method: 'POST',
    headers: { 'content-type': UPDATE_CONTENT_TYPE },
    body: new Uint8Array(updateBody({ token, examples: 3 + salt, delta: makeDelta(0.6, salt) })),
  });
}

describe.skipIf(SKIP)('PgStore behind two server instances', () => {
  it('recognises PostgreSQL URLs', () => {
    expect(isPostgresUrl('postgres://u@h/db')).toBe(true);
    expect(isPostgresUrl('postgresql://h/db')).toBe(true);
    expect(isPostgresUrl('.hearth/server.db')).toBe(false);
  });

  it('aggregates once, loses nothing, and publishes what SQLite publishes', async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    expect(a.version).toBe(1);
    expect(b.version).toBe(1);
    const urls = [a.url, b.url];
    // M + 1 devices join alternately, then all post at once, alternately: M updates close the round
    // on whichever instance gets there; the one left over finds it published, and is counted in a
    // round 2 on version 2 (one version behind is within the default staleness bound).
    const tickets = await Promise.all(Array.from({ length: M + 1 }, (_, i) => join(urls[i % 2]!)));
    expect(new Set(tickets.map((t) => t.round))).toEqual(new Set([1]));
    const replies = await Promise.all(tickets.map((t, i) => post(urls[(i + 1) % 2]!, t.token, i)));
    expect(replies.map((r) => r.status)).toEqual(tickets.map(() => 202));
    const outcomes = (await Promise.all(replies.map((r) => r.json()))) as UpdateReply[];
    expect(outcomes.filter((r) => r.round === 2)).toEqual([
      { accepted: true, round: 2, received: 1, version: 2 },
    ]);

    // Exactly one new version, seen by both instances.
    for (const server of servers) {
      expect(
        ((await (await fetch(`${server.url}/healthz`)).json()) as { version: number }).version,
      ).toBe(2);
    }
    const client = new pg.Client({ connectionString: cluster!.url });
    await client.connect();
    try {
      const rounds = await client.query<{ id: number; status: string; published_version: number }>(
        'SELECT id, status, published_version FROM rounds ORDER BY id',
      );
      expect(rounds.rows).toEqual([
        { id: 1, status: 'published', published_version: 2 },
        { id: 2, status: 'collecting', published_version: null },
      ]);
      const stored = await client.query<{ token: string }>(
        'SELECT token FROM updates WHERE round = 1 ORDER BY id',
      );
      expect(stored.rows).toHaveLength(M);
      const accepted = tickets.filter((_, i) => outcomes[i]!.round === 1).map((t) => t.token);
      expect(stored.rows.map((r) => r.token).sort()).toEqual([...accepted].sort());

      // A token is single use across instances: accepted by one, refused by the other.
      const ticket = await join(a.url);
      expect(ticket).toMatchObject({ round: 2, version: 2 });
      const body = (salt: number) =>
        new Uint8Array(
          updateBody({ token: ticket.token, baseVersion: 2, delta: makeDelta(0.3, salt) }),
        );
      const send = (url: string) =>
        fetch(`${url}/v1/updates`, {
          method: 'POST',
          headers: { 'content-type': UPDATE_CONTENT_TYPE },
          body: body(9),
        });
      const [first, second] = await Promise.all([send(a.url), send(b.url)]);
      expect([first.status, second.status].sort()).toEqual([202, 403]);
      expect(await a.store.counts()).toEqual({
        versions: 2,
        rounds: 2,
        tokens: M + 2,
        usedTokens: M + 2,
        updates: M + 2,
        abandonedRounds: 0,
      });

      // The same M updates, in the order PostgreSQL stored them, through the SQLite store.
      const order = stored.rows.map((r) => tickets.findIndex((t) => t.token === r.token));
      const reference = await makeApp({ minCohort: M });
      try {
        for (const salt of order) {
          const t = await joinRound(reference.app);
          const res = await postUpdate(
            reference.app,
            updateBody({ token: t.token, examples: 3 + salt, delta: makeDelta(0.6, salt) }),
          );
          expect(res.statusCode).toBe(202);
        }
        const expected = Buffer.from((await reference.store.getWeightBytes(2))!);
        const served = Buffer.from(
          await (await fetch(`${b.url}/v1/model/2/weights`)).arrayBuffer(),
        );
        expect(served.equals(expected)).toBe(true);
      } finally {
        await reference.close();
      }
    } finally {
      await client.end();
    }
  });
});
