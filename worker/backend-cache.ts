/**
 * The per-browser cache of the backend decision, so a returning visitor skips timing every rung.
 * It is keyed by everything that can change the answer: the tfjs version, the model's layout (its
 * size decides which backend is fastest) and the ladder the site configured. A changed key, or a
 * stored value of any other shape, means "decide again".
 */
import { version_core } from '@tensorflow/tfjs-core';
import { BACKEND_LADDER, type BackendName, type EngineConfig } from '../protocol/api.js';
import type { GlobalModel } from './model-source.js';

/** The key under which a decision stays valid. */
export function backendFingerprint(config: EngineConfig, global: GlobalModel | null): string {
  return `tfjs ${version_core}|layout ${global?.manifest.layoutHash ?? 'none'}|${config.backends.join(',')}`;
}

/** The cached backend if `stored` is a decision for `fingerprint`, else undefined. */
export function readBackendChoice(stored: unknown, fingerprint: string): BackendName | undefined {
  if (typeof stored !== 'object' || stored === null) return undefined;
  const { fingerprint: key, backend } = stored as Record<string, unknown>;
  if (key !== fingerprint) return undefined;
  return (BACKEND_LADDER as readonly unknown[]).includes(backend)
    ? (backend as BackendName)
    : undefined;
}
