/**
 * The global model manifest served at `GET /v1/model`, and the tensor layout shared by the model code,
 * the update format and the server. The weights file is the tensors below, in this order, each flattened
 * row-major, concatenated, little-endian, in the manifest's dtype.
 */
import { HearthError } from './errors.js';
import { fnv1a32 } from './hash.js';
import { DEVICE_UPDATE_DTYPES, type UpdateDtypeName } from './update-format.js';

/** Model hyper-parameters that fix the tensor shapes. `items` counts index 0, the padding item. */
export interface ModelDims {
  readonly items: number;
  readonly embedding: number;
  readonly hidden: number;
  readonly maxSessionLength: number;
  /**
   * How the session vector meets the item table. It travels with the dims because every consumer
   * of the weights (worker, online learning, the server's validation) builds its model from them.
   * Only `repeat` adds a tensor to the layout; the other options change no shape. Absent = dot
   * product + item bias.
   */
  readonly scoring?: ScoringSpec;
}

/**
 * Scoring options. With `normalize`, scores are scale * cos(session, item) + item bias: the session
 * vector and every item row are L2-normalised (NISER, Gupta et al. 2019, arXiv:1909.04276; SGNN-HN,
 * Pan et al. 2020), which keeps popular items' large norms from crowding the ranking, and the scale
 * (a softmax temperature, ~12-16 in those papers) lets a cosine in [-1, 1] still make a peaked
 * softmax. With `lastItem`, the last item's embedding is added to the projected LSTM state (a
 * residual skip: STAMP and NARM show the last click carries most of the signal).
 */
export interface ScoringSpec {
  readonly normalize: boolean;
  readonly scale: number;
  readonly lastItem: boolean;
  /**
   * Optional: adds the decay-weighted mean of the session's item embeddings (weight decay^age, age 0
   * for the last item) to the session vector. Absent = no such term.
   */
  readonly itemMean?: number;
  /**
   * Optional: items of the session get a learned bonus by recency, scores[x_s] += repeat_bonus[age]
   * (age 0 = the last item; an item seen twice gets both), from the extra tensor `repeat_bonus`
   * [maxSessionLength]. Re-finding an item is a large share of next clicks in session logs (a
   * repeat mechanism, as RepeatNet's); the bonus leaves the order of all other items unchanged.
   */
  readonly repeat?: boolean;
}

/**
 * Added under the square root of every L2 norm of cosine scoring: the padding row is all zeros, and a
 * zero vector must normalise to zero, not NaN. Tiny against any trained row's squared norm.
 */
export const NORM_EPSILON = 1e-12;

/** The scoring a manifest without `dims.scoring` means (the original dot-product model). */
export const DOT_SCORING: ScoringSpec = { normalize: false, scale: 1, lastItem: false };

/** `dims.scoring` or DOT_SCORING. */
export function scoringOf(dims: ModelDims): ScoringSpec {
  return dims.scoring ?? DOT_SCORING;
}

/** Names of the model tensors, in weights-file order. Gates in the LSTM tensors are ordered i, f, g, o. */
export const TENSOR_NAMES = [
  'item_embedding',
  'item_bias',
  'lstm_kernel',
  'lstm_recurrent',
  'lstm_bias',
  'projection_kernel',
  'projection_bias',
  'repeat_bonus',
] as const;

export type TensorName = (typeof TENSOR_NAMES)[number];

/** One tensor of the layout. */
export interface TensorSpec {
  readonly name: TensorName;
  readonly shape: readonly number[];
}

/** The tensor layout for given dims (tied embeddings: the item table is stored once). */
export function tensorLayout(dims: ModelDims): TensorSpec[] {
  const { items: n, embedding: d, hidden: h } = dims;
  return [
    { name: 'item_embedding', shape: [n, d] },
    { name: 'item_bias', shape: [n] },
    { name: 'lstm_kernel', shape: [d, 4 * h] },
    { name: 'lstm_recurrent', shape: [h, 4 * h] },
    { name: 'lstm_bias', shape: [4 * h] },
    { name: 'projection_kernel', shape: [h, d] },
    { name: 'projection_bias', shape: [d] },
    ...(dims.scoring?.repeat
      ? [{ name: 'repeat_bonus' as const, shape: [dims.maxSessionLength] }]
      : []),
  ];
}

