/**
 * The engine behind the page's `hearth` object: it stores interactions, keeps the current session,
 * serves recommendations from the session model and, when allowed, learns locally and shares a
 * clipped update. Exposed to the page with comlink (worker/index.ts); the contract is `EngineApi`.
 */
import {
  ENGINE_API_VERSION,
  type EngineApi,
  type EngineConfig,
  type EngineStatus,
  type Recommendation,
  type RecommendOptions,
  type StoredInteraction,
  type SyncResult,
  type TrackEvent,
} from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { createLogger, setLogLevel } from '../protocol/logger.js';
import { chooseBackend, type LadderResult } from './backend-ladder.js';
import { backendFingerprint, readBackendChoice } from './backend-cache.js';
import { clippedDelta, joinRound, shareUpdate, skipped } from './federated-client.js';
import { fetchGlobalModel, type GlobalModel } from './model-source.js';
import { SessionModel } from './model/session-model.js';
import { trainSessions } from './model/train.js';
import { sessionFor, toTrainingSessions } from './sessions.js';
import { MemoryStore, openIdbStore, type InteractionStore } from './store.js';
import { validateRecommendOptions, validateTrackEvent } from './validate.js';

const log = createLogger('engine');

/** Local fine-tuning per shared update: few steps, pulled toward the global weights. */
const LOCAL_TRAINING = { epochs: 2, batchSize: 16, learningRate: 0.005, maxSteps: 8, mu: 0.1 };
/** Session items kept in memory (the model reads the last maxSessionLength; the rest excludes). */
const MAX_SESSION_MEMORY = 200;
/** After a failed model fetch, wait this long before trying again on the next call. */
const MODEL_RETRY_MS = 15_000;

