/**
 * Durability of the real server binary under SIGKILL: the CLI (`node --import tsx server/main.ts`) on
 * a SQLite file, killed right after it acknowledged updates, and killed inside the aggregation
 * transaction (HEARTH_TEST_CRASH_IN_AGGREGATION=1, see main.ts). After every restart no acknowledged
 * update may be missing, a round publishes exactly once, and the published model must equal, bit for
 * bit, what an uninterrupted in-process server computes from the same updates in the same order.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JoinReply, UpdateReply } from '../protocol/api.js';
import { UPDATE_CONTENT_TYPE } from '../protocol/update-format.js';
import { exited, spawnServerCli, type CliServer } from './cli-process.js';
import {
  joinRound,
  makeApp,
  makeDelta,
  postUpdate,
  updateBody,
  writeSeedDir,
} from './test-helpers.js';

let dir: string;
let dbPath: string;
let seed: Awaited<ReturnType<typeof writeSeedDir>>;
const children = new Set<ChildProcess>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-crash-'));
  dbPath = join(dir, 'hearth.db');
  seed = await writeSeedDir();
});
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map(exited));
  await seed.cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** Starts the CLI on the test database and resolves with the URL it prints. */
async function spawnServer(
  minCohort: number,
  env: Record<string, string> = {},
): Promise<CliServer> {
  const args = [
    '--port',
    '0',
    '--db',
    dbPath,
    '--model',
    seed.dir,
    '--min-cohort',
    String(minCohort),
    '--noise-multiplier',
    '0',
    '--aggregation',
    'plaintext',
    // Every device of this test is one loopback client.
    '--joins-per-round',
    '0',
  ];
  const server = await spawnServerCli(args, { env });
  children.add(server.child);
  server.child.on('exit', () => children.delete(server.child));
  return server;
}

/** SIGKILL: no shutdown handler, no flush, no close; only what was committed survives. */
async function kill(server: CliServer): Promise<void> {
  server.child.kill('SIGKILL');
  await exited(server.child);
  expect(server.child.signalCode).toBe('SIGKILL');
}

async function join_(server: CliServer): Promise<JoinReply> {
  const res = await fetch(`${server.url}/v1/rounds/join`, { method: 'POST' });
  expect(res.status).toBe(200);
  return (await res.json()) as JoinReply;
}

function post(server: CliServer, token: string, salt: number, baseVersion = 1): Promise<Response> {
  return fetch(`${server.url}/v1/updates`, {
    method: 'POST',
    headers: { 'content-type': UPDATE_CONTENT_TYPE },
    body: new Uint8Array(updateBody({ token, baseVersion, delta: makeDelta(0.4, salt) })),
  });
}

