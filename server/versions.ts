/**
 * How a stored model version becomes the manifest devices see. Versions are stored as float32 with a
 * manifest whose weights URL points back at this server; the federation parameters are filled in from
 * the running config when served, so an operator can change S or m without rewriting old versions.
 */
import {
  parameterCount,
  type FederationParams,
  type ModelDims,
  type ModelManifest,
} from '../protocol/manifest.js';
import { biasLedRows, roundRows } from '../protocol/update-layout.js';
import { roundSketch } from '../protocol/item-sketch.js';
import { weightsPath } from '../protocol/routes.js';
import { tensorLayout, weightsByteLength } from '../protocol/manifest.js';
import type { ServerConfig } from './config.js';

/** Number of scalars in a manifest's tensors. */
export function manifestParamCount(manifest: ModelManifest): number {
  return parameterCount(manifest.tensors);
}

/**
 * The most values an update may hold while this server runs, as the model grows with its catalogue
 * (catalog-growth.ts): a whole-model update while every row is sent (up to updateRows + 1 items, or
 * itemSketch + 1), then dense tensors and that many rows or buckets. Sending the whole model always
 * (`--update-rows full`) allows for the catalogue doubling.
 */
export function largestUpdateParams(
  manifest: ModelManifest,
  config: Pick<ServerConfig, 'updateRows' | 'itemSketch' | 'sketchDepth'>,
): number {
  const { dims } = manifest;
  const rows =
    config.itemSketch !== 'off' ? config.itemSketch * config.sketchDepth : config.updateRows;
  const items = rows === 'full' ? 2 * dims.items : Math.max(dims.items, rows + 1);
  return parameterCount(tensorLayout({ ...dims, items }));
}

/**
 * The stored manifest of `version`, derived from a previous (or seed) manifest: same dims, layout,
 * items and popularity; new version, timestamp, and float32 weights served by this server.
 */
export function versionManifest(
  template: ModelManifest,
  version: number,
  createdAt: string,
  layout: LayoutFields = {},
): ModelManifest {
  // Field by field rather than a spread: unknown fields of a seed file are not passed on to devices.
  return {
    format: template.format,
    version,
    createdAt,
    dims: template.dims,
    tensors: template.tensors,
    layoutHash: template.layoutHash,
    weights: {
      url: weightsPath(version),
      dtype: 'float32',
      byteLength: manifestParamCount(template) * 4,
    },
    itemIds: template.itemIds,
    popular: template.popular,
    ...(template.recent === undefined ? {} : { recent: template.recent }),
    federation: withLayout(template.federation, layout),
    ...(template.training === undefined ? {} : { training: template.training }),
  };
}

/** What a version's manifest says of its update layout: rows, an item sketch, or neither. */
export type LayoutFields = Pick<FederationParams, 'updateRows' | 'itemSketch'>;

/** `federation` with `layout`'s rows or sketch as the update's (neither: the whole model). */
function withLayout(federation: FederationParams, layout: LayoutFields): FederationParams {
  const out: { -readonly [K in keyof FederationParams]: FederationParams[K] } = { ...federation };
  delete out.updateRows;
  delete out.itemSketch;
  if (layout.updateRows !== undefined) out.updateRows = layout.updateRows;
  if (layout.itemSketch !== undefined) out.itemSketch = layout.itemSketch;
  return out;
}

/**
 * The item rows updates on `version` carry (config.updateRows of them; undefined: the whole
 * model, also when that many rows would be all of them), chosen from public data only: the version's own weights (its item bias) with 'bias',
 * a window through a permutation seeded by `seed` with 'window'. The store records them in the
 * version's manifest when it publishes, so a version's layout never changes after.
 */
export function versionRows(
  config: Pick<ServerConfig, 'updateRows' | 'rowChoice'>,
  dims: ModelDims,
  version: number,
  weights: Float32Array,
  seed: number,
): readonly number[] | undefined {
  // A layout naming every row carries what the whole model does: send the whole model.
  if (config.updateRows === 'full' || config.updateRows >= dims.items - 1) return undefined;
  if (config.rowChoice === 'window') return roundRows(dims.items, config.updateRows, version, seed);
  const at = dims.items * dims.embedding;
  return biasLedRows(weights.subarray(at, at + dims.items), config.updateRows, version, seed);
}

