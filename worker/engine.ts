/**
 * The engine behind the page's `hearth` object: it stores interactions, keeps the current session,
 * serves recommendations from the session model and, when allowed, learns locally and shares a
 * clipped update. Exposed to the page with comlink (worker/index.ts); the contract is `EngineApi`.
 */
import {
  ENGINE_API_VERSION,
  type BackendName,
  isVisitorAction,
  type EngineApi,
  type EngineConfig,
  type EngineStatus,
  type Ledger,
  type Recommendation,
  type RecommendOptions,
  type StoredInteraction,
  type SyncResult,
  type TrackEvent,
  type TrackWarning,
} from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { createLogger, setLogLevel } from '../protocol/logger.js';
import type { LadderResult } from './backend-ladder.js';
import { chooseCachedBackend } from './backend-cache.js';
import { capabilities } from './capabilities.js';
import { renewBackend, whenLost, type LossWatch } from './gpu-loss.js';
import { fetchCatalog, rowsOutside, withCatalogEntries, type DeviceCatalog } from './catalog.js';
import { skipped } from './federated-client.js';
import {
  localTrainingSettings,
  shareLocalUpdate,
  type LocalTrainingSettings,
} from './local-training.js';
import { buildLedger } from './ledger.js';
import { loadGlobalModel, type LoadedModel } from './model-source.js';
import { OnlineLearner, onlineLearningSettings } from './online-learning.js';
import { SessionModel } from '../model/session-model.js';
import { topK } from '../model/top-k.js';
import {
  EXPLORE_POOL,
  fallbackOrder,
  nearestSessionItems,
  pickPositions,
  rankPopular,
  toRecommendations,
  topUp,
} from './served-list.js';
import { ServingSlot } from './serving-slot.js';
import { cryptoCoin } from './participation.js';
import { SessionState } from './session-state.js';
import { sessionFor } from './sessions.js';
import { RequestLog } from './request-log.js';
import { MAX_REQUESTS, MemoryStore, openIdbStore, type InteractionStore } from './store.js';
import {
  TabChannel,
  withTrainerLock,
  workerLocks,
  type LockManagerLike,
  type ModelAnnouncement,
} from './tabs.js';
import type { EngineOptions, EngineSnapshot } from './engine-options.js';
import { validateRecommendOptions, validateTrackEvent } from './validate.js';

const log = createLogger('engine');

/** Session items kept in memory (the model reads the last maxSessionLength; the rest excludes). */
const MAX_SESSION_MEMORY = 200;
/** How old the catalogue may get before a recommend() refetches it (in the background). */
const CATALOG_REFRESH_MS = 10 * 60_000;
/** After a failed model fetch, wait this long before trying again on the next call. */
const MODEL_RETRY_MS = 15_000;

/** The worker-side implementation of `EngineApi`. */
export class Engine implements EngineApi {
  private config: EngineConfig | null = null;
  private ladder: LadderResult = { chosen: null, attempts: [] };
  private store: InteractionStore = new MemoryStore();
  private global: LoadedModel | null = null;
  private indexOf = new Map<string, number>();
  /** The server's catalogue (null: it has none, or it was not fetched yet). */
  private catalog: DeviceCatalog | null = null;
  private catalogFetchedAt = 0;
  private catalogLoading: Promise<void> | null = null;
  /** Model rows whose items left the catalogue: never recommended. */
  private outsideRows: readonly number[] = [];
  /** HEARTH_E_UNKNOWN_ITEM is reported once per page. */
  private warnedUnknown = false;
  /** The model recommendations come from: the global one, or its locally fine-tuned copy. */
  private readonly serving = new ServingSlot();
  /** The LSTM state of the current session under `serving` (one step per new item). */
  private readonly state = new SessionState();
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
  /** Hears other tabs adopting new weights (created on init). */
  private tabs: TabChannel | null = null;
  /** Watches the GPU under the chosen backend (worker/gpu-loss.ts). */
  private lossWatch: LossWatch | null = null;
  /** Calls waiting on the backend: failed at once when it is lost, since they would wait for ever. */
  private readonly onBackend = new Set<(error: HearthError) => void>();
  /** Settles once the engine has moved off a lost backend (calls wait for it). */
  private recovery: Promise<void> = Promise.resolve();
  /** How many times the engine has moved off a lost backend: a sync knows its own one by it. */
  private moves = 0;
  /** Set when no rung works after a loss: what every call fails with. */
  private noBackend: HearthError | null = null;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly coin: () => number;
  /** Online learning: a few steps shortly after the last interaction (or a new global version). */
  private readonly learner: OnlineLearner;
  /** How a sync's local learning trains (the options' settings over the defaults). */
  private readonly localTraining: LocalTrainingSettings;
  /**
   * The ledger's request log: worker/index.ts routes the worker's fetch through `requests.wrap`,
   * so every request the worker sends is written to the current store.
   */
  readonly requests: RequestLog;

