/**
 * One conformance suite for every Store: the same assertions run on SQLite and on PostgreSQL, so both
 * stores apply the same round, token, ledger and seeding rules and read back what they wrote. Each
 * test gets a database of its own. PostgreSQL runs on a throwaway cluster (pg-cluster.ts) and the
 * suite fails when it cannot start one: set HEARTH_SKIP_PG=1 to skip that half on a machine that
 * cannot run PostgreSQL (the only opt-out). What only one store has (SQLite's file format and its
 * migrations, PostgreSQL's several instances on one database) is tested beside that store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorReply, UpdateReply } from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { decodeFloat16, encodeFloat16 } from '../protocol/float16.js';
import { computeEpsilon } from '../protocol/privacy/index.js';
import { DTYPE_FLOAT16, DTYPE_FLOAT32, type UpdateDtype } from '../protocol/update-format.js';
import { MAX_STALENESS, resolveConfig, type ServerConfig } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { splitFlat } from '../protocol/manifest.js';
import { layoutFieldsOf } from './versions.js';
import { roundPolicy } from './ingest.js';
import { startPgCluster, type PgCluster } from './pg-cluster.js';
import { PgStore } from './pg-store.js';
import { roundExpiry } from './round-expiry.js';
import { loadSeedModel, seedIfEmpty } from './seed.js';
import { SqliteStore } from './sqlite-store.js';
import {
  CATALOG_VERSIONS_KEPT,
  MANIFESTS_KEPT,
  ROUNDS_WITH_ROWS_KEPT,
  type Store,
  WEIGHTS_KEPT,
} from './store.js';
import {
  joinRound,
  makeDelta,
  postUpdate,
  PARAMS,
  PRIVATE,
  runRound,
  seedWeights,
  type ServedStore,
  serveStore,
  submission,
  type TestAppOptions,
  updateBody,
  writeSeedDir,
} from './test-helpers.js';

const SKIP_PG = process.env.HEARTH_SKIP_PG === '1';

/** A database of the store under test, fresh for one test. */
interface TestDatabase {
  /** Opens a store on it; opening it again after closing is a restart. */
  open(): Promise<Store>;
  /** The rows of a SELECT, read beside the store the way an operator would look at them. */
  rows(sql: string): Promise<unknown[]>;
  /** Runs SQL statements on it (its stores must be closed): turns it into an older schema. */
  exec(sql: string): Promise<void>;
  /** Deletes the database (its stores must be closed). */
  drop(): Promise<void>;
}

/** One kind of store, and how to make databases for it. */
interface Backend {
  readonly name: string;
  readonly skip: boolean;
  /** Starts what its databases live in; resolves once they can be created. */
  start(): Promise<void>;
  stop(): Promise<void>;
  create(): Promise<TestDatabase>;
}