async function weights(server: CliServer, version: number): Promise<Buffer> {
  const res = await fetch(`${server.url}/v1/model/${version}/weights`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The rows that matter, read beside the running server (WAL lets a reader in). */
function audit(): {
  updates: string[];
  rounds: { id: number; status: string; published_version: number | null }[];
  versions: number;
  used: number;
} {
  const db = new Database(dbPath, { readonly: true });
  try {
    return {
      updates: (
        db.prepare('SELECT token FROM updates ORDER BY id').all() as { token: string }[]
      ).map((r) => r.token),
      rounds: db.prepare('SELECT id, status, published_version FROM rounds ORDER BY id').all() as {
        id: number;
        status: string;
        published_version: number | null;
      }[],
      versions: (db.prepare('SELECT COUNT(*) AS n FROM versions').get() as { n: number }).n,
      used: (
        db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NOT NULL').get() as {
          n: number;
        }
      ).n,
    };
  } finally {
    db.close();
  }
}

/** Version 2's weights from an uninterrupted in-process server given the same updates in order. */
async function uninterrupted(minCohort: number, salts: readonly number[]): Promise<Buffer> {
  const t = await makeApp({ minCohort });
  try {
    for (const salt of salts) {
      const { token } = await joinRound(t.app);
      const res = await postUpdate(t.app, updateBody({ token, delta: makeDelta(0.4, salt) }));
      expect(res.statusCode).toBe(202);
    }
    expect(await t.store.latestVersion()).toBe(2);
    return Buffer.from((await t.store.getWeightBytes(2))!);
  } finally {
    await t.close();
  }
}

describe('SIGKILL durability of the server binary', () => {
  it(
    'loses no acknowledged update and publishes the round exactly once',
    { timeout: 60_000 },
    async () => {
      const first = await spawnServer(4);
      const tokens = [];
      for (let i = 0; i < 5; i++) tokens.push((await join_(first)).token);
      for (const [i, salt] of [1, 2, 3].entries()) {
        const res = await post(first, tokens[i]!, salt);
        expect(res.status).toBe(202);
        expect(((await res.json()) as UpdateReply).received).toBe(i + 1);
      }
      await kill(first);

      const second = await spawnServer(4);
      expect(audit()).toMatchObject({
        updates: tokens.slice(0, 3),
        rounds: [{ id: 1, status: 'collecting', published_version: null }],
        versions: 1,
        used: 3,
      });
      // A token issued before the crash is still good: tokens are as durable as updates.
      const closing = await post(second, tokens[3]!, 4);
      expect(closing.status).toBe(202);
      expect((await closing.json()) as UpdateReply).toEqual({
        accepted: true,
        round: 1,
        received: 4,
        version: 2,
      });
      await kill(second);

      const third = await spawnServer(4);
      const state = audit();
      expect(state).toMatchObject({
        updates: tokens.slice(0, 4),
        rounds: [{ id: 1, status: 'published', published_version: 2 }],
        versions: 2,
        used: 4,
      });
      const health = (await (await fetch(`${third.url}/healthz`)).json()) as { version: number };
      expect(health.version).toBe(2);
      expect((await weights(third, 2)).equals(await uninterrupted(4, [1, 2, 3, 4]))).toBe(true);
      // The last token's round is published: under the staleness bound its update is counted in a
      // new round on version 2, never added to the published one.
      const late = await post(third, tokens[4]!, 5, 2);
      expect(late.status).toBe(202);
      expect((await late.json()) as UpdateReply).toEqual({
        accepted: true,
        round: 2,
        received: 1,
        version: 2,
      });
      expect(audit()).toMatchObject({
        updates: tokens.slice(0, 5),
        rounds: [
          { id: 1, status: 'published', published_version: 2 },
          { id: 2, status: 'collecting', published_version: null },
        ],
        versions: 2,
        used: 5,
      });
      await kill(third);
    },
  );

  it(
    'rolls back a round killed mid-aggregation, then aggregates it once',
    { timeout: 60_000 },
    async () => {
      const first = await spawnServer(3, { HEARTH_TEST_CRASH_IN_AGGREGATION: '1' });
      const tokens = [];
      for (let i = 0; i < 3; i++) tokens.push((await join_(first)).token);
      expect((await post(first, tokens[0]!, 1)).status).toBe(202);
      expect((await post(first, tokens[1]!, 2)).status).toBe(202);
      // The third update completes the round; the process dies inside the transaction, before the
      // commit, so this one is never acknowledged.
      await expect(post(first, tokens[2]!, 3)).rejects.toThrow();
      await exited(first.child);
      expect(first.child.signalCode).toBe('SIGKILL');

      const second = await spawnServer(3);
      expect(audit()).toEqual({
        updates: tokens.slice(0, 2),
        rounds: [{ id: 1, status: 'collecting', published_version: null }],
        versions: 1,
        used: 2,
      });
      // The unacknowledged update's token was rolled back with it, so the device's retry is taken.
      const retry = await post(second, tokens[2]!, 3);
      expect(retry.status).toBe(202);
      expect(((await retry.json()) as UpdateReply).version).toBe(2);
      const expected = await uninterrupted(3, [1, 2, 3]);
      expect((await weights(second, 2)).equals(expected)).toBe(true);
      await kill(second);

      const third = await spawnServer(3);
      expect(audit()).toEqual({
        updates: tokens,
        rounds: [{ id: 1, status: 'published', published_version: 2 }],
        versions: 2,
        used: 3,
      });
      expect((await weights(third, 2)).equals(expected)).toBe(true);
      await kill(third);
    },
  );
});