  private readonly openStore: () => Promise<InteractionStore | null>;
  /** Read when first needed: capabilities are detected once, after a Node host set up its globals. */
  private readonly locks: () => LockManagerLike | null;

  constructor(options: EngineOptions = {}) {
    this.openStore = options.openStore ?? openIdbStore;
    const { locks } = options;
    this.locks = locks === undefined ? workerLocks : () => locks;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.coin = options.coin ?? cryptoCoin;
    this.localTraining = localTrainingSettings(options.localTraining);
    this.requests = new RequestLog((request) => this.store.logRequest(request), this.now);
    this.learner = new OnlineLearner(
      {
        serving: this.serving,
        global: () => this.global,
        setGlobal: (global) => (this.global = global),
        store: () => this.store,
        indexOf: () => this.indexOf,
        announce: (version) => this.tabs?.announce(version, true),
        exclusive: (task) =>
          this.serialise(() =>
            withTrainerLock(
              () => this.onLiveBackend(task),
              () => undefined,
              this.locks(),
            ),
          ),
      },
      onlineLearningSettings(options.learning),
      this.random,
    );
  }

  async handshake(): Promise<number> {
    return ENGINE_API_VERSION;
  }

  async init(config: EngineConfig): Promise<EngineStatus> {
    this.config = config;
    setLogLevel(config.debug ? 'debug' : 'silent');
    // The store first (it may hold the weights), then the model (the backend self-test uses it).
    this.store = (await this.openStore()) ?? this.store;
    if (this.store.kind === 'memory') log.warn('IndexedDB unavailable; history lives in memory');
    const catalog = this.refreshCatalog();
    const global = await loadGlobalModel(config.endpoint, this.store).catch((error: unknown) => {
      log.warn('global model unavailable; will retry', error);
      return null;
    });
    await catalog;
    this.lastModelAttempt = Date.now();
    this.tabs ??= new TabChannel((announcement) => this.onAnnouncement(announcement));
    this.ladder = await chooseCachedBackend(config, global, this.store);
    this.watchBackend();
    this.optedOut = (await this.store.getMeta().catch(() => ({ optedOut: false }))).optedOut;
    await this.restoreSession();
    if (global) this.adopt(global);
    return this.status();
  }

  async track(event: TrackEvent): Promise<TrackWarning | undefined> {
    const config = this.requireConfig();
    const { type, item } = validateTrackEvent(event);
    const ts = this.now();
    const session = sessionFor(ts, this.lastInteraction);
    if (session !== this.lastInteraction?.session) {
      this.sessionItems = [];
      this.sessionIds = [];
      this.state.resetState();
    }
    const row = { item, type, ts, session };
    this.lastInteraction = { ...row, id: 0 };
    this.sessionIds = [...this.sessionIds, item].slice(-MAX_SESSION_MEMORY);
    const index = this.indexOf.get(item);
    if (index !== undefined) {
      this.sessionItems = [...this.sessionItems, index].slice(-MAX_SESSION_MEMORY);
    }
    // Storage failures degrade to "not remembered", never to an error on the host page.
    let due = false;
    try {
      await this.store.add(row);
      // Only what the visitor did counts towards the next automatic update: a page that merely
      // shows items (views, dwell) never makes a request by itself.
      if (isVisitorAction(row)) {
        const meta = await this.store.getMeta();
        await this.store.setMeta({ sinceUpload: meta.sinceUpload + 1 });
        due = meta.sinceUpload + 1 >= config.uploadEvery;
      }
    } catch (error) {
      log.warn('could not store interaction', error);
    }
    if (index !== undefined && config.learn !== false) this.learner.schedule();
    if (this.uploadsAllowed() && due) {
      // Not awaited: the page's track() should not wait for training.
      void this.sync().catch((error: unknown) => log.warn('automatic sync failed', error));
    }
    return this.unknownItemWarning(item);
  }

