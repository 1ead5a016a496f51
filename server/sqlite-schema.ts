/**
 * The SQLite schema of SqliteStore and its migrations. Databases are upgraded in place when the server
 * starts, so an operator never runs a separate step; a database newer than the code is refused.
 */
import type Database from 'better-sqlite3';

/**
 * Bumped with every schema change; a newer database than the code knows is refused.
 * 2: rounds record the DP parameters they were published under; optimiser state table.
 * 3: rounds may be 'abandoned' (deadline passed short of m updates); rounds record when they opened
 *    and when they were abandoned.
 * 4: rounds published from a secure aggregation sum record how many devices it held
 *    (`participants`; they have no updates) and the devices' Skellam noise (`skellam`, JSON).
 * 5: the site's catalogue, versioned (`catalogs`).
 * 6: an update's vector lives in `update_vectors`, erased by deleting its row (`updates.delta` is
 *    left empty): the rows of `updates` stay small, and freed vector pages are reused.
 * 7: the server instances sharing the database, and where each is reached (`instances`); the
 *    secure round forming across them (`secure_forming`); tokens indexed by round (retention).
 * 8: a version's manifest and weights live in `version_manifests` and `version_weights`, erased by
 *    deleting their rows: `versions` keeps one small row per version, and the pages an erased
 *    version held are freed for reuse (an emptied column left each old version's page mostly empty).
 * 9: round windows (`--round-window`): a closed window's row records its index (`window_index`) and
 *    how many windows it is charged for in the ledger (`window_count`; round-windows.ts); a
 *    collecting window's running sum of clipped updates (`round_sums`).
 */
export const SCHEMA_VERSION = 9;

/** The rounds table of schema 3 (also the target of the rebuild that upgrades older databases). */
const ROUNDS_TABLE = (name: string): string => `
CREATE TABLE IF NOT EXISTS ${name} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  base_version INTEGER NOT NULL REFERENCES versions(version),
  status TEXT NOT NULL CHECK (status IN ('collecting', 'published', 'abandoned')),
  published_version INTEGER REFERENCES versions(version),
  -- The privacy ledger: the (z, q) each round was published under (NULL before schema 2: no noise).
  noise_multiplier REAL,
  sample_rate REAL,
  -- ISO times: when the round got its first token (its deadline counts from here), and when it was
  -- abandoned. An abandoned round's tokens and updates stay, for audit, and are never aggregated.
  opened_at TEXT,
  abandoned_at TEXT,
  -- Devices in a secure aggregation round's sum (NULL: a round of stored updates).
  participants INTEGER,
  -- The devices' Skellam noise of a secure round, JSON {mu, l1, l2} (NULL: the server's noise).
  skellam TEXT,
  -- A closed round window's index, and the windows the row is charged for (schema 9; NULL: a round
  -- that closed on its m-th update).
  window_index INTEGER,
  window_count INTEGER
);`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS versions (
  version INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL
);
-- A version's manifest (JSON) and float32 weights while they are kept (schema 8): the weights of the
-- newest WEIGHTS_KEPT versions, the manifests of the newest MANIFESTS_KEPT (store.ts).
CREATE TABLE IF NOT EXISTS version_manifests (
  version INTEGER PRIMARY KEY REFERENCES versions(version),
  manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_weights (
  version INTEGER PRIMARY KEY REFERENCES versions(version),
  weights BLOB NOT NULL
);
${ROUNDS_TABLE('rounds')}
-- At most one round collects at a time.
CREATE UNIQUE INDEX IF NOT EXISTS rounds_one_collecting ON rounds(status) WHERE status = 'collecting';
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY,
  round INTEGER NOT NULL REFERENCES rounds(id),
  issued_at TEXT NOT NULL,
  used_at TEXT
);
CREATE TABLE IF NOT EXISTS updates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  round INTEGER NOT NULL REFERENCES rounds(id),
  token TEXT NOT NULL UNIQUE REFERENCES tokens(token),
  examples INTEGER NOT NULL,
  norm REAL NOT NULL,
  delta BLOB NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_by_round ON updates(round);
