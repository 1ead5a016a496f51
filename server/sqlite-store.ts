/**
 * The default Store: one SQLite file through better-sqlite3. WAL lets readers (model downloads) run
 * beside the writer; `synchronous = FULL` makes every commit reach the disk before it returns, because
 * a 2xx for an update promises the update is durable. Each Store method is one IMMEDIATE transaction,
 * so a round aggregates exactly once even if the process dies mid-way (the commit is all or nothing).
 * (Join and submit run the round-deadline check as a transaction of its own just before theirs: an
 * abandonment must stick even when the request that noticed it is then refused.)
 */
import Database from 'better-sqlite3';
import { HearthError } from '../protocol/errors.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { AggregateUpdate } from './aggregate.js';
import type { FedAdamState } from './fedadam.js';
import { assertLittleEndian, bytesToFloat32, float32ToBytes } from './float32-bytes.js';
import { migrate } from './sqlite-schema.js';
import type {
  RoundContext,
  RoundExpiry,
  RoundHistory,
  RoundPolicy,
  RoundOutput,
  RoundPrivacy,
  RoundTicket,
  Store,
  StoreCounts,
  StoredVersion,
  SubmitOutcome,
  UpdateSubmission,
} from './store.js';
import { versionManifest } from './versions.js';

/** The schema version this store writes (see sqlite-schema.ts). */
export { SCHEMA_VERSION } from './sqlite-schema.js';

function float64ToBytes(values: Float64Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function bytesToFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) {
    throw new RangeError(`float64 data must be a multiple of 8 bytes, got ${bytes.byteLength}`);
  }
  // Always a copy: the state is updated into fresh arrays, and Buffers may be unaligned.
  return new Float64Array(Uint8Array.from(bytes).buffer);
}

interface TokenRow {
  round: number;
  used_at: string | null;
  status: string;
  base_version: number;
}

/** A rounds row joined with its published version's time (both stores read the same shape). */
export interface HistoryRow {
  id: number;
  base_version: number;
  status: RoundHistory['status'];
  opened_at: string | null;
  published_version: number | null;
  published_at: string | null;
}

/** Assembles Store.history's answer from round rows (oldest first) and their updates' norms. */
export function historyFromRows(
  rounds: readonly HistoryRow[],
  norms: readonly { round: number; norm: number }[],
): RoundHistory[] {
  const byRound = new Map<number, number[]>(rounds.map((r) => [r.id, []]));
  for (const { round, norm } of norms) byRound.get(round)?.push(norm);
  return rounds.map((r) => {
    const list = byRound.get(r.id) ?? [];
    return {
      round: r.id,
      baseVersion: r.base_version,
      status: r.status,
      openedAt: r.opened_at,
      publishedVersion: r.published_version,
      publishedAt: r.published_at,
      updates: list.length,
      norms: list,
    };
  });
}

/** Options of SqliteStore. */
export interface SqliteStoreOptions {
  /**
   * Test-only: called inside the aggregation transaction after everything is written and before the
   * commit, so a crash test can kill the process at the worst moment (see crash.test.ts).
   */
  readonly beforePublishCommit?: () => void;
}