/** The worker-side implementation of `EngineApi`. */
export class Engine implements EngineApi {
  private config: EngineConfig | null = null;
  private ladder: LadderResult = { chosen: null, attempts: [] };
  private store: InteractionStore = new MemoryStore();
  private global: GlobalModel | null = null;
  private indexOf = new Map<string, number>();
  /** The model recommendations come from: the global one, or its locally fine-tuned copy. */
  private serving: SessionModel | null = null;
  private lastModelAttempt = 0;
  private lastInteraction: StoredInteraction | undefined;
  /** The current session, as model indices (unknown items are kept out). */
  private sessionItems: number[] = [];
  private sessionIds: string[] = [];
  private lastSync: SyncResult | undefined;
  /** The visitor's persisted opt-out (store meta), mirrored here for the synchronous checks. */
  private optedOut = false;
  /** Learning, model swaps and erasure run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();

  async handshake(): Promise<number> {
    return ENGINE_API_VERSION;
  }

  async init(config: EngineConfig): Promise<EngineStatus> {
    this.config = config;
    setLogLevel(config.debug ? 'debug' : 'silent');
    // The model comes first so the backend self-test can run on the weights that will be served.
    const [global, store] = await Promise.all([
      fetchGlobalModel(config.endpoint).catch((error: unknown) => {
        log.warn('global model unavailable; will retry', error);
        return null;
      }),
      openIdbStore(),
    ]);
    this.lastModelAttempt = Date.now();
    this.store = store ?? this.store;
    if (this.store.kind === 'memory') log.warn('IndexedDB unavailable; history lives in memory');
    const probe = global ? { dims: global.manifest.dims, weights: global.weights } : undefined;
    const fingerprint = backendFingerprint(config, global);
    const cached = readBackendChoice(
      await this.store.getBackendChoice().catch(() => null),
      fingerprint,
    );
    this.ladder = await chooseBackend(config.backends, {
      wasmPath: config.wasmPath,
      probe,
      cached,
    });
    if (!this.ladder.chosen) {
      throw new HearthError('HEARTH_E_NO_BACKEND', JSON.stringify(this.ladder.attempts));
    }
    if (probe && this.ladder.chosen !== cached) {
      // Only a decision made on the real model is worth remembering.
      await this.store
        .setBackendChoice({ fingerprint, backend: this.ladder.chosen })
        .catch((error: unknown) => log.warn('could not cache the backend choice', error));
    }
    this.optedOut = (await this.store.getMeta().catch(() => ({ optedOut: false }))).optedOut;
    await this.restoreSession();
    if (global) this.adopt(global);
    return this.status();
  }

  async track(event: TrackEvent): Promise<void> {
    const config = this.requireConfig();
    const { type, item } = validateTrackEvent(event);
    const ts = Date.now();
    const session = sessionFor(ts, this.lastInteraction);
    if (session !== this.lastInteraction?.session) {
      this.sessionItems = [];
      this.sessionIds = [];
    }
    const row = { item, type, ts, session };
    this.lastInteraction = { ...row, id: 0 };
    this.sessionIds = [...this.sessionIds, item].slice(-MAX_SESSION_MEMORY);
    const index = this.indexOf.get(item);
    if (index !== undefined) {
      this.sessionItems = [...this.sessionItems, index].slice(-MAX_SESSION_MEMORY);
    }
    // Storage failures (quota, a closed database) degrade to "not remembered", never to an error
    // on the host page: recommendations for this session keep working from memory.
    let due = false;
    try {
      await this.store.add(row);
      const meta = await this.store.getMeta();
      await this.store.setMeta({ sinceUpload: meta.sinceUpload + 1 });
      due = meta.sinceUpload + 1 >= config.uploadEvery;
    } catch (error) {
      log.warn('could not store interaction', error);
    }
    if (this.uploadsAllowed() && due) {
      // Not awaited: the page's track() should not wait for training.
      void this.sync().catch((error: unknown) => log.warn('automatic sync failed', error));
    }
  }

  async recommend(options: RecommendOptions = {}): Promise<Recommendation[]> {
    const { k, exclude } = validateRecommendOptions(options);
    await this.ensureModel();
    const global = this.global;
    if (!global) return [];
    const excluded = new Set<number>(this.sessionItems);
    for (const id of exclude) {
      const index = this.indexOf.get(id);
      if (index !== undefined) excluded.add(index);
    }
    const ids = global.manifest.itemIds;
    if (this.sessionItems.length === 0 || !this.serving) {
      // Cold start: the manifest's popularity order, scored by rank so callers can still sort.
      const popular = global.manifest.popular.filter((i) => !excluded.has(i)).slice(0, k);
      return popular.map((i, rank) => ({ item: ids[i]!, score: 1 / (rank + 1) }));
    }
    const { items, scores } = await this.serving.topK(this.sessionItems, k, excluded);
    return items.map((i, n) => ({ item: ids[i]!, score: scores[n]! }));
  }

  async status(): Promise<EngineStatus> {
    const meta = await this.store.getMeta();
    return {
      backend: this.ladder.chosen,
      backends: this.ladder.attempts,
      modelVersion: this.global?.manifest.version ?? 0,
      modelItems: this.global?.manifest.dims.items ?? 0,
      storage: this.store.kind,
      interactions: await this.store.count(),
      uploads: {
        enabled: this.uploadsAllowed(),
        sent: meta.uploadsSent,
        ...(this.lastSync ? { last: this.lastSync } : {}),
      },
    };
  }

  stored(limit = 50): Promise<StoredInteraction[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new HearthError('HEARTH_E_ARGUMENT', 'limit must be an integer in 1..10000');
    }
    return this.store.recent(limit);
  }

  sync(): Promise<SyncResult> {
    return this.serialise(() => this.learnAndShare()).then((result) => {
      this.lastSync = result;
      return result;
    });
  }

  async optOut(): Promise<void> {
    // In memory first: a sync already training checks this flag before anything is sent.
    this.optedOut = true;
    await this.store.setMeta({ optedOut: true });
  }

  async optIn(): Promise<void> {
    this.optedOut = false;
    await this.store.setMeta({ optedOut: false });
  }

  forget(): Promise<void> {
    // Queued behind a running sync, so no update trained on the erased history is sent after.
    return this.serialise(async () => {
      await this.store.destroy();
      this.store = (await openIdbStore()) ?? new MemoryStore();
      this.optedOut = false;
      this.lastInteraction = undefined;
      this.sessionIds = [];
      this.sessionItems = [];
      this.lastSync = undefined;
      // Drop the personalised copy: serve the global model again (adopt rebuilds the session).
      if (this.global) this.adopt(this.global);
      log.info('local data erased');
    });
  }

  /** Uploads need the page's consent (config: no GPC / DNT, not turned off) and no opt-out. */
  private uploadsAllowed(): boolean {
    return (this.config?.uploads ?? false) && !this.optedOut;
  }

