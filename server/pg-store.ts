/**
 * The Store on PostgreSQL, for several server instances sharing rounds (DESIGN.md, "Scale"). Each
 * method is one READ COMMITTED transaction that takes row locks before it decides anything:
 *   - submit locks the token's row and its round's row (`FOR UPDATE`), so every update of a round is
 *     counted and the round published by exactly one transaction, whichever instance runs it; a
 *     waiting transaction re-reads the rows once the lock holder commits, and then sees the round
 *     published (its update is stale) or the token used; an update whose token's round is already
 *     published (within the staleness bound) then also locks the collecting round it is counted in;
 *   - join locks the collecting round's row, so no token is issued to a round while it publishes;
 *     opening a new round takes an advisory lock, so two instances never open one on a stale version;
 *   - expiry locks the collecting round's row, as publishing does.
 * `synchronous_commit = on` is forced per connection: a 2xx promises the update is on disk, whatever
 * the database's default says. What the rows mean and what a store decides from them is shared with
 * SqliteStore: store-codecs.ts and store-rules.ts.
 */
import pg from 'pg';
import type { PoolClient } from 'pg';
import type { CatalogItem } from '../protocol/catalog.js';
import type { ModelManifest } from '../protocol/manifest.js';
import type { AggregateUpdate } from './aggregate.js';
import type { FedAdamState } from './fedadam.js';
import { assertLittleEndian, bytesToFloat32 } from './float32-bytes.js';
import { migratePg, PG_SCHEMA_LOCK } from './pg-schema.js';
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
  type StoredCatalog,
  type StoredVersion,
  type SubmitOutcome,
  type SumOutcome,
  type SumRoundPolicy,
  type SumSubmission,
  type UpdateSubmission,
} from './store.js';

/** Key of the advisory lock held while a new collecting round is opened. */
const OPEN_ROUND_LOCK = PG_SCHEMA_LOCK + 1;

/** Key of the advisory lock held while a secure aggregation sum is published. */
const PUBLISH_SUM_LOCK = PG_SCHEMA_LOCK + 2;
/** Serialises catalogue replacements (each takes the next version number). */
const CATALOG_LOCK = PG_SCHEMA_LOCK + 3;
/** Serialises the closing of round windows: each window is charged by one instance, once. */
const WINDOW_LOCK = PG_SCHEMA_LOCK + 4;

/** True when `db` names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

type Sql = Pick<PoolClient, 'query'>;

async function one<T extends object>(
  sql: Sql,
  text: string,
  values: unknown[] = [],
): Promise<T | undefined> {
  const result = await sql.query<T>(text, values);
  return result.rows[0];
}

async function latest(sql: Sql): Promise<number | undefined> {
  const row = await one<{ v: number | null }>(sql, 'SELECT MAX(version) AS v FROM versions');
  return row?.v ?? undefined;
}

async function ledger(sql: Sql): Promise<RoundPrivacy[]> {
  const { rows } = await sql.query<LedgerRow>(LEDGER_QUERY);
  return rows.map(decodeLedgerRow);
}

async function readOptimizerState(sql: Sql): Promise<FedAdamState | undefined> {
  return decodeOptimizerState(
    await one<OptimizerStateRow>(sql, 'SELECT step, m, v FROM optimizer_state WHERE id = 1'),
  );
}

/** The newest round window closed on the database, if any. */
async function lastWindow(sql: Sql): Promise<number | undefined> {
  const row = await one<{ last: number | null }>(
    sql,
    'SELECT MAX(window_index) AS last FROM rounds',
  );
  return row?.last ?? undefined;
}

/** A round window's running sum of clipped updates, if it has folded any. */
async function runningSum(
  sql: Sql,
  round: number,
): Promise<{ folded: number; sum: Float64Array } | undefined> {
  const row = await one<{ folded: number; sum: Uint8Array }>(
    sql,
    'SELECT folded, sum FROM round_sums WHERE round = $1',
    [round],
  );
  return row && { folded: row.folded, sum: bytesToFloat64(row.sum) };
}

/** The updates of `round` whose vectors are still stored (not yet folded), in arrival order. */
async function unfolded(sql: Sql, round: number): Promise<AggregateUpdate[]> {
  const { rows } = await sql.query<UpdateRow>(
    `SELECT u.examples, v.delta FROM updates u JOIN update_vectors v ON v.update_id = u.id
     WHERE u.round = $1 ORDER BY u.id`,
    [round],
  );
  return rows.map(decodeUpdate);
}

