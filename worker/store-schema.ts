/**
 * The IndexedDB schema of the device store, its migrations, and the shape checks applied to every
 * row read back. A database is written by whichever SDK version a visitor last loaded, so anything
 * read from it is untrusted: an older version, a hand-edited database or a half-finished write.
 */
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb';
import {
  INTERACTION_TYPES,
  REQUEST_KINDS,
  type JoinedRound,
  type SentRequest,
  type StoredInteraction,
} from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import type { LocalCopy } from './local-copy.js';

const log = createLogger('store');

/** Name of the IndexedDB database. */
export const DB_NAME = 'hearth';
/**
 * Schema version. 1: interactions + meta. 2: adds sessions, models and outbox. 3: adds the privacy
 * ledger's requests and rounds. Bump it with a new `if (oldVersion < n)` step in `upgradeSchema`;
 * never edit an old step (devices run them in order).
 */
export const DB_VERSION = 3;

/**
 * Most interactions kept on the device; adding one more evicts the oldest. 5,000 is months of
 * browsing for a typical visitor and bounds both the disk used and the replay set of local training.
 */
export const MAX_INTERACTIONS = 5_000;
/**
 * Requests kept in the privacy ledger; logging one more evicts the oldest. A sync sends a handful
 * (a secure round about a dozen), so this is weeks of a typical visitor's requests.
 */
export const MAX_REQUESTS = 500;
/** Global model versions kept (the current one and its predecessor, for a tab not yet reloaded). */
export const MODELS_KEPT = 2;

/** Bookkeeping values kept next to the interactions. */
export interface StoreMeta {
  /** Visitor actions (not views) tracked since the last update was shared. */
  sinceUpload: number;
  /** Updates this device has sent. */
  uploadsSent: number;
  /** Last round this device took part in (at most one update per round). */
  lastRound: number;
  /** The visitor opted out of sharing updates (`hearth('optOut')`); kept until opt-in or forget. */
  optedOut: boolean;
  /** The model version this device last flipped its participation coin for (0: none yet). */
  coinVersion: number;
  /** Whether that coin said to take part in the version's round (participation.ts). */
  coinJoins: boolean;
  /**
   * The round window (`roundWindowAt`) this device last flipped its coin for, when the manifest's
   * rounds close on a clock (-1: none yet; meta from before it was kept reads as that).
   */
  coinWindow: number;
  /** Whether that coin said to take part in the window's round (participation.ts). */
  coinWindowJoins: boolean;
}

/** What a fresh device's meta reads as. */
export const META_DEFAULTS: StoreMeta = {
  sinceUpload: 0,
  uploadsSent: 0,
  lastRound: 0,
  optedOut: false,
  coinVersion: 0,
  coinJoins: false,
  coinWindow: -1,
  coinWindowJoins: false,
};

/** A new interaction before the store assigns its id. */
export type NewInteraction = Omit<StoredInteraction, 'id'>;

