/**
 * The PostgreSQL schema of PgStore: the same tables as SQLite's schema 8 (sqlite-schema.ts), so both
 * stores mean the same thing by every column. Created idempotently at start-up; several instances may
 * start at once, and two concurrent `CREATE TABLE IF NOT EXISTS` of one table can still fail (both
 * pass the existence check, then one hits the catalogue's unique index on type names), so creation
 * runs under a transaction-scoped advisory lock.
 */
import type { PoolClient } from 'pg';

/** Schema version of the PostgreSQL tables; a newer database than the code knows is refused. */
export const PG_SCHEMA_VERSION = 9;

/** Key of the advisory lock that serialises schema creation and seeding across instances. */
export const PG_SCHEMA_LOCK = 0x4845_4152; // 'HEAR'

/*
 * Times are ISO-8601 text, as in SQLite: round deadlines compare them as strings, and both stores
 * must order them alike. Ids are `integer` so pg hands them back as numbers, not bigint strings.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS hearth_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  version INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_manifests (
  version INTEGER PRIMARY KEY REFERENCES versions(version),
  manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_weights (
  version INTEGER PRIMARY KEY REFERENCES versions(version),
  weights BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
  id SERIAL PRIMARY KEY,
  base_version INTEGER NOT NULL REFERENCES versions(version),
  status TEXT NOT NULL CHECK (status IN ('collecting', 'published', 'abandoned')),
  published_version INTEGER REFERENCES versions(version),
  noise_multiplier DOUBLE PRECISION,
  sample_rate DOUBLE PRECISION,
  opened_at TEXT,
  abandoned_at TEXT,
  participants INTEGER,
  skellam TEXT,
  window_index INTEGER,
  window_count INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS rounds_one_collecting ON rounds(status) WHERE status = 'collecting';
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY,
  round INTEGER NOT NULL REFERENCES rounds(id),
  issued_at TEXT NOT NULL,
  used_at TEXT
);
CREATE TABLE IF NOT EXISTS updates (
  id SERIAL PRIMARY KEY,
  round INTEGER NOT NULL REFERENCES rounds(id),
  token TEXT NOT NULL UNIQUE REFERENCES tokens(token),
  examples INTEGER NOT NULL,
  norm DOUBLE PRECISION NOT NULL,
  delta BYTEA NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_by_round ON updates(round);
CREATE INDEX IF NOT EXISTS tokens_by_round ON tokens(round);
CREATE TABLE IF NOT EXISTS update_vectors (
  update_id INTEGER PRIMARY KEY REFERENCES updates(id),
  delta BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS optimizer_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  step INTEGER NOT NULL,
  m BYTEA NOT NULL,
  v BYTEA NOT NULL,
  version INTEGER NOT NULL REFERENCES versions(version)
);
CREATE TABLE IF NOT EXISTS catalogs (
  version INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  digest TEXT NOT NULL,
  items TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS round_sums (
  round INTEGER PRIMARY KEY REFERENCES rounds(id),
  folded INTEGER NOT NULL,
  sum BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS secure_forming (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  round TEXT NOT NULL,
  instance TEXT NOT NULL
);
`;

/** Creates the schema if missing (in its own transaction on `client`); refuses a newer one. */
export async function migratePg(client: PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [PG_SCHEMA_LOCK]);
    await client.query(SCHEMA);
    // Schema 4: a table from schema 3 gains the column (CREATE TABLE IF NOT EXISTS left it alone).
    await client.query('ALTER TABLE rounds ADD COLUMN IF NOT EXISTS participants INTEGER');
    await client.query('ALTER TABLE rounds ADD COLUMN IF NOT EXISTS skellam TEXT');
    // Schema 9: round windows (sqlite-schema.ts).
    await client.query('ALTER TABLE rounds ADD COLUMN IF NOT EXISTS window_index INTEGER');
    await client.query('ALTER TABLE rounds ADD COLUMN IF NOT EXISTS window_count INTEGER');
    await client.query('CREATE INDEX IF NOT EXISTS rounds_by_window ON rounds(window_index)');
    // Schema 6: the vectors a collecting round still holds move to their own table.
    await client.query(
      `INSERT INTO update_vectors (update_id, delta)
       SELECT id, delta FROM updates WHERE length(delta) > 0 ON CONFLICT DO NOTHING`,
    );
    await client.query(`UPDATE updates SET delta = ''::bytea WHERE length(delta) > 0`);
    // Schema 8: the manifests and weights still kept move to their own tables, erased by deleting
    // rows (sqlite-schema.ts).
    const { rowCount } = await client.query(
      `SELECT 1 FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = 'versions' AND column_name = 'weights'`,
    );
    if (rowCount) {
      await client.query(
        `INSERT INTO version_manifests (version, manifest)
         SELECT version, manifest FROM versions WHERE manifest <> '' ON CONFLICT DO NOTHING`,
      );
      await client.query(
        `INSERT INTO version_weights (version, weights)
         SELECT version, weights FROM versions WHERE octet_length(weights) > 0 ON CONFLICT DO NOTHING`,
      );
      await client.query('ALTER TABLE versions DROP COLUMN manifest, DROP COLUMN weights');
    }
    const { rows } = await client.query<{ schema_version: number }>(
      'SELECT schema_version FROM hearth_meta WHERE id = 1',
    );
    const current = rows[0]?.schema_version;
    if (current !== undefined && current > PG_SCHEMA_VERSION) {
      throw new Error(
        `database schema ${current} is newer than this server (${PG_SCHEMA_VERSION})`,
      );
    }
    await client.query(
      `INSERT INTO hearth_meta (id, schema_version) VALUES (1, $1)
       ON CONFLICT (id) DO UPDATE SET schema_version = excluded.schema_version`,
      [PG_SCHEMA_VERSION],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
