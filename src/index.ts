/**
 * Hearth's ESM entry (`hearth.mjs`): `import { createHearth } from 'https://cdn.example/hearth.mjs'`.
 * Same engine and options as the script tag, for sites that render recommendations themselves.
 */
import { capture } from './capture.js';
import { startHearth, type Hearth } from './client.js';
import { resolveOptions, type HearthOptions } from './config.js';

/**
 * Starts Hearth. Throws HEARTH_E_CONFIG on bad options. The worker defaults to `hearth-worker.js`
 * next to this module (a site that bundles hearth.mjs into its own code passes `workerUrl`); URLs
 * the site passes resolve against the page. Clicks, views and dwell on `[data-hearth-item]` are
 * captured unless `capture: false`; `destroy()` stops that too.
 */
export function createHearth(options: HearthOptions): Hearth {
  const page = typeof location === 'object' ? location.href : import.meta.url;
  const resolved = resolveOptions({ ...options }, import.meta.url, page);
  const hearth = startHearth(resolved);
  if (!resolved.capture || typeof document !== 'object') return hearth;
  // Its forget wrapped: what was on screen before an erasure does not bring the item back.
  const capturing = capture((event) => void hearth.track(event).catch(() => undefined), [hearth]);
  // Nothing can be tracked without an engine: stop listening rather than queue calls forever.
  hearth.ready.catch(capturing);
  const destroy = hearth.destroy;
  return Object.assign(hearth, {
    destroy: () => {
      capturing();
      destroy();
    },
  });
}

export type { Hearth } from './client.js';
export type { HearthOptions } from './config.js';
export { HearthError } from '../protocol/hearth-error.js';
export type { ErrorCode } from '../protocol/errors.js';
export type {
  EngineStatus,
  InteractionType,
  JoinedRound,
  Ledger,
  LedgerItem,
  Recommendation,
  RecommendOptions,
  RequestKind,
  SentRequest,
  StoredInteraction,
  SyncResult,
  TrackEvent,
} from '../protocol/api.js';