/** What the engine needs from storage, whichever kind backs it. */
export interface InteractionStore {
  readonly kind: 'indexeddb' | 'memory';
  /** Adds one interaction (evicting the oldest beyond MAX_INTERACTIONS); resolves with its id. */
  add(interaction: NewInteraction): Promise<number>;
  /** Newest first. */
  recent(limit: number): Promise<StoredInteraction[]>;
  /** Oldest first. Rows that fail validation (e.g. left by an older version) are skipped. */
  all(): Promise<StoredInteraction[]>;
  count(): Promise<number>;
  /** Session summaries, newest first. */
  sessions(limit: number): Promise<SessionSummary[]>;
  getMeta(): Promise<StoreMeta>;
  setMeta(patch: Partial<StoreMeta>): Promise<void>;
  /** The cached model of `version`, if kept (structurally checked; the manifest is not parsed). */
  getModel(version: number): Promise<CachedModel | undefined>;
  /** The newest cached model (what an offline start serves). */
  newestModel(): Promise<CachedModel | undefined>;
  /** Stores (or replaces) a model version and drops all but the newest MODELS_KEPT. */
  putModel(model: CachedModel): Promise<void>;
  /**
   * Stores the device's fine-tuned copy of a model version, as the blocks where it differs from
   * that version's weights (local-copy.ts); getModel and newestModel then return the row with it
   * as `local`. One copy is kept: a newer one replaces it, whatever its version.
   */
  putLocal(copy: LocalCopy): Promise<void>;
  /** The pending update, if one could not be sent. */
  getOutbox(): Promise<OutboxEntry | undefined>;
  /** Replaces the pending update; null clears it. */
  setOutbox(entry: OutboxEntry | null): Promise<void>;
  /** Logs a request the engine sent (evicting the oldest beyond MAX_REQUESTS). */
  logRequest(request: SentRequest): Promise<void>;
  /** Logged requests, newest first. */
  requests(limit: number): Promise<SentRequest[]>;
  /**
   * Records a round this device's update was counted in. Never evicted: the device's epsilon is
   * priced from all of them (at most one per round, and each needs the visitor's actions).
   */
  addRound(round: JoinedRound): Promise<void>;
  /** The rounds recorded, oldest first. Rows that fail validation are skipped. */
  rounds(): Promise<JoinedRound[]>;
  /**
   * Erases every interaction with `item`, and with them the personalised model copy and the pending
   * update (both were learned from them), in one transaction; resolves with how many went.
   */
  forgetItem(item: string): Promise<number>;
  /** Erases everything stored (for IndexedDB: deletes the database). The store is unusable after. */
  destroy(): Promise<void>;
  /** The cached backend decision (unvalidated: whatever an earlier version stored), if any. */
  getBackendChoice(): Promise<unknown>;
  setBackendChoice(choice: unknown): Promise<void>;
}

/** One session (30 minutes of inactivity end it), kept up to date as interactions are added. */
export interface SessionSummary {
  /** The session id: the timestamp of its first interaction (see sessions.ts). */
  readonly id: number;
  readonly start: number;
  readonly last: number;
  /** Interactions of this session still stored (eviction lowers it). */
  readonly count: number;
}

/**
 * A global model version kept on the device so a reload does not download its weights again. The
 * manifest is kept as the server sent it and re-validated on use; `local` is this device's
 * fine-tuned copy derived from this version (it never leaves the device; only clipped deltas do).
 * Stores keep `local` apart (putLocal) and join it on reading; older versions of Hearth wrote it
 * into the row itself, which is still read when no newer copy is kept.
 */
export interface CachedModel {
  readonly version: number;
  readonly manifest: unknown;
  readonly weights: Float32Array;
  readonly local?: Float32Array;
  readonly savedAt: number;
}

/** An update that was trained but could not be sent (offline, server down): retried on next sync. */
export interface OutboxEntry {
  /** The global version the delta is relative to; dropped once the server would refuse it as stale. */
  readonly baseVersion: number;
  readonly layoutHash: number;
  /** Already clipped to the manifest's S. */
  readonly delta: Float32Array;
  readonly examples: number;
  readonly createdAt: number;
}

/** The typed schema for `idb`. */
export interface HearthDb extends DBSchema {
  interactions: { key: number; value: StoredInteraction; indexes: { session: number } };
  meta: { key: string; value: unknown };
  sessions: { key: number; value: SessionSummary };
  models: { key: number; value: CachedModel };
  outbox: { key: string; value: OutboxEntry };
  requests: { key: number; value: SentRequest & { id?: number } };
  rounds: { key: number; value: JoinedRound & { id?: number } };
}

/** Every object store this version must have; a database missing one is treated as corrupt. */
export const STORE_NAMES = [
  'interactions',
  'meta',
  'sessions',
  'models',
  'outbox',
  'requests',
  'rounds',
] as const;

/** True when a row read back from storage has the shape this version writes. */
export function isStoredInteraction(row: unknown): row is StoredInteraction {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  return (
    Number.isInteger(r.id) &&
    typeof r.item === 'string' &&
    (INTERACTION_TYPES as readonly unknown[]).includes(r.type) &&
    Number.isFinite(r.ts) &&
    Number.isFinite(r.session)
  );
}

/** Structural check of a cached model row (the manifest itself is re-parsed by model-source.ts). */
export function isCachedModel(row: unknown): row is CachedModel {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  return (
    Number.isInteger(r.version) &&
    r.weights instanceof Float32Array &&
    (r.local === undefined ||
      (r.local instanceof Float32Array && r.local.length === r.weights.length)) &&
    typeof r.manifest === 'object' &&
    r.manifest !== null
  );
}