CREATE INDEX IF NOT EXISTS tokens_by_round ON tokens(round);
-- An update's vector while its round needs it (schema 6); deleted when the round is published or
-- abandoned.
CREATE TABLE IF NOT EXISTS update_vectors (
  update_id INTEGER PRIMARY KEY REFERENCES updates(id),
  delta BLOB NOT NULL
);
-- Server optimiser state (FedAdam's m and v as float64 blobs); one row, replaced by every round.
CREATE TABLE IF NOT EXISTS optimizer_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  step INTEGER NOT NULL,
  m BLOB NOT NULL,
  v BLOB NOT NULL,
  version INTEGER NOT NULL REFERENCES versions(version)
);
-- The site's catalogue: each version's items as JSON, with their SHA-256 (the ETag). The newest
-- few are kept.
CREATE TABLE IF NOT EXISTS catalogs (
  version INTEGER PRIMARY KEY,
  created_at TEXT NOT NULL,
  digest TEXT NOT NULL,
  items TEXT NOT NULL
);
-- Server instances sharing this database (schema 7): where each is reached, for the secure rounds
-- it runs (peers.ts). Refreshed while it runs; removed when it stops or is long unseen.
CREATE TABLE IF NOT EXISTS instances (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  seen_at TEXT NOT NULL
);
-- A collecting round window's running sum of its clipped updates, float64 little-endian, and how
-- many it holds (schema 9): its updates' vectors are folded in and erased as they arrive. Deleted
-- when the window closes.
CREATE TABLE IF NOT EXISTS round_sums (
  round INTEGER PRIMARY KEY REFERENCES rounds(id),
  folded INTEGER NOT NULL,
  sum BLOB NOT NULL
);
-- The secure round new devices join, whichever instance they reach (schema 7): at most one row.
CREATE TABLE IF NOT EXISTS secure_forming (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  round TEXT NOT NULL,
  instance TEXT NOT NULL
);
`;

/** Columns added to tables of an older schema (CREATE TABLE IF NOT EXISTS leaves those alone). */
const ADDED_COLUMNS: readonly { table: string; column: string; type: string }[] = [
  { table: 'rounds', column: 'noise_multiplier', type: 'REAL' },
  { table: 'rounds', column: 'sample_rate', type: 'REAL' },
  { table: 'rounds', column: 'opened_at', type: 'TEXT' },
  { table: 'rounds', column: 'abandoned_at', type: 'TEXT' },
  { table: 'rounds', column: 'participants', type: 'INTEGER' },
  { table: 'rounds', column: 'skellam', type: 'TEXT' },
  { table: 'rounds', column: 'window_index', type: 'INTEGER' },
  { table: 'rounds', column: 'window_count', type: 'INTEGER' },
];

/** Creates or upgrades the schema of `db` (foreign keys must be on; they are on again after). */
export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema ${current} is newer than this server (${SCHEMA_VERSION})`);
  }
  db.transaction(() => {
    db.exec(SCHEMA);
    for (const { table, column, type } of ADDED_COLUMNS) {
      const columns = db.pragma(`table_info(${table})`) as { name: string }[];
      if (!columns.some((c) => c.name === column)) {
        db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
      }
    }
  })();
  // After the columns exist: the last window charged is read at every close.
  db.exec('CREATE INDEX IF NOT EXISTS rounds_by_window ON rounds(window_index)');
  const rounds = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'rounds'").get() as {
    sql: string;
  };
  if (!rounds.sql.includes("'abandoned'")) rebuildRounds(db);
  // Schema 6: the vectors a collecting round still holds move to their own table.
  db.transaction(() => {
    db.exec(
      `INSERT INTO update_vectors (update_id, delta)
       SELECT id, delta FROM updates WHERE length(delta) > 0`,
    );
    db.exec(`UPDATE updates SET delta = X'' WHERE length(delta) > 0`);
  })();
  const versions = db.pragma('table_info(versions)') as { name: string }[];
  if (versions.some((c) => c.name === 'weights')) rebuildVersions(db);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

/**
 * Schema 8: the manifests and weights still kept move to their own tables, and `versions` is copied
 * into a table without them (rounds and the optimiser state point at it, hence foreign keys off, as
 * in rebuildRounds). The copy is compact; the old table's pages go to the free list for reuse.
 */
function rebuildVersions(db: Database.Database): void {
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      db.exec(
        `INSERT INTO version_manifests (version, manifest)
         SELECT version, manifest FROM versions WHERE manifest <> ''`,
      );
      db.exec(
        `INSERT INTO version_weights (version, weights)
         SELECT version, weights FROM versions WHERE length(weights) > 0`,
      );
      db.exec(`CREATE TABLE versions_v8 (version INTEGER PRIMARY KEY, created_at TEXT NOT NULL)`);
      db.exec(
        'INSERT INTO versions_v8 (version, created_at) SELECT version, created_at FROM versions',
      );
      db.exec('DROP TABLE versions');
      db.exec('ALTER TABLE versions_v8 RENAME TO versions');
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error(`versions rebuild broke ${broken.length} references`);
    })();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/**
 * SQLite cannot change a CHECK constraint in place, so a pre-3 rounds table is copied into a new one
 * (https://www.sqlite.org/lang_altertable.html#otheralter). Foreign keys are off meanwhile (dropping
 * the old table would otherwise fail on the tokens and updates that point at it) and checked after.
 * A collecting round's deadline starts at its first token, or at the upgrade when it has none.
 */
function rebuildRounds(db: Database.Database): void {
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      db.exec(ROUNDS_TABLE('rounds_v3'));
      db.prepare(
        `INSERT INTO rounds_v3 (id, base_version, status, published_version, noise_multiplier,
           sample_rate, opened_at, abandoned_at, participants, skellam)
         SELECT id, base_version, status, published_version, noise_multiplier, sample_rate,
           COALESCE(opened_at, (SELECT MIN(issued_at) FROM tokens WHERE tokens.round = rounds.id), ?),
           abandoned_at, participants, skellam
         FROM rounds`,
      ).run(new Date().toISOString());
      db.exec('DROP TABLE rounds');
      db.exec('ALTER TABLE rounds_v3 RENAME TO rounds');
      db.exec(SCHEMA);
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new Error(`rounds rebuild broke ${broken.length} references`);
    })();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}
