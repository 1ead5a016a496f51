/**
 * The device's local store: every tracked interaction and a little bookkeeping, in IndexedDB through
 * `idb`. Nothing here ever leaves the device. When IndexedDB is missing or refuses to open (private
 * modes, blocked storage), the engine falls back to an in-memory store and keeps recommending: a
 * storage failure must degrade Hearth, never break the host page.
 */
import { deleteDB, openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { INTERACTION_TYPES, type StoredInteraction } from '../protocol/api.js';

/** Name and schema version of the IndexedDB database. Bump the version with a migration. */
export const DB_NAME = 'hearth';
export const DB_VERSION = 1;

/** Bookkeeping values kept next to the interactions. */
export interface StoreMeta {
  /** Interactions tracked since the last update was shared. */
  sinceUpload: number;
  /** Updates this device has sent. */
  uploadsSent: number;
  /** Last round this device took part in (at most one update per round). */
  lastRound: number;
  /** The visitor opted out of sharing updates (`hearth('optOut')`); kept until opt-in or forget. */
  optedOut: boolean;
}

const META_DEFAULTS: StoreMeta = { sinceUpload: 0, uploadsSent: 0, lastRound: 0, optedOut: false };

/** A new interaction before the store assigns its id. */
export type NewInteraction = Omit<StoredInteraction, 'id'>;

/** What the engine needs from storage, whichever kind backs it. */
export interface InteractionStore {
  readonly kind: 'indexeddb' | 'memory';
  add(interaction: NewInteraction): Promise<number>;
  /** Newest first. */
  recent(limit: number): Promise<StoredInteraction[]>;
  /** Oldest first. Rows that fail validation (e.g. left by an older version) are skipped. */
  all(): Promise<StoredInteraction[]>;
  count(): Promise<number>;
  getMeta(): Promise<StoreMeta>;
  setMeta(patch: Partial<StoreMeta>): Promise<void>;
  /** Erases everything stored (for IndexedDB: deletes the database). The store is unusable after. */
  destroy(): Promise<void>;
  /** The cached backend decision (unvalidated: whatever an earlier version stored), if any. */
  getBackendChoice(): Promise<unknown>;
  setBackendChoice(choice: unknown): Promise<void>;
}

/** Meta-store key of the cached backend decision (kept apart from the numeric StoreMeta). */
const BACKEND_CHOICE_KEY = 'backendChoice';

interface HearthDb extends DBSchema {
  interactions: { key: number; value: StoredInteraction; indexes: { session: number } };
  meta: { key: string; value: unknown };
}

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

class IdbStore implements InteractionStore {
  readonly kind = 'indexeddb' as const;
  constructor(private readonly db: IDBPDatabase<HearthDb>) {}

  add(interaction: NewInteraction): Promise<number> {
    // With an in-line keyPath and autoIncrement, IndexedDB writes the generated key into `id`.
    return this.db.add('interactions', { ...interaction } as StoredInteraction);
  }

  async recent(limit: number): Promise<StoredInteraction[]> {
    const out: StoredInteraction[] = [];
    let cursor = await this.db.transaction('interactions').store.openCursor(null, 'prev');
    while (cursor && out.length < limit) {
      if (isStoredInteraction(cursor.value)) out.push(cursor.value);
      cursor = await cursor.continue();
    }
    return out;
  }

  async all(): Promise<StoredInteraction[]> {
    return (await this.db.getAll('interactions')).filter(isStoredInteraction);
  }

  count(): Promise<number> {
    return this.db.count('interactions');
  }

  async getMeta(): Promise<StoreMeta> {
    const tx = this.db.transaction('meta');
    const entries = await Promise.all(
      (Object.keys(META_DEFAULTS) as (keyof StoreMeta)[]).map(
        async (key) => [key, await tx.store.get(key)] as const,
      ),
    );
    return readMeta(Object.fromEntries(entries));
  }

  async setMeta(patch: Partial<StoreMeta>): Promise<void> {
    const tx = this.db.transaction('meta', 'readwrite');
    await Promise.all(Object.entries(patch).map(([key, value]) => tx.store.put(value, key)));
    await tx.done;
  }

  getBackendChoice(): Promise<unknown> {
    return this.db.get('meta', BACKEND_CHOICE_KEY);
  }

  async setBackendChoice(choice: unknown): Promise<void> {
    await this.db.put('meta', choice, BACKEND_CHOICE_KEY);
  }

  async destroy(): Promise<void> {
    this.db.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Deleting waits for every other connection (another tab) to close; ours close themselves when
    // asked (`blocking` in openIdbStore), but an older SDK's may not, so do not wait forever.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('another tab keeps the database open')), 10_000);
    });
    try {
      await Promise.race([deleteDB(DB_NAME), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The fallback when IndexedDB cannot be used; lives as long as the worker. */
export class MemoryStore implements InteractionStore {
  readonly kind = 'memory' as const;
  private readonly rows: StoredInteraction[] = [];
  private meta: StoreMeta = { ...META_DEFAULTS };
  private backendChoice: unknown;

  async add(interaction: NewInteraction): Promise<number> {
    const id = this.rows.length + 1;
    this.rows.push({ ...interaction, id });
    return id;
  }
  async recent(limit: number): Promise<StoredInteraction[]> {
    return this.rows.slice(-limit).reverse();
  }
  async all(): Promise<StoredInteraction[]> {
    return [...this.rows];
  }
  async count(): Promise<number> {
    return this.rows.length;
  }
  async getMeta(): Promise<StoreMeta> {
    return { ...this.meta };
  }
  async setMeta(patch: Partial<StoreMeta>): Promise<void> {
    this.meta = { ...this.meta, ...patch };
  }
  async destroy(): Promise<void> {
    this.rows.length = 0;
    this.meta = { ...META_DEFAULTS };
    this.backendChoice = undefined;
  }
  async getBackendChoice(): Promise<unknown> {
    return this.backendChoice;
  }
  async setBackendChoice(choice: unknown): Promise<void> {
    this.backendChoice = choice;
  }
}

/**
 * Opens the IndexedDB store, or returns null when IndexedDB is unavailable or blocked. A timeout
 * guards against an open request that never settles (seen when another tab blocks an upgrade).
 */
export async function openIdbStore(timeoutMs = 5000): Promise<InteractionStore | null> {
  if (!(globalThis as { indexedDB?: IDBFactory }).indexedDB) return null;
  try {
    const opened = openDB<HearthDb>(DB_NAME, DB_VERSION, {
      upgrade(db, oldVersion) {
        if (oldVersion < 1) {
          const interactions = db.createObjectStore('interactions', {
            keyPath: 'id',
            autoIncrement: true,
          });
          interactions.createIndex('session', 'session');
          db.createObjectStore('meta');
        }
      },
      // Another tab (or this one after `forget`) wants to delete or upgrade the database: close so
      // it is not blocked. Later writes here fail and degrade to "not remembered".
      blocking(_current, _next, event) {
        (event.target as IDBDatabase).close();
      },
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('IndexedDB open timed out')), timeoutMs),
    );
    return new IdbStore(await Promise.race([opened, timeout]));
  } catch {
    return null;
  }
}
