import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { roundExpiry } from './round-expiry.js';
import { SCHEMA_VERSION, SqliteStore } from './sqlite-store.js';
import { startServer } from './start.js';
import { joinRound, writeSeedDir } from './test-helpers.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
let now = T0;
const clock = (): number => now;

let dir: string;
beforeEach(async () => {
  now = T0;
  dir = await mkdtemp(join(tmpdir(), 'hearth-deadline-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function raw(path: string): Database.Database {
  return new Database(path, { readonly: true });
}

describe('round deadline', () => {
  it('abandons at start-up a round whose deadline passed while the server was down', async () => {
    const seed = await writeSeedDir();
    try {
      const config = resolveConfig({
        aggregation: 'plaintext',
        port: 0,
        dbPath: join(dir, 'h.db'),
        modelDir: seed.dir,
        roundDeadlineSeconds: 3600,
      });
      const first = await startServer(config, { now: clock });
      await joinRound(first.app);
      await first.close();
      now += 3_600_001;
      const second = await startServer(config, { now: clock });
      try {
        expect(await second.store.counts()).toMatchObject({ rounds: 1, abandonedRounds: 1 });
        expect((await joinRound(second.app)).round).toBe(2);
      } finally {
        await second.close();
      }
    } finally {
      await seed.cleanup();
    }
  });

  it('upgrades a schema-2 database: rounds may be abandoned, deadlines count from the first token', async () => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.exec(SCHEMA_2);
    old.pragma('user_version = 2');
    old.prepare("INSERT INTO versions VALUES (1, 'x', '{}', x'00')").run();
    old.prepare("INSERT INTO rounds (base_version, status) VALUES (1, 'collecting')").run();
    old
      .prepare("INSERT INTO tokens VALUES (?, 1, '2030-01-01T00:00:05.000Z', NULL)")
      .run('a'.repeat(32));
    old
      .prepare("INSERT INTO tokens VALUES (?, 1, '2030-01-01T00:00:01.000Z', 'x')")
      .run('b'.repeat(32));
    old.prepare("INSERT INTO updates VALUES (1, 1, ?, 1, 0.5, x'00', 'x')").run('b'.repeat(32));
    old.close();

    const store = new SqliteStore(path);
    try {
      const config = resolveConfig({
        aggregation: 'plaintext',
        minCohort: 3,
        roundDeadlineSeconds: 10,
      });
      expect(await store.abandonExpiredRound(roundExpiry(config, T0 + 10_000))).toBeUndefined();
      expect(await store.abandonExpiredRound(roundExpiry(config, T0 + 11_001))).toBe(1);
      expect(await store.counts()).toMatchObject({ rounds: 1, abandonedRounds: 1, updates: 1 });
      expect((await store.joinRound('c'.repeat(32))).round).toBe(2);
    } finally {
      await store.close();
    }
    const db = raw(path);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma('foreign_key_check')).toEqual([]);
      const rounds = db.prepare('SELECT id, status, opened_at FROM rounds ORDER BY id').all();
      expect(rounds[0]).toEqual({
        id: 1,
        status: 'abandoned',
        opened_at: '2030-01-01T00:00:01.000Z',
      });
      // The one-collecting-round index survived the rebuild.
      expect(
        db.prepare("SELECT name FROM sqlite_master WHERE name = 'rounds_one_collecting'").get(),
      ).toBeDefined();
    } finally {
      db.close();
    }
  });
});

/** The schema-2 DDL as it shipped, to test the upgrade. */
const SCHEMA_2 = `
CREATE TABLE versions (version INTEGER PRIMARY KEY, created_at TEXT NOT NULL, manifest TEXT NOT NULL,
  weights BLOB NOT NULL);
CREATE TABLE rounds (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  base_version INTEGER NOT NULL REFERENCES versions(version),
  status TEXT NOT NULL CHECK (status IN ('collecting', 'published')),
  published_version INTEGER REFERENCES versions(version),
  noise_multiplier REAL,
  sample_rate REAL
);
CREATE UNIQUE INDEX rounds_one_collecting ON rounds(status) WHERE status = 'collecting';
CREATE TABLE tokens (token TEXT PRIMARY KEY, round INTEGER NOT NULL REFERENCES rounds(id),
  issued_at TEXT NOT NULL, used_at TEXT);
CREATE TABLE updates (id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL REFERENCES rounds(id),
  token TEXT NOT NULL UNIQUE REFERENCES tokens(token), examples INTEGER NOT NULL, norm REAL NOT NULL,
  delta BLOB NOT NULL, received_at TEXT NOT NULL);
CREATE INDEX updates_by_round ON updates(round);
CREATE TABLE optimizer_state (id INTEGER PRIMARY KEY CHECK (id = 1), step INTEGER NOT NULL,
  m BLOB NOT NULL, v BLOB NOT NULL, version INTEGER NOT NULL REFERENCES versions(version));
`;
