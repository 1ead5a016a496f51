/**
 * Writes and reads a model directory the way the server publishes it: `manifest.json` (a ModelManifest),
 * `weights.bin` (float32, little-endian, manifest tensor order) and `weights.f16.bin` (the same values
 * as IEEE binary16, half the bytes, for clients that accept the precision loss). Also reads and writes
 * training checkpoints (weights + Adam state + data position) for `npm run train -- --resume`.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HearthError } from '../protocol/errors.js';
import { decodeWeights, encodeWeights } from '../protocol/weights-codec.js';
import {
  manifestFor,
  parseManifest,
  tensorLayout,
  type FederationParams,
  type ModelDims,
  type ModelManifest,
} from '../protocol/manifest.js';
import { SessionModel } from '../model/session-model.js';
import type { TrainCheckpoint } from '../model/train.js';

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
  /** Optional cold-start recency order (manifest `recent`). */
  readonly recent?: readonly number[];
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
  const manifest = parseManifest(
    manifestFor(model.dims, {
      version: info.version,
      createdAt: info.createdAt ?? new Date().toISOString(),
      itemIds: [...info.itemIds],
      popular: [...info.popular],
      ...(info.recent ? { recent: [...info.recent] } : {}),
      federation: info.federation ?? DEFAULT_FEDERATION,
      ...(info.training ? { training: info.training } : {}),
    }),
  );
  const f32 = encodeWeights(flat, layout, 'float32');
  const f16 = encodeWeights(flat, layout, 'float16');

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
  const flat = decodeWeights(bytes, manifest.tensors, manifest.weights.dtype);
  if (!flat.every(Number.isFinite)) {
    throw new HearthError('HEARTH_E_MODEL_INVALID', 'weights contain NaN or Infinity');
  }
  return { manifest, model: SessionModel.fromFlat(manifest.dims, flat) };
}

/** checkpoint.json: everything but the float arrays, which live in checkpoint.bin at `arrays`. */
interface CheckpointMeta {
  format: 'hearth-checkpoint/1';
  dims: ModelDims;
  scalars: Omit<TrainCheckpoint, 'weights' | 'adam' | 'bestWeights' | 'lastLoss' | 'validation'>;
  lastLoss: number | null;
  validation: number[];
  adamT: number;
  arrays: Record<string, [number, number]>;
  extra: Record<string, unknown>;
}

/** File names of a training checkpoint inside its directory. */
export const CHECKPOINT_FILES = { meta: 'checkpoint.json', data: 'checkpoint.bin' } as const;

/**
 * Writes a training checkpoint: `checkpoint.bin` holds the float32 arrays (weights, Adam m and v, best
 * weights) back to back, little-endian; `checkpoint.json` the positions, RNG states, counters, the
 * model dims and `extra` (the trainer's hyper-parameters). Both are written to temporary names and
 * renamed, the JSON last, so a crash mid-write leaves the previous checkpoint readable.
 */
export async function saveCheckpoint(
  dir: string,
  dims: ModelDims,
  checkpoint: TrainCheckpoint,
  extra: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const arrays: [string, Float32Array][] = [
    ['weights', checkpoint.weights],
    ['adamM', checkpoint.adam.m],
    ['adamV', checkpoint.adam.v],
  ];
  if (checkpoint.bestWeights) arrays.push(['bestWeights', checkpoint.bestWeights]);
  const total = arrays.reduce((n, [, a]) => n + a.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  const offsets: Record<string, [number, number]> = {};
  let at = 0;
  for (const [name, array] of arrays) {
    offsets[name] = [at, array.length];
    for (let i = 0; i < array.length; i++) view.setFloat32((at + i) * 4, array[i]!, true);
    at += array.length;
  }
  const c = checkpoint;
  const meta: CheckpointMeta = {
    format: 'hearth-checkpoint/1',
    dims,
    scalars: {
      step: c.step,
      epoch: c.epoch,
      batchInEpoch: c.batchInEpoch,
      epochRngState: c.epochRngState,
      samplerRngState: c.samplerRngState,
      examples: c.examples,
      weightedLoss: c.weightedLoss,
      epochExamples: c.epochExamples,
      epochWeightedLoss: c.epochWeightedLoss,
      bestEpoch: c.bestEpoch,
      badEpochs: c.badEpochs,
    },
    // JSON has no NaN: lastLoss is NaN before the first step.
    lastLoss: Number.isFinite(c.lastLoss) ? c.lastLoss : null,
    validation: [...c.validation],
    adamT: c.adam.t,
    arrays: offsets,
    extra: { ...extra },
  };
  await mkdir(dir, { recursive: true });
  const dataPath = join(dir, CHECKPOINT_FILES.data);
  const metaPath = join(dir, CHECKPOINT_FILES.meta);
  await writeFile(`${dataPath}.tmp`, bytes);
  await writeFile(`${metaPath}.tmp`, `${JSON.stringify(meta)}\n`);
  await rename(`${dataPath}.tmp`, dataPath);
  await rename(`${metaPath}.tmp`, metaPath);
}

/** A checkpoint read back by loadCheckpoint. */
export interface LoadedCheckpoint {
  readonly dims: ModelDims;
  readonly checkpoint: TrainCheckpoint;
  readonly extra: Record<string, unknown>;
}

/** Reads a checkpoint directory written by saveCheckpoint; null when it holds none. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint | null> {
  let text: string;
  try {
    text = await readFile(join(dir, CHECKPOINT_FILES.meta), 'utf8');
  } catch {
    return null;
  }
  const meta = JSON.parse(text) as CheckpointMeta;
  if (meta.format !== 'hearth-checkpoint/1') {
    throw new HearthError('HEARTH_E_MODEL_INVALID', `${dir}: not a hearth-checkpoint/1`);
  }
  const bytes = await readFile(join(dir, CHECKPOINT_FILES.data));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const array = (name: string): Float32Array | null => {
    const spec = meta.arrays[name];
    if (!spec) return null;
    const [offset, length] = spec;
    if ((offset + length) * 4 > bytes.length) {
      throw new HearthError('HEARTH_E_MODEL_INVALID', `${dir}: checkpoint data is truncated`);
    }
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = view.getFloat32((offset + i) * 4, true);
    return out;
  };
  const checkpoint: TrainCheckpoint = {
    ...meta.scalars,
    lastLoss: meta.lastLoss ?? NaN,
    validation: meta.validation,
    weights: array('weights')!,
    adam: { t: meta.adamT, m: array('adamM')!, v: array('adamV')! },
    bestWeights: array('bestWeights'),
  };
  return { dims: meta.dims, checkpoint, extra: meta.extra };
}
