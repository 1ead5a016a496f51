/**
 * The page-side Hearth client: starts the engine worker, forwards calls to it over comlink, and never
 * loads tfjs itself. Every method waits for the engine to be ready; if the worker cannot start, calls
 * reject with a HearthError and the host page carries on.
 */
import { transferHandlers, wrap, type Remote } from 'comlink';
import type {
  EngineApi,
  EngineStatus,
  Recommendation,
  RecommendOptions,
  StoredInteraction,
  SyncResult,
  TrackEvent,
} from '../protocol/api.js';
import { installErrorTransfer } from '../protocol/error-wire.js';
import { HearthError } from '../protocol/errors.js';
import { setLogLevel } from '../protocol/logger.js';
import { resolveOptions, type HearthOptions, type ResolvedOptions } from './config.js';
import { privacySignal } from './consent.js';

installErrorTransfer(transferHandlers as never);

/** The API a page uses (also what `window.hearth` exposes). */
export interface Hearth {
  /** Resolves when the engine has picked a backend and loaded the model. */
  readonly ready: Promise<EngineStatus>;
  /** Records an interaction on this device. */
  track(event: TrackEvent): Promise<void>;
  /** Top-k recommendations for the current session. */
  recommend(options?: RecommendOptions): Promise<Recommendation[]>;
  /** Engine state: backend, model version, storage, uploads. */
  status(): Promise<EngineStatus>;
  /** Interactions stored on this device, newest first. */
  stored(limit?: number): Promise<StoredInteraction[]>;
  /** Learns from local history and shares a clipped update now, if allowed. */
  sync(): Promise<SyncResult>;
  /** Stops the worker. */
  destroy(): void;
}

/** Starts Hearth with already-resolved options (the loader's path). */
export function startHearth(options: ResolvedOptions): Hearth {
  setLogLevel(options.debug ? 'debug' : 'silent');
  let worker: Worker;
  let engine: Remote<EngineApi>;
  const ready = (async () => {
    try {
      worker = new Worker(options.workerUrl, { type: 'module', name: 'hearth' });
    } catch (error) {
      throw new HearthError('HEARTH_E_WORKER_START', String(error));
    }
    const failed = new Promise<never>((_, reject) =>
      worker.addEventListener('error', (event) =>
        reject(new HearthError('HEARTH_E_WORKER_START', event.message || 'worker failed to load')),
      ),
    );
    engine = wrap<EngineApi>(worker);
    return Promise.race([
      engine.init({
        endpoint: options.endpoint,
        backends: options.backends,
        uploads: options.uploads && !privacySignal(),
        uploadEvery: options.uploadEvery,
        wasmPath: new URL('./', options.workerUrl).href,
        debug: options.debug,
      }),
      failed,
    ]);
  })();
  // A rejected `ready` must not surface as an unhandled rejection on the host page.
  ready.catch(() => undefined);
  const call = async <T>(fn: (e: Remote<EngineApi>) => Promise<T>): Promise<T> => {
    await ready;
    return fn(engine);
  };
  return {
    ready,
    track: (event) => call((e) => e.track(event)),
    recommend: (opts = {}) => call((e) => e.recommend(opts)),
    status: () => call((e) => e.status()),
    stored: (limit = 50) => call((e) => e.stored(limit)),
    sync: () => call((e) => e.sync()),
    destroy: () => worker?.terminate(),
  };
}

/** Starts Hearth from options (the ESM entry's path). Throws HEARTH_E_CONFIG on bad options. */
export function createHearth(options: HearthOptions): Hearth {
  const base = typeof location === 'object' ? location.href : 'http://localhost/';
  return startHearth(resolveOptions({ ...options }, base));
}
