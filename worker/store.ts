/**
 * The device's local store: every tracked interaction, session summaries, the cached global model,
 * a pending update and a little bookkeeping, in IndexedDB through `idb`. Nothing here ever leaves
 * the device. A storage failure must degrade Hearth, never break the host page: when IndexedDB is
 * missing or blocked the engine uses the in-memory store; a full disk evicts old data and, failing
 * that, keeps the one write in memory; a corrupt database is deleted and rebuilt.
 */
import { deleteDB, openDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { JoinedRound, SentRequest, StoredInteraction } from '../protocol/api.js';
import { createLogger } from '../protocol/logger.js';
import { capabilities } from './capabilities.js';
import { withLocal, withoutLocal, type LocalCopy } from './local-copy.js';
import { MemoryStore } from './memory-store.js';
import {
  DB_NAME,
  DB_VERSION,
  MAX_INTERACTIONS,
  MAX_REQUESTS,
  META_DEFAULTS,
  MODELS_KEPT,
  STORE_NAMES,
  isCachedModel,
  isJoinedRound,
  isOutboxEntry,
  isSentRequest,
  isStoredInteraction,
  upgradeSchema,
  withoutId,
  type CachedModel,
  type HearthDb,
  type InteractionStore,
  type NewInteraction,
  type OutboxEntry,
  type SessionSummary,
  type StoreMeta,
} from './store-schema.js';

export {
  DB_NAME,
  DB_VERSION,
  MAX_INTERACTIONS,
  MAX_REQUESTS,
  META_DEFAULTS,
  MODELS_KEPT,
  isStoredInteraction,
  type CachedModel,
  type InteractionStore,
  type NewInteraction,
  type OutboxEntry,
  type SessionSummary,
  type StoreMeta,
};
export { MemoryStore };

const log = createLogger('store');

/** Meta-store key of the cached backend decision (kept apart from the numeric StoreMeta). */
const BACKEND_CHOICE_KEY = 'backendChoice';
/** The meta key of the device's local copy of the served model (local-copy.ts). */
const LOCAL_COPY_KEY = 'localCopy';
/** The outbox holds at most one update: a newer one supersedes it. */
const OUTBOX_KEY = 'pending';
/** Ids of interactions spilled to memory start here, far above any IndexedDB key. */
const SPILL_FIRST_ID = 2 ** 52;
/** On a full disk, at least this many of the oldest interactions are evicted before the retry. */
const QUOTA_EVICT_MIN = 100;

function readMeta(values: Partial<Record<keyof StoreMeta, unknown>>): StoreMeta {
  const out: Record<string, unknown> = { ...META_DEFAULTS };
  for (const key of Object.keys(META_DEFAULTS) as (keyof StoreMeta)[]) {
    const v = values[key];
    // Anything of the wrong type (an older version, a hand-edited database) reads as the default.
    const ok =
      typeof META_DEFAULTS[key] === 'boolean'
        ? typeof v === 'boolean'
        : Number.isSafeInteger(v) && (v as number) >= 0;
    if (ok) out[key] = v;
  }
  return out as unknown as StoreMeta;
}

/** True for the error a write raises when the origin's storage quota is used up. */
export function isQuotaError(error: unknown): boolean {
  return (
    (error as { name?: unknown } | null)?.name === 'QuotaExceededError' ||
    // Firefox before 2020 and some embedded engines.
    (error as { name?: unknown } | null)?.name === 'NS_ERROR_DOM_QUOTA_REACHED'
  );
}

class IdbStore implements InteractionStore {
  readonly kind = 'indexeddb' as const;
  /** Writes the disk refused even after eviction; merged into every read (see `write`). */
  private readonly spill: MemoryStore;
  private spilledMeta: Partial<StoreMeta> = {};
  /** The local copy when the disk was too full for it (wins over the one on disk). */
  private spilledLocal: LocalCopy | null = null;

  constructor(
    private readonly db: IDBPDatabase<HearthDb>,
    private readonly maxInteractions: number,
  ) {
    this.spill = new MemoryStore(maxInteractions, SPILL_FIRST_ID);
  }

  add(interaction: NewInteraction): Promise<number> {
    return this.write(
      'an interaction',
      () => this.addRow(interaction),
      () => this.spill.add(interaction),
    );
  }

  async recent(limit: number): Promise<StoredInteraction[]> {
    const out: StoredInteraction[] = [];
    let cursor = await this.db.transaction('interactions').store.openCursor(null, 'prev');
    while (cursor && out.length < limit) {
      if (isStoredInteraction(cursor.value)) out.push(cursor.value);
      cursor = await cursor.continue();
    }
    const spilled = await this.spill.recent(limit);
    if (spilled.length === 0) return out;
    return [...spilled, ...out].sort((a, b) => b.ts - a.ts || b.id - a.id).slice(0, limit);
  }

  async all(): Promise<StoredInteraction[]> {
    const rows = (await this.db.getAll('interactions')).filter(isStoredInteraction);
    return [...rows, ...(await this.spill.all())];
  }

  async count(): Promise<number> {
    return (await this.db.count('interactions')) + (await this.spill.count());
  }

  async sessions(limit: number): Promise<SessionSummary[]> {
    const out: SessionSummary[] = [];
    let cursor = await this.db.transaction('sessions').store.openCursor(null, 'prev');
    while (cursor && out.length < limit) {
      out.push(cursor.value);
      cursor = await cursor.continue();
    }
    return out;
  }

  async getMeta(): Promise<StoreMeta> {
    const tx = this.db.transaction('meta');
    const entries = await Promise.all(
      (Object.keys(META_DEFAULTS) as (keyof StoreMeta)[]).map(
        async (key) => [key, await tx.store.get(key)] as const,
      ),
    );
    return readMeta({ ...Object.fromEntries(entries), ...this.spilledMeta });
  }

  setMeta(patch: Partial<StoreMeta>): Promise<void> {
    return this.write(
      'bookkeeping',
      async () => {
        const tx = this.db.transaction('meta', 'readwrite');
        await Promise.all(Object.entries(patch).map(([key, value]) => tx.store.put(value, key)));
        await tx.done;
        // The disk now holds these keys again: the in-memory values no longer override them.
        this.spilledMeta = Object.fromEntries(
          Object.entries(this.spilledMeta).filter(([key]) => !(key in patch)),
        );
      },
      async () => {
        this.spilledMeta = { ...this.spilledMeta, ...patch };
      },
    );
  }

  async getModel(version: number): Promise<CachedModel | undefined> {
    const row: unknown = await this.db.get('models', version);
    if (isCachedModel(row)) return this.joinLocal(row);
    return this.spill.getModel(version);
  }

  async newestModel(): Promise<CachedModel | undefined> {
    const cursor = await this.db.transaction('models').store.openCursor(null, 'prev');
    const row: unknown = cursor?.value;
    const spilled = await this.spill.newestModel();
    if (!isCachedModel(row)) return spilled;
    return spilled && spilled.version > row.version ? spilled : this.joinLocal(row);
  }

  /** A model row with the kept local copy of its version, when there is one (local-copy.ts). */
  private async joinLocal(row: CachedModel): Promise<CachedModel> {
    return withLocal(row, this.spilledLocal ?? (await this.db.get('meta', LOCAL_COPY_KEY)));
  }

  putLocal(copy: LocalCopy): Promise<void> {
    return this.write(
      'the personalised model',
      async () => {
        await this.db.put('meta', copy, LOCAL_COPY_KEY);
        this.spilledLocal = null;
      },
      async () => {
        this.spilledLocal = copy;
      },
    );
  }

  putModel(model: CachedModel): Promise<void> {
    return this.write(
      `model v${model.version}`,
      async () => {
        const tx = this.db.transaction('models', 'readwrite');
        await tx.store.put(model);
        const versions = await tx.store.getAllKeys();
        const stale = versions.sort((a, b) => b - a).slice(MODELS_KEPT);
        for (const version of stale) await tx.store.delete(version);
        await tx.done;
      },
      () => this.spill.putModel(model),
    );
  }

  async getOutbox(): Promise<OutboxEntry | undefined> {
    const row: unknown = await this.db.get('outbox', OUTBOX_KEY);
    return isOutboxEntry(row) ? row : this.spill.getOutbox();
  }

  setOutbox(entry: OutboxEntry | null): Promise<void> {
    return this.write(
      'the pending update',
      async () => {
        if (entry) await this.db.put('outbox', entry, OUTBOX_KEY);
        else await this.db.delete('outbox', OUTBOX_KEY);
        await this.spill.setOutbox(null);
      },
      () => this.spill.setOutbox(entry),
    );
  }

  logRequest(request: SentRequest): Promise<void> {
    return this.write(
      'the request log',
      async () => {
        const tx = this.db.transaction('requests', 'readwrite');
        await tx.store.add({ ...request });
        const over = (await tx.store.count()) - MAX_REQUESTS;
        let cursor = over > 0 ? await tx.store.openCursor() : null;
        for (let left = over; cursor && left > 0; left--) {
          await cursor.delete();
          cursor = await cursor.continue();
        }
        await tx.done;
      },
      () => this.spill.logRequest(request),
    );
  }

  async requests(limit: number): Promise<SentRequest[]> {
    const out: SentRequest[] = [];
    let cursor = await this.db.transaction('requests').store.openCursor(null, 'prev');
    while (cursor && out.length < limit) {
      if (isSentRequest(cursor.value)) out.push(withoutId(cursor.value));
      cursor = await cursor.continue();
    }
    const spilled = await this.spill.requests(limit);
    if (spilled.length === 0) return out;
    return [...spilled, ...out].sort((a, b) => b.ts - a.ts).slice(0, limit);
  }

  addRound(round: JoinedRound): Promise<void> {
    return this.write(
      'a round taken part in',
      async () => void (await this.db.add('rounds', { ...round })),
      () => this.spill.addRound(round),
    );
  }

  async rounds(): Promise<JoinedRound[]> {
    const rows = (await this.db.getAll('rounds'))
      .filter((row) => isJoinedRound(row))
      .map((row) => withoutId(row));
    return [...rows, ...(await this.spill.rounds())].sort((a, b) => a.at - b.at);
  }

  async forgetItem(item: string): Promise<number> {
    const tx = this.db.transaction(
      ['interactions', 'sessions', 'meta', 'models', 'outbox'],
      'readwrite',
    );
    let erased = 0;
    let cursor = await tx.objectStore('interactions').openCursor();
    while (cursor) {
      const row: unknown = cursor.value;
      if (isStoredInteraction(row) && row.item === item) {
        await cursor.delete();
        erased++;
        await countOneLess(tx.objectStore('sessions'), row.session);
      }
      cursor = await cursor.continue();
    }
    // The personalised copy and the pending update were learned from those interactions.
    await tx.objectStore('meta').delete(LOCAL_COPY_KEY);
    let model = await tx.objectStore('models').openCursor();
    while (model) {
      const row: unknown = model.value;
      // Older versions kept the copy inside the model row itself.
      if (isCachedModel(row) && row.local) await model.update(withoutLocal(row));
      model = await model.continue();
    }
    await tx.objectStore('outbox').delete(OUTBOX_KEY);
    await tx.done;
    this.spilledLocal = null;
    return erased + (await this.spill.forgetItem(item));
  }

  getBackendChoice(): Promise<unknown> {
    return this.db.get('meta', BACKEND_CHOICE_KEY);
  }

  setBackendChoice(choice: unknown): Promise<void> {
    return this.write(
      'the backend choice',
      async () => void (await this.db.put('meta', choice, BACKEND_CHOICE_KEY)),
      () => this.spill.setBackendChoice(choice),
    );
  }

  async destroy(): Promise<void> {
    this.db.close();
    await this.spill.destroy();
    await deleteWithTimeout();
  }

  /**
   * Runs one write; when the disk is full, evicts the oldest interactions and cached models and
   * retries once, and when it is still full keeps this write in memory (it lives until the worker
   * ends). Other errors (a closed database) propagate: the engine logs them and carries on.
   */
  private async write<T>(
    what: string,
    op: () => Promise<T>,
    inMemory: () => Promise<T>,
  ): Promise<T> {
    try {
      return await op();
    } catch (error) {
      if (!isQuotaError(error)) throw error;
    }
    log.warn(`storage full writing ${what}: evicting the oldest data and retrying`);
    await this.evictForSpace().catch((error: unknown) => log.warn('eviction failed', error));
    try {
      return await op();
    } catch (error) {
      if (!isQuotaError(error)) throw error;
    }
    log.warn(`storage still full: ${what} is kept in memory only`);
    return inMemory();
  }

  /** Frees room: a tenth of the interactions (oldest first) and every model but the newest. */
  private async evictForSpace(): Promise<void> {
    const count = await this.db.count('interactions');
    const tx = this.db.transaction(['interactions', 'sessions', 'models'], 'readwrite');
    await evictOldest(tx, Math.max(QUOTA_EVICT_MIN, Math.ceil(count / 10)));
    const versions = (await tx.objectStore('models').getAllKeys()).sort((a, b) => b - a);
    for (const version of versions.slice(1)) await tx.objectStore('models').delete(version);
    await tx.done;
  }

  /** One transaction: the row, its session summary, and eviction beyond the bound. */
  private async addRow(interaction: NewInteraction): Promise<number> {
    const tx = this.db.transaction(['interactions', 'sessions'], 'readwrite');
    const interactions = tx.objectStore('interactions');
    const sessions = tx.objectStore('sessions');
    // With an in-line keyPath and autoIncrement, IndexedDB writes the generated key into `id`.
    const id = await interactions.add({ ...interaction } as StoredInteraction);
    const s = await sessions.get(interaction.session);
    await sessions.put({
      id: interaction.session,
      start: Math.min(s?.start ?? interaction.ts, interaction.ts),
      last: Math.max(s?.last ?? interaction.ts, interaction.ts),
      count: (s?.count ?? 0) + 1,
    });
    const over = (await interactions.count()) - this.maxInteractions;
    if (over > 0) await evictOldest(tx, over);
    await tx.done;
    return id;
  }
}

/** A read-write transaction over at least the interactions and sessions stores. */
type EvictTx = IDBPTransaction<HearthDb, ('interactions' | 'sessions' | 'models')[], 'readwrite'>;

/** Deletes the `n` oldest interactions (lowest keys) and updates their session summaries. */
async function evictOldest(tx: EvictTx, n: number): Promise<void> {
  let cursor = await tx.objectStore('interactions').openCursor();
  for (let left = n; cursor && left > 0; left--) {
    const row: unknown = cursor.value;
    await cursor.delete();
    if (isStoredInteraction(row)) await countOneLess(tx.objectStore('sessions'), row.session);
    cursor = await cursor.continue();
  }
}

/** The `sessions` store of a read-write transaction, whichever other stores it spans. */
interface SessionsStore {
  get(session: number): Promise<SessionSummary | undefined>;
  put(summary: SessionSummary): Promise<unknown>;
  delete(session: number): Promise<void>;
}

/** One interaction of `session` was deleted: its summary counts one less, or goes with its last. */
async function countOneLess(sessions: SessionsStore, session: number): Promise<void> {
  const s = await sessions.get(session);
  if (s && s.count > 1) await sessions.put({ ...s, count: s.count - 1 });
  else if (s) await sessions.delete(session);
}

/**
 * Deletes the database. Deleting waits for every other connection (another tab) to close; ours
 * close themselves when asked (`blocking` in openIdbStore), but an older SDK's may not, so do not
 * wait forever.
 */
async function deleteWithTimeout(): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('another tab keeps the database open')), 10_000);
  });
  try {
    await Promise.race([deleteDB(DB_NAME), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Raised when an open neither succeeds nor fails in time (another tab blocks the upgrade). */
class OpenTimeout extends Error {}

async function openWithTimeout(timeoutMs: number): Promise<IDBPDatabase<HearthDb>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const opened = openDB<HearthDb>(DB_NAME, DB_VERSION, {
    upgrade: (db, oldVersion, _newVersion, tx) => upgradeSchema(db, oldVersion, tx),
    // Another tab (or this one after `forget`) wants to delete or upgrade the database: close so
    // it is not blocked. Later writes here fail and degrade to "not remembered".
    blocking(_current, _next, event) {
      (event.target as IDBDatabase).close();
    },
  });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OpenTimeout('IndexedDB open timed out')), timeoutMs);
  });
  try {
    return await Promise.race([opened, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why an opened database cannot be used as it is, or null when it looks sound. */
async function corruption(db: IDBPDatabase<HearthDb>): Promise<string | null> {
  const missing = STORE_NAMES.filter((name) => !db.objectStoreNames.contains(name));
  if (missing.length > 0) return `object stores missing: ${missing.join(', ')}`;
  // The oldest and newest rows are a cheap sample: a database some other code wrote into, or a
  // format this version does not know, shows at its ends (a full scan would cost every start).
  const store = db.transaction('interactions').store;
  for (const direction of ['next', 'prev'] as const) {
    const cursor = await store.openCursor(null, direction);
    if (cursor && !isStoredInteraction(cursor.value)) return 'interaction rows of the wrong shape';
  }
  return null;
}

/** Options of `openIdbStore`. */
export interface OpenOptions {
  /** How long an open may take before the store falls back to memory (default 5 s). */
  readonly timeoutMs?: number;
  /** Bound on stored interactions (default MAX_INTERACTIONS; smaller in tests). */
  readonly maxInteractions?: number;
}

/**
 * Opens (creating or migrating) the IndexedDB store, or returns null when IndexedDB is unavailable
 * or blocked. A database that fails to open or looks corrupt is deleted and rebuilt once: losing a
 * visitor's local history is better than a Hearth that never stores anything again.
 */
export async function openIdbStore(options: OpenOptions = {}): Promise<InteractionStore | null> {
  if (!capabilities().indexedDB) return null;
  const { timeoutMs = 5000, maxInteractions = MAX_INTERACTIONS } = options;
  for (let attempt = 0; attempt < 2; attempt++) {
    let problem: unknown;
    try {
      const db = await openWithTimeout(timeoutMs);
      problem = await corruption(db);
      if (problem === null) return new IdbStore(db, maxInteractions);
      db.close();
    } catch (error) {
      // A blocked upgrade is not corruption: another tab holds the old version open.
      if (error instanceof OpenTimeout || attempt > 0) return null;
      problem = error;
    }
    if (attempt > 0) return null;
    log.warn('the local database is unusable; deleting and rebuilding it', problem);
    try {
      await deleteWithTimeout();
    } catch {
      return null;
    }
  }
  return null;
}
