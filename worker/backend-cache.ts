/**
 * The per-browser cache of the backend decision, so a returning visitor skips timing every rung.
 * It is keyed by everything that can change the answer: the tfjs version, the model's layout (its
 * size decides which backend is fastest) and the ladder the site configured. A changed key, or a
 * stored value of any other shape, means "decide again".
 */
import { version_core } from '@tensorflow/tfjs-core';
import { BACKEND_LADDER, type BackendName, type EngineConfig } from '../protocol/api.js';
import { HearthError } from '../protocol/errors.js';
import { createLogger } from '../protocol/logger.js';
import { chooseBackend, type LadderResult } from './backend-ladder.js';
import type { GlobalModel } from './model-source.js';
import type { InteractionStore } from './store.js';

const log = createLogger('backend');

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

/**
 * Walks the configured ladder (self-testing on the model's own weights when one is loaded), starting
 * from the store's cached decision for this fingerprint, and remembers a decision made on the real
 * model. Throws HEARTH_E_NO_BACKEND when no rung works.
 */
export async function chooseCachedBackend(
  config: EngineConfig,
  global: GlobalModel | null,
  store: InteractionStore,
): Promise<LadderResult> {
  const probe = global ? { dims: global.manifest.dims, weights: global.weights } : undefined;
  const fingerprint = backendFingerprint(config, global);
  const cached = readBackendChoice(await store.getBackendChoice().catch(() => null), fingerprint);
  const ladder = await chooseBackend(config.backends, { wasmPath: config.wasmPath, probe, cached });
  if (!ladder.chosen) throw new HearthError('HEARTH_E_NO_BACKEND', JSON.stringify(ladder.attempts));
  if (probe && ladder.chosen !== cached) {
    // Only a decision made on the real model is worth remembering.
    await store
      .setBackendChoice({ fingerprint, backend: ladder.chosen })
      .catch((error: unknown) => log.warn('could not cache the backend choice', error));
  }
  return ladder;
}