  /** The once-per-page warning for an id neither the catalogue nor (without one) the model knows. */
  private unknownItemWarning(item: string): TrackWarning | undefined {
    const known = this.catalog
      ? this.catalog.items.has(item)
      : !this.global || this.indexOf.has(item);
    if (known || this.warnedUnknown) return undefined;
    this.warnedUnknown = true;
    const where = this.catalog ? `catalogue v${this.catalog.version}` : 'model';
    log.warn(`tracked item "${item}" is not in the ${where}`);
    return {
      code: 'HEARTH_E_UNKNOWN_ITEM',
      message: `"${item}" is not in the ${where}: data-hearth-item must carry the catalogue's ids (reported once)`,
    };
  }

  /**
   * Fetches the catalogue (at start, then at most every CATALOG_REFRESH_MS, in the background); a
   * failed fetch keeps the one the engine had.
   */
  private refreshCatalog(): Promise<void> {
    if (this.catalogLoading) return this.catalogLoading;
    const endpoint = this.requireConfig().endpoint;
    this.catalogFetchedAt = Date.now();
    this.catalogLoading = fetchCatalog(endpoint)
      .then((catalog) => {
        this.catalog = catalog;
        this.outsideRows = rowsOutside(this.global?.manifest.itemIds ?? [], catalog);
      })
      .catch((error: unknown) => log.warn('catalogue unavailable; keeping the one held', error))
      .finally(() => (this.catalogLoading = null));
    return this.catalogLoading;
  }

  async recommend(options: RecommendOptions = {}): Promise<Recommendation[]> {
    const valid = validateRecommendOptions(options);
    try {
      return await this.onLiveBackend(() => this.rank(valid));
    } catch (error) {
      // The GPU was lost under this call: once the engine has moved, rank again there.
      if (!(error instanceof HearthError && error.code === 'HEARTH_E_BACKEND_LOST')) throw error;
      return this.onLiveBackend(() => this.rank(valid));
    }
  }

  /** `recommend()` once its options are valid. */
  private async rank({
    k,
    exclude,
    allow,
    explain,
  }: ReturnType<typeof validateRecommendOptions>): Promise<Recommendation[]> {
    await this.ensureModel();
    const global = this.global;
    if (!global) return [];
    const toIndices = (list: readonly string[]): number[] =>
      list.map((id) => this.indexOf.get(id)).filter((i): i is number => i !== undefined);
    if (Date.now() - this.catalogFetchedAt > CATALOG_REFRESH_MS) void this.refreshCatalog();
    const excluded = new Set<number>([
      ...this.sessionItems,
      ...toIndices(exclude),
      ...this.outsideRows,
    ]);
    const allowed = allow && toIndices(allow);
    const explore = this.config?.explore === true;
    // Exploring needs the pool below the k - 1 shown items to sample from.
    const wanted = explore ? k - 1 + EXPLORE_POOL : k;
    const { ranked, picks, reasons } = await this.serving.use(async (serving) => {
      const warm = this.sessionItems.length > 0 && serving !== null;
      const { popular, recent = [], dims } = global.manifest;
      const ranked = topUp(
        warm
          ? topK(await this.state.scores(serving, this.sessionItems), wanted, excluded, allowed)
          : rankPopular(popular, wanted, excluded, allowed, recent),
        wanted,
        fallbackOrder(dims.items, popular, recent, allowed),
        excluded,
      );
      const picks = pickPositions(ranked.items.length, k, explore, this.random);
      const items = picks.map((p) => ranked.items[p.at]!);
      const reasons =
        explain && warm
          ? await nearestSessionItems(serving.params.itemEmbedding, items, this.sessionItems)
          : [];
      return { ranked, picks, reasons };
    });
    return withCatalogEntries(
      toRecommendations(ranked, picks, reasons, global.manifest.itemIds),
      this.catalog,
    );
  }

