/**
 * The page-side Hearth client: starts the engine worker, forwards calls to it, and never loads tfjs
 * itself. Every method waits for the engine to be ready; if the worker cannot start, calls reject
 * with a HearthError and the host page carries on.
 */
import type {
  EngineApi,
  EngineStatus,
  Ledger,
  Recommendation,
  RecommendOptions,
  StoredInteraction,
  SyncResult,
  TrackEvent,
  TrackWarning,
} from '../protocol/api.js';
import { privacySignal } from '../protocol/privacy-signal.js';
import type { ResolvedOptions } from './config.js';
import { startWorker, type StartedWorker } from './worker-start.js';

/** The API a page uses (also what `window.hearth` exposes). */
export interface Hearth {
  /** Resolves when the engine has picked a backend and loaded the model. */
  readonly ready: Promise<EngineStatus>;
  /**
   * Records an interaction on this device; resolves with a warning the first time the page tracks
   * an id the catalogue does not know (captured events also raise it as `hearth-error`).
   */
  track(event: TrackEvent): Promise<TrackWarning | undefined>;
  /** Top-k recommendations for the current session. */
  recommend(options?: RecommendOptions): Promise<Recommendation[]>;
  /** Engine state: backend, model version, storage, uploads. */
  status(): Promise<EngineStatus>;
  /** Interactions stored on this device, newest first. */
  stored(limit?: number): Promise<StoredInteraction[]>;
  /** Learns from local history and shares a clipped update now, if allowed. */
  sync(): Promise<SyncResult>;
  /** Stops sharing updates from this device, remembered across reloads. */
  optOut(): Promise<void>;
  /** Undoes `optOut`. */
  optIn(): Promise<void>;
  /**
   * Erases everything Hearth stored on this device; recommendations return to cold start. With an
   * item id, erases only that item's interactions (and the personalised model learned from them).
   */
  forget(item?: string): Promise<void>;
  /** The privacy ledger: what is stored, every request sent, the rounds joined and their epsilon. */
  ledger(): Promise<Ledger>;
  /** Stops the worker. */
  destroy(): void;
}

/** Methods a page calls exactly as the engine offers them; each waits for `ready` first. */
const FORWARDED = [
  'track',
  'recommend',
  'status',
  'stored',
  'sync',
  'optOut',
  'optIn',
  'forget',
  'ledger',
] as const satisfies readonly (keyof Hearth & keyof EngineApi)[];

/** Starts Hearth with already-resolved options (the loader's path). */
export function startHearth(options: ResolvedOptions): Hearth {
  let started: StartedWorker | undefined;
  // Consent first: under GPC / DNT nothing is shared, whatever the options say.
  const signal = privacySignal(navigator);
  const ready = startWorker(options.workerUrl).then((s) => {
    started = s;
    return s.engine.init({
      endpoint: options.endpoint,
      backends: options.backends,
      uploads: options.uploads && !signal,
      learn: !(signal && options.privacySignal === 'learning'),
      explore: options.explore,
      uploadEvery: options.uploadEvery,
      // The worker may run from a blob: URL, so everything it loads is given as an absolute URL.
      wasmPath: new URL('./', options.workerUrl).href,
      debug: options.debug,
      siteKey: options.siteKey,
    });
  });
  // A rejected `ready` must not surface as an unhandled rejection on the host page.
  ready.catch(() => started?.worker.terminate());
  const hearth = { ready, destroy: () => started?.worker.terminate() } as Hearth;
  // One generic forwarder instead of a wrapper per method: the loader's size budget is tight.
  for (const name of FORWARDED) {
    hearth[name] = (async (...args: unknown[]) => {
      await ready;
      return (started!.engine[name] as (...a: unknown[]) => Promise<unknown>)(...args);
    }) as never;
  }
  return hearth;
}
