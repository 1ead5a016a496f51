/**
 * What only the SQLite store has: its file (WAL, the schema version in user_version) and the
 * migration of files written by older servers. What every Store promises is tested on each store in
 * store-conformance.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HearthError } from '../protocol/errors.js';
import { resolveConfig } from './config.js';
import { roundPolicy } from './ingest.js';
import { loadSeedModel } from './seed.js';
import { SCHEMA_VERSION, SqliteStore } from './sqlite-store.js';
import { submission, writeSeedDir } from './test-helpers.js';

let dir: string;
let store: SqliteStore;
const config = resolveConfig({ minCohort: 2 });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-store-'));
  store = new SqliteStore(join(dir, 'h.db'));
  const seed = await writeSeedDir();
  await store.seed(await loadSeedModel(seed.dir, config));
  await seed.cleanup();
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SqliteStore', () => {
  it('moves the vectors a schema-5 database holds into their own table (schema 6)', async () => {
    const path = join(dir, 'v5.db');
    await new SqliteStore(path).close();
    const old = new Database(path);
    old.prepare("INSERT INTO versions VALUES (1, 'x')").run();
    old.prepare("INSERT INTO rounds (base_version, status) VALUES (1, 'collecting')").run();
    old.prepare("INSERT INTO tokens VALUES (?, 1, 'x', 'x')").run('a'.repeat(32));
    old
      .prepare("INSERT INTO updates VALUES (1, 1, ?, 1, 0.5, x'0102030405060708', 'x')")
      .run('a'.repeat(32));
    old.pragma('user_version = 5');
    old.close();
    await new SqliteStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.prepare('SELECT length(delta) AS n FROM updates').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT update_id, hex(delta) AS hex FROM update_vectors').all()).toEqual([
        { update_id: 1, hex: '0102030405060708' },
      ]);
    } finally {
      db.close();
    }
  });

  it('moves the manifests and weights a schema-7 database keeps into their own tables (schema 8)', async () => {
    const path = join(dir, 'v7.db');
    await new SqliteStore(path).close();
    const old = new Database(path);
    old.pragma('foreign_keys = OFF');
    old.exec('DROP TABLE version_manifests; DROP TABLE version_weights; DROP TABLE versions');
    old.exec(`CREATE TABLE versions (version INTEGER PRIMARY KEY, created_at TEXT NOT NULL,
      manifest TEXT NOT NULL, weights BLOB NOT NULL)`);
    // Version 1 erased (both emptied), 2 with its manifest only, 3 whole.
    old.prepare("INSERT INTO versions VALUES (1, 'a', '', x'')").run();
    old.prepare("INSERT INTO versions VALUES (2, 'b', '{\"version\":2}', x'')").run();
    old.prepare("INSERT INTO versions VALUES (3, 'c', '{\"version\":3}', x'0000803f')").run();
    old
      .prepare(
        "INSERT INTO rounds (base_version, status, published_version) VALUES (2, 'published', 3)",
      )
      .run();
    old.pragma('user_version = 7');
    old.close();
    const upgraded = new SqliteStore(path);
    try {
      expect(await upgraded.latestVersion()).toBe(3);
      expect(await upgraded.getManifest(1)).toBeUndefined();
      expect(await upgraded.getManifest(2)).toEqual({ version: 2 });
      expect(await upgraded.getWeightBytes(2)).toBeUndefined();
      expect([...(await upgraded.getWeightBytes(3))!]).toEqual([0, 0, 0x80, 0x3f]);
      expect((await upgraded.history(5))[0]).toMatchObject({ round: 1, publishedAt: 'c' });
    } finally {
      await upgraded.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma('foreign_key_check')).toEqual([]);
      expect(db.prepare('SELECT * FROM versions ORDER BY version').all()).toEqual([
        { version: 1, created_at: 'a' },
        { version: 2, created_at: 'b' },
        { version: 3, created_at: 'c' },
      ]);
      expect(db.prepare('SELECT version FROM version_manifests').all()).toEqual([
        { version: 2 },
        { version: 3 },
      ]);
      expect(db.prepare('SELECT version FROM version_weights').all()).toEqual([{ version: 3 }]);
    } finally {
      db.close();
    }
  });

  it('uses WAL and records its schema version', () => {
    const other = new Database(join(dir, 'h.db'), { readonly: true });
    try {
      expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(other.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      other.close();
    }
  });

  it('migrates a schema-1 database: old rounds enter the ledger as published without noise', async () => {
    await store.joinRound('d'.repeat(32));
    await store.submitUpdate(submission('d'.repeat(32), 1), roundPolicy(config));
    await store.joinRound('e'.repeat(32));
    await store.submitUpdate(submission('e'.repeat(32), 2), roundPolicy(config));
    await store.close();
    // Turn the file back into schema 1: no ledger columns, no optimiser table.
    const raw = new Database(join(dir, 'h.db'));
    raw.exec('ALTER TABLE rounds DROP COLUMN noise_multiplier');
    raw.exec('ALTER TABLE rounds DROP COLUMN sample_rate');
    raw.exec('DROP TABLE optimizer_state');
    raw.pragma('user_version = 1');
    raw.close();
    store = new SqliteStore(join(dir, 'h.db'));
    expect(await store.privacyLedger()).toEqual([
      { round: 1, version: 2, noiseMultiplier: 0, sampleRate: 1 },
    ]);
    expect(await store.optimizerState()).toBeUndefined();
  });

  it('refuses a database from a newer server', async () => {
    await store.close();
    const raw = new Database(join(dir, 'h.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => new SqliteStore(join(dir, 'h.db'))).toThrow(/newer than this server/);
    store = new SqliteStore(':memory:');
  });

  it('names the file and the reason when the database cannot be used at start', async () => {
    const notADatabase = join(dir, 'notes.txt');
    await writeFile(notADatabase, 'these are not the pages of a SQLite database '.repeat(200));
    for (const [path, reason] of [
      [dir, /SQLITE_CANTOPEN/],
      [notADatabase, /SQLITE_NOTADB/],
    ] as const) {
      let caught: unknown;
      try {
        new SqliteStore(path).close();
      } catch (error) {
        caught = error;
      }
      expect((caught as HearthError).code).toBe('HEARTH_E_CONFIG');
      expect((caught as Error).message).toContain(`the database ${path} cannot be used`);
      expect((caught as Error).message).toMatch(reason);
    }
  });
});
