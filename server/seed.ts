/**
 * Importing the seed model (the output of `tools/train`) as version 1 when the database is empty.
 * The seed is operator input, so it is validated as strictly as a downloaded manifest: parseManifest,
 * the weights file's exact byte length, and finite values.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { allFinite } from '../protocol/clip.js';
import { HearthError } from '../protocol/errors.js';
import { decodeWeights } from '../protocol/weights-codec.js';
import { parseManifest } from '../protocol/manifest.js';
import type { CatalogItem } from '../protocol/catalog.js';
import { coldStartVersion } from './cold-start.js';
import type { ServerConfig } from './config.js';
import type { Store, StoredVersion } from './store.js';
import { federationParams, versionManifest, versionLayout } from './versions.js';

/** Name of the manifest file in a model directory. */
export const SEED_MANIFEST_FILE = 'manifest.json';

function invalid(detail: string): never {
  throw new HearthError('HEARTH_E_MODEL_INVALID', detail);
}

/**
 * Reads and validates a model directory, returning it as version 1 with float32 weights. The seed's
 * own federation parameters are replaced by the config's: the server, not the training run, decides S
 * and m.
 */
export async function loadSeedModel(dir: string, config: ServerConfig): Promise<StoredVersion> {
  const manifestPath = resolve(dir, SEED_MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestPath, 'utf8'));
  } catch (error) {
    invalid(`cannot read ${manifestPath}: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    invalid(`${manifestPath} is not a JSON object`);
  }
  const seed = parseManifest({ ...raw, federation: federationParams(config) });
  // Only a file next to the manifest: a seed is loaded from disk, never fetched.
  if (/^[a-z][a-z0-9+.-]*:/i.test(seed.weights.url)) {
    invalid(`weights.url must be a relative path, got ${seed.weights.url}`);
  }
  const weightsPath = resolve(dir, seed.weights.url);
  let bytes: Buffer;
  try {
    bytes = await readFile(weightsPath);
  } catch (error) {
    return invalid(`cannot read ${weightsPath}: ${(error as Error).message}`);
  }
  if (bytes.byteLength !== seed.weights.byteLength) {
    invalid(
      `${weightsPath} has ${bytes.byteLength} bytes, manifest says ${seed.weights.byteLength}`,
    );
  }
  const weights = decodeWeights(bytes, seed.tensors, seed.weights.dtype);
  if (!allFinite(weights)) invalid(`${weightsPath} contains NaN or Infinity`);
  const layout = versionLayout(config, seed.dims, 1, weights, seed.layoutHash);
  return { manifest: versionManifest(seed, 1, new Date().toISOString(), layout), weights };
}

/**
 * Makes sure the store has a model: seeds it from `config.modelDir` when empty, or, without one,
 * starts cold over `catalog` (cold-start.ts). Returns the current version. Throws HEARTH_E_CONFIG
 * when the store is empty and there is neither.
 */
export async function seedIfEmpty(
  store: Store,
  config: ServerConfig,
  catalog?: readonly CatalogItem[],
): Promise<number> {
  const existing = await store.latestVersion();
  if (existing !== undefined) return existing;
  if (config.modelDir !== undefined) {
    await store.seed(await loadSeedModel(config.modelDir, config));
  } else if (catalog !== undefined) {
    await store.seed(coldStartVersion(catalog, config));
  } else {
    throw new HearthError(
      'HEARTH_E_CONFIG',
      `the database ${config.dbPath} has no model version yet; pass --model <dir> to seed it, or --catalog <file|url> to start cold from the site's items`,
    );
  }
  return (await store.latestVersion())!;
}