  /** Runs `task` after every earlier queued task (learning, model swaps, erasure). */
  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private requireConfig(): EngineConfig {
    if (!this.config) throw new HearthError('HEARTH_E_NOT_READY');
    return this.config;
  }

  /** Picks up the session still open from an earlier page view (reload within 30 minutes). */
  private async restoreSession(): Promise<void> {
    const recent = await this.store.recent(200).catch(() => []);
    const newest = recent[0];
    if (!newest || sessionFor(Date.now(), newest) !== newest.session) return;
    this.lastInteraction = newest;
    this.sessionIds = recent
      .filter((row) => row.session === newest.session)
      .reverse()
      .map((row) => row.item);
  }

  /** Loads the global model when there is none yet (rate-limited after a failure). */
  private async ensureModel(): Promise<void> {
    if (this.global || Date.now() - this.lastModelAttempt < MODEL_RETRY_MS) return;
    this.lastModelAttempt = Date.now();
    try {
      this.adopt(await fetchGlobalModel(this.requireConfig().endpoint));
    } catch (error) {
      log.warn('global model unavailable; will retry', error);
    }
  }

  /** Makes a freshly fetched global model the one to serve from. */
  private adopt(global: GlobalModel): void {
    const { manifest, weights } = global;
    this.serving?.dispose();
    this.serving = SessionModel.fromFlat(manifest.dims, weights);
    this.global = global;
    this.indexOf = new Map(manifest.itemIds.map((id, index) => [id, index]));
    this.indexOf.delete('');
    this.sessionItems = this.sessionIds
      .map((id) => this.indexOf.get(id))
      .filter((i): i is number => i !== undefined);
    log.info(`model version ${manifest.version} (${manifest.dims.items} items)`);
  }

  private async learnAndShare(): Promise<SyncResult> {
    const config = this.requireConfig();
    await this.ensureModel();
    const global = this.global;
    if (!global) return { status: 'failed', reason: 'no global model', modelVersion: 0 };
    const version = global.manifest.version;
    if (!this.uploadsAllowed()) return skipped('uploads are off (consent or opt-out)', version);
    const sessions = toTrainingSessions(await this.store.all(), this.indexOf);
    if (sessions.length === 0) return skipped('not enough local history yet', version);
    const meta = await this.store.getMeta();
    try {
      const join = await joinRound(config.endpoint, config.siteKey);
      if (join.version !== version) {
        this.adopt(await fetchGlobalModel(config.endpoint));
        return skipped('a newer global model was published; refetched it', join.version);
      }
      if (join.round === meta.lastRound) return skipped('already took part in this round', version);
      const local = SessionModel.fromFlat(global.manifest.dims, global.weights);
      const trained = await trainSessions(local, sessions, {
        ...LOCAL_TRAINING,
        seed: Date.now() >>> 0,
        proximal: { anchor: global.weights, mu: LOCAL_TRAINING.mu },
      });
      // Training takes a while: the visitor may have opted out meanwhile.
      if (!this.uploadsAllowed()) {
        local.dispose();
        return skipped('uploads are off (consent or opt-out)', version);
      }
      const delta = clippedDelta(
        local.toFlat(),
        global.weights,
        global.manifest.federation.clipNorm,
      );
      const reply = await shareUpdate({
        endpoint: config.endpoint,
        manifest: global.manifest,
        delta,
        examples: trained.examples,
        join,
        siteKey: config.siteKey,
      });
      await this.store.setMeta({
        sinceUpload: 0,
        uploadsSent: meta.uploadsSent + 1,
        lastRound: join.round,
      });
      // Serve the personalised copy until a new global model replaces it.
      this.serving?.dispose();
      this.serving = local;
      if (reply.version > version) this.adopt(await fetchGlobalModel(config.endpoint));
      return { status: 'uploaded', modelVersion: reply.version, bytes: reply.bytes };
    } catch (error) {
      log.warn('sync failed', error);
      const code = error instanceof HearthError ? error.code : 'HEARTH_E_UPLOAD';
      return { status: 'failed', reason: `${code}: ${String(error)}`, modelVersion: version };
    }
  }
}