/** Values of the dense tensors (everything but the item embedding and bias). */
export function denseLength(dims: ModelDims): number {
  return tensorLayout(dims)
    .filter((t) => t.name !== 'item_embedding' && t.name !== 'item_bias')
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** Number of scalars in a layout. */
export function parameterCount(layout: readonly TensorSpec[]): number {
  return layout.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/** Values per row of a 1-D tensor in the int8 format (biases: one scale per 64 items). */
export const INT8_BLOCK = 64;

/** Length of every int8 row, in tensor order (the format: protocol/weights-codec.ts). */
export function int8Rows(layout: readonly TensorSpec[]): number[] {
  const rows: number[] = [];
  for (const { shape } of layout) {
    const size = shape.reduce((a, b) => a * b, 1);
    const width = shape.length > 1 ? shape[shape.length - 1]! : INT8_BLOCK;
    for (let at = 0; at < size; at += width) rows.push(Math.min(width, size - at));
  }
  return rows;
}

/** Byte length of weights over `layout` in `dtype`. */
export function weightsByteLength(layout: readonly TensorSpec[], dtype: WeightsDtype): number {
  const count = parameterCount(layout);
  if (dtype === 'int8') return 4 * int8Rows(layout).length + count;
  if (dtype === 'int8e') return 4 * layout.length + int8Rows(layout).length + count;
  return count * (dtype === 'float16' ? 2 : 4);
}

/** Fingerprint of a layout, carried in every update so a shape mismatch is caught before any maths. */
export function layoutHash(layout: readonly TensorSpec[]): number {
  return fnv1a32(layout.map((t) => `${t.name}:${t.shape.join('x')}`).join(';'));
}

/** Weight dtypes a manifest may name (their bytes: protocol/weights-codec.ts). */
export const WEIGHTS_DTYPES = ['float32', 'float16', 'int8', 'int8e'] as const;
export type WeightsDtype = (typeof WEIGHTS_DTYPES)[number];

/** What `GET /v1/model` returns. */
export interface ModelManifest {
  readonly format: 'hearth-model/1';
  /** Global model version, starting at 1; every aggregation publishes version + 1. */
  readonly version: number;
  readonly createdAt: string;
  readonly dims: ModelDims;
  readonly tensors: readonly TensorSpec[];
  readonly layoutHash: number;
  /** Where to get the weights, relative to the manifest URL, with their dtype and size. */
  readonly weights: {
    readonly url: string;
    readonly dtype: WeightsDtype;
    readonly byteLength: number;
  };
  /** External (site) item id of each model index; index 0 is padding and has id ''. */
  readonly itemIds: readonly string[];
  /** Model indices by descending popularity, for cold start (no session yet). */
  readonly popular: readonly number[];
  /**
   * Optional: model indices by descending popularity in the newest part of the training log (what
   * is trending), blended with `popular` at cold start. Absent in older manifests: popularity alone.
   */
  readonly recent?: readonly number[];
  /** Federation parameters the device must follow. */
  readonly federation: FederationParams;
  /** Free-form provenance: which data and run trained the base model. */
  readonly training?: Readonly<Record<string, string | number>>;
}

/**
 * A round's item sketch (protocol/item-sketch.ts): how many buckets, and the key its bucket and
 * sign hashes are drawn from (public, the same for every device of the round).
 */
export interface ItemSketch {
  readonly buckets: number;
  readonly key: number;
  /** Tables of `buckets` buckets, each with hashes of its own (absent: 1). */
  readonly depth?: number;
  /**
   * k: the sketch carries one in k of the dense tensors' values, those at (offset + j k) with the
   * offset drawn from `key` (protocol/item-sketch.ts sentDense); the others read as zero (absent: 1,
   * every value).
   */
  readonly denseStride?: number;
}

/** The most tables a sketch may have. */
export const MAX_SKETCH_DEPTH = 8;

/** The largest dense stride a sketch may have. */
export const MAX_DENSE_STRIDE = 1000;

/** What the server tells devices about taking part in rounds. */
export interface FederationParams {
  /** L2 bound S every update is clipped to. */
  readonly clipNorm: number;
  /** Updates needed before a round aggregates. */
  readonly minCohort: number;
  /** Largest example count an update may claim (weights are clamped to it). */
  readonly maxExamples: number;
  /**
   * q: the probability with which a device takes part in a round, decided by its own coin once per
   * model version, or once per round window with `roundWindowSeconds` (worker/participation.ts);
   * the server's accountant uses the same q. Absent in
   * manifests from before it was published: such a device takes part whenever it syncs (q = 1).
   */
  readonly sampleRate?: number;
  /**
   * s: the server still counts an update computed on a version at most s behind the current one (in
   * the current round). A device may send an update it kept while offline as long as its version is
   * within s. Absent in manifests from before it was published: 0, the current version only.
   */
  readonly maxStaleness?: number;
  /**
   * true: the server takes an update trained on an older version (within `maxStaleness`) in the
   * layout of a newer one, the header's `layoutAhead` versions on (protocol/update-format.ts), so
   * a device whose training outlived its version sends it in the newest version's item sketch
   * rather than in a sketch the server would have to carry over. Absent: every update is in its
   * base version's layout, as before the field existed.
   */
  readonly layoutAhead?: true;
  /**
   * T: rounds close on a clock, not on their m-th update (`--round-window`). Round r collects the
   * updates that arrive in [r T, (r + 1) T) seconds since the Unix epoch, on the version current at
   * its start; a device flips one coin per window (worker/participation.ts), names it when it joins,
   * and an update that misses its window is dropped, never carried over. Absent: a round closes on
   * its m-th update.
   */
  readonly roundWindowSeconds?: number;
  /**
   * σ_c: the std of the Gaussian noise on a round window's update count, which decides whether it
   * publishes; with `roundWindowSeconds`, always given. A device prices a window it took part in
   * with z and σ_c together (protocol/privacy/ledger.ts windowNoiseMultiplier).
   */
  readonly countNoise?: number;
  /**
   * z: the noise each published round carries, as a multiple of the round's sensitivity (the
   * server's Gaussian on a plaintext round; the devices' Skellam noise, sized by the server, on a
   * secure one), and the delta the server reports epsilon at. A device prices the rounds it took
   * part in with them (worker/ledger.ts). Absent in manifests from before they were published: the
   * device then knows of no noise, and counts its rounds as not private.
   */
  readonly noiseMultiplier?: number;
  readonly delta?: number;
  /**
   * The item rows an update on this version carries after the dense tensors (ascending, 1..items-1;
   * protocol/update-layout.ts): the same for every device, chosen by the server from public data
   * only. Absent: the update is the whole model.
   */
  readonly updateRows?: readonly number[];
  /**
   * An update on this version carries its item rows as this count sketch after the dense tensors
   * (protocol/item-sketch.ts): every item row moves every round, in the length of `buckets` rows.
   * Never together with `updateRows`.
   */
  readonly itemSketch?: ItemSketch;
  /**
   * 'secure': the device takes part in secure aggregation rounds (protocol/secagg/http.ts), and its
   * update leaves it only masked. Absent: it posts its update on its own (POST /v1/updates).
   */
  readonly aggregation?: 'secure';
  /**
   * How a device encodes a plaintext update (protocol/update-format.ts): 'float16', or the
   * block-scaled, stochastically rounded 'int8' / 'int4' (protocol/update-quant.ts). Absent in
   * manifests from before it was published: float16. A secure round's input is its own fixed point.
   */
  readonly updateDtype?: UpdateDtypeName;
}

/** The longest round window a manifest may name: a year. */
export const MAX_ROUND_WINDOW_SECONDS = 31_536_000;

/** The index of the round window that `atMs` (epoch milliseconds) falls in: floor(t / T). */
export function roundWindowAt(atMs: number, windowSeconds: number): number {
  return Math.floor(atMs / (windowSeconds * 1000));
}

/** The dtype a device encodes its plaintext update in: the manifest's, or float16. */
export function updateDtypeOf(federation: FederationParams): UpdateDtypeName {
  return federation.updateDtype ?? 'float16';
}

/** The q a device flips its coin with: the manifest's, or 1 where an older manifest has none. */
export function sampleRateOf(federation: FederationParams): number {
  return federation.sampleRate ?? 1;
}

/** The staleness bound s a device keeps to: the manifest's, or 0 where an older manifest has none. */
export function maxStalenessOf(federation: FederationParams): number {
  return federation.maxStaleness ?? 0;
}

const MAX_ITEMS = 5_000_000;

function positiveInt(value: unknown, max: number): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= max;
}

/**
 * Checks an untrusted manifest (from the network or a file) field by field and returns it typed.
 * Throws HEARTH_E_MODEL_INVALID naming the first bad field.
 */
export function parseManifest(value: unknown): ModelManifest {
  const bad = (field: string): never => {
    throw new HearthError('HEARTH_E_MODEL_INVALID', `bad field ${field}`);
  };
  if (typeof value !== 'object' || value === null) return bad('manifest');
  const m = value as Record<string, unknown>;
  if (m.format !== 'hearth-model/1') bad('format');
  if (!positiveInt(m.version, 2 ** 32 - 1)) bad('version');
  if (typeof m.createdAt !== 'string') bad('createdAt');
  const dims = m.dims as Record<string, unknown> | undefined;
  if (typeof dims !== 'object' || dims === null) return bad('dims');
  if (!positiveInt(dims.items, MAX_ITEMS) || (dims.items as number) < 2) bad('dims.items');
  if (!positiveInt(dims.embedding, 4096)) bad('dims.embedding');
  if (!positiveInt(dims.hidden, 4096)) bad('dims.hidden');
  if (!positiveInt(dims.maxSessionLength, 1000)) bad('dims.maxSessionLength');
  if (dims.scoring !== undefined) {
    const sc = dims.scoring as Record<string, unknown> | null;
    if (typeof sc !== 'object' || sc === null) return bad('dims.scoring');
    if (typeof sc.normalize !== 'boolean') bad('dims.scoring.normalize');
    if (typeof sc.lastItem !== 'boolean') bad('dims.scoring.lastItem');
    const scale = sc.scale;
    if (typeof scale !== 'number' || !(scale > 0) || !(scale <= 1000)) bad('dims.scoring.scale');
    if (sc.repeat !== undefined && typeof sc.repeat !== 'boolean') bad('dims.scoring.repeat');
    const mean = sc.itemMean;
    if (mean !== undefined && (typeof mean !== 'number' || !(mean >= 0) || !(mean <= 1))) {
      bad('dims.scoring.itemMean');
    }
  }
  const typedDims = dims as unknown as ModelDims;
  const layout = tensorLayout(typedDims);
  if (!Array.isArray(m.tensors) || JSON.stringify(m.tensors) !== JSON.stringify(layout)) {
    bad('tensors');
  }
  if (m.layoutHash !== layoutHash(layout)) bad('layoutHash');
  const w = m.weights as Record<string, unknown> | undefined;
  if (typeof w !== 'object' || w === null || typeof w.url !== 'string') return bad('weights');
  if (!WEIGHTS_DTYPES.includes(w.dtype as WeightsDtype)) bad('weights.dtype');
  const bytes = weightsByteLength(layout, w.dtype as WeightsDtype);
  if (w.byteLength !== bytes) bad('weights.byteLength');
  const ids = m.itemIds;
  if (!Array.isArray(ids) || ids.length !== typedDims.items || ids[0] !== '') bad('itemIds');
  if (!(ids as unknown[]).every((id) => typeof id === 'string')) bad('itemIds');
  const popular = m.popular;
  if (!Array.isArray(popular)) return bad('popular');
  if (!popular.every((i) => Number.isInteger(i) && i > 0 && i < typedDims.items)) bad('popular');
  const recent = m.recent;
  const index = (i: unknown) =>
    Number.isInteger(i) && (i as number) > 0 && (i as number) < typedDims.items;
  if (recent !== undefined && !(Array.isArray(recent) && recent.every(index))) bad('recent');
  const f = m.federation as Record<string, unknown> | undefined;
  if (typeof f !== 'object' || f === null) return bad('federation');
  if (typeof f.clipNorm !== 'number' || !(f.clipNorm > 0) || !Number.isFinite(f.clipNorm)) {
    bad('federation.clipNorm');
  }
  if (!positiveInt(f.minCohort, 1_000_000)) bad('federation.minCohort');
  if (!positiveInt(f.maxExamples, 1_000_000)) bad('federation.maxExamples');
  const q = f.sampleRate;
  if (q !== undefined && !(typeof q === 'number' && q >= 0 && q <= 1)) bad('federation.sampleRate');
  const s = f.maxStaleness;
  // Versions are u32 on the wire, so no bound can usefully be larger.
  if (s !== undefined && !(Number.isInteger(s) && (s as number) >= 0 && (s as number) < 2 ** 32)) {
    bad('federation.maxStaleness');
  }
  if (f.layoutAhead !== undefined && f.layoutAhead !== true) bad('federation.layoutAhead');
  const window = f.roundWindowSeconds;
  if (window !== undefined && !positiveInt(window, MAX_ROUND_WINDOW_SECONDS)) {
    bad('federation.roundWindowSeconds');
  }
  const countNoise = f.countNoise;
  const validNoise =
    typeof countNoise === 'number' && countNoise > 0 && Number.isFinite(countNoise);
  if (
    (window === undefined) !== (countNoise === undefined) ||
    (countNoise !== undefined && !validNoise)
  ) {
    bad('federation.countNoise');
  }
  const z = f.noiseMultiplier;
  if (z !== undefined && !(typeof z === 'number' && z >= 0 && Number.isFinite(z))) {
    bad('federation.noiseMultiplier');
  }
  const d = f.delta;
  if (d !== undefined && !(typeof d === 'number' && d > 0 && d < 1)) bad('federation.delta');
  const rows = f.updateRows;
  if (rows !== undefined && !ascendingRows(rows, typedDims.items)) bad('federation.updateRows');
  if (f.itemSketch !== undefined && (rows !== undefined || !validSketch(f.itemSketch))) {
    bad('federation.itemSketch');
  }
  if (f.aggregation !== undefined && f.aggregation !== 'secure') bad('federation.aggregation');
  if (f.updateDtype !== undefined && !DEVICE_UPDATE_DTYPES.includes(f.updateDtype as never)) {
    bad('federation.updateDtype');
  }
  return value as ModelManifest;
}

/**
 * A manifest for `dims` with float32 weights at `weights.bin`: its tensors, layout hash and byte
 * length follow from the dims, the rest from `fields` (version 1 and the epoch unless given).
 */
export function manifestFor(
  dims: ModelDims,
  fields: Pick<ModelManifest, 'itemIds' | 'federation'> &
    Partial<Pick<ModelManifest, 'version' | 'createdAt' | 'popular' | 'recent' | 'training'>>,
): ModelManifest {
  const tensors = tensorLayout(dims);
  return {
    format: 'hearth-model/1',
    version: fields.version ?? 1,
    createdAt: fields.createdAt ?? new Date(0).toISOString(),
    dims: { ...dims },
    tensors,
    layoutHash: layoutHash(tensors),
    weights: {
      url: 'weights.bin',
      dtype: 'float32',
      byteLength: weightsByteLength(tensors, 'float32'),
    },
    itemIds: fields.itemIds,
    popular: fields.popular ?? [],
    ...(fields.recent ? { recent: fields.recent } : {}),
    federation: fields.federation,
    ...(fields.training ? { training: fields.training } : {}),
  };
}

/** A sketch of 1..5,000,000 buckets (the most rows an update may name) with a u32 key. */
function validSketch(sketch: unknown): boolean {
  if (typeof sketch !== 'object' || sketch === null) return false;
  const { buckets, key, depth, denseStride } = sketch as Record<string, unknown>;
  return (
    positiveInt(buckets, 5_000_000) &&
    (depth === undefined || positiveInt(depth, MAX_SKETCH_DEPTH)) &&
    (denseStride === undefined || positiveInt(denseStride, MAX_DENSE_STRIDE)) &&
    Number.isInteger(key) &&
    (key as number) >= 0 &&
    (key as number) < 2 ** 32
  );
}

/** Whether `rows` is an ascending list of distinct item rows in 1..items-1. */
function ascendingRows(rows: unknown, items: number): boolean {
  if (!Array.isArray(rows)) return false;
  let previous = 0;
  for (const row of rows) {
    if (!Number.isInteger(row) || row <= previous || row >= items) return false;
    previous = row as number;
  }
  return true;
}

/** Splits a flat parameter vector into named views (no copy), following the layout. */
export function splitFlat(
  flat: Float32Array,
  layout: readonly TensorSpec[],
): Map<TensorName, Float32Array> {
  const out = new Map<TensorName, Float32Array>();
  let offset = 0;
  for (const t of layout) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    out.set(t.name, flat.subarray(offset, offset + size));
    offset += size;
  }
  if (offset !== flat.length) {
    throw new HearthError(
      'HEARTH_E_MODEL_INVALID',
      `expected ${offset} values, got ${flat.length}`,
    );
  }
  return out;
}