/**
 * An ISO time truncated to its hour: what is public of when something happened that one upload
 * caused (a round publishes the moment its last update arrives).
 */
export function toHour(iso: string): string {
  return `${iso.slice(0, 13)}:00:00.000Z`;
}

/**
 * The update layout of `version`: with config.itemSketch, a count sketch of that many buckets drawn
 * for the version (protocol/item-sketch.ts roundSketch), config.sketchDepth tables of them, carrying
 * one in config.sketchDenseStride of the dense values; else
 * the rows versionRows names. Neither (the whole model) where the sketch or the rows would hold as
 * many values as every row.
 */
export function versionLayout(
  config: Pick<
    ServerConfig,
    'updateRows' | 'rowChoice' | 'itemSketch' | 'sketchDepth' | 'sketchDenseStride'
  >,
  dims: ModelDims,
  version: number,
  weights: Float32Array,
  seed: number,
): LayoutFields {
  if (config.itemSketch !== 'off') {
    // As many buckets as rows carry no fewer values than the rows, and collisions besides.
    if (config.itemSketch * config.sketchDepth >= dims.items - 1) return {};
    return {
      itemSketch: roundSketch(
        config.itemSketch,
        version,
        config.sketchDepth,
        config.sketchDenseStride,
      ),
    };
  }
  const rows = versionRows(config, dims, version, weights, seed);
  return rows === undefined ? {} : { updateRows: rows };
}

/** RoundPolicy.layoutFields for the running config: versionLayout on each new version's weights. */
export function layoutFieldsOf(
  config: Pick<
    ServerConfig,
    'updateRows' | 'rowChoice' | 'itemSketch' | 'sketchDepth' | 'sketchDenseStride'
  >,
) {
  return (template: ModelManifest, version: number, weights: Float32Array) =>
    versionLayout(config, template.dims, version, weights, template.layoutHash);
}

/** The federation parameters devices must follow, from the running config. */
export function federationParams(config: ServerConfig): FederationParams {
  return {
    clipNorm: config.clipNorm,
    minCohort: config.minCohort,
    maxExamples: config.maxExamples,
    sampleRate: config.sampleRate,
    maxStaleness: config.maxStaleness,
    // A plaintext update trained on an older version may come in a newer version's layout.
    ...(config.aggregation !== 'secure' && config.maxStaleness > 0
      ? { layoutAhead: true as const }
      : {}),
    ...(config.roundWindowSeconds > 0
      ? { roundWindowSeconds: config.roundWindowSeconds, countNoise: config.countNoise }
      : {}),
    noiseMultiplier: config.noiseMultiplier,
    delta: config.delta,
    ...(config.aggregation === 'secure' ? { aggregation: 'secure' as const } : {}),
    // Float16 where it names none, as before the field existed; a secure round's input is its own
    // fixed point, so a secure server names none.
    ...(config.aggregation !== 'secure' && config.updateDtype !== 'float16'
      ? { updateDtype: config.updateDtype }
      : {}),
  };
}

/**
 * The manifest as served at `GET /v1/model`: the running config's federation parameters, and the
 * weights in the configured dtype (stored versions are float32; the route encodes them).
 */
export function servedManifest(stored: ModelManifest, config: ServerConfig): ModelManifest {
  const dtype = config.weightsDtype;
  return {
    ...stored,
    // To the hour: a plaintext round publishes the moment its last update arrives.
    createdAt: toHour(stored.createdAt),
    weights: {
      // Each dtype at its own URL: the bytes are cached as immutable, so a URL never changes meaning.
      url: dtype === 'float32' ? stored.weights.url : `${stored.weights.url}?dtype=${dtype}`,
      dtype,
      byteLength: weightsByteLength(stored.tensors, dtype),
    },
    // The rows or the sketch are the version's own, fixed when it was published.
    federation: withLayout(federationParams(config), stored.federation),
  };
}