/** Store on a SQLite file (or ':memory:'). */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly beforePublishCommit: (() => void) | undefined;

  /** Opens (creating if needed) the database at `path` and brings its schema up to date. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    assertLittleEndian();
    this.beforePublishCommit = options.beforePublishCommit;
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      // Another process (a second instance, a backup) may hold the lock briefly.
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  private latest(): number | undefined {
    const row = this.db.prepare('SELECT MAX(version) AS v FROM versions').get() as {
      v: number | null;
    };
    return row.v ?? undefined;
  }

  private manifestOf(version: number): ModelManifest | undefined {
    const row = this.db.prepare('SELECT manifest FROM versions WHERE version = ?').get(version) as
      { manifest: string } | undefined;
    return row ? (JSON.parse(row.manifest) as ModelManifest) : undefined;
  }

  private weightsOf(version: number): Uint8Array | undefined {
    const row = this.db.prepare('SELECT weights FROM versions WHERE version = ?').get(version) as
      { weights: Buffer } | undefined;
    return row?.weights;
  }

  private insertVersion(manifest: ModelManifest, weights: Float32Array): void {
    this.db
      .prepare('INSERT INTO versions (version, created_at, manifest, weights) VALUES (?, ?, ?, ?)')
      .run(manifest.version, manifest.createdAt, JSON.stringify(manifest), float32ToBytes(weights));
  }

  private ledger(): RoundPrivacy[] {
    const rows = this.db
      .prepare(
        `SELECT id, published_version, noise_multiplier, sample_rate FROM rounds
         WHERE status = 'published' ORDER BY id`,
      )
      .all() as {
      id: number;
      published_version: number;
      noise_multiplier: number | null;
      sample_rate: number | null;
    }[];
    // Rounds from before the ledger existed were published without noise; q is then irrelevant.
    return rows.map((r) => ({
      round: r.id,
      version: r.published_version,
      noiseMultiplier: r.noise_multiplier ?? 0,
      sampleRate: r.sample_rate ?? 1,
    }));
  }

  private readOptimizerState(): FedAdamState | undefined {
    const row = this.db.prepare('SELECT step, m, v FROM optimizer_state WHERE id = 1').get() as
      { step: number; m: Buffer; v: Buffer } | undefined;
    if (!row) return undefined;
    return { step: row.step, m: bytesToFloat64(row.m), v: bytesToFloat64(row.v) };
  }

  /** @inheritdoc */
  async privacyLedger(): Promise<RoundPrivacy[]> {
    return this.ledger();
  }

  /** @inheritdoc */
  async optimizerState(): Promise<FedAdamState | undefined> {
    return this.readOptimizerState();
  }

  /** @inheritdoc */
  async latestVersion(): Promise<number | undefined> {
    return this.latest();
  }

  /** @inheritdoc */
  async getManifest(version: number): Promise<ModelManifest | undefined> {
    return this.manifestOf(version);
  }

  /** @inheritdoc */
  async getWeightBytes(version: number): Promise<Uint8Array | undefined> {
    return this.weightsOf(version);
  }

  /** @inheritdoc */
  async seed(version: StoredVersion): Promise<boolean> {
    return this.db
      .transaction(() => {
        if (this.latest() !== undefined) return false;
        this.insertVersion(version.manifest, version.weights);
        return true;
      })
      .immediate();
  }

  /**
   * Abandons the collecting round when it opened before `expiry.openedBefore` with fewer than m
   * updates. Its own transaction, committed even when the request that noticed is then refused.
   */
  private expire(expiry: RoundExpiry | undefined): number | undefined {
    if (!expiry) return undefined;
    return this.db
      .transaction((): number | undefined => {
        const round = this.db
          .prepare("SELECT id, opened_at FROM rounds WHERE status = 'collecting'")
          .get() as { id: number; opened_at: string | null } | undefined;
        // ISO-8601 UTC strings of one format order like the instants they name.
        if (!round || round.opened_at === null) return undefined;
        if (!(round.opened_at < expiry.openedBefore.toISOString())) return undefined;
        const { n } = this.db
          .prepare('SELECT COUNT(*) AS n FROM updates WHERE round = ?')
          .get(round.id) as { n: number };
        if (n >= expiry.minCohort) return undefined;
        this.db
          .prepare("UPDATE rounds SET status = 'abandoned', abandoned_at = ? WHERE id = ?")
          .run(expiry.now.toISOString(), round.id);
        return round.id;
      })
      .immediate();
  }

  /** @inheritdoc */
  async abandonExpiredRound(expiry: RoundExpiry): Promise<number | undefined> {
    return this.expire(expiry);
  }

  /** @inheritdoc */
  async joinRound(token: string, expiry?: RoundExpiry): Promise<RoundTicket> {
    // No await between the two transactions: nothing else in this process runs in between.
    this.expire(expiry);
    const now = (expiry?.now ?? new Date()).toISOString();
    return this.db
      .transaction((): RoundTicket => {
        const current = this.latest();
        if (current === undefined) throw new HearthError('HEARTH_E_INTERNAL', 'no model version');
        let round = this.db
          .prepare("SELECT id, base_version FROM rounds WHERE status = 'collecting'")
          .get() as { id: number; base_version: number } | undefined;
        if (round && round.base_version !== current) {
          // Versions only appear by publishing the collecting round, so this means a corrupt database.
          throw new HearthError(
            'HEARTH_E_INTERNAL',
            `collecting round ${round.id} is not on v${current}`,
          );
        }
        if (!round) {
          const info = this.db
            .prepare(
              "INSERT INTO rounds (base_version, status, opened_at) VALUES (?, 'collecting', ?)",
            )
            .run(current, now);
          round = { id: Number(info.lastInsertRowid), base_version: current };
        }
        this.db
          .prepare('INSERT INTO tokens (token, round, issued_at) VALUES (?, ?, ?)')
          .run(token, round.id, now);
        return { round: round.id, version: current };
      })
      .immediate();
  }

  /** @inheritdoc */
  async submitUpdate(
    update: UpdateSubmission,
    policy: RoundPolicy,
    expiry?: RoundExpiry,
  ): Promise<SubmitOutcome> {
    this.expire(expiry);
    const now = (expiry?.now ?? new Date()).toISOString();
    return this.db
      .transaction((): SubmitOutcome => this.submitInTransaction(update, policy, now))
      .immediate();
  }

  private submitInTransaction(
    update: UpdateSubmission,
    policy: RoundPolicy,
    now: string,
  ): SubmitOutcome {
    const current = this.latest();
    // Re-checked here: another request may have closed the round since the caller looked.
    if (current === undefined || update.baseVersion !== current) {
      throw new HearthError('HEARTH_E_UPDATE_STALE', `current version is ${current}`);
    }
    const token = this.db
      .prepare(
        `SELECT t.round, t.used_at, r.status, r.base_version
         FROM tokens t JOIN rounds r ON r.id = t.round WHERE t.token = ?`,
      )
      .get(update.token) as TokenRow | undefined;
    if (!token) throw new HearthError('HEARTH_E_ROUND_TOKEN', 'unknown token');
    if (token.used_at !== null) throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token already used');
    if (token.status === 'abandoned') {
      throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token belongs to an abandoned round');
    }
    if (token.status !== 'collecting' || token.base_version !== current) {
      throw new HearthError('HEARTH_E_ROUND_TOKEN', 'token belongs to a closed round');
    }
    this.db.prepare('UPDATE tokens SET used_at = ? WHERE token = ?').run(now, update.token);
    this.db
      .prepare(
        `INSERT INTO updates (round, token, examples, norm, delta, received_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(
        token.round,
        update.token,
        update.examples,
        update.norm,
        float32ToBytes(update.delta),
        now,
      );
    const { n: received } = this.db
      .prepare('SELECT COUNT(*) AS n FROM updates WHERE round = ?')
      .get(token.round) as { n: number };
    if (received < policy.minCohort) {
      return { round: token.round, received, version: current, published: false };
    }
    const next = current + 1;
    this.publish(token.round, current, next, now, policy);
    return { round: token.round, received, version: next, published: true };
  }

  private publish(
    round: number,
    current: number,
    next: number,
    now: string,
    policy: RoundPolicy,
  ): void {
    const base = this.manifestOf(current)!;
    const global = bytesToFloat32(this.weightsOf(current)!);
    // Streamed from a cursor: the round's deltas are never all in memory at once. The cursor is opened
    // only when the aggregator starts reading, and always closed after it: an open cursor keeps the
    // connection busy, and then not even the rollback of a failed aggregation could run.
    const statement = this.db.prepare(
      'SELECT examples, delta FROM updates WHERE round = ? ORDER BY id',
    );
    let cursor: IterableIterator<{ examples: number; delta: Buffer }> | undefined;
    const updates: Iterable<AggregateUpdate> = {
      *[Symbol.iterator]() {
        cursor = statement.iterate(round) as IterableIterator<{ examples: number; delta: Buffer }>;
        for (const row of cursor)
          yield { examples: row.examples, delta: bytesToFloat32(row.delta) };
      },
    };
    const context: RoundContext = {
      optimizerState: this.readOptimizerState(),
      ledger: this.ledger(),
    };
    let output: RoundOutput;
    try {
      output = policy.aggregate(global, updates, context);
    } finally {
      cursor?.return?.();
    }
    this.insertVersion(versionManifest(base, next, now), output.weights);
    this.db
      .prepare(
        `UPDATE rounds SET status = 'published', published_version = ?, noise_multiplier = ?,
         sample_rate = ? WHERE id = ?`,
      )
      .run(next, output.privacy.noiseMultiplier, output.privacy.sampleRate, round);
    if (output.optimizerState) {
      const { step, m, v } = output.optimizerState;
      this.db
        .prepare(
          `INSERT INTO optimizer_state (id, step, m, v, version) VALUES (1, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET step = excluded.step, m = excluded.m, v = excluded.v,
           version = excluded.version`,
        )
        .run(step, float64ToBytes(m), float64ToBytes(v), next);
    }
    this.beforePublishCommit?.();
  }

  /** @inheritdoc */
  async counts(): Promise<StoreCounts> {
    const count = (sql: string): number => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      versions: count('SELECT COUNT(*) AS n FROM versions'),
      rounds: count('SELECT COUNT(*) AS n FROM rounds'),
      tokens: count('SELECT COUNT(*) AS n FROM tokens'),
      usedTokens: count('SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NOT NULL'),
      updates: count('SELECT COUNT(*) AS n FROM updates'),
      abandonedRounds: count("SELECT COUNT(*) AS n FROM rounds WHERE status = 'abandoned'"),
    };
  }

  /** @inheritdoc */
  async history(limit: number): Promise<RoundHistory[]> {
    const rounds = this.db
      .prepare(
        `SELECT r.id, r.base_version, r.status, r.opened_at, r.published_version,
           v.created_at AS published_at
         FROM rounds r LEFT JOIN versions v ON v.version = r.published_version
         ORDER BY r.id DESC LIMIT ?`,
      )
      .all(limit) as HistoryRow[];
    rounds.reverse();
    const first = rounds[0]?.id ?? Infinity;
    const norms = this.db
      .prepare('SELECT round, norm FROM updates WHERE round >= ? ORDER BY id')
      .all(first === Infinity ? 0 : first) as { round: number; norm: number }[];
    return historyFromRows(rounds, norms);
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
