/**
 * The default Store: one SQLite file through better-sqlite3. WAL lets readers (model downloads) run
 * beside the writer; `synchronous = FULL` makes every commit reach the disk before it returns, because
 * a 2xx for an update promises the update is durable. Each Store method is one IMMEDIATE transaction,
 * so a round aggregates exactly once even if the process dies mid-way (the commit is all or nothing).
 * (Join and submit run the round-deadline check as a transaction of its own just before theirs: an
 * abandonment must stick even when the request that noticed it is then refused.)
 * What the rows mean and what a store decides from them is shared with PgStore: store-codecs.ts and
 * store-rules.ts.
 */
import Database from 'better-sqlite3';
import { HearthError } from '../protocol/errors.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { AggregateUpdate } from './aggregate.js';
import type { FedAdamState } from './fedadam.js';
import { assertLittleEndian, bytesToFloat32 } from './float32-bytes.js';
import { migrate } from './sqlite-schema.js';
import type { CatalogItem } from '../protocol/catalog.js';
import {
  CATALOG_HEAD_SQL,
  CATALOG_ROW_SQL,
  catalogBody,
  decodeCatalogHead,
  decodeCatalogRow,
  bytesToFloat64,
  decodeLedgerRow,
  float64ToBytes,
  LEDGER_QUERY,
  decodeManifest,
  decodeOptimizerState,
  decodeUpdate,
  historyFromRows,
  historyNormsFrom,
  optimizerStateValues,
  ParsedCatalog,
  publishedRoundValues,
  updateValues,
  deltaToBytes,
  versionValues,
  type CatalogRow,
  type HistoryRow,
  type LedgerRow,
  type OptimizerStateRow,
  type TokenRow,
  type UpdateRow,
} from './store-codecs.js';
import {
  checkCollectingRound,
  checkSubmission,
  checkWindowOpen,
  checkSum,
  countsInOwnRound,
  emptyWindowRuns,
  emptyWindows,
  emptyWindowsValues,
  noiseWindowValues,
  eventTime,
  pastDeadline,
  publishRound,
  publishGrowth,
  republication,
  publishSumRound,
  requireCurrentVersion,
  requireStoredVersion,
  roundIsFull,
  windowOfRound,
  type Publication,
} from './store-rules.js';
import {
  CATALOG_VERSIONS_KEPT,
  MANIFESTS_KEPT,
  ROUNDS_WITH_ROWS_KEPT,
  WEIGHTS_KEPT,
  type CatalogChange,
  type FormingClaim,
  type RoundExpiry,
  type RoundHistory,
  type RoundPolicy,
  type RoundWindows,
  type RoundPrivacy,
  type RoundTicket,
  type Store,
  type StoreCounts,
  type StoredVersion,
  type SubmitOutcome,
  type SumOutcome,
  type SumRoundPolicy,
  type StoredCatalog,
  type SumSubmission,
  type UpdateSubmission,
} from './store.js';

/** The schema version this store writes (see sqlite-schema.ts). */
export { SCHEMA_VERSION } from './sqlite-schema.js';

/** Options of SqliteStore. */
export interface SqliteStoreOptions {
  /**
   * Test-only: called inside the aggregation transaction after everything is written and before the
   * commit, so a crash test can kill the process at the worst moment (see crash.test.ts).
   */
  readonly beforePublishCommit?: () => void;
}

/** Opens the SQLite file at `path`, or says which file could not be opened and why. */
function openDatabase(path: string): Database.Database {
  try {
    return new Database(path);
  } catch (error) {
    throw unusable(path, error);
  }
}

/**
 * A start-up failure of the database as a HEARTH_E_CONFIG naming the file and SQLite's reason (not a
 * bare SqliteError stack): a directory, a file that is not a database, a read-only file or disk.
 * Errors that are already Hearth's (a database from a newer server) pass through.
 */
