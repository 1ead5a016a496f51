/**
 * The in-memory store: the fallback when IndexedDB cannot be used at all, and the spill-over of the
 * IndexedDB store for a write the disk refused even after eviction. It lives as long as the worker.
 */
import type { JoinedRound, SentRequest, StoredInteraction } from '../protocol/api.js';
import { withLocal, withoutLocal, type LocalCopy } from './local-copy.js';
import {
  MAX_INTERACTIONS,
  MAX_REQUESTS,
  META_DEFAULTS,
  MODELS_KEPT,
  type CachedModel,
  type InteractionStore,
  type NewInteraction,
  type OutboxEntry,
  type SessionSummary,
  type StoreMeta,
} from './store-schema.js';

/** Summaries of the sessions in `rows` (any order), newest first. */
export function summariseSessions(rows: readonly StoredInteraction[]): SessionSummary[] {
  const byId = new Map<number, SessionSummary>();
  for (const row of rows) {
    const s = byId.get(row.session);
    byId.set(row.session, {
      id: row.session,
      start: Math.min(s?.start ?? row.ts, row.ts),
      last: Math.max(s?.last ?? row.ts, row.ts),
      count: (s?.count ?? 0) + 1,
    });
  }
  return [...byId.values()].sort((a, b) => b.id - a.id);
}

/** A store in plain arrays and maps, with the same bounds as the IndexedDB one. */
export class MemoryStore implements InteractionStore {
  readonly kind = 'memory' as const;
  private rows: StoredInteraction[] = [];
  private nextId: number;
  private meta: StoreMeta = { ...META_DEFAULTS };
  private backendChoice: unknown;
  private readonly models = new Map<number, CachedModel>();
  private localCopy: LocalCopy | undefined;
  private outbox: OutboxEntry | undefined;
  private sent: SentRequest[] = [];
  private joined: JoinedRound[] = [];

  /** `firstId` lets the IndexedDB store's spill-over use ids that cannot collide with its own. */
  constructor(
    private readonly maxInteractions = MAX_INTERACTIONS,
    firstId = 1,
  ) {
    this.nextId = firstId;
  }

  async add(interaction: NewInteraction): Promise<number> {
    const id = this.nextId++;
    this.rows.push({ ...interaction, id });
    if (this.rows.length > this.maxInteractions) this.rows = this.rows.slice(-this.maxInteractions);
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
  async sessions(limit: number): Promise<SessionSummary[]> {
    return summariseSessions(this.rows).slice(0, limit);
  }
  async getMeta(): Promise<StoreMeta> {
    return { ...this.meta };
  }
  async setMeta(patch: Partial<StoreMeta>): Promise<void> {
    this.meta = { ...this.meta, ...patch };
  }
  async getModel(version: number): Promise<CachedModel | undefined> {
    const row = this.models.get(version);
    return row && withLocal(row, this.localCopy);
  }
  async newestModel(): Promise<CachedModel | undefined> {
    const row = this.models.get(Math.max(...this.models.keys()));
    return row && withLocal(row, this.localCopy);
  }
  async putLocal(copy: LocalCopy): Promise<void> {
    this.localCopy = copy;
  }
  async putModel(model: CachedModel): Promise<void> {
    this.models.set(model.version, model);
    const stale = [...this.models.keys()].sort((a, b) => b - a).slice(MODELS_KEPT);
    for (const version of stale) this.models.delete(version);
  }
  async getOutbox(): Promise<OutboxEntry | undefined> {
    return this.outbox;
  }
  async setOutbox(entry: OutboxEntry | null): Promise<void> {
    this.outbox = entry ?? undefined;
  }
  async logRequest(request: SentRequest): Promise<void> {
    this.sent.push(request);
    if (this.sent.length > MAX_REQUESTS) this.sent = this.sent.slice(-MAX_REQUESTS);
  }
  async requests(limit: number): Promise<SentRequest[]> {
    return this.sent.slice(-limit).reverse();
  }
  async addRound(round: JoinedRound): Promise<void> {
    this.joined.push(round);
  }
  async rounds(): Promise<JoinedRound[]> {
    return [...this.joined].sort((a, b) => a.at - b.at);
  }
  async forgetItem(item: string): Promise<number> {
    const before = this.rows.length;
    this.rows = this.rows.filter((row) => row.item !== item);
    this.localCopy = undefined;
    for (const [version, model] of this.models) this.models.set(version, withoutLocal(model));
    this.outbox = undefined;
    return before - this.rows.length;
  }
  async destroy(): Promise<void> {
    this.sent = [];
    this.joined = [];
    this.rows = [];
    this.meta = { ...META_DEFAULTS };
    this.backendChoice = undefined;
    this.models.clear();
    this.localCopy = undefined;
    this.outbox = undefined;
  }
  async getBackendChoice(): Promise<unknown> {
    return this.backendChoice;
  }
  async setBackendChoice(choice: unknown): Promise<void> {
    this.backendChoice = choice;
  }
}