/**
 * Folds a round window's stored updates into its running sum once `windows.foldEvery` of them
 * wait, and erases their vectors (SqliteStore.foldWhenDue).
 */
async function foldWhenDue(
  sql: Sql,
  round: number,
  count: number,
  windows: RoundWindows,
): Promise<void> {
  // The count alone first: the sum (8 bytes a value) is read only when it is added to.
  const folded = await one<{ folded: number }>(
    sql,
    'SELECT folded FROM round_sums WHERE round = $1',
    [round],
  );
  if (count - (folded?.folded ?? 0) < windows.foldEvery) return;
  const partial = await runningSum(sql, round);
  const { sum, count: added } = windows.fold(partial?.sum, await unfolded(sql, round));
  await sql.query(
    `INSERT INTO round_sums (round, folded, sum) VALUES ($1, $2, $3)
     ON CONFLICT (round) DO UPDATE SET folded = excluded.folded, sum = excluded.sum`,
    [round, (partial?.folded ?? 0) + added, float64ToBytes(sum!)],
  );
  await eraseDeltas(sql, round);
}

/** Updates stored in `round` so far. */
async function received(sql: Sql, round: number): Promise<number> {
  const row = await one<{ n: number }>(
    sql,
    'SELECT COUNT(*)::int AS n FROM updates WHERE round = $1',
    [round],
  );
  return row!.n;
}

/** Options of PgStore.open. */
export interface PgStoreOptions {
  /** Most connections this instance holds (default 10). */
  readonly maxConnections?: number;
}

/** Store on a PostgreSQL database shared by any number of server instances. */
export class PgStore implements Store {
  private readonly parsed = new ParsedCatalog();

  private constructor(private readonly pool: pg.Pool) {}

