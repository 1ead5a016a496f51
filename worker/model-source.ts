/**
 * Fetching the global model from the aggregation server: `GET /v1/model` for the manifest, then its
 * weights. Everything fetched is validated before use (a bad server must not corrupt the device).
 * These GETs carry no body and no interaction data; the browser's HTTP cache with the server's ETags
 * keeps reloads cheap.
 */
import { HearthError } from '../protocol/errors.js';
import { decodeFloat16 } from '../protocol/float16.js';
import { parameterCount, parseManifest, type ModelManifest } from '../protocol/manifest.js';

/** A manifest with its decoded float32 weights. */
export interface GlobalModel {
  readonly manifest: ModelManifest;
  readonly weights: Float32Array;
}

async function get(url: string): Promise<Response> {
  let response: Response;
  try {
    // `omit`: Hearth never sends cookies to the aggregation server; nothing should identify the device.
    response = await fetch(url, { credentials: 'omit' });
  } catch (error) {
    throw new HearthError('HEARTH_E_MODEL_FETCH', `${url}: ${String(error)}`);
  }
  if (!response.ok)
    throw new HearthError('HEARTH_E_MODEL_FETCH', `${url}: HTTP ${response.status}`);
  return response;
}

/** Fetches and validates the manifest only (cheap: used to notice a new version). */
export async function fetchManifest(endpoint: string): Promise<ModelManifest> {
  const response = await get(new URL('/v1/model', endpoint).href);
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
  const url = new URL(manifest.weights.url, new URL('/v1/model', endpoint)).href;
  const bytes = new Uint8Array(await (await get(url)).arrayBuffer());
  if (bytes.length !== manifest.weights.byteLength) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `weights are ${bytes.length} bytes, manifest says ${manifest.weights.byteLength}`,
    );
  }
  const count = parameterCount(manifest.tensors);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let weights: Float32Array;
  if (manifest.weights.dtype === 'float16') {
    const half = new Uint16Array(count);
    for (let i = 0; i < count; i++) half[i] = view.getUint16(2 * i, true);
    weights = decodeFloat16(half);
  } else {
    weights = new Float32Array(count);
    for (let i = 0; i < count; i++) weights[i] = view.getFloat32(4 * i, true);
  }
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