  async status(): Promise<EngineStatus> {
    // What status reports is what a reload would find: a local copy being written lands first.
    await this.learner.kept();
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
      learning: {
        enabled: this.config?.learn !== false,
        personalised: this.global?.local !== undefined,
        ...(this.learner.lastUpdate ? { lastUpdate: this.learner.lastUpdate } : {}),
      },
      capabilities: capabilities(),
    };
  }

  stored(limit = 50): Promise<StoredInteraction[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new HearthError('HEARTH_E_ARGUMENT', 'limit must be an integer in 1..10000');
    }
    return this.store.recent(limit);
  }

  sync(): Promise<SyncResult> {
    const busy = (): SyncResult =>
      skipped('another tab is training', this.global?.manifest.version ?? 0);
    // The lock is taken inside the queue, so this tab holds it only while it really trains; a lost
    // GPU fails the training inside it, so the lock is let go (onLiveBackend).
    const once = (): Promise<SyncResult> =>
      this.serialise(() =>
        withTrainerLock(() => this.onLiveBackend(() => this.learnAndShare()), busy, this.locks()),
      );
    return once()
      .catch((error: unknown) => {
        // The GPU was lost under this sync, which then sent nothing: once the engine has moved,
        // learn again there (the coin kept for this version or window is not flipped again).
        if (!(error instanceof HearthError && error.code === 'HEARTH_E_BACKEND_LOST')) throw error;
        return once().then((result) => ({
          ...result,
          reason: result.reason ?? 'the GPU was lost while this device trained; it learned again',
        }));
      })
      .then((result) => {
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

  forget(item?: string): Promise<void> {
    if (item !== undefined && (typeof item !== 'string' || item.length === 0)) {
      const error = new HearthError(
        'HEARTH_E_ARGUMENT',
        'forget(item): item must be a non-empty string',
      );
      return Promise.reject(error);
    }
    // Queued behind a running sync, so no update trained on the erased history is sent after.
    return this.serialise(async () => {
      if (item === undefined) {
        await this.store.destroy();
        this.store = (await this.openStore()) ?? new MemoryStore();
        this.optedOut = false;
        this.lastInteraction = undefined;
        this.sessionIds = [];
        this.lastSync = undefined;
      } else {
        // The online learner may be writing a copy learned from the item: let it land first.
        await this.learner.kept();
        const erased = await this.store.forgetItem(item);
        this.sessionIds = this.sessionIds.filter((id) => id !== item);
        if (this.lastInteraction?.item === item) this.lastInteraction = undefined;
        log.info(`erased ${erased} interactions with one item`);
      }
      this.sessionItems = [];
      this.state.resetState();
      // Drop the personalised copy: serve the global model again (adopt rebuilds the session and
      // learns a new copy from what is left).
      if (this.global) {
        const { manifest, weights, origin } = this.global;
        this.adopt({ manifest, weights, origin });
      }
      if (item === undefined) log.info('local data erased');
    });
  }

  async ledger(): Promise<Ledger> {
    await this.requests.settled();
    const [rows, requests, rounds] = await Promise.all([
      this.store.all(),
      this.store.requests(MAX_REQUESTS),
      this.store.rounds(),
    ]);
    return buildLedger({
      rows,
      requests,
      requestsKept: MAX_REQUESTS,
      rounds,
      federation: this.global?.manifest.federation,
      titleOf: (id) => this.catalog?.items.get(id)?.title,
    });
  }

  /**
   * The served model's next-item scores for the current session over the whole catalogue (index 0
   * is -Infinity): what `recommend()` ranks before its exclusions. Null without a model or a known
   * session item. Offline replays (tools/simulate.ts) rank the next item with it.
   */
  sessionScores(): Promise<Float32Array | null> {
    return this.serving.use(async (serving) =>
      serving && this.sessionItems.length > 0
        ? (await this.state.scores(serving, this.sessionItems)).slice()
        : null,
    );
  }

  /** Runs an online update that waits for its quiet time now (replays, tests); resolves when served. */
  learnPending(): Promise<void> {
    return this.learner.flush();
  }

  /** See `EngineSnapshot`: for Node programs that run the engine directly, never for the page. */
  snapshot(): EngineSnapshot {
    return {
      global: this.global,
      served: this.serving.current?.toFlat() ?? null,
      sessionItems: [...this.sessionItems],
      store: this.store,
    };
  }

  /** Resolves once the work queued now (tracking, learning, syncs) and the local copy's write end. */
  async idle(): Promise<void> {
    await this.queue;
    await this.learner.kept();
  }

  /** Stops learning, waits for queued work and frees the models; the engine is unusable after. */
  async dispose(): Promise<void> {
    this.learner.cancel();
    this.lossWatch?.stop();
    this.lossWatch = null;
    await this.queue;
    this.tabs?.close();
    this.tabs = null;
    this.serving.swap(null);
    this.state.dispose();
  }

  /** Uploads need the page's consent (config: no GPC / DNT, not turned off) and no opt-out. */
  private uploadsAllowed(): boolean {
    return (this.config?.uploads ?? false) && !this.optedOut;
  }

  /**
   * Runs `work` on the backend in use, after any move off a lost one. Should that backend be lost
   * while `work` runs, the call fails with HEARTH_E_BACKEND_LOST instead of waiting for ever, and
   * whatever it held (a queue's turn, the trainer lock) is let go.
   */
  private async onLiveBackend<T>(work: () => Promise<T>): Promise<T> {
    await this.recovery;
    if (this.noBackend) throw this.noBackend;
    return new Promise<T>((resolve, reject) => {
      this.onBackend.add(reject);
      work()
        .then(resolve, reject)
        .finally(() => this.onBackend.delete(reject));
    });
  }

  /** Watches the chosen backend's GPU; a loss moves the engine (`moveOffLostBackend`). */
  private watchBackend(): void {
    this.lossWatch?.stop();
    this.lossWatch = null;
    const chosen = this.ladder.chosen;
    if (chosen !== 'webgl' && chosen !== 'webgpu') return;
    const watch = whenLost(chosen);
    this.lossWatch = watch;
    void watch.lost.then((reason) => this.lost(watch, chosen, reason));
  }

  /**
   * The GPU under `watch` (of backend `chosen`) was lost: move off it, once, whether the watch saw
   * it or a check did first (`lostSince`).
   */
  private lost(watch: LossWatch, chosen: BackendName, reason: string): void {
    if (this.lossWatch !== watch) return;
    watch.stop();
    this.lossWatch = null;
    this.moves++;
    this.recovery = this.moveOffLostBackend(chosen, reason).catch((error: unknown) => {
      // Nothing left to compute on: every call fails with this from now on, none waits.
      log.error('no backend works after the loss', error);
      this.noBackend =
        error instanceof HearthError
          ? error
          : new HearthError('HEARTH_E_NO_BACKEND', String(error));
    });
  }

  /**
   * Whether the backend in use when the engine had made `moves` moves is gone: moved off since, or
   * lost just now (asked of the context itself, which knows before its event is dispatched; the
   * engine then moves at once). On a lost WebGL context every call does nothing, a read-back
   * included, so what work there returns is not its result.
   */
  private lostSince(moves: number): boolean {
    const watch = this.lossWatch;
    const reason = watch?.check();
    const chosen = this.ladder.chosen;
    if (watch && reason !== undefined && (chosen === 'webgl' || chosen === 'webgpu')) {
      this.lost(watch, chosen, reason);
    }
    return this.moves !== moves || this.noBackend !== null;
  }

  /**
   * The GPU under `lost` is gone: fail the calls waiting on it, make a fresh instance of it, walk
   * the ladder again (the fresh instance self-tests like any rung) and serve the model on the
   * backend chosen, from the weights the engine keeps in memory.
   */
  private async moveOffLostBackend(lost: BackendName, reason: string): Promise<void> {
    log.warn(`the ${lost} backend was lost while in use (${reason}); choosing again`);
    const error = new HearthError('HEARTH_E_BACKEND_LOST', `${lost}: ${reason}`);
    for (const reject of this.onBackend) reject(error);
    this.onBackend.clear();
    // Free what the lost context held while its backend instance still exists (a call still
    // running on the served model keeps it: ServingSlot counts users per model).
    this.serving.swap(null);
    this.state.dispose();
    this.learner.dropLearner();
    renewBackend(lost);
    const ladder = await chooseCachedBackend(this.requireConfig(), this.global, this.store);
    this.ladder = {
      chosen: ladder.chosen,
      attempts: ladder.attempts.map((attempt) =>
        attempt.backend === lost
          ? { ...attempt, detail: `lost while in use (${reason}); ${attempt.detail ?? ''}` }
          : attempt,
      ),
    };
    if (this.global) this.adopt(this.global);
    this.watchBackend();
  }

  /** Runs `task` after every earlier queued task (learning, model swaps, erasure). */
  private serialise<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => this.onLiveBackend(task));
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
    if (!newest || sessionFor(this.now(), newest) !== newest.session) return;
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
      this.adopt(await loadGlobalModel(this.requireConfig().endpoint, this.store));
    } catch (error) {
      log.warn('global model unavailable; will retry', error);
    }
  }

  /** Another tab adopted weights: load them from the shared cache (never an older version). */
  private onAnnouncement({ version, local }: ModelAnnouncement): void {
    if (!this.config) return;
    const current = this.global?.manifest.version ?? 0;
    if (version < current || (version === current && !local)) return;
    void this.serialise(async () => {
      const loaded = await loadGlobalModel(this.requireConfig().endpoint, this.store);
      if (loaded.manifest.version >= version) this.adopt(loaded);
    }).catch((error: unknown) => log.warn('could not load the weights another tab adopted', error));
  }

  /** Serves `global` (its cached local copy when kept); `announce` tells the other tabs. */
  private adopt(global: LoadedModel, announce = false): void {
    const { manifest, weights } = global;
    this.serving.swap(SessionModel.fromFlat(manifest.dims, global.local ?? weights));
    this.global = global;
    this.indexOf = new Map(manifest.itemIds.map((id, index) => [id, index]));
    this.indexOf.delete('');
    this.outsideRows = rowsOutside(manifest.itemIds, this.catalog);
    this.sessionItems = this.sessionIds
      .map((id) => this.indexOf.get(id))
      .filter((i): i is number => i !== undefined);
    if (announce) this.tabs?.announce(manifest.version, global.local !== undefined);
    // No local copy of this version yet: re-derive one from the stored history, soon.
    if (!global.local && this.config?.learn !== false) this.learner.schedule();
    log.info(`model version ${manifest.version} (${manifest.dims.items} items, ${global.origin})`);
  }

  /** One federated round from this device: local learning, then the clipped update (or a skip). */
  private async learnAndShare(): Promise<SyncResult> {
    const config = this.requireConfig();
    await this.ensureModel();
    const global = this.global;
    if (!global) return { status: 'failed', reason: 'no global model', modelVersion: 0 };
    const moves = this.moves;
    return shareLocalUpdate({
      backendLost: () => this.lostSince(moves),
      config,
      settings: this.localTraining,
      global,
      store: this.store,
      indexOf: this.indexOf,
      coin: this.coin,
      now: this.now,
      uploadsAllowed: () => this.uploadsAllowed(),
      refetch: async () => this.adopt(await loadGlobalModel(config.endpoint, this.store), true),
      serveLocal: (model, local) => this.learner.serveLocal(global, model, local),
    });
  }
}