const sqlite: Backend = {
  name: 'SqliteStore',
  skip: false,
  start: async () => undefined,
  stop: async () => undefined,
  async create() {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-conformance-'));
    const path = join(dir, 'h.db');
    return {
      open: async () => new SqliteStore(path),
      async rows(sql) {
        const db = new Database(path, { readonly: true });
        try {
          return db.prepare(sql).all();
        } finally {
          db.close();
        }
      },
      async exec(sql) {
        const db = new Database(path);
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      },
      drop: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

/** PostgreSQL: one cluster for the suite, one database per test. */
function postgres(): Backend {
  let cluster: PgCluster | undefined;
  let admin: pg.Client | undefined;
  let created = 0;
  return {
    name: 'PgStore',
    skip: SKIP_PG,
    async start() {
      cluster = await startPgCluster();
      admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
    },
    async stop() {
      await admin?.end();
      await cluster?.stop();
    },
    async create() {
      const name = `hearth_conformance_${++created}`;
      await admin!.query(`CREATE DATABASE ${name}`);
      const url = new URL(cluster!.url);
      url.pathname = `/${name}`;
      return {
        open: () => PgStore.open(url.href),
        async rows(sql) {
          const client = new pg.Client({ connectionString: url.href });
          await client.connect();
          try {
            return (await client.query(sql)).rows;
          } finally {
            await client.end();
          }
        },
        async exec(sql) {
          const client = new pg.Client({ connectionString: url.href });
          await client.connect();
          try {
            await client.query(sql);
          } finally {
            await client.end();
          }
        },
        async drop() {
          await admin!.query(`DROP DATABASE ${name} WITH (FORCE)`);
        },
      };
    },
  };
}

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

/** Expected example-weighted FedAvg computed here in float64, independently of aggregate(). */
function expectedWeights(updates: { delta: Float32Array; examples: number }[]): Float64Array {
  const global = seedWeights();
  const out = Float64Array.from(global);
  let total = 0;
  for (const { delta, examples } of updates) {
    const w = Math.min(Math.max(examples, 1), 1000);
    const norm = Math.sqrt(delta.reduce((s, v) => s + v * v, 0));
    const scale = norm > 1 ? 1 / norm : 1;
    total += w;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + w * delta[i]! * scale;
  }
  // out = global + sum / total, applied as (out - global) / total
  return Float64Array.from(out, (v, i) => global[i]! + (v - global[i]!) / total);
}

describe.each([sqlite, postgres()])('$name', (backend) => {
  describe.skipIf(backend.skip)('store conformance', () => {
    let db: TestDatabase;
    let store: Store;
    let now = T0;
    const clock = (): number => now;
    const cleanups: (() => Promise<void>)[] = [];

    beforeAll(() => backend.start(), 180_000);
    afterAll(() => backend.stop());
    beforeEach(async () => {
      now = T0;
      db = await backend.create();
      store = await db.open();
    });
    afterEach(async () => {
      while (cleanups.length > 0) await cleanups.pop()!();
      await store.close();
      await db.drop();
    });

    /** Seeds the store under test with the test model. */
    async function seedStore(config: ServerConfig): Promise<void> {
      const seed = await writeSeedDir();
      try {
        await store.seed(await loadSeedModel(seed.dir, config));
      } finally {
        await seed.cleanup();
      }
    }

    /** An app on the store under test, closed after the test. */
    async function serve(
      overrides: Partial<ServerConfig>,
      options: TestAppOptions = {},
    ): Promise<ServedStore> {
      const served = await serveStore(store, overrides, options);
      cleanups.push(served.close);
      return served;
    }

    /** Closes the store under test and opens it again on the same database, as a restart does. */
    async function reopen(): Promise<void> {
      await store.close();
      store = await db.open();
    }

    describe('seeding', () => {
      it('seeds only an empty store', async () => {
        const config = resolveConfig({
          noiseMultiplier: 0,
          dbPath: ':memory:',
          clipNorm: 2,
          minCohort: 4,
        });
        const seed = await writeSeedDir();
        try {
          await expect(seedIfEmpty(store, config)).rejects.toThrow(/HEARTH|--model/);
          expect(await seedIfEmpty(store, { ...config, modelDir: seed.dir })).toBe(1);
          expect(await store.seed(await loadSeedModel(seed.dir, config))).toBe(false);
          expect((await store.counts()).versions).toBe(1);
        } finally {
          await seed.cleanup();
        }
      });
    });

    describe('submitting', () => {
      // No staleness bound: version 0 below is one behind, and so stale.
      const config = resolveConfig({ noiseMultiplier: 0, minCohort: 2, maxStaleness: 0 });

      it('rolls the whole update back when aggregation fails, so the round can still close once', async () => {
        await seedStore(config);
        await store.joinRound('a'.repeat(32));
        await store.joinRound('b'.repeat(32));
        await store.submitUpdate(submission('a'.repeat(32), 1), roundPolicy(config));
        const before = await store.counts();
        const failing = {
          minCohort: 2,
          maxStaleness: config.maxStaleness,
          aggregate: (_global: Float32Array, updates: Iterable<unknown>) => {
            // Read one row and stop without closing the iterator: the store must close its cursor.
            updates[Symbol.iterator]().next();
            throw new Error('crash in the middle of aggregation');
          },
        };
        await expect(store.submitUpdate(submission('b'.repeat(32), 2), failing)).rejects.toThrow(
          /crash/,
        );
        expect(await store.counts()).toEqual(before);
        const outcome = await store.submitUpdate(
          submission('b'.repeat(32), 2),
          roundPolicy(config),
        );
        expect(outcome).toEqual({ round: 1, received: 2, version: 2, published: true });
        expect(await store.counts()).toMatchObject({ versions: 2, updates: 2, usedTokens: 2 });
      });

      it('refuses a token twice and a stale base version inside the transaction', async () => {
        await seedStore(config);
        await store.joinRound('c'.repeat(32));
        await store.submitUpdate(submission('c'.repeat(32), 1), roundPolicy(config));
        const reuse = store.submitUpdate(submission('c'.repeat(32), 2), roundPolicy(config));
        await expect(reuse).rejects.toMatchObject({ code: 'HEARTH_E_ROUND_TOKEN' });
        const stale = store.submitUpdate(
          { ...submission('c'.repeat(32), 2), baseVersion: 0 },
          roundPolicy(config),
        );
        await expect(stale).rejects.toBeInstanceOf(HearthError);
        await expect(stale).rejects.toMatchObject({ code: 'HEARTH_E_UPDATE_STALE' });
      });
    });

    describe('summed rounds (secure aggregation)', () => {
      const config = resolveConfig({ noiseMultiplier: 0, minCohort: 3, maxStaleness: 1 });
      const total = (count: number, baseVersion = 1, salt = 1) => {
        const sum = makeDelta(0.5 * count, salt);
        return { baseVersion, sum, count, openedAt: new Date(T0).toISOString() };
      };

      it('publishes the mean of the sum and records the round with its participants only', async () => {
        await seedStore(config);
        const summed = total(4);
        const outcome = await store.publishSum(summed, roundPolicy(config), new Date(T0));
        expect(outcome).toEqual({ round: 1, version: 2 });
        const published = bytesToFloat32((await store.getWeightBytes(2))!);
        const seed = seedWeights();
        for (let i = 0; i < PARAMS; i++) {
          // FedAvg at the default server learning rate 1: the mean, sum / count.
          expect(published[i]).toBeCloseTo(seed[i]! + summed.sum[i]! / 4, 6);
        }
        expect(await store.counts()).toMatchObject({
          versions: 2,
          rounds: 1,
          updates: 0,
          tokens: 0,
        });
        const [round] = await store.history(5);
        expect(round).toMatchObject({
          status: 'published',
          publishedVersion: 2,
          updates: 4,
          norms: [],
        });
        expect(await store.privacyLedger()).toEqual([
          { round: 1, version: 2, noiseMultiplier: 0, sampleRate: config.sampleRate * 2 },
        ]);
        expect(await db.rows('SELECT participants FROM rounds')).toEqual([{ participants: 4 }]);
      });

      it('refuses a sum over fewer than m, outside the staleness bound or of another length, changing nothing', async () => {
        await seedStore(config);
        const policy = roundPolicy(config);
        await expect(store.publishSum(total(2), policy)).rejects.toMatchObject({
          code: 'HEARTH_E_SECAGG_THRESHOLD',
        });
        const short = { ...total(3), sum: makeDelta(1).subarray(1) };
        await expect(store.publishSum(short, policy)).rejects.toMatchObject({
          code: 'HEARTH_E_UPDATE_SHAPE',
        });
        const failing = {
          ...policy,
          aggregateSum: () => {
            throw new Error('crash in the middle of aggregation');
          },
        };
        await expect(store.publishSum(total(3), failing)).rejects.toThrow(/crash/);
        expect(await store.counts()).toMatchObject({ versions: 1, rounds: 0 });
        // On v1, v2 and then v3: a sum on v1 is one behind at v2 (taken) and two at v3 (refused).
        expect(await store.publishSum(total(3), policy)).toMatchObject({ version: 2 });
        expect(await store.publishSum(total(3, 1, 2), policy)).toMatchObject({ version: 3 });
        await expect(store.publishSum(total(3, 1, 3), policy)).rejects.toMatchObject({
          code: 'HEARTH_E_UPDATE_STALE',
        });
        expect(await store.counts()).toMatchObject({ versions: 3, rounds: 2 });
      });
    });

    describe('rounds', () => {
      it('aggregates after minCohort updates into version 2, exactly once', async () => {
        // FedAvg's weights, which clamp the claimed counts (the default weighs all alike).
        const { app } = await serve({ minCohort: 3, clipNorm: 1, aggregator: 'weighted-mean' });
        const updates = [
          { delta: makeDelta(0.5, 1), examples: 10 },
          { delta: makeDelta(0.9, 2), examples: 5000 }, // clamped to maxExamples
          { delta: makeDelta(1.0005, 3), examples: 0 }, // within the norm slack; re-clipped to S; weight 1
        ];
        const replies: UpdateReply[] = [];
        for (const u of updates) {
          const { token, round } = await joinRound(app);
          expect(round).toBe(1);
          const res = await postUpdate(app, updateBody({ token, ...u }));
          expect(res.statusCode).toBe(202);
          replies.push(res.json<UpdateReply>());
        }
        expect(replies.map((r) => [r.round, r.received, r.version])).toEqual([
          [1, 1, 1],
          [1, 2, 1],
          [1, 3, 2],
        ]);

        const manifest = (await app.inject({ method: 'GET', url: '/v1/model' })).json();
        expect(manifest.version).toBe(2);
        expect(manifest.weights.url).toBe('/v1/model/2/weights');
        expect(manifest.itemIds).toEqual(['', 'a', 'b', 'c', 'd', 'e']);
        expect(manifest.popular).toEqual([3, 1, 2]);
        const res = await app.inject({ method: 'GET', url: '/v1/model/2/weights' });
        const weights = bytesToFloat32(res.rawPayload);
        const expected = expectedWeights(updates);
        expect(weights.length).toBe(expected.length);
        for (let i = 0; i < expected.length; i++) {
          expect(Math.abs(weights[i]! - expected[i]!)).toBeLessThan(1e-6);
        }
        // The old version is still served, unchanged.
        const v1 = bytesToFloat32(
          (await app.inject({ method: 'GET', url: '/v1/model/1/weights' })).rawPayload,
        );
        expect(Array.from(v1)).toEqual(Array.from(seedWeights()));
        expect(await store.counts()).toMatchObject({ versions: 2, rounds: 1, updates: 3 });

        // A new round opens on version 2.
        const next = await joinRound(app);
        expect([next.round, next.version]).toEqual([2, 2]);
      });

      it('rejects stale updates and tokens of a closed round after an aggregation, with s = 0', async () => {
        const { app } = await serve({ minCohort: 3, clipNorm: 1, maxStaleness: 0 });
        const late = await joinRound(app);
        for (let k = 0; k < 3; k++) {
          const { token } = await joinRound(app);
          expect(
            (await postUpdate(app, updateBody({ token, delta: makeDelta(0.2, k) }))).statusCode,
          ).toBe(202);
        }
        const before = await store.counts();
        const stale = await postUpdate(app, updateBody({ token: late.token, baseVersion: 1 }));
        expect(stale.statusCode).toBe(409);
        expect(stale.json<ErrorReply>().error.code).toBe('HEARTH_E_UPDATE_STALE');
        // Rebased on version 2 but still holding a round-1 token: the token is no longer valid.
        const closed = await postUpdate(app, updateBody({ token: late.token, baseVersion: 2 }));
        expect(closed.statusCode).toBe(403);
        expect(closed.json<ErrorReply>().error.code).toBe('HEARTH_E_ROUND_TOKEN');
        expect(await store.counts()).toEqual(before);
      });

      it('reports each round with the norms of its updates, oldest first, the newest `limit` only', async () => {
        const config = resolveConfig({ noiseMultiplier: 0, minCohort: 2 });
        await seedStore(config);
        const expiry = { now: new Date(T0), openedBefore: new Date(0), minCohort: 2 };
        const at = new Date(T0).toISOString();
        for (const token of ['a', 'b', 'c'].map((c) => c.repeat(32))) {
          await store.joinRound(token, expiry);
        }
        const submit = (token: string, norm: number, baseVersion: number) =>
          store.submitUpdate(
            { token, baseVersion, examples: 1, norm, delta: makeDelta(norm) },
            roundPolicy(config),
            expiry,
          );
        await submit('a'.repeat(32), 0.5, 1);
        await submit('b'.repeat(32), 0.25, 1);
        await store.joinRound('d'.repeat(32), expiry);
        await submit('d'.repeat(32), 0.75, 2);
        const round1 = {
          round: 1,
          baseVersion: 1,
          status: 'published',
          openedAt: at,
          publishedVersion: 2,
          publishedAt: at,
          updates: 2,
          norms: [0.5, 0.25],
        };
        const round2 = {
          round: 2,
          baseVersion: 2,
          status: 'collecting',
          openedAt: at,
          publishedVersion: null,
          publishedAt: null,
          updates: 1,
          norms: [0.75],
        };
        expect(await store.history(10)).toEqual([round1, round2]);
        expect(await store.history(1)).toEqual([round2]);
        // The unused token of round 1 counts as issued, not as an update.
        expect(await store.counts()).toEqual({
          versions: 2,
          rounds: 2,
          tokens: 4,
          usedTokens: 3,
          updates: 3,
          abandonedRounds: 0,
        });
      });
    });

    describe('staleness bound', () => {
      const tokens = ['a', 'b', 'c', 'd'].map((c) => c.repeat(32));
      const [a, b, c, d] = tokens as [string, string, string, string];

      it('counts updates up to s versions behind in the current round, and refuses older ones', async () => {
        const config = resolveConfig({ noiseMultiplier: 0, minCohort: 1, maxStaleness: 2 });
        await seedStore(config);
        // Four devices join round 1 on version 1; each update then publishes a version.
        for (const token of tokens) await store.joinRound(token);
        const submit = (token: string, salt: number, baseVersion = 1) =>
          store.submitUpdate({ ...submission(token, salt), baseVersion }, roundPolicy(config));
        expect(await submit(a, 1)).toEqual({ round: 1, received: 1, version: 2, published: true });
        // One and two versions behind, with tokens of the published round 1: each is counted in a
        // round of its own on the current version, opened for it.
        expect(await submit(b, 2)).toEqual({ round: 2, received: 1, version: 3, published: true });
        expect(await submit(c, 3)).toEqual({ round: 3, received: 1, version: 4, published: true });
        // Three behind: stale, whichever version it claims, because its token is that old too.
        await expect(submit(d, 4)).rejects.toMatchObject({ code: 'HEARTH_E_UPDATE_STALE' });
        await expect(submit(d, 4, 4)).rejects.toMatchObject({
          code: 'HEARTH_E_ROUND_TOKEN',
          message: expect.stringMatching(/closed round/),
        });
        expect((await store.history(10)).map((r) => [r.round, r.baseVersion, r.updates])).toEqual([
          [1, 1, 1],
          [2, 2, 1],
          [3, 3, 1],
        ]);
        expect(await store.counts()).toMatchObject({ versions: 4, tokens: 4, usedTokens: 3 });
      });

      it('counts a stale token once, in the collecting round, and adds its delta to the current model', async () => {
        const config = resolveConfig({ noiseMultiplier: 0, minCohort: 2, maxStaleness: 1 });
        await seedStore(config);
        for (const token of [a, b, c]) await store.joinRound(token);
        const submit = (token: string, salt: number, baseVersion: number) =>
          store.submitUpdate({ ...submission(token, salt), baseVersion }, roundPolicy(config));
        await submit(a, 1, 1);
        expect(await submit(b, 2, 1)).toMatchObject({ round: 1, version: 2, published: true });
        expect(await store.joinRound(d)).toEqual({ round: 2, version: 2 });
        // c joined round 1 and trained on version 1; round 1 is published, so c counts in round 2.
        expect(await submit(c, 3, 1)).toEqual({
          round: 2,
          received: 1,
          version: 2,
          published: false,
        });
        // A token is single use: the device behind it cannot add a second update anywhere.
        await expect(submit(c, 4, 2)).rejects.toMatchObject({
          code: 'HEARTH_E_ROUND_TOKEN',
          message: expect.stringMatching(/already used/),
        });
        expect(await submit(d, 5, 2)).toEqual({
          round: 2,
          received: 2,
          version: 3,
          published: true,
        });
        // FedBuff: the stale delta is applied to version 2 as it is, averaged with equal weight.
        const v2 = bytesToFloat32((await store.getWeightBytes(2))!);
        const v3 = bytesToFloat32((await store.getWeightBytes(3))!);
        const [dc, dd] = [makeDelta(0.5, 3), makeDelta(0.5, 5)];
        for (let i = 0; i < PARAMS; i++) {
          expect(v3[i]).toBeCloseTo(v2[i]! + (dc[i]! + dd[i]!) / 2, 6);
        }
        expect(await store.counts()).toMatchObject({ rounds: 2, updates: 4, usedTokens: 4 });
      });

      it('refuses a stale update over HTTP beyond s, and one in another layout', async () => {
        const { app } = await serve({ minCohort: 2, maxStaleness: 1 });
        const late = [await joinRound(app), await joinRound(app)];
        await runRound(app, 2, 1);
        await runRound(app, 2, 2);
        const before = await store.counts();
        // Two behind with s = 1.
        const stale = await postUpdate(app, updateBody({ token: late[0]!.token, baseVersion: 1 }));
        expect(stale.statusCode).toBe(409);
        expect(stale.json<ErrorReply>().error.code).toBe('HEARTH_E_UPDATE_STALE');
        // One behind, within s, but not in the model's layout.
        const token = (await joinRound(app)).token;
        const shape = await postUpdate(app, updateBody({ token, baseVersion: 2, layoutHash: 7 }));
        expect(shape.statusCode).toBe(422);
        expect(shape.json<ErrorReply>().error.code).toBe('HEARTH_E_UPDATE_SHAPE');
        // Nothing stored but the token (and the round 3 its join opened).
        expect(await store.counts()).toEqual({
          ...before,
          rounds: before.rounds + 1,
          tokens: before.tokens + 1,
        });
        const fine = await postUpdate(app, updateBody({ token, baseVersion: 2 }));
        expect(fine.json<UpdateReply>()).toEqual({
          accepted: true,
          round: 3,
          received: 1,
          version: 3,
        });
      });
    });

    describe('updates at rest', () => {
      it('keeps a float16 update in half the bytes (lossless), a float32 one as it came', async () => {
        const t = await serve({ minCohort: 3 });
        const half = decodeFloat16(encodeFloat16(makeDelta(0.4, 1)));
        const a = await joinRound(t.app);
        const b = await joinRound(t.app);
        const c = await joinRound(t.app);
        const post = (token: string, delta: Float32Array, dtype: UpdateDtype) =>
          postUpdate(t.app, updateBody({ token, delta, dtype }));
        expect((await post(a.token, half, DTYPE_FLOAT16)).statusCode).toBe(202);
        expect((await post(b.token, makeDelta(0.3, 2), DTYPE_FLOAT32)).statusCode).toBe(202);
        const sizes = (await db.rows(
          'SELECT length(delta) AS bytes FROM update_vectors ORDER BY update_id',
        )) as {
          bytes: number;
        }[];
        expect(sizes.map((r) => Number(r.bytes))).toEqual([2 * PARAMS + 1, 4 * PARAMS]);
        // The round aggregates exactly what was sent.
        const third = makeDelta(0.2, 3);
        expect((await post(c.token, third, DTYPE_FLOAT32)).statusCode).toBe(202);
        const expected = expectedWeights([
          { delta: half, examples: 10 },
          { delta: makeDelta(0.3, 2), examples: 10 },
          { delta: third, examples: 10 },
        ]);
        const published = bytesToFloat32((await store.getWeightBytes(2))!);
        for (let i = 0; i < PARAMS; i++) expect(published[i]).toBeCloseTo(expected[i]!, 6);
      });
    });

    describe('round deadline', () => {
      it('abandons a late round short of m, refuses its tokens, keeps its updates, and starts anew', async () => {
        const t = await serve({ minCohort: 3, roundDeadlineSeconds: 60 }, { now: clock });
        const a = await joinRound(t.app);
        const late = await joinRound(t.app);
        expect((await postUpdate(t.app, updateBody({ token: a.token }))).statusCode).toBe(202);
        const deltas = () =>
          db.rows(
            `SELECT u.round, COALESCE(length(v.delta), 0) AS bytes, u.norm
             FROM updates u LEFT JOIN update_vectors v ON v.update_id = u.id ORDER BY u.id`,
          ) as Promise<{ round: number; bytes: number; norm: number }[]>;
        // A collecting round keeps its updates' vectors until it is published or abandoned.
        expect((await deltas()).map((r) => r.bytes > 0)).toEqual([true]);
        // Exactly at the deadline the round still collects.
        now = T0 + 60_000;
        const onTime = await joinRound(t.app);
        expect(onTime.round).toBe(1);
        now += 1;
        const refused = await postUpdate(t.app, updateBody({ token: late.token }));
        expect(refused.statusCode).toBe(403);
        expect(refused.json<ErrorReply>().error).toMatchObject({
          code: 'HEARTH_E_ROUND_TOKEN',
          message: expect.stringMatching(/abandoned/),
        });
        // The abandonment itself was committed even though that request was refused.
        expect(await store.counts()).toMatchObject({
          rounds: 1,
          abandonedRounds: 1,
          updates: 1,
          versions: 1,
          usedTokens: 1,
        });
        const tokenOfAbandoned = await postUpdate(t.app, updateBody({ token: onTime.token }));
        expect(tokenOfAbandoned.statusCode).toBe(403);

        const next = await joinRound(t.app);
        expect([next.round, next.version]).toEqual([2, 1]);
        let reply: UpdateReply | undefined;
        for (let k = 0; k < 3; k++) {
          const { token } = k === 0 ? next : await joinRound(t.app);
          const res = await postUpdate(t.app, updateBody({ token, delta: makeDelta(0.3, k) }));
          reply = res.json<UpdateReply>();
        }
        expect(reply).toMatchObject({ round: 2, received: 3, version: 2 });
        expect(await store.privacyLedger()).toEqual([
          expect.objectContaining({ round: 2, version: 2 }),
        ]);
        expect(await store.counts()).toMatchObject({ rounds: 2, abandonedRounds: 1, updates: 4 });
        // Published or abandoned, no device's vector is kept; norms stay for the stats and audit.
        const kept = await deltas();
        expect(kept.map((r) => [r.round, r.bytes])).toEqual([
          [1, 0],
          [2, 0],
          [2, 0],
          [2, 0],
        ]);
        for (const row of kept) expect(row.norm).toBeGreaterThan(0);
      });

      it('abandons on join too, and never a round that already has m updates', async () => {
        const config = resolveConfig({
          noiseMultiplier: 0,
          minCohort: 2,
          roundDeadlineSeconds: 10,
        });
        await seedStore(config);
        expect(await store.joinRound('a'.repeat(32), roundExpiry(config, now))).toEqual({
          round: 1,
          version: 1,
        });
        now += 11_000;
        expect((await store.joinRound('b'.repeat(32), roundExpiry(config, now))).round).toBe(2);
        const update = { baseVersion: 1, examples: 1, norm: 0.5, delta: makeDelta(0.5) };
        // m = 3 while collecting, so round 2 stays open with two updates...
        const m3 = roundPolicy(resolveConfig({ noiseMultiplier: 0, minCohort: 3 }));
        await store.joinRound('c'.repeat(32), roundExpiry(config, now));
        await store.submitUpdate(
          { ...update, token: 'b'.repeat(32) },
          m3,
          roundExpiry(config, now),
        );
        await store.submitUpdate(
          { ...update, token: 'c'.repeat(32) },
          m3,
          roundExpiry(config, now),
        );
        now += 60_000;
        // ...and once m is 2 it has a full cohort: it waits to publish, it is not abandoned.
        expect(await store.abandonExpiredRound(roundExpiry(config, now))).toBeUndefined();
        expect(await store.abandonExpiredRound(roundExpiry({ ...config, minCohort: 3 }, now))).toBe(
          2,
        );
        const rows = await db.rows(
          'SELECT id, status, opened_at, abandoned_at FROM rounds ORDER BY id',
        );
        expect(rows).toEqual([
          {
            id: 1,
            status: 'abandoned',
            opened_at: new Date(T0).toISOString(),
            abandoned_at: new Date(T0 + 11_000).toISOString(),
          },
          {
            id: 2,
            status: 'abandoned',
            opened_at: new Date(T0 + 11_000).toISOString(),
            abandoned_at: new Date(now).toISOString(),
          },
        ]);
      });
    });

    describe('round windows', () => {
      // T = 60 s; the clock starts on a window's first instant.
      const W = 60_000;
      const START = Math.ceil(T0 / W) * W;
      const WINDOWED = { ...PRIVATE, roundWindowSeconds: 60, countNoise: 10 };
      const zEff = 1 / Math.sqrt(1 / 1.2 ** 2 + 1 / 10 ** 2);
      const charged = (steps: number) =>
        computeEpsilon({ noise: zEff, sampleRate: 0.05, steps, delta: 1e-6 }).epsilon;
      /** Noise draws in order: each window's count first, then its coordinates; 0 once spent. */
      const queue: number[] = [];
      const rng = (): number => queue.shift() ?? 0;
      const privacy = async (t: ServedStore) =>
        (await t.app.inject({ method: 'GET', url: '/v1/privacy' })).json<{
          rounds: number;
          epsilon: number;
          chargedNoiseMultiplier: number;
          effectiveSampleRate: number;
        }>();
      const post = async (t: ServedStore, token: string, salt: number) =>
        postUpdate(t.app, updateBody({ token, delta: makeDelta(0.6, salt) }));

      beforeEach(() => {
        now = START;
        queue.length = 0;
      });

      it('takes every update of its window past m, and publishes when it ends over its noised count', async () => {
        const t = await serve(WINDOWED, { now: clock, rng });
        now = START + 10_000;
        for (let k = 0; k < 5; k++) {
          const { token, version } = await joinRound(t.app, Math.floor(now / W));
          expect(version).toBe(1);
          const res = await post(t, token, k);
          expect(res.statusCode).toBe(202);
          // Past m = 3 the window still collects: it closes on the clock, not on a count.
          expect(res.json<UpdateReply>()).toMatchObject({ received: k + 1, version: 1 });
        }
        expect(await store.latestVersion()).toBe(1);
        // The first m = 3 were folded into the running sum as they came, their vectors erased.
        expect(await db.rows('SELECT round, folded FROM round_sums')).toEqual([
          { round: 2, folded: 3 },
        ]);
        expect(await db.rows('SELECT update_id FROM update_vectors')).toHaveLength(2);
        // Count noise +0.5 (ĉ = 5.5), then one unit draw per coordinate.
        queue.push(0.05, ...new Array<number>(PARAMS).fill(1));
        now = START + W;
        const report = await privacy(t);
        expect(await store.latestVersion()).toBe(2);
        const global = seedWeights();
        const published = bytesToFloat32((await store.getWeightBytes(2))!);
        const deltas = [0, 1, 2, 3, 4].map((k) => makeDelta(0.6, k));
        for (let i = 0; i < PARAMS; i++) {
          const sum = deltas.reduce((acc, d) => acc + d[i]!, 0);
          // The sum with noise z S, over ĉ.
          expect(published[i]).toBeCloseTo(global[i]! + (sum + 1.2) / 5.5, 6);
        }
        expect(report).toMatchObject({ rounds: 1, effectiveSampleRate: 0.05 });
        expect(report.chargedNoiseMultiplier).toBeCloseTo(zEff, 12);
        expect(report.epsilon).toBeCloseTo(charged(1), 10);
        expect(await store.privacyLedger()).toEqual([
          { round: 2, version: 2, noiseMultiplier: zEff, sampleRate: 0.05 },
        ]);
        expect(await db.rows('SELECT round FROM round_sums')).toEqual([]);
        expect(await db.rows('SELECT update_id FROM update_vectors')).toEqual([]);
      });

      it('publishes nothing when the noised count falls short, charges the window anyway, and refuses its late updates', async () => {
        const t = await serve(WINDOWED, { now: clock, rng });
        const tokens = [];
        for (let k = 0; k < 4; k++)
          tokens.push((await joinRound(t.app, Math.floor(now / W))).token);
        for (let k = 0; k < 3; k++) expect((await post(t, tokens[k]!, k)).statusCode).toBe(202);
        // 3 updates and count noise -1 (ĉ = -7 < m): not published.
        queue.push(-1);
        now = START + W + 1;
        const late = await post(t, tokens[3]!, 3);
        expect(late.statusCode).toBe(403);
        expect(late.json<ErrorReply>().error.code).toBe('HEARTH_E_ROUND_TOKEN');
        expect(await store.latestVersion()).toBe(1);
        expect(await store.counts()).toMatchObject({ abandonedRounds: 2, updates: 3 });
        const report = await privacy(t);
        expect(report.rounds).toBe(1);
        expect(report.epsilon).toBeCloseTo(charged(1), 10);
        // Its updates' vectors and running sum are erased, as an abandoned round's vectors are.
        expect(await db.rows('SELECT update_id FROM update_vectors')).toEqual([]);
        expect(await db.rows('SELECT round FROM round_sums')).toEqual([]);
        // The next window starts on the same version, from nothing.
        const next = await joinRound(t.app, Math.floor(now / W));
        expect(next.version).toBe(1);
        expect((await post(t, next.token, 9)).json<UpdateReply>()).toMatchObject({ received: 1 });
      });

      it('charges the windows that ended with no round, once each, from the first one it ran', async () => {
        const t = await serve(WINDOWED, { now: clock, rng });
        expect((await privacy(t)).rounds).toBe(0);
        now = START + 10 * W + 5;
        expect((await privacy(t)).rounds).toBe(10);
        expect((await privacy(t)).epsilon).toBeCloseTo(charged(10), 10);
        now += 3 * W;
        expect((await privacy(t)).rounds).toBe(13);
        // A window with a round in between: its own row, and the empty ones around it in theirs.
        await joinRound(t.app, Math.floor(now / W));
        now += 4 * W;
        const report = await privacy(t);
        expect(report.rounds).toBe(17);
        expect(report.epsilon).toBeCloseTo(charged(17), 10);
        expect(await store.latestVersion()).toBe(1);
        // The same after a restart: nothing is charged twice.
        await reopen();
        const again = await serve(WINDOWED, { now: clock, rng });
        expect((await privacy(again)).rounds).toBe(17);
      });

      it('draws the noised count of a window with no round too, and publishes its noise when it reaches m', async () => {
        const t = await serve(WINDOWED, { now: clock, rng });
        await privacy(t);
        // Two windows end with no round. The first's count gets noise -1 (ĉ = -10 < m = 3); the
        // second's +0.5 (ĉ = 5), and it publishes the noise alone over ĉ: unit draws, z S / 5.
        queue.push(-1, 0.5, ...new Array<number>(PARAMS).fill(1));
        now = START + 2 * W + 5;
        const report = await privacy(t);
        expect(report.rounds).toBe(2);
        expect(report.epsilon).toBeCloseTo(charged(2), 10);
        expect(await store.latestVersion()).toBe(2);
        const global = seedWeights();
        const published = bytesToFloat32((await store.getWeightBytes(2))!);
        for (let i = 0; i < PARAMS; i++) expect(published[i]).toBeCloseTo(global[i]! + 1.2 / 5, 6);
        expect(await store.privacyLedger()).toEqual([
          expect.objectContaining({ noiseMultiplier: zEff, sampleRate: 0.05 }),
          { round: 3, version: 2, noiseMultiplier: zEff, sampleRate: 0.05 },
        ]);
        // The next window's noised count falls short (0): charged, nothing published.
        now += W;
        expect((await privacy(t)).rounds).toBe(3);
        expect(await store.latestVersion()).toBe(2);
        await reopen();
        const again = await serve(WINDOWED, { now: clock, rng });
        expect((await privacy(again)).rounds).toBe(3);
      });

      it('takes a join only for the current window', async () => {
        const t = await serve(WINDOWED, { now: clock, rng });
        now = START + 3 * W + 5;
        const current = Math.floor(now / W);
        for (const payload of [
          {},
          { window: current - 1 },
          { window: current + 1 },
          { window: 'x' },
        ]) {
          const res = await t.app.inject({ method: 'POST', url: '/v1/rounds/join', payload });
          expect(res.statusCode, JSON.stringify(payload)).toBe(409);
          expect(res.json<ErrorReply>().error.code).toBe('HEARTH_E_ROUND_WINDOW');
        }
        expect((await joinRound(t.app, current)).round).toBeGreaterThan(0);
      });

      it('refuses joins on an instance whose clock is behind a window another has closed', async () => {
        const ahead = await serve(WINDOWED, { now: clock, rng });
        let behindNow = START + W - 1_000;
        const behind = await serve(WINDOWED, { now: () => behindNow, rng });
        now = START + W + 1_000;
        // The instance ahead opens a round of window START + W, closing the window before it.
        await joinRound(ahead.app, Math.floor(now / W));
        const refused = await behind.app.inject({
          method: 'POST',
          url: '/v1/rounds/join',
          payload: { window: Math.floor(behindNow / W) },
        });
        expect(refused.statusCode).toBe(409);
        expect(refused.json<ErrorReply>().error).toMatchObject({
          code: 'HEARTH_E_ROUND_WINDOW',
          message: expect.stringMatching(/clock is behind/),
        });
        // Once its clock is in the same window, it joins the same round.
        behindNow = now;
        const joined = await joinRound(behind.app, Math.floor(now / W));
        expect(joined.round).toBe((await joinRound(ahead.app, Math.floor(now / W))).round);
      });

      it('charges empty windows only while the budget has room, then refuses joins', async () => {
        const budget = (charged(4) + charged(5)) / 2;
        const t = await serve({ ...WINDOWED, epsilonBudget: budget }, { now: clock, rng });
        await privacy(t);
        now = START + 10 * W;
        const report = await privacy(t);
        expect(report.rounds).toBe(4);
        expect(report.epsilon).toBeLessThanOrEqual(budget);
        const refused = await t.app.inject({
          method: 'POST',
          url: '/v1/rounds/join',
          payload: { window: Math.floor(now / W) },
        });
        expect(refused.json<ErrorReply>().error.code).toBe('HEARTH_E_PRIVACY_BUDGET');
        now += 5 * W;
        expect((await privacy(t)).rounds).toBe(4);
      });
    });

    describe('privacy ledger', () => {
      const one = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 1, delta: 1e-6 }).epsilon;
      const two = computeEpsilon({ noise: 1.2, sampleRate: 0.05, steps: 2, delta: 1e-6 }).epsilon;

      it('refuses to aggregate inside the transaction, even with tokens issued before', async () => {
        const { app: server } = await serve({ ...PRIVATE, epsilonBudget: 1e6 }, { rng: () => 0 });
        await runRound(server, 3, 1);
        // Tokens of round 2, taken straight from the store (as if issued before a restart with a
        // smaller budget).
        const tokens = ['a', 'b', 'c'].map((c) => c.repeat(32));
        for (const token of tokens) await store.joinRound(token);
        const tight = resolveConfig({ ...PRIVATE, epsilonBudget: (one + two) / 2 });
        const submit = (token: string, salt: number) =>
          store.submitUpdate(
            { token, baseVersion: 2, examples: 1, norm: 0.5, delta: makeDelta(0.5, salt) },
            roundPolicy(tight, () => 0),
          );
        await submit(tokens[0]!, 1);
        await submit(tokens[1]!, 2);
        const before = await store.counts();
        await expect(submit(tokens[2]!, 3)).rejects.toMatchObject({
          code: 'HEARTH_E_PRIVACY_BUDGET',
        });
        expect(await store.counts()).toEqual(before);
        expect(await store.latestVersion()).toBe(2);
        expect(await store.privacyLedger()).toEqual([
          { round: 1, version: 2, noiseMultiplier: 1.2, sampleRate: 0.05 },
        ]);
      });
    });

    describe('catalogue', () => {
      const item = (id: string, title = `Title ${id}`) => ({ id, title, url: `/items/${id}` });

      it('stores versions, keeps the current one when nothing changed, and survives a restart', async () => {
        expect(await store.catalog()).toBeUndefined();
        expect(await store.catalogHead()).toBeUndefined();
        const first = await store.replaceCatalog([item('a'), item('b')], new Date(T0));
        expect(first.changed).toBe(true);
        expect(first.catalog).toMatchObject({ version: 1, updatedAt: new Date(T0).toISOString() });
        expect(first.catalog.digest).toMatch(/^[0-9a-f]{64}$/);
        const same = await store.replaceCatalog([item('a'), item('b')], new Date(T0 + 1000));
        expect(same).toEqual({ catalog: first.catalog, changed: false });
        const renamed = await store.replaceCatalog([item('a', 'New title'), item('b')]);
        expect(renamed.catalog.version).toBe(2);
        expect(renamed.catalog.digest).not.toBe(first.catalog.digest);
        await reopen();
        expect(await store.catalog()).toEqual(renamed.catalog);
        const { version, updatedAt, digest } = renamed.catalog;
        expect(await store.catalogHead()).toEqual({ version, updatedAt, digest });
        // Parsed once while it stands (every publication reads it); a new version is read anew.
        const held = await store.catalog();
        expect(await store.catalog()).toBe(held);
        await store.replaceCatalog([item('z')]);
        expect((await store.catalog())?.items).toEqual([item('z')]);
      });

      it('gives new items rows in the next published version; updates on the one before still count', async () => {
        const { app: server } = await serve({ minCohort: 2, maxStaleness: 1 });
        await store.replaceCatalog(
          ['a', 'b', 'c', 'd', 'e', 'new-1', 'new-2'].map((id) => item(id)),
        );
        // A device of version 1 joins before the round that grows the model publishes.
        const early = await joinRound(server);
        const w2 = await runRound(server, 2, 1);
        const m1 = (await store.getManifest(1))!;
        const m2 = (await store.getManifest(2))!;
        expect(m2.itemIds).toEqual([...m1.itemIds, 'new-1', 'new-2']);
        expect(m2.dims.items).toBe(m1.dims.items + 2);
        expect(m2.recent?.slice(0, 2)).toEqual([6, 7]);
        expect(w2.length).toBe(m2.weights.byteLength / 4);
        const late = await postUpdate(
          server,
          updateBody({ token: early.token, baseVersion: 1, delta: makeDelta(0.5, 9) }),
        );
        expect(late.json<UpdateReply>()).toMatchObject({ accepted: true, received: 1, version: 2 });
        // One update on version 2 closes that round; nothing new, so version 3 keeps the shape.
        const { token } = await joinRound(server);
        const delta = makeDelta(0.5, 4).slice(0, 1).fill(0.1);
        const full = new Float32Array(m2.weights.byteLength / 4).fill(0.01);
        full.set(delta);
        const body = updateBody({ token, baseVersion: 2, layoutHash: m2.layoutHash, delta: full });
        const closing = await postUpdate(server, body);
        expect(closing.json<UpdateReply>(), closing.body).toMatchObject({ version: 3 });
        expect((await store.getManifest(3))!.dims.items).toBe(m2.dims.items);
      });

      it('publishes rows for new items at once, without a round, and nothing else moves', async () => {
        const { app: server, config } = await serve({ minCohort: 2, serverOptimizer: 'fedadam' });
        const rows = layoutFieldsOf(config);
        // No catalogue yet, then one the model already covers: nothing to publish.
        expect(await store.growToCatalog(rows)).toBeUndefined();
        await runRound(server, 2, 1);
        const m2 = (await store.getManifest(2))!;
        await store.replaceCatalog(m2.itemIds.slice(1).map((id) => item(id)));
        expect(await store.growToCatalog(rows)).toBeUndefined();
        const ledger = await store.privacyLedger();
        const counts = await store.counts();
        const before = (await store.optimizerState())!;
        await store.replaceCatalog(
          ['new-1', ...m2.itemIds.slice(1), 'new-2'].map((id) => item(id)),
        );
        expect(await store.growToCatalog(rows, new Date(T0))).toBe(3);
        const m3 = (await store.getManifest(3))!;
        expect(m3.itemIds).toEqual([...m2.itemIds, 'new-1', 'new-2']);
        expect(m3.createdAt).toBe(new Date(T0).toISOString());
        const w3 = bytesToFloat32((await store.getWeightBytes(3))!);
        // The same update rows rule as a round's publication, on the grown weights.
        // The version's own layout fields: rows, a sketch, or neither (the whole model).
        const { updateRows, itemSketch } = m3.federation;
        expect({ updateRows, itemSketch }).toEqual({
          updateRows: undefined,
          itemSketch: undefined,
          ...rows(m3, 3, w3),
        });
        const parts2 = splitFlat(bytesToFloat32((await store.getWeightBytes(2))!), m2.tensors);
        const parts3 = splitFlat(w3, m3.tensors);
        for (const [name, values] of parts2) {
          // Item tensors keep every old row in place; the rest is unchanged.
          expect(Array.from(parts3.get(name)!.subarray(0, values.length)), name).toEqual(
            Array.from(values),
          );
        }
        // No round: nothing in the ledger, no round counted, FedAdam's step as it was; its
        // moments grew with the model.
        expect(await store.privacyLedger()).toEqual(ledger);
        expect((await store.counts()).rounds).toBe(counts.rounds);
        const after = (await store.optimizerState())!;
        expect(after.step).toBe(before.step);
        expect(after.m.length).toBe(w3.length);
        expect(await store.growToCatalog(rows)).toBeUndefined();
        expect(await store.latestVersion()).toBe(3);
      });

      it('keeps the weights of the newest WEIGHTS_KEPT versions only, and every manifest', async () => {
        const { app: server, config } = await serve({ minCohort: 1 });
        const rows = layoutFieldsOf(config);
        await runRound(server, 1, 1);
        const w1 = (await store.getWeightBytes(1))!;
        for (let v = 2; v < WEIGHTS_KEPT + 3; v++)
          expect(await store.republish(v - 1, v, rows)).toBe(v + 1);
        const latest = WEIGHTS_KEPT + 3;
        expect(await store.latestVersion()).toBe(latest);
        for (const v of [1, 2, 3]) {
          expect(await store.getWeightBytes(v), `v${v}`).toBeUndefined();
          expect((await store.getManifest(v))?.version).toBe(v);
        }
        expect(await store.getWeightBytes(latest - WEIGHTS_KEPT + 1)).toBeDefined();
        // Each republished the one two before it.
        expect(bytesToFloat32((await store.getWeightBytes(latest))!)).toEqual(
          bytesToFloat32((await store.getWeightBytes(latest - 2))!),
        );
        expect(w1.length).toBeGreaterThan(0);
        // An erased version is not served, nor rolled back to.
        const res = await server.inject({ method: 'GET', url: '/v1/model/1/weights' });
        expect(res.statusCode).toBe(404);
        expect(await store.republish(1, latest, rows)).toBeUndefined();
        // Rounds go on.
        await runRound(server, 1, latest);
        expect(await store.latestVersion()).toBe(latest + 1);
      });

      it('upgrades a schema-7 database: the kept manifests and weights move to their own tables', async () => {
        const first = await serve({ minCohort: 1, joinsPerRound: 0, rateLimitPerMinute: 0 });
        await runRound(first.app, 1, 1);
        await runRound(first.app, 1, 2);
        const manifest = await store.getManifest(3);
        const weights = await store.getWeightBytes(3);
        await first.close();
        await store.close();
        // Schema 7: manifest and weights were columns of versions, emptied when erased (here
        // version 1's).
        const pgsql = backend.name === 'PgStore';
        const bytes = pgsql ? `BYTEA NOT NULL DEFAULT ''::bytea` : `BLOB NOT NULL DEFAULT X''`;
        await db.exec(`
          ALTER TABLE versions ADD COLUMN manifest TEXT NOT NULL DEFAULT '';
          ALTER TABLE versions ADD COLUMN weights ${bytes};
          UPDATE versions SET manifest = (SELECT manifest FROM version_manifests m
            WHERE m.version = versions.version) WHERE version > 1;
          UPDATE versions SET weights = (SELECT weights FROM version_weights w
            WHERE w.version = versions.version) WHERE version > 1;
          DROP TABLE version_manifests;
          DROP TABLE version_weights;
          ${pgsql ? 'UPDATE hearth_meta SET schema_version = 7' : 'PRAGMA user_version = 7'};
        `);
        store = await db.open();
        expect(await store.latestVersion()).toBe(3);
        expect(await store.getManifest(3)).toEqual(manifest);
        expect(await store.getWeightBytes(3)).toEqual(weights);
        expect(await store.getManifest(1)).toBeUndefined();
        expect(await store.getWeightBytes(1)).toBeUndefined();
        expect(await db.rows('SELECT * FROM versions WHERE version = 1')).toEqual([
          { version: 1, created_at: expect.any(String) },
        ]);
        expect(await db.rows('SELECT version FROM version_weights ORDER BY version')).toEqual([
          { version: 2 },
          { version: 3 },
        ]);
        // Rounds go on.
        const { app: server } = await serve({ minCohort: 1, joinsPerRound: 0 });
        await runRound(server, 1, 3);
        expect((await store.getManifest(4))?.version).toBe(4);
      });

      it('erases manifests past MANIFESTS_KEPT and per-update rows past ROUNDS_WITH_ROWS_KEPT', async () => {
        expect(MANIFESTS_KEPT).toBeGreaterThan(MAX_STALENESS);
        const { app: server } = await serve({
          minCohort: 1,
          joinsPerRound: 0,
          rateLimitPerMinute: 0,
        });
        // Round 1's second token carries a stale update into round 2: its row stays with that.
        const early = await joinRound(server);
        await runRound(server, 1, 1);
        const stale = await postUpdate(server, updateBody({ token: early.token, baseVersion: 1 }));
        expect(stale.statusCode).toBe(202);
        const rounds = Math.max(MANIFESTS_KEPT, ROUNDS_WITH_ROWS_KEPT) + 2;
        for (let v = 3; v <= rounds; v++) await runRound(server, 1, v);
        const latest = rounds + 1;
        expect(await store.latestVersion()).toBe(latest);
        // Manifests: the newest MANIFESTS_KEPT, weights: the newest WEIGHTS_KEPT, each erased by
        // deleting its row; every version's row stays (rounds name them).
        expect(await store.getManifest(latest - MANIFESTS_KEPT)).toBeUndefined();
        expect((await store.getManifest(latest - MANIFESTS_KEPT + 1))?.version).toBe(
          latest - MANIFESTS_KEPT + 1,
        );
        expect(await db.rows('SELECT version FROM version_manifests')).toHaveLength(MANIFESTS_KEPT);
        expect(await db.rows('SELECT version FROM version_weights')).toHaveLength(WEIGHTS_KEPT);
        expect(await db.rows('SELECT version FROM versions')).toHaveLength(latest);
        // Rows: tokens and updates of the newest ROUNDS_WITH_ROWS_KEPT rounds; every round stays.
        expect((await store.counts()).rounds).toBe(rounds);
        expect(await db.rows('SELECT DISTINCT round FROM updates')).toHaveLength(
          ROUNDS_WITH_ROWS_KEPT,
        );
        expect(await db.rows('SELECT round FROM tokens')).toHaveLength(ROUNDS_WITH_ROWS_KEPT);
        expect(await db.rows(`SELECT token FROM tokens WHERE token = '${early.token}'`)).toEqual(
          [],
        );
        expect((await store.privacyLedger()).length).toBe(rounds);
        // An update on a version whose manifest is gone is stale, not unknown.
        const { token } = await joinRound(server);
        const res = await postUpdate(server, updateBody({ token, baseVersion: 1 }));
        expect(res.json<{ error: { code: string } }>().error.code).toBe('HEARTH_E_UPDATE_STALE');
      }, 180_000);

      it('republishes an earlier version over the current one (a rollback), only while it is current', async () => {
        const { app: server, config } = await serve({ minCohort: 2 });
        const rows = layoutFieldsOf(config);
        await runRound(server, 2, 1);
        await runRound(server, 2, 2, 5);
        expect(await store.latestVersion()).toBe(3);
        const ledger = await store.privacyLedger();
        const counts = await store.counts();
        // Over a version that is no longer current, of a version not older, or of none: nothing.
        expect(await store.republish(1, 2, rows)).toBeUndefined();
        expect(await store.republish(3, 3, rows)).toBeUndefined();
        expect(await store.republish(99, 3, rows)).toBeUndefined();
        expect(await store.republish(2, 3, rows, new Date(T0))).toBe(4);
        const m4 = (await store.getManifest(4))!;
        const w4 = bytesToFloat32((await store.getWeightBytes(4))!);
        expect(w4).toEqual(bytesToFloat32((await store.getWeightBytes(2))!));
        expect(m4.version).toBe(4);
        expect(m4.createdAt).toBe(new Date(T0).toISOString());
        // The version's own layout fields: rows, a sketch, or neither (the whole model).
        const { updateRows, itemSketch } = m4.federation;
        expect({ updateRows, itemSketch }).toEqual({
          updateRows: undefined,
          itemSketch: undefined,
          ...rows(m4, 4, w4),
        });
        // No round: nothing in the ledger, no round counted; rounds go on from version 4.
        expect(await store.privacyLedger()).toEqual(ledger);
        expect((await store.counts()).rounds).toBe(counts.rounds);
        await runRound(server, 2, 4, 9);
        expect(await store.latestVersion()).toBe(5);
      });

      it('keeps the newest CATALOG_VERSIONS_KEPT versions', async () => {
        for (let v = 1; v <= CATALOG_VERSIONS_KEPT + 3; v++) {
          await store.replaceCatalog([item(`i${v}`)]);
        }
        const versions = (await db.rows('SELECT version FROM catalogs ORDER BY version')) as {
          version: number;
        }[];
        expect(versions.map((r) => r.version)).toEqual(
          Array.from({ length: CATALOG_VERSIONS_KEPT }, (_, i) => i + 4),
        );
        expect((await store.catalog())?.items).toEqual([item(`i${CATALOG_VERSIONS_KEPT + 3}`)]);
      });

      it('numbers concurrent replacements without a gap or a repeat', async () => {
        const changes = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store.replaceCatalog([item(`c${i}`)])),
        );
        expect(changes.map((c) => c.catalog.version).sort((a, b) => a - b)).toEqual([
          1, 2, 3, 4, 5, 6,
        ]);
      });
    });

    describe('FedAdam on the server', () => {
      it('persists m and v with each version and resumes them after a restart', async () => {
        const settings = { minCohort: 2, serverOptimizer: 'fedadam' } as const;
        const first = await serve(settings);
        expect(first.config.serverLearningRate).toBe(0.01);
        const w2 = await runRound(first.app, 2, 1);
        const state1 = await store.optimizerState();
        expect(state1?.step).toBe(1);
        await first.close();

        await reopen();
        const second = await serve(settings);
        expect(await store.optimizerState()).toEqual(state1);
        const w3 = await runRound(second.app, 2, 2, 5);
        const state2 = await store.optimizerState();
        expect(state2?.step).toBe(2);
        // Recompute round 2 by hand from the persisted round-1 state: the mean of the two deltas
        // (equal weights, the default, whatever examples they claim) is the pseudo-gradient.
        const [a, b] = [makeDelta(0.6, 5), makeDelta(0.6, 6)];
        for (let i = 0; i < PARAMS; i++) {
          const d = (a[i]! + b[i]!) / 2;
          const m = 0.9 * state1!.m[i]! + 0.1 * d;
          const v = 0.99 * state1!.v[i]! + 0.01 * d * d;
          expect(state2!.m[i]).toBeCloseTo(m, 12);
          expect(state2!.v[i]).toBeCloseTo(v, 12);
          expect(w3[i]).toBeCloseTo(w2[i]! + (0.01 * m) / (Math.sqrt(v) + 1e-3), 6);
        }
      });
    });

    describe('instances and the forming secure round', () => {
      it('registers, refreshes and forgets instances, and drops the long unseen', async () => {
        const hour = 3_600_000;
        await store.registerInstance('aaaaaaaa', 'http://10.0.0.1:8787', new Date(T0), hour);
        await store.registerInstance('bbbbbbbb', 'http://10.0.0.2:8787', new Date(T0), hour);
        expect(await store.instanceUrl('aaaaaaaa')).toBe('http://10.0.0.1:8787');
        // b refreshes (a new address too) after 2 hours: a, unseen for that long, is dropped.
        await store.registerInstance(
          'bbbbbbbb',
          'http://10.0.0.3:8787',
          new Date(T0 + 2 * hour),
          hour,
        );
        expect(await store.instanceUrl('aaaaaaaa')).toBeUndefined();
        expect(await store.instanceUrl('bbbbbbbb')).toBe('http://10.0.0.3:8787');
        await store.forgetInstance('bbbbbbbb');
        expect(await store.instanceUrl('bbbbbbbb')).toBeUndefined();
        expect(await db.rows('SELECT * FROM instances')).toEqual([]);
      });

      it('swaps the forming round only from the claim expected', async () => {
        const a = { round: 'a'.repeat(32), instance: 'aaaaaaaa' };
        const b = { round: 'b'.repeat(32), instance: 'bbbbbbbb' };
        expect(await store.formingRound()).toBeUndefined();
        expect(await store.swapFormingRound(undefined, a)).toBe(true);
        // A second claim from nothing loses, as does one that expects another round.
        expect(await store.swapFormingRound(undefined, b)).toBe(false);
        expect(await store.swapFormingRound(b.round, b)).toBe(false);
        expect(await store.formingRound()).toEqual(a);
        expect(await store.swapFormingRound(a.round, b)).toBe(true);
        expect(await store.swapFormingRound(a.round, undefined)).toBe(false);
        expect(await store.formingRound()).toEqual(b);
        // Of claims racing from the same state, exactly one wins.
        expect(await store.swapFormingRound(b.round, undefined)).toBe(true);
        const racers = Array.from({ length: 8 }, (_, i) => ({
          round: String(i).repeat(32),
          instance: String(i).repeat(8),
        }));
        const won = await Promise.all(racers.map((r) => store.swapFormingRound(undefined, r)));
        expect(won.filter(Boolean)).toHaveLength(1);
        expect(await store.formingRound()).toEqual(racers[won.indexOf(true)]);
      });
    });
  });
});