/** Structural check of an outbox row. */
export function isOutboxEntry(row: unknown): row is OutboxEntry {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  return (
    Number.isInteger(r.baseVersion) &&
    Number.isInteger(r.layoutHash) &&
    r.delta instanceof Float32Array &&
    Number.isInteger(r.examples) &&
    Number.isFinite(r.createdAt)
  );
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** True when a request row read back has the shape this version writes. */
export function isSentRequest(row: unknown): row is SentRequest {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  return (
    Number.isFinite(r.ts) &&
    (REQUEST_KINDS as readonly unknown[]).includes(r.kind) &&
    typeof r.method === 'string' &&
    typeof r.url === 'string' &&
    isCount(r.sent) &&
    isCount(r.received) &&
    isCount(r.status)
  );
}

/** True when a round row read back has the shape this version writes. */
export function isJoinedRound(row: unknown): row is JoinedRound {
  if (typeof row !== 'object' || row === null) return false;
  const r = row as Record<string, unknown>;
  const p = r.privacy as Record<string, unknown> | null | undefined;
  const k = p?.skellam as Record<string, unknown> | undefined;
  return (
    typeof r.round === 'string' &&
    Number.isInteger(r.version) &&
    Number.isFinite(r.at) &&
    (r.mode === 'secure' || r.mode === 'plaintext') &&
    typeof p === 'object' &&
    p !== null &&
    typeof p.noiseMultiplier === 'number' &&
    p.noiseMultiplier >= 0 &&
    typeof p.sampleRate === 'number' &&
    p.sampleRate >= 0 &&
    p.sampleRate <= 1 &&
    (k === undefined ||
      (typeof k === 'object' &&
        k !== null &&
        [k.mu, k.l1, k.l2].every((v) => typeof v === 'number' && v > 0 && Number.isFinite(v))))
  );
}

/** The rows as they are stored, without the store's own key. */
export function withoutId<T extends { id?: number }>(row: T): Omit<T, 'id'> {
  const rest = { ...row };
  delete rest.id;
  return rest;
}

type UpgradeTx = IDBPTransaction<HearthDb, StoreNames<HearthDb>[], 'versionchange'>;

/** idb's `upgrade` callback: runs every migration step above the database's old version. */
export function upgradeSchema(db: IDBPDatabase<HearthDb>, oldVersion: number, tx: UpgradeTx): void {
  if (oldVersion < 1) {
    const interactions = db.createObjectStore('interactions', {
      keyPath: 'id',
      autoIncrement: true,
    });
    interactions.createIndex('session', 'session');
    db.createObjectStore('meta');
  }
  if (oldVersion < 2) {
    db.createObjectStore('sessions', { keyPath: 'id' });
    db.createObjectStore('models', { keyPath: 'version' });
    db.createObjectStore('outbox');
    // Not awaited by idb, but every request below belongs to the upgrade transaction, so the open
    // only succeeds once they are done; a failure aborts the upgrade and the open fails.
    if (oldVersion >= 1) void deriveSessions(tx);
  }
  if (oldVersion < 3) {
    db.createObjectStore('requests', { keyPath: 'id', autoIncrement: true });
    db.createObjectStore('rounds', { keyPath: 'id', autoIncrement: true });
  }
}

/**
 * Version 1 -> 2: builds the session summaries from the stored interactions, and drops rows a
 * version-1 database may hold in a shape no code can use.
 */
async function deriveSessions(tx: UpgradeTx): Promise<void> {
  const summaries = new Map<number, SessionSummary>();
  let dropped = 0;
  let cursor = await tx.objectStore('interactions').openCursor();
  while (cursor) {
    const row: unknown = cursor.value;
    if (isStoredInteraction(row)) {
      const s = summaries.get(row.session);
      summaries.set(row.session, {
        id: row.session,
        start: Math.min(s?.start ?? row.ts, row.ts),
        last: Math.max(s?.last ?? row.ts, row.ts),
        count: (s?.count ?? 0) + 1,
      });
    } else {
      dropped++;
      await cursor.delete();
    }
    cursor = await cursor.continue();
  }
  const sessions = tx.objectStore('sessions');
  for (const summary of summaries.values()) await sessions.put(summary);
  log.info(`migrated to v2: ${summaries.size} sessions, ${dropped} malformed rows dropped`);
}
