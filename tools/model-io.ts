/**
 * Writes and reads a model directory the way the server publishes it: `manifest.json` (a ModelManifest),
 * `weights.bin` (float32, little-endian, manifest tensor order) and `weights.f16.bin` (the same values
 * as IEEE binary16, half the bytes, for clients that accept the precision loss).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../protocol/errors.js';
import { encodeFloat16, decodeFloat16 } from '../protocol/float16.js';
import {
  layoutHash,
  parseManifest,
  tensorLayout,
  type FederationParams,
  type ModelManifest,
} from '../protocol/manifest.js';
import { SessionModel } from '../worker/model/session-model.js';

/** Federation parameters a freshly trained base model ships with. */
export const DEFAULT_FEDERATION: FederationParams = {
  clipNorm: 1,
  minCohort: 3,
  maxExamples: 1000,
};

/** What exportModel needs besides the weights. */
export interface ExportInfo {
  readonly itemIds: readonly string[];
  readonly popular: readonly number[];
  readonly version: number;
  readonly training?: Readonly<Record<string, string | number>>;
  readonly federation?: FederationParams;
  readonly createdAt?: string;
}

/** Paths and sizes of an exported model. */
export interface ExportResult {
  readonly manifest: ModelManifest;
  readonly manifestPath: string;
  readonly weightsBytes: number;
  readonly weightsF16Bytes: number;
}

/** Writes `dir/manifest.json`, `dir/weights.bin` and `dir/weights.f16.bin`; validates the manifest first. */
export async function exportModel(
  dir: string,
  model: SessionModel,
  info: ExportInfo,
): Promise<ExportResult> {
  const flat = model.toFlat();
  const layout = tensorLayout(model.dims);
  const manifest = parseManifest({
    format: 'hearth-model/1',
    version: info.version,
    createdAt: info.createdAt ?? new Date().toISOString(),
    dims: { ...model.dims },
    tensors: layout,
    layoutHash: layoutHash(layout),
    weights: { url: 'weights.bin', dtype: 'float32', byteLength: flat.length * 4 },
    itemIds: [...info.itemIds],
    popular: [...info.popular],
    federation: info.federation ?? DEFAULT_FEDERATION,
    ...(info.training ? { training: info.training } : {}),
  });
  const f32 = new Uint8Array(flat.length * 4);
  const view = new DataView(f32.buffer);
  for (let i = 0; i < flat.length; i++) view.setFloat32(i * 4, flat[i]!, true);
  const half = encodeFloat16(flat);
  const f16 = new Uint8Array(half.length * 2);
  const halfView = new DataView(f16.buffer);
  for (let i = 0; i < half.length; i++) halfView.setUint16(i * 2, half[i]!, true);

  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, 'manifest.json');
  await writeFile(join(dir, 'weights.bin'), f32);
  await writeFile(join(dir, 'weights.f16.bin'), f16);
  // The manifest goes last, so a reader never sees a manifest whose weights are not there yet.
  await writeFile(manifestPath, `${JSON.stringify(manifest)}\n`);
  return { manifest, manifestPath, weightsBytes: f32.length, weightsF16Bytes: f16.length };
}

/** Reads a model directory back, validating the manifest, the weights' size and their finiteness. */
export async function loadModel(
  dir: string,
): Promise<{ manifest: ModelManifest; model: SessionModel }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch (cause) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `${dir}/manifest.json: ${(cause as Error).message}`,
    );
  }
  const manifest = parseManifest(raw);
  const bytes = await readFile(join(dir, manifest.weights.url));
  if (bytes.length !== manifest.weights.byteLength) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `weights are ${bytes.length} bytes, manifest says ${manifest.weights.byteLength}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let flat: Float32Array;
  if (manifest.weights.dtype === 'float32') {
    flat = new Float32Array(bytes.length / 4);
    for (let i = 0; i < flat.length; i++) flat[i] = view.getFloat32(i * 4, true);
  } else {
    const half = new Uint16Array(bytes.length / 2);
    for (let i = 0; i < half.length; i++) half[i] = view.getUint16(i * 2, true);
    flat = decodeFloat16(half);
  }
  if (!flat.every(Number.isFinite)) {
    throw new HearthError('HEARTH_E_MODEL_INVALID', 'weights contain NaN or Infinity');
  }
  return { manifest, model: SessionModel.fromFlat(manifest.dims, flat) };
}