  /** Connects to `url`, creating or checking the schema; throws if the database is unreachable. */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    assertLittleEndian();
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      options: '-c synchronous_commit=on',
    });
    // An idle connection the server drops (restart, failover) must not crash the process; the pool
    // replaces it, and a request that was using it fails with the query's own error.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await migratePg(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PgStore(pool);
  }

  /** Runs `fn` in one transaction on one connection; rolls back on any error. */
  private async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
      client.release(broken);
    }
  }

  /** @inheritdoc */
  async latestVersion(): Promise<number | undefined> {
    return latest(this.pool);
  }

  /** @inheritdoc */
  async getManifest(version: number): Promise<ModelManifest | undefined> {
    const row = await one<{ manifest: string }>(
      this.pool,
      'SELECT manifest FROM version_manifests WHERE version = $1',
      [version],
    );
    // Absent: not stored, or erased once MANIFESTS_KEPT newer versions were published.
    return row ? decodeManifest(row.manifest) : undefined;
  }

  /** @inheritdoc */
  async getWeightBytes(version: number): Promise<Uint8Array | undefined> {
    const row = await one<{ weights: Buffer }>(
      this.pool,
      'SELECT weights FROM version_weights WHERE version = $1',
      [version],
    );
    // Absent: not stored, or erased once WEIGHTS_KEPT newer versions were published.
    return row?.weights;
  }

  /** @inheritdoc */
  async seed(version: StoredVersion): Promise<boolean> {
    return this.tx(async (sql) => {
      // Instances starting together would otherwise both see an empty table and both insert.
      await sql.query('SELECT pg_advisory_xact_lock($1)', [PG_SCHEMA_LOCK]);
      if ((await latest(sql)) !== undefined) return false;
      await insertVersion(sql, version.manifest, version.weights);
      return true;
    });
  }

  /** Abandons the collecting round if it expired (own transaction, kept even if the caller fails). */
  private async expire(expiry: RoundExpiry | undefined): Promise<number | undefined> {
    if (!expiry) return undefined;
    if (expiry.windows) return this.closeWindows(expiry, expiry.windows);
    return this.tx(async (sql) => {
      const round = await one<{ id: number; opened_at: string | null }>(
        sql,
        "SELECT id, opened_at FROM rounds WHERE status = 'collecting' FOR UPDATE",
      );
      if (!round || !pastDeadline(round.opened_at, expiry)) return undefined;
      if (roundIsFull(await received(sql, round.id), expiry.minCohort)) return undefined;
      await sql.query("UPDATE rounds SET status = 'abandoned', abandoned_at = $1 WHERE id = $2", [
        eventTime(expiry),
        round.id,
      ]);
      await eraseDeltas(sql, round.id);
      return round.id;
    });
  }

  /**
   * Closes every round window that ended before `expiry.now` (store.ts RoundWindows), as
   * SqliteStore does, under an advisory lock: whichever instance gets it second finds them closed.
   */
  private async closeWindows(
    expiry: RoundExpiry,
    windows: RoundWindows,
  ): Promise<number | undefined> {
    return this.tx(async (sql) => {
      await sql.query('SELECT pg_advisory_xact_lock($1)', [WINDOW_LOCK]);
      const current = await latest(sql);
      if (current === undefined) return undefined;
      const now = eventTime(expiry);
      let charged = await lastWindow(sql);
      const round = await one<{ id: number; opened_at: string | null }>(
        sql,
        "SELECT id, opened_at FROM rounds WHERE status = 'collecting' FOR UPDATE",
      );
      let closed: number | undefined;
      if (round) {
        const own = windowOfRound(round.opened_at, windows);
        // A round of the current window: every earlier window was closed when it opened.
        if (own >= windows.current) return undefined;
        const count = await received(sql, round.id);
        const policy = windows.decide(count);
        // The running sum (8 bytes a value) is read only to publish it.
        const partial = policy && (await runningSum(sql, round.id));
        if (policy && partial) {
          // Most of its updates are in the running sum: only the rest are folded now.
          const { sum } = windows.fold(partial.sum, await unfolded(sql, round.id));
          const base = await storedVersion(sql, current);
          // In float32, as a secure round's sum is.
          const total = {
            baseVersion: current,
            sum: Float32Array.from(sum!),
            count,
            openedAt: now,
          };
          const context = await roundContext(sql, this.parsed);
          const at = publishSumRound(policy, current, base, base.manifest, total, context, now);
          await commitPublication(sql, round.id, at);
        } else if (policy) {
          await publish(sql, round.id, current, now, policy, this.parsed);
        } else {
          await sql.query(
            `UPDATE rounds SET status = 'abandoned', abandoned_at = $1, noise_multiplier = $2,
             sample_rate = $3 WHERE id = $4`,
            [now, windows.charge.noiseMultiplier, windows.charge.sampleRate, round.id],
          );
          await eraseDeltas(sql, round.id);
        }
        await sql.query('DELETE FROM round_sums WHERE round = $1', [round.id]);
        await sql.query('UPDATE rounds SET window_index = $1, window_count = 1 WHERE id = $2', [
          own,
          round.id,
        ]);
        closed = round.id;
        charged = Math.max(charged ?? own, own);
      }
      const empty = emptyWindows(charged, windows);
      if (empty) {
        const count = empty.count > 0 ? windows.chargeable(await ledger(sql), empty.count) : 0;
        for (const run of emptyWindowRuns(empty, count, windows)) {
          const version = requireCurrentVersion(await latest(sql));
          if (run.kind === 'charge') {
            await sql.query(
              `INSERT INTO rounds (base_version, status, opened_at, abandoned_at, noise_multiplier,
               sample_rate, window_index, window_count) VALUES ($1, 'abandoned', $2, $3, $4, $5, $6, $7)`,
              emptyWindowsValues(version, run, windows, now),
            );
            continue;
          }
          // A window nobody joined whose noised count reached m: a round of no update.
          const inserted = await one<{ id: number }>(
            sql,
            `INSERT INTO rounds (base_version, status, opened_at, window_index, window_count)
             VALUES ($1, 'collecting', $2, $3, $4) RETURNING id`,
            noiseWindowValues(version, run.window, windows),
          );
          await publish(sql, inserted!.id, version, now, run.policy, this.parsed);
        }
      }
      return closed;
    });
  }

  /** @inheritdoc */
  async abandonExpiredRound(expiry: RoundExpiry): Promise<number | undefined> {
    return this.expire(expiry);
  }

  /** @inheritdoc */
  async joinRound(token: string, expiry?: RoundExpiry): Promise<RoundTicket> {
    await this.expire(expiry);
    const now = eventTime(expiry);
    return this.tx(async (sql) => {
      if (expiry?.windows) checkWindowOpen(await lastWindow(sql), expiry.windows);
      const ticket = await collectingRound(sql, now);
      await sql.query('INSERT INTO tokens (token, round, issued_at) VALUES ($1, $2, $3)', [
        token,
        ticket.round,
        now,
      ]);
      return ticket;
    });
  }

  /** @inheritdoc */
  async submitUpdate(
    update: UpdateSubmission,
    policy: RoundPolicy,
    expiry?: RoundExpiry,
  ): Promise<SubmitOutcome> {
    await this.expire(expiry);
    const now = eventTime(expiry);
    return this.tx(async (sql) => {
      // Both rows locked: the round's so that this instance alone counts and publishes it, the
      // token's so that a concurrent post of the same token waits and then sees it used.
      const row = await one<TokenRow>(
        sql,
        `SELECT t.round, t.used_at, r.status, r.base_version
         FROM tokens t JOIN rounds r ON r.id = t.round WHERE t.token = $1 FOR UPDATE OF t, r`,
        [update.token],
      );
      const token = checkSubmission(update, await latest(sql), row, policy.maxStaleness);
      let target: RoundTicket = { round: token.round, version: token.base_version };
      if (!countsInOwnRound(token)) {
        // A published round's token counts in the collecting round, locked after the token's rows
        // (no lock cycle); the bound is checked again against the version read under that lock.
        target = await collectingRound(sql, now);
        checkSubmission(update, target.version, row, policy.maxStaleness);
      }
      update.admit?.(target.round);
      await sql.query('UPDATE tokens SET used_at = $1 WHERE token = $2', [now, update.token]);
      const inserted = await one<{ id: number }>(
        sql,
        `INSERT INTO updates (round, token, examples, norm, delta, received_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
        updateValues(target.round, update, now),
      );
      await sql.query('INSERT INTO update_vectors (update_id, delta) VALUES ($1, $2)', [
        inserted!.id,
        deltaToBytes(update.delta),
      ]);
      const count = await received(sql, target.round);
      if (expiry?.windows) await foldWhenDue(sql, target.round, count, expiry.windows);
      if (!roundIsFull(count, policy.minCohort)) {
        return { ...target, received: count, published: false };
      }
      const version = await publish(sql, target.round, target.version, now, policy, this.parsed);
      return { round: target.round, received: count, version, published: true };
    });
  }

  /** @inheritdoc */
  async publishSum(
    total: SumSubmission,
    policy: SumRoundPolicy,
    now: Date = new Date(),
  ): Promise<SumOutcome> {
    const at = now.toISOString();
    return this.tx(async (sql) => {
      // Summed rounds of several instances publish one at a time, each on the version before it.
      await sql.query('SELECT pg_advisory_xact_lock($1)', [PUBLISH_SUM_LOCK]);
      const latestVersion = await latest(sql);
      checkSum(total, latestVersion, policy);
      const current = requireCurrentVersion(latestVersion);
      const base = await storedVersion(sql, current);
      const summed = (await storedVersion(sql, total.baseVersion)).manifest;
      const context = await roundContext(sql, this.parsed);
      const publication = publishSumRound(policy, current, base, summed, total, context, at);
      const inserted = await one<{ id: number }>(
        sql,
        `INSERT INTO rounds (base_version, status, opened_at, participants)
         VALUES ($1, 'published', $2, $3) RETURNING id`,
        [current, total.openedAt, total.count],
      );
      await commitPublication(sql, inserted!.id, publication);
      return { round: inserted!.id, version: publication.version };
    });
  }

  /** @inheritdoc */
  async privacyLedger(): Promise<RoundPrivacy[]> {
    return ledger(this.pool);
  }

  /** @inheritdoc */
  async optimizerState(): Promise<FedAdamState | undefined> {
    return readOptimizerState(this.pool);
  }

  /** @inheritdoc */
  async counts(): Promise<StoreCounts> {
    const row = await one<StoreCounts>(
      this.pool,
      `SELECT (SELECT COUNT(*)::int FROM versions) AS versions,
         (SELECT COUNT(*)::int FROM rounds) AS rounds,
         (SELECT COUNT(*)::int FROM tokens) AS tokens,
         (SELECT COUNT(*)::int FROM tokens WHERE used_at IS NOT NULL) AS "usedTokens",
         (SELECT COUNT(*)::int FROM updates) AS updates,
         (SELECT COUNT(*)::int FROM rounds WHERE status = 'abandoned') AS "abandonedRounds"`,
    );
    return row!;
  }

  /** @inheritdoc */
  async history(limit: number): Promise<RoundHistory[]> {
    const { rows } = await this.pool.query<HistoryRow>(
      `SELECT r.id, r.base_version, r.status, r.opened_at, r.published_version,
         v.created_at AS published_at, r.participants
       FROM rounds r LEFT JOIN versions v ON v.version = r.published_version
       ORDER BY r.id DESC LIMIT $1`,
      [limit],
    );
    const norms = await this.pool.query<{ round: number; norm: number }>(
      'SELECT round, norm FROM updates WHERE round >= $1 ORDER BY id',
      [historyNormsFrom(rows)],
    );
    return historyFromRows(rows, norms.rows);
  }

  /** @inheritdoc */
  async catalog(): Promise<StoredCatalog | undefined> {
    return currentCatalog(this.pool, this.parsed);
  }

  /** @inheritdoc */
  async catalogHead(): Promise<Omit<StoredCatalog, 'items'> | undefined> {
    return catalogHead(this.pool);
  }

  /** @inheritdoc */
  async replaceCatalog(items: readonly CatalogItem[], now = new Date()): Promise<CatalogChange> {
    const { json, digest } = catalogBody(items);
    return this.tx(async (sql) => {
      await sql.query('SELECT pg_advisory_xact_lock($1)', [CATALOG_LOCK]);
      // Equal digests, equal items: only the head is read.
      const current = await catalogHead(sql);
      if (current?.digest === digest) {
        return { catalog: { ...current, items: [...items] }, changed: false };
      }
      const version = (current?.version ?? 0) + 1;
      const createdAt = now.toISOString();
      await sql.query(
        'INSERT INTO catalogs (version, created_at, digest, items) VALUES ($1, $2, $3, $4)',
        [version, createdAt, digest, json],
      );
      await sql.query('DELETE FROM catalogs WHERE version <= $1', [
        version - CATALOG_VERSIONS_KEPT,
      ]);
      return {
        catalog: { version, updatedAt: createdAt, digest, items: [...items] },
        changed: true,
      };
    });
  }

  /** @inheritdoc */
  async growToCatalog(
    layoutFields?: RoundPolicy['layoutFields'],
    now: Date = new Date(),
  ): Promise<number | undefined> {
    return this.tx(async (sql) => {
      // Publishes like a summed round: one at a time, on the version before it.
      await sql.query('SELECT pg_advisory_xact_lock($1)', [PUBLISH_SUM_LOCK]);
      const current = await latest(sql);
      if (current === undefined) return undefined;
      const base = await storedVersion(sql, current);
      const context = await roundContext(sql, this.parsed);
      const growth = publishGrowth(layoutFields, current, base, context, now.toISOString());
      if (!growth) return undefined;
      await insertVersion(sql, growth.manifest, growth.weights);
      if (growth.optimizerState) {
        await writeOptimizerState(sql, growth.optimizerState, growth.version);
      }
      return growth.version;
    });
  }

  /** @inheritdoc */
  async republish(
    from: number,
    over: number,
    layoutFields?: RoundPolicy['layoutFields'],
    now: Date = new Date(),
  ): Promise<number | undefined> {
    return this.tx(async (sql) => {
      await sql.query('SELECT pg_advisory_xact_lock($1)', [PUBLISH_SUM_LOCK]);
      const current = await latest(sql);
      if (current !== over || !(from < current)) return undefined;
      const old = await storedVersion(sql, from).catch(() => undefined);
      // Not stored, or its weights erased (WEIGHTS_KEPT).
      if (!old || old.weights.length === 0) return undefined;
      const template = (await storedVersion(sql, current)).manifest;
      const again = republication(layoutFields, current, template, old, now.toISOString());
      if (!again) return undefined;
      await insertVersion(sql, again.manifest, again.weights);
      return again.version;
    });
  }

  /** @inheritdoc */
  /** @inheritdoc */
  async registerInstance(id: string, url: string, now: Date, forgetAfterMs: number): Promise<void> {
    await this.pool.query('DELETE FROM instances WHERE seen_at < $1', [
      new Date(now.getTime() - forgetAfterMs).toISOString(),
    ]);
    await this.pool.query(
      `INSERT INTO instances (id, url, seen_at) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at`,
      [id, url, now.toISOString()],
    );
  }

  /** @inheritdoc */
  async instanceUrl(id: string): Promise<string | undefined> {
    return (await one<{ url: string }>(this.pool, 'SELECT url FROM instances WHERE id = $1', [id]))
      ?.url;
  }

  /** @inheritdoc */
  async forgetInstance(id: string): Promise<void> {
    await this.pool.query('DELETE FROM instances WHERE id = $1', [id]);
  }

  /** @inheritdoc */
  async formingRound(): Promise<FormingClaim | undefined> {
    return one<FormingClaim>(this.pool, 'SELECT round, instance FROM secure_forming WHERE id = 1');
  }

  /** @inheritdoc */
  async swapFormingRound(
    expected: string | undefined,
    next: FormingClaim | undefined,
  ): Promise<boolean> {
    // One statement each, so the comparison and the change are atomic without a transaction.
    if (expected === undefined) {
      if (!next) return (await one(this.pool, 'SELECT 1 FROM secure_forming')) === undefined;
      const added = await this.pool.query(
        `INSERT INTO secure_forming (id, round, instance) VALUES (1, $1, $2)
         ON CONFLICT (id) DO NOTHING`,
        [next.round, next.instance],
      );
      return added.rowCount === 1;
    }
    const changed = next
      ? await this.pool.query(
          'UPDATE secure_forming SET round = $2, instance = $3 WHERE id = 1 AND round = $1',
          [expected, next.round, next.instance],
        )
      : await this.pool.query('DELETE FROM secure_forming WHERE id = 1 AND round = $1', [expected]);
    return changed.rowCount === 1;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** What a publication reads besides the round: optimiser state, ledger, catalogue. */
async function roundContext(sql: Sql, parsed: ParsedCatalog) {
  const catalog = (await currentCatalog(sql, parsed))?.items;
  return {
    optimizerState: await readOptimizerState(sql),
    ledger: await ledger(sql),
    ...(catalog ? { catalog } : {}),
  };
}

async function catalogHead(sql: Sql): Promise<Omit<StoredCatalog, 'items'> | undefined> {
  const row = await one<Omit<CatalogRow, 'items'>>(sql, CATALOG_HEAD_SQL);
  return row && decodeCatalogHead(row);
}

/** The newest catalogue: the one `parsed` holds while the head names it, else read and held. */
async function currentCatalog(sql: Sql, parsed: ParsedCatalog): Promise<StoredCatalog | undefined> {
  const head = await catalogHead(sql);
  if (!head) return undefined;
  const held = parsed.match(head);
  if (held) return held;
  const row = await one<CatalogRow>(sql, CATALOG_ROW_SQL);
  return row && parsed.keep(decodeCatalogRow(row));
}

/** The collecting round (row locked, opened at `now` if none) and the version read under its lock. */
async function collectingRound(sql: Sql, now: string): Promise<RoundTicket> {
  const collecting = (): Promise<{ id: number; base_version: number } | undefined> =>
    one(sql, "SELECT id, base_version FROM rounds WHERE status = 'collecting' FOR UPDATE");
  let round = await collecting();
  if (!round) {
    // Serialises opening: whoever gets the lock second finds the first one's round (read
    // committed: a statement after the lock sees every commit before it).
    await sql.query('SELECT pg_advisory_xact_lock($1)', [OPEN_ROUND_LOCK]);
    round = await collecting();
  }
  const current = requireCurrentVersion(await latest(sql));
  checkCollectingRound(round, current);
  if (round) return { round: round.id, version: current };
  const inserted = await one<{ id: number }>(
    sql,
    `INSERT INTO rounds (base_version, status, opened_at) VALUES ($1, 'collecting', $2)
     RETURNING id`,
    [current, now],
  );
  return { round: inserted!.id, version: current };
}

/**
 * Inserts a version and erases the weights of those WEIGHTS_KEPT or more before it, and the manifests
 * of those MANIFESTS_KEPT or more before it.
 */
async function insertVersion(sql: Sql, manifest: ModelManifest, weights: Float32Array) {
  const { version, createdAt, manifestText, weightBytes } = versionValues(manifest, weights);
  await sql.query('INSERT INTO versions (version, created_at) VALUES ($1, $2)', [
    version,
    createdAt,
  ]);
  await sql.query('INSERT INTO version_manifests (version, manifest) VALUES ($1, $2)', [
    version,
    manifestText,
  ]);
  await sql.query('INSERT INTO version_weights (version, weights) VALUES ($1, $2)', [
    version,
    weightBytes,
  ]);
  await sql.query('DELETE FROM version_weights WHERE version <= $1', [version - WEIGHTS_KEPT]);
  await sql.query('DELETE FROM version_manifests WHERE version <= $1', [version - MANIFESTS_KEPT]);
  // The per-update rows of rounds older than the newest ROUNDS_WITH_ROWS_KEPT (index ranges: the
  // collecting round is always the newest).
  const newest = (await one<{ newest: number | null }>(sql, 'SELECT MAX(id) AS newest FROM rounds'))
    ?.newest;
  const cutoff = (newest ?? 0) - ROUNDS_WITH_ROWS_KEPT;
  if (cutoff < 1) return;
  await sql.query(
    'DELETE FROM update_vectors WHERE update_id IN (SELECT id FROM updates WHERE round <= $1)',
    [cutoff],
  );
  await sql.query('DELETE FROM updates WHERE round <= $1', [cutoff]);
  // A token of an old round may carry a newer round's update (a stale one): it goes with that.
  await sql.query(
    `DELETE FROM tokens WHERE round <= $1
     AND NOT EXISTS (SELECT 1 FROM updates u WHERE u.token = tokens.token)`,
    [cutoff],
  );
}

/**
 * Publishes the full `round` on version `current` inside the caller's transaction; returns the
 * version it published. The round's deltas are read in full first: RoundPolicy.aggregate is
 * synchronous (SQLite streams them from a cursor), and a pg query is not. A round holds m updates, so
 * this is m deltas in memory for the length of one round.
 */
async function publish(
  sql: Sql,
  round: number,
  current: number,
  now: string,
  policy: RoundPolicy,
  parsed: ParsedCatalog,
): Promise<number> {
  const base = await storedVersion(sql, current);
  const { rows } = await sql.query<UpdateRow>(
    `SELECT u.examples, v.delta FROM updates u JOIN update_vectors v ON v.update_id = u.id
     WHERE u.round = $1 ORDER BY u.id`,
    [round],
  );
  const context = await roundContext(sql, parsed);
  const publication = publishRound(policy, current, base, rows.map(decodeUpdate), context, now);
  await commitPublication(sql, round, publication);
  return publication.version;
}

/** Writes a round's publication: the new version, the round's ledger entry, the optimiser state. */
async function commitPublication(sql: Sql, round: number, publication: Publication): Promise<void> {
  const { version, manifest, output } = publication;
  await insertVersion(sql, manifest, output.weights);
  await eraseDeltas(sql, round);
  await sql.query(
    `UPDATE rounds SET status = 'published', published_version = $1, noise_multiplier = $2,
     sample_rate = $3, skellam = $4 WHERE id = $5`,
    publishedRoundValues(round, version, output.privacy),
  );
  if (output.optimizerState) await writeOptimizerState(sql, output.optimizerState, version);
}

/**
 * Erases the vectors of a round's updates once it is published or abandoned: a device's update is
 * kept no longer than its round needs it. Each row keeps its norm, example count and times.
 */
async function eraseDeltas(sql: Sql, round: number): Promise<void> {
  await sql.query(
    'DELETE FROM update_vectors WHERE update_id IN (SELECT id FROM updates WHERE round = $1)',
    [round],
  );
}

async function writeOptimizerState(sql: Sql, state: FedAdamState, version: number): Promise<void> {
  await sql.query(
    `INSERT INTO optimizer_state (id, step, m, v, version) VALUES (1, $1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET step = excluded.step, m = excluded.m, v = excluded.v,
     version = excluded.version`,
    optimizerStateValues(state, version),
  );
}

/** A stored version's manifest and float32 weights, inside the caller's transaction. */
async function storedVersion(sql: Sql, version: number) {
  const stored = requireStoredVersion(
    await one<{ manifest: string; weights: Buffer }>(
      sql,
      `SELECT m.manifest, w.weights FROM version_manifests m
       JOIN version_weights w ON w.version = m.version WHERE m.version = $1`,
      [version],
    ),
    version,
  );
  return { manifest: decodeManifest(stored.manifest), weights: bytesToFloat32(stored.weights) };
}
