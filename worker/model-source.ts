/**
 * Fetching the global model from the aggregation server: `GET /v1/model` for the manifest, then its
 * weights. Everything fetched is validated before use (a bad server must not corrupt the device).
 * These GETs carry no body and no interaction data. Weights are kept in the device store by version
 * (`loadGlobalModel`), so a reload only asks for the manifest.
 */
import { HearthError, type ErrorCode } from '../protocol/errors.js';
import { decodeWeights } from '../protocol/weights-codec.js';
import { createLogger } from '../protocol/logger.js';
import { parameterCount, parseManifest, type ModelManifest } from '../protocol/manifest.js';
import { PATHS } from '../protocol/routes.js';
import type { CachedModel, InteractionStore } from './store.js';

const log = createLogger('model');

/** A manifest with its decoded float32 weights. */
export interface GlobalModel {
  readonly manifest: ModelManifest;
  readonly weights: Float32Array;
}

/**
 * `GET url` as every Hearth GET is made: without credentials, and repeated once when it fails before
 * any response. A failure to get any response is a HearthError with `code`; the response is
 * returned whatever its status.
 */
export async function hearthGet(url: string, code: ErrorCode): Promise<Response> {
  // `omit`: Hearth never sends cookies to the aggregation server; nothing should identify the device.
  const request = () => fetch(url, { credentials: 'omit' });
  try {
    return await request();
  } catch {
    // Failed before any response (a kept-alive connection the server had just closed, a blip): a
    // GET is safe to repeat, and browsers repeat it themselves in the first case; Node does not.
    try {
      return await request();
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      throw new HearthError(code, `${url}: ${String(error)}${cause ? ` (${String(cause)})` : ''}`);
    }
  }
}

async function get(url: string): Promise<Response> {
  const response = await hearthGet(url, 'HEARTH_E_MODEL_FETCH');
  if (!response.ok)
    throw new HearthError('HEARTH_E_MODEL_FETCH', `${url}: HTTP ${response.status}`);
  return response;
}

/** Fetches and validates the manifest only (cheap: used to notice a new version). */
export async function fetchManifest(endpoint: string): Promise<ModelManifest> {
  const response = await get(new URL(PATHS.model, endpoint).href);
  let json: unknown;
  try {
    json = await response.json();
  } catch {
    throw new HearthError('HEARTH_E_MODEL_INVALID', 'manifest is not JSON');
  }
  return parseManifest(json);
}

/** Fetches the weights a manifest names and checks their size and finiteness. */
export async function fetchWeights(
  endpoint: string,
  manifest: ModelManifest,
): Promise<Float32Array> {
  const url = new URL(manifest.weights.url, new URL(PATHS.model, endpoint)).href;
  const bytes = new Uint8Array(await (await get(url)).arrayBuffer());
  if (bytes.length !== manifest.weights.byteLength) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `weights are ${bytes.length} bytes, manifest says ${manifest.weights.byteLength}`,
    );
  }
  const weights = decodeWeights(bytes, manifest.tensors, manifest.weights.dtype);
  if (!weights.every(Number.isFinite)) {
    throw new HearthError('HEARTH_E_MODEL_INVALID', 'weights contain NaN or Infinity');
  }
  return weights;
}

/** Manifest and weights together. */
export async function fetchGlobalModel(endpoint: string): Promise<GlobalModel> {
  const manifest = await fetchManifest(endpoint);
  return { manifest, weights: await fetchWeights(endpoint, manifest) };
}

/** Where a loaded model's weights came from (tests and the debug log). */
export type ModelOrigin = 'network' | 'cache' | 'offline-cache';

/** A global model with the device's fine-tuned copy of it, when one was kept. */
export interface LoadedModel extends GlobalModel {
  readonly origin: ModelOrigin;
  readonly local?: Float32Array;
}

/** The cached model as a usable GlobalModel, or null when the row does not fit its manifest. */
function fromCache(row: CachedModel, expected?: ModelManifest): LoadedModel | null {
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(row.manifest);
  } catch {
    return null;
  }
  const same =
    !expected ||
    (expected.version === manifest.version && expected.layoutHash === manifest.layoutHash);
  if (!same || row.weights.length !== parameterCount(manifest.tensors)) return null;
  return {
    // The fresh manifest wins (item ids or federation parameters may be served anew).
    manifest: expected ?? manifest,
    weights: row.weights,
    origin: expected ? 'cache' : 'offline-cache',
    ...(row.local ? { local: row.local } : {}),
  };
}

/**
 * The current global model, with its weights from the device's cache when that version is kept
 * there: a reload costs one manifest request (revalidated with its ETag by the HTTP cache) instead
 * of megabytes of weights. Fresh weights are cached for the next start. When the server cannot be
 * reached, the newest cached version is served (recommendations work offline).
 */
export async function loadGlobalModel(
  endpoint: string,
  store: InteractionStore,
): Promise<LoadedModel> {
  let manifest: ModelManifest;
  try {
    manifest = await fetchManifest(endpoint);
  } catch (error) {
    const newest = await store.newestModel().catch(() => undefined);
    const offline = newest ? fromCache(newest) : null;
    if (offline) return offline;
    throw error;
  }
  const row = await store.getModel(manifest.version).catch(() => undefined);
  const cached = row ? fromCache(row, manifest) : null;
  if (cached) return cached;
  const weights = await fetchWeights(endpoint, manifest);
  await store
    .putModel({ version: manifest.version, manifest, weights, savedAt: Date.now() })
    .catch((error: unknown) => log.warn('could not cache the model', error));
  return { manifest, weights, origin: 'network' };
}
