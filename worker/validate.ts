/**
 * Validation of what the page sends the engine. The page is the host site's code, so everything is
 * checked here even though the SDK validated it too: the worker is the last line before storage.
 */
import { INTERACTION_TYPES, type RecommendOptions, type TrackEvent } from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';

/** Longest item id accepted (site ids are short; a long one is a bug or an abuse). */
export const MAX_ITEM_ID_LENGTH = 200;
/** Most items one recommend() call may ask for. */
export const MAX_K = 100;

/** Returns a clean copy of a track event or throws HEARTH_E_EVENT_INVALID. */
export function validateTrackEvent(event: unknown): TrackEvent {
  if (typeof event !== 'object' || event === null) {
    throw new HearthError('HEARTH_E_EVENT_INVALID', 'event must be an object');
  }
  const { type, item } = event as Record<string, unknown>;
  if (!(INTERACTION_TYPES as readonly unknown[]).includes(type)) {
    throw new HearthError('HEARTH_E_EVENT_INVALID', `type must be one of ${INTERACTION_TYPES}`);
  }
  const id = typeof item === 'number' && Number.isSafeInteger(item) ? String(item) : item;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ITEM_ID_LENGTH) {
    throw new HearthError(
      'HEARTH_E_EVENT_INVALID',
      `item must be a non-empty id of at most ${MAX_ITEM_ID_LENGTH} characters`,
    );
  }
  return { type: type as TrackEvent['type'], item: id };
}

/** Most ids an `allow` list may hold (a page of candidates, not the catalogue). */
export const MAX_ALLOW = 10_000;

/** Recommend options after validation, defaults filled. */
export interface CleanRecommendOptions {
  readonly k: number;
  readonly exclude: string[];
  /** null: the whole catalogue. */
  readonly allow: string[] | null;
  readonly explain: boolean;
}

const isIdList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((id) => typeof id === 'string');

/** Returns clean recommend options (defaults filled) or throws HEARTH_E_ARGUMENT. */
export function validateRecommendOptions(options: unknown): CleanRecommendOptions {
  const o = (options ?? {}) as RecommendOptions;
  if (typeof o !== 'object')
    throw new HearthError('HEARTH_E_ARGUMENT', 'options must be an object');
  const k = o.k ?? 6;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new HearthError('HEARTH_E_ARGUMENT', `k must be an integer in 1..${MAX_K}`);
  }
  const exclude = o.exclude ?? [];
  if (!isIdList(exclude)) {
    throw new HearthError('HEARTH_E_ARGUMENT', 'exclude must be an array of item ids');
  }
  const allow = o.allow ?? null;
  if (allow !== null && (!isIdList(allow) || allow.length > MAX_ALLOW)) {
    throw new HearthError(
      'HEARTH_E_ARGUMENT',
      `allow must be an array of at most ${MAX_ALLOW} item ids`,
    );
  }
  const explain = o.explain ?? false;
  if (typeof explain !== 'boolean') {
    throw new HearthError('HEARTH_E_ARGUMENT', 'explain must be a boolean');
  }
  return { k, exclude: [...exclude], allow: allow && [...allow], explain };
}
