/** Hearth's ESM entry: `import { createHearth } from 'hearth'`. Re-exports only. */
export { createHearth, type Hearth } from './client.js';
export type { HearthOptions } from './config.js';
export { HearthError } from './errors.js';
export type { ErrorCode } from '../protocol/errors.js';
export type {
  EngineStatus,
  InteractionType,
  Recommendation,
  RecommendOptions,
  StoredInteraction,
  SyncResult,
  TrackEvent,
} from '../protocol/api.js';