function unusable(path: string, error: unknown): unknown {
  if (error instanceof HearthError) return error;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const reason = typeof code === 'string' ? `${code}: ${String(message)}` : String(error);
  return new HearthError('HEARTH_E_CONFIG', `the database ${path} cannot be used (${reason})`);
}

/** Store on a SQLite file (or ':memory:'). */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly beforePublishCommit: (() => void) | undefined;
  private readonly parsed = new ParsedCatalog();

  /** Opens (creating if needed) the database at `path` and brings its schema up to date. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    assertLittleEndian();
    this.beforePublishCommit = options.beforePublishCommit;
    this.db = openDatabase(path);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      // Erased update vectors are overwritten in the file, not left in free pages.
      this.db.pragma('secure_delete = ON');
      // Another process (a second instance, a backup) may hold the lock briefly.
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (error) {
      this.db.close();
      throw unusable(path, error);
    }
  }

  private latest(): number | undefined {
    const row = this.db.prepare('SELECT MAX(version) AS v FROM versions').get() as {
      v: number | null;
    };
    return row.v ?? undefined;
  }

  private manifestOf(version: number): ModelManifest | undefined {
    const row = this.db
      .prepare('SELECT manifest FROM version_manifests WHERE version = ?')
      .get(version) as { manifest: string } | undefined;
    // Absent: not stored, or erased once MANIFESTS_KEPT newer versions were published.
    return row ? decodeManifest(row.manifest) : undefined;
  }

  private weightsOf(version: number): Uint8Array | undefined {
    const row = this.db
      .prepare('SELECT weights FROM version_weights WHERE version = ?')
      .get(version) as { weights: Buffer } | undefined;
    // Absent: not stored, or erased once WEIGHTS_KEPT newer versions were published.
    return row?.weights;
  }

  /**
   * Inserts a version and erases the weights of those WEIGHTS_KEPT or more before it, and the
   * manifests of those MANIFESTS_KEPT or more before it.
   */
  private insertVersion(manifest: ModelManifest, weights: Float32Array): void {
    const { version, createdAt, manifestText, weightBytes } = versionValues(manifest, weights);
    this.db
      .prepare('INSERT INTO versions (version, created_at) VALUES (?, ?)')
      .run(version, createdAt);
    this.db
      .prepare('INSERT INTO version_manifests (version, manifest) VALUES (?, ?)')
      .run(version, manifestText);
    this.db
      .prepare('INSERT INTO version_weights (version, weights) VALUES (?, ?)')
      .run(version, weightBytes);
    this.db.prepare('DELETE FROM version_weights WHERE version <= ?').run(version - WEIGHTS_KEPT);
    this.db
      .prepare('DELETE FROM version_manifests WHERE version <= ?')
      .run(version - MANIFESTS_KEPT);
    // The per-update rows of rounds older than the newest ROUNDS_WITH_ROWS_KEPT (index ranges: the
    // collecting round is always the newest).
    const { newest } = this.db.prepare('SELECT MAX(id) AS newest FROM rounds').get() as {
      newest: number | null;
    };
    const cutoff = (newest ?? 0) - ROUNDS_WITH_ROWS_KEPT;
    if (cutoff < 1) return;
    this.db
      .prepare(
        `DELETE FROM update_vectors WHERE update_id IN (SELECT id FROM updates WHERE round <= ?)`,
      )
      .run(cutoff);
    this.db.prepare('DELETE FROM updates WHERE round <= ?').run(cutoff);
    // A token of an old round may carry a newer round's update (a stale one): it goes with that.
    this.db
      .prepare(
        `DELETE FROM tokens WHERE round <= ?
         AND NOT EXISTS (SELECT 1 FROM updates u WHERE u.token = tokens.token)`,
      )
      .run(cutoff);
  }

  private ledger(): RoundPrivacy[] {
    const rows = this.db.prepare(LEDGER_QUERY).all() as LedgerRow[];
    return rows.map(decodeLedgerRow);
  }

  private readOptimizerState(): FedAdamState | undefined {
    const row = this.db.prepare('SELECT step, m, v FROM optimizer_state WHERE id = 1').get() as
      OptimizerStateRow | undefined;
    return decodeOptimizerState(row);
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
    if (expiry.windows) return this.closeWindows(expiry, expiry.windows);
    return this.db
      .transaction((): number | undefined => {
        const round = this.db
          .prepare("SELECT id, opened_at FROM rounds WHERE status = 'collecting'")
          .get() as { id: number; opened_at: string | null } | undefined;
        if (!round || !pastDeadline(round.opened_at, expiry)) return undefined;
        if (roundIsFull(this.received(round.id), expiry.minCohort)) return undefined;
        this.db
          .prepare("UPDATE rounds SET status = 'abandoned', abandoned_at = ? WHERE id = ?")
          .run(eventTime(expiry), round.id);
        this.eraseDeltas(round.id);
        return round.id;
      })
      .immediate();
  }

  /**
   * Closes every round window that ended before `expiry.now` (store.ts RoundWindows), in one
   * transaction: the collecting round of an earlier window publishes or is abandoned, charged either
   * way, and the windows after the last one charged that had no round are charged in one row.
   */
  private closeWindows(expiry: RoundExpiry, windows: RoundWindows): number | undefined {
    return this.db
      .transaction((): number | undefined => {
        const current = this.latest();
        if (current === undefined) return undefined;
        const now = eventTime(expiry);
        let charged = this.lastWindow();
        const round = this.db
          .prepare("SELECT id, opened_at FROM rounds WHERE status = 'collecting'")
          .get() as { id: number; opened_at: string | null } | undefined;
        let closed: number | undefined;
        if (round) {
          const own = windowOfRound(round.opened_at, windows);
          // A round of the current window: every earlier window was closed when it opened.
          if (own >= windows.current) return undefined;
          const received = this.received(round.id);
          const policy = windows.decide(received);
          // The running sum (8 bytes a value) is read only to publish it.
          const partial = policy && this.runningSum(round.id);
          if (policy && partial) {
            // Most of its updates are in the running sum: only the rest are folded now.
            const { sum } = windows.fold(partial.sum, this.unfolded(round.id));
            const base = this.storedVersion(current);
            const total = {
              baseVersion: current,
              // In float32, as a secure round's sum is.
              sum: Float32Array.from(sum!),
              count: received,
              openedAt: now,
            };
            const context = this.roundContext();
            const at = publishSumRound(policy, current, base, base.manifest, total, context, now);
            this.commitPublication(round.id, at);
            this.beforePublishCommit?.();
          } else if (policy) {
            this.publish(round.id, current, now, policy);
          } else {
            this.db
              .prepare(
                `UPDATE rounds SET status = 'abandoned', abandoned_at = ?, noise_multiplier = ?,
                 sample_rate = ? WHERE id = ?`,
              )
              .run(now, windows.charge.noiseMultiplier, windows.charge.sampleRate, round.id);
            this.eraseDeltas(round.id);
          }
          this.db.prepare('DELETE FROM round_sums WHERE round = ?').run(round.id);
          this.db
            .prepare('UPDATE rounds SET window_index = ?, window_count = 1 WHERE id = ?')
            .run(own, round.id);
          closed = round.id;
          charged = Math.max(charged ?? own, own);
        }
        const empty = emptyWindows(charged, windows);
        if (empty) {
          const count = empty.count > 0 ? windows.chargeable(this.ledger(), empty.count) : 0;
          for (const run of emptyWindowRuns(empty, count, windows)) {
            const version = requireCurrentVersion(this.latest());
            if (run.kind === 'charge') {
              this.db
                .prepare(
                  `INSERT INTO rounds (base_version, status, opened_at, abandoned_at,
                   noise_multiplier, sample_rate, window_index, window_count)
                   VALUES (?, 'abandoned', ?, ?, ?, ?, ?, ?)`,
                )
                .run(...emptyWindowsValues(version, run, windows, now));
              continue;
            }
            // A window nobody joined whose noised count reached m: a round of no update.
            const info = this.db
              .prepare(
                `INSERT INTO rounds (base_version, status, opened_at, window_index, window_count)
                 VALUES (?, 'collecting', ?, ?, ?)`,
              )
              .run(...noiseWindowValues(version, run.window, windows));
            this.publish(Number(info.lastInsertRowid), version, now, run.policy);
          }
        }
        return closed;
      })
      .immediate();
  }

  /** The newest round window closed on this database, if any. */
  private lastWindow(): number | undefined {
    const row = this.db.prepare('SELECT MAX(window_index) AS last FROM rounds').get() as {
      last: number | null;
    };
    return row.last ?? undefined;
  }

  /** Version `version`'s manifest and weights; HEARTH_E_INTERNAL if they are not stored. */
  private storedVersion(version: number): StoredVersion {
    return {
      manifest: requireStoredVersion(this.manifestOf(version), version),
      weights: bytesToFloat32(requireStoredVersion(this.weightsOf(version), version)),
    };
  }

  /** A round window's running sum of clipped updates, if it has folded any. */
  private runningSum(round: number): { folded: number; sum: Float64Array } | undefined {
    const row = this.db.prepare('SELECT folded, sum FROM round_sums WHERE round = ?').get(round) as
      { folded: number; sum: Uint8Array } | undefined;
    return row && { folded: row.folded, sum: bytesToFloat64(row.sum) };
  }

  /** The updates of `round` whose vectors are still stored (not yet folded), in arrival order. */
  private unfolded(round: number): AggregateUpdate[] {
    const rows = this.db
      .prepare(
        `SELECT u.examples, v.delta FROM updates u JOIN update_vectors v ON v.update_id = u.id
         WHERE u.round = ? ORDER BY u.id`,
      )
      .all(round) as UpdateRow[];
    return rows.map(decodeUpdate);
  }

  /**
   * Folds a round window's stored updates into its running sum once `windows.foldEvery` of them
   * wait, and erases their vectors (round-windows.ts).
   */
  private foldWhenDue(round: number, received: number, windows: RoundWindows): void {
    // The count alone first: the sum (8 bytes a value) is read only when it is added to.
    const folded = this.db.prepare('SELECT folded FROM round_sums WHERE round = ?').get(round) as
      { folded: number } | undefined;
    if (received - (folded?.folded ?? 0) < windows.foldEvery) return;
    const partial = this.runningSum(round);
    const { sum, count } = windows.fold(partial?.sum, this.unfolded(round));
    this.db
      .prepare(
        `INSERT INTO round_sums (round, folded, sum) VALUES (?, ?, ?)
         ON CONFLICT (round) DO UPDATE SET folded = excluded.folded, sum = excluded.sum`,
      )
      .run(round, (partial?.folded ?? 0) + count, float64ToBytes(sum!));
    this.eraseDeltas(round);
  }

  /** Updates stored in `round` so far. */
  private received(round: number): number {
    const row = this.db.prepare('SELECT COUNT(*) AS n FROM updates WHERE round = ?').get(round) as {
      n: number;
    };
    return row.n;
  }

  /** @inheritdoc */
  async abandonExpiredRound(expiry: RoundExpiry): Promise<number | undefined> {
    return this.expire(expiry);
  }

  /** @inheritdoc */
  async joinRound(token: string, expiry?: RoundExpiry): Promise<RoundTicket> {
    // No await between the two transactions: nothing else in this process runs in between.
    this.expire(expiry);
    const now = eventTime(expiry);
    return this.db
      .transaction((): RoundTicket => {
        const current = requireCurrentVersion(this.latest());
        if (expiry?.windows) checkWindowOpen(this.lastWindow(), expiry.windows);
        const round = this.collectingRound(current, now);
        this.db
          .prepare('INSERT INTO tokens (token, round, issued_at) VALUES (?, ?, ?)')
          .run(token, round, now);
        return { round, version: current };
      })
      .immediate();
  }

  /** The id of the collecting round on `current`, opened at `now` if there is none. */
  private collectingRound(current: number, now: string): number {
    const round = this.db
      .prepare("SELECT id, base_version FROM rounds WHERE status = 'collecting'")
      .get() as { id: number; base_version: number } | undefined;
    checkCollectingRound(round, current);
    if (round) return round.id;
    const info = this.db
      .prepare("INSERT INTO rounds (base_version, status, opened_at) VALUES (?, 'collecting', ?)")
      .run(current, now);
    return Number(info.lastInsertRowid);
  }

  /** @inheritdoc */
  async submitUpdate(
    update: UpdateSubmission,
    policy: RoundPolicy,
    expiry?: RoundExpiry,
  ): Promise<SubmitOutcome> {
    this.expire(expiry);
    const now = eventTime(expiry);
    return this.db
      .transaction((): SubmitOutcome =>
        this.submitInTransaction(update, policy, now, expiry?.windows),
      )
      .immediate();
  }

  private submitInTransaction(
    update: UpdateSubmission,
    policy: RoundPolicy,
    now: string,
    windows?: RoundWindows,
  ): SubmitOutcome {
    // Re-checked here: another request may have closed the round since the caller looked.
    const current = this.latest();
    const row = this.db
      .prepare(
        `SELECT t.round, t.used_at, r.status, r.base_version
         FROM tokens t JOIN rounds r ON r.id = t.round WHERE t.token = ?`,
      )
      .get(update.token) as TokenRow | undefined;
    const token = checkSubmission(update, current, row, policy.maxStaleness);
    // checkSubmission passed, so there is a current version, and a collecting token is on it.
    const base = requireCurrentVersion(current);
    const round = countsInOwnRound(token) ? token.round : this.collectingRound(base, now);
    update.admit?.(round);
    this.db.prepare('UPDATE tokens SET used_at = ? WHERE token = ?').run(now, update.token);
    const { lastInsertRowid } = this.db
      .prepare(
        `INSERT INTO updates (round, token, examples, norm, delta, received_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(...updateValues(round, update, now));
    this.db
      .prepare('INSERT INTO update_vectors (update_id, delta) VALUES (?, ?)')
      .run(lastInsertRowid, deltaToBytes(update.delta));
    const received = this.received(round);
    if (windows) this.foldWhenDue(round, received, windows);
    if (!roundIsFull(received, policy.minCohort)) {
      return { round, received, version: base, published: false };
    }
    const version = this.publish(round, base, now, policy);
    return { round, received, version, published: true };
  }

  /** Publishes the full `round` on version `current`; returns the version it published. */
  private publish(round: number, current: number, now: string, policy: RoundPolicy): number {
    const base = this.storedVersion(current);
    // Streamed from a cursor: the round's deltas are never all in memory at once. The cursor is opened
    // only when the aggregator starts reading, and always closed after it: an open cursor keeps the
    // connection busy, and then not even the rollback of a failed aggregation could run.
    const statement = this.db.prepare(
      `SELECT u.examples, v.delta FROM updates u JOIN update_vectors v ON v.update_id = u.id
       WHERE u.round = ? ORDER BY u.id`,
    );
    let cursor: IterableIterator<UpdateRow> | undefined;
    const updates: Iterable<AggregateUpdate> = {
      *[Symbol.iterator]() {
        cursor = statement.iterate(round) as IterableIterator<UpdateRow>;
        for (const row of cursor) yield decodeUpdate(row);
      },
    };
    const context = this.roundContext();
    let publication: Publication;
    try {
      publication = publishRound(policy, current, base, updates, context, now);
    } finally {
      cursor?.return?.();
    }
    this.commitPublication(round, publication);
    this.beforePublishCommit?.();
    return publication.version;
  }

  /** Writes a round's publication: the new version, the round's ledger entry, the optimiser state. */
  private commitPublication(round: number, publication: Publication): void {
    const { version, manifest, output } = publication;
    this.insertVersion(manifest, output.weights);
    this.eraseDeltas(round);
    this.db
      .prepare(
        `UPDATE rounds SET status = 'published', published_version = ?, noise_multiplier = ?,
         sample_rate = ?, skellam = ? WHERE id = ?`,
      )
      .run(...publishedRoundValues(round, version, output.privacy));
    if (output.optimizerState) this.writeOptimizerState(output.optimizerState, version);
  }

  /**
   * Erases the vectors of a round's updates once it is published or abandoned: a device's update is
   * kept no longer than its round needs it. Each row keeps its norm, example count and times (the
   * stats and the audit of the round).
   */
  private eraseDeltas(round: number): void {
    this.db
      .prepare(
        'DELETE FROM update_vectors WHERE update_id IN (SELECT id FROM updates WHERE round = ?)',
      )
      .run(round);
  }

  private writeOptimizerState(state: FedAdamState, version: number): void {
    this.db
      .prepare(
        `INSERT INTO optimizer_state (id, step, m, v, version) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET step = excluded.step, m = excluded.m, v = excluded.v,
         version = excluded.version`,
      )
      .run(...optimizerStateValues(state, version));
  }

  /** @inheritdoc */
  async publishSum(
    total: SumSubmission,
    policy: SumRoundPolicy,
    now: Date = new Date(),
  ): Promise<SumOutcome> {
    const at = now.toISOString();
    return this.db
      .transaction((): SumOutcome => {
        const latest = this.latest();
        checkSum(total, latest, policy);
        const current = requireCurrentVersion(latest);
        const base = this.storedVersion(current);
        const summed = requireStoredVersion(this.manifestOf(total.baseVersion), total.baseVersion);
        const context = this.roundContext();
        const publication = publishSumRound(policy, current, base, summed, total, context, at);
        // Inserted as published (never collecting: the plaintext round keeps that slot), then
        // given its version and ledger entry with the others' code.
        const info = this.db
          .prepare(
            `INSERT INTO rounds (base_version, status, opened_at, participants)
             VALUES (?, 'published', ?, ?)`,
          )
          .run(current, total.openedAt, total.count);
        const round = Number(info.lastInsertRowid);
        this.commitPublication(round, publication);
        this.beforePublishCommit?.();
        return { round, version: publication.version };
      })
      .immediate();
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
           v.created_at AS published_at, r.participants
         FROM rounds r LEFT JOIN versions v ON v.version = r.published_version
         ORDER BY r.id DESC LIMIT ?`,
      )
      .all(limit) as HistoryRow[];
    const norms = this.db
      .prepare('SELECT round, norm FROM updates WHERE round >= ? ORDER BY id')
      .all(historyNormsFrom(rounds)) as { round: number; norm: number }[];
    return historyFromRows(rounds, norms);
  }

  /** What a publication reads besides the round: optimiser state, ledger, catalogue. */
  private roundContext() {
    const catalog = this.currentCatalog()?.items;
    return {
      optimizerState: this.readOptimizerState(),
      ledger: this.ledger(),
      ...(catalog ? { catalog } : {}),
    };
  }

  private catalogHeadRow(): Omit<StoredCatalog, 'items'> | undefined {
    const row = this.db.prepare(CATALOG_HEAD_SQL).get() as Omit<CatalogRow, 'items'> | undefined;
    return row && decodeCatalogHead(row);
  }

  private currentCatalog(): StoredCatalog | undefined {
    const head = this.catalogHeadRow();
    if (!head) return undefined;
    const held = this.parsed.match(head);
    if (held) return held;
    return this.parsed.keep(decodeCatalogRow(this.db.prepare(CATALOG_ROW_SQL).get() as CatalogRow));
  }

  /** @inheritdoc */
  async catalog(): Promise<StoredCatalog | undefined> {
    return this.currentCatalog();
  }

  /** @inheritdoc */
  async catalogHead(): Promise<Omit<StoredCatalog, 'items'> | undefined> {
    return this.catalogHeadRow();
  }

  /** @inheritdoc */
  async replaceCatalog(items: readonly CatalogItem[], now = new Date()): Promise<CatalogChange> {
    const { json, digest } = catalogBody(items);
    return this.db
      .transaction((): CatalogChange => {
        // Equal digests, equal items: only the head is read.
        const current = this.catalogHeadRow();
        if (current?.digest === digest) {
          return { catalog: { ...current, items: [...items] }, changed: false };
        }
        const version = (current?.version ?? 0) + 1;
        const createdAt = now.toISOString();
        this.db
          .prepare('INSERT INTO catalogs (version, created_at, digest, items) VALUES (?, ?, ?, ?)')
          .run(version, createdAt, digest, json);
        this.db
          .prepare('DELETE FROM catalogs WHERE version <= ?')
          .run(version - CATALOG_VERSIONS_KEPT);
        return {
          catalog: { version, updatedAt: createdAt, digest, items: [...items] },
          changed: true,
        };
      })
      .immediate();
  }

  /** @inheritdoc */
  async growToCatalog(
    layoutFields?: RoundPolicy['layoutFields'],
    now: Date = new Date(),
  ): Promise<number | undefined> {
    return this.db
      .transaction((): number | undefined => {
        const current = this.latest();
        if (current === undefined) return undefined;
        const base = this.storedVersion(current);
        const growth = publishGrowth(
          layoutFields,
          current,
          base,
          this.roundContext(),
          now.toISOString(),
        );
        if (!growth) return undefined;
        this.insertVersion(growth.manifest, growth.weights);
        if (growth.optimizerState) this.writeOptimizerState(growth.optimizerState, growth.version);
        return growth.version;
      })
      .immediate();
  }

  /** @inheritdoc */
  async republish(
    from: number,
    over: number,
    layoutFields?: RoundPolicy['layoutFields'],
    now: Date = new Date(),
  ): Promise<number | undefined> {
    return this.db
      .transaction((): number | undefined => {
        const current = this.latest();
        if (current !== over || !(from < current)) return undefined;
        const manifest = this.manifestOf(from);
        const weights = this.weightsOf(from);
        if (!manifest || !weights) return undefined;
        const again = republication(
          layoutFields,
          current,
          requireStoredVersion(this.manifestOf(current), current),
          { manifest, weights: bytesToFloat32(weights) },
          now.toISOString(),
        );
        if (!again) return undefined;
        this.insertVersion(again.manifest, again.weights);
        return again.version;
      })
      .immediate();
  }

  /** @inheritdoc */
  /** @inheritdoc */
  async registerInstance(id: string, url: string, now: Date, forgetAfterMs: number): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare('DELETE FROM instances WHERE seen_at < ?')
        .run(new Date(now.getTime() - forgetAfterMs).toISOString());
      this.db
        .prepare(
          `INSERT INTO instances (id, url, seen_at) VALUES (?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at`,
        )
        .run(id, url, now.toISOString());
    })();
  }

  /** @inheritdoc */
  async instanceUrl(id: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT url FROM instances WHERE id = ?').get(id) as
      { url: string } | undefined;
    return row?.url;
  }

  /** @inheritdoc */
  async forgetInstance(id: string): Promise<void> {
    if (this.db.open) this.db.prepare('DELETE FROM instances WHERE id = ?').run(id);
  }

  /** @inheritdoc */
  async formingRound(): Promise<FormingClaim | undefined> {
    return this.db.prepare('SELECT round, instance FROM secure_forming WHERE id = 1').get() as
      FormingClaim | undefined;
  }

  /** @inheritdoc */
  async swapFormingRound(
    expected: string | undefined,
    next: FormingClaim | undefined,
  ): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const current = this.db.prepare('SELECT round FROM secure_forming WHERE id = 1').get() as
        { round: string } | undefined;
      if (current?.round !== expected) return false;
      this.db.prepare('DELETE FROM secure_forming').run();
      if (next) {
        this.db
          .prepare('INSERT INTO secure_forming (id, round, instance) VALUES (1, ?, ?)')
          .run(next.round, next.instance);
      }
      return true;
    })();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
