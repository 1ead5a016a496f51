/**
 * Shared fixtures of the server tests (not a test file itself): a tiny model written to a temp dir,
 * an app on an in-memory store seeded from it, and update bodies built with the protocol encoder.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { JoinReply } from '../protocol/api.js';
import { encodeFloat16 } from '../protocol/float16.js';
import { mulberry32 } from '../protocol/prng.js';
import { PATHS, weightsPath } from '../protocol/routes.js';
import {
  layoutHash,
  parameterCount,
  tensorLayout,
  type ModelDims,
  type ModelManifest,
} from '../protocol/manifest.js';
import {
  DTYPE_FLOAT32,
  encodeUpdate,
  tokenFromHex,
  UPDATE_CONTENT_TYPE,
  type UpdateDtype,
} from '../protocol/update-format.js';
import { buildApp } from './app.js';
import { resolveConfig, type ServerConfig } from './config.js';
import { bytesToFloat32 } from './float32-bytes.js';
import { manifestLayout, updateLength, type UpdateLayout } from '../protocol/update-layout.js';
import type { GaussianRng } from './gaussian.js';
import { seedIfEmpty } from './seed.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** Dims of the test model: 64 parameters. */
export const DIMS: ModelDims = { items: 6, embedding: 2, hidden: 2, maxSessionLength: 5 };
export const LAYOUT = tensorLayout(DIMS);
export const PARAMS = parameterCount(LAYOUT);
export const LAYOUT_HASH = layoutHash(LAYOUT);

/** Deterministic seed weights: a fixed, non-trivial pattern. */
export function seedWeights(): Float32Array {
  return Float32Array.from({ length: PARAMS }, (_, i) => Math.sin(i + 1) * 0.5);
}

/** A deterministic delta of exactly `norm` (in float64 terms), varied by `salt`. */
export function makeDelta(norm: number, salt = 0): Float32Array {
  const raw = Array.from({ length: PARAMS }, (_, i) => Math.cos(i * 1.7 + salt * 3.1) + 0.1 * salt);
  const n = Math.sqrt(raw.reduce((s, v) => s + v * v, 0));
  return Float32Array.from(raw, (v) => (v / n) * norm);
}

/** A deterministic delta of `length` values (an update layout's) and L2 norm `norm`. */
export function layoutDelta(length: number, norm: number, salt: number): Float32Array {
  const raw = Float32Array.from({ length }, (_, i) => Math.sin(i * 2.3 + salt) + 0.2);
  const n = Math.sqrt(raw.reduce((sum, v) => sum + v * v, 0));
  return raw.map((x) => (x / n) * norm);
}

/** The manifest `app` serves now. */
export async function servedModel(app: FastifyInstance): Promise<ModelManifest> {
  return (await app.inject({ method: 'GET', url: PATHS.model })).json<ModelManifest>();
}

/** The float32 weights `app` serves for `version`; throws unless they are served. */
export async function servedWeights(app: FastifyInstance, version: number): Promise<Float32Array> {
  const res = await app.inject({ method: 'GET', url: weightsPath(version) });
  if (res.statusCode !== 200) throw new Error(`v${version} not served: ${res.statusCode}`);
  return bytesToFloat32(res.rawPayload);
}

/**
 * Posts `deltas[i]` with `tokens[i]` on version `version` (each must be accepted), then returns
 * their mean and how the weights moved from `version` to the next, which they publish.
 */
export async function moveOfRound(
  app: FastifyInstance,
  tokens: readonly string[],
  deltas: readonly Float32Array[],
  version = 1,
): Promise<{ mean: Float32Array; moved: Float32Array }> {
  for (let i = 0; i < deltas.length; i++) {
    const res = await postUpdate(app, updateBody({ token: tokens[i]!, delta: deltas[i]! }));
    if (res.statusCode !== 202) throw new Error(`update refused: ${res.statusCode} ${res.body}`);
  }
  const before = await servedWeights(app, version);
  const after = await servedWeights(app, version + 1);
  const mean = deltas[0]!.map((_, j) => deltas.reduce((sum, d) => sum + d[j]!, 0) / deltas.length);
  return { mean, moved: after.map((w, j) => w - before[j]!) };
}

/**
 * A stale update, on `app` with m = 1 and a staleness bound of at least 1: two devices join on
 * version 1, one's update publishes version 2, then the other's, computed on version 1, publishes
 * version 3. Returns the two versions' update layouts, the stale update, and what version 3 moved.
 */
export async function staleUpdateRound(app: FastifyInstance): Promise<{
  from: UpdateLayout;
  to: UpdateLayout;
  stale: Float32Array;
  change: Float32Array;
}> {
  const v1 = await servedModel(app);
  const late = await joinRound(app);
  const now = await joinRound(app);
  const from = manifestLayout(v1.federation);
  const length = updateLength(DIMS, from);
  const post = async (token: string, delta: Float32Array, version: number) => {
    const res = await postUpdate(app, updateBody({ token, delta }));
    if (res.statusCode !== 202 || res.json<{ version: number }>().version !== version) {
      throw new Error(`expected v${version}: ${res.statusCode} ${res.body}`);
    }
  };
  await post(now.token, layoutDelta(length, 0.5, 3), 2);
  const to = manifestLayout((await servedModel(app)).federation);
  const stale = layoutDelta(length, 0.5, 4);
  await post(late.token, stale, 3);
  const v2 = await servedWeights(app, 2);
  const change = (await servedWeights(app, 3)).map((w, i) => w - v2[i]!);
  return { from, to, stale, change };
}

/** A well-formed submission on version 1 for store tests: token, norm 0.5, a delta salted by `salt`. */
export const submission = (token: string, salt: number) => ({
  token,
  baseVersion: 1,
  examples: 3,
  norm: 0.5,
  delta: makeDelta(0.5, salt),
});

/** The shape of a seed model: its dims and item ids (index 0 is padding, id ''). */
export interface SeedModel {
  readonly dims: ModelDims;
  readonly itemIds: readonly string[];
}

/** The test model's shape: 6 items, 64 parameters. */
export const TEST_MODEL: SeedModel = { dims: DIMS, itemIds: ['', 'a', 'b', 'c', 'd', 'e'] };

/** Writes a seed model dir (manifest.json + weights) and returns it with a cleanup. */
export async function writeSeedDir(
  dtype: 'float32' | 'float16' = 'float32',
  weights: Float32Array = seedWeights(),
  model: SeedModel = TEST_MODEL,
): Promise<{ dir: string; manifest: ModelManifest; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'hearth-seed-'));
  const bytes =
    dtype === 'float16'
      ? new Uint8Array(encodeFloat16(weights).buffer)
      : new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  const manifest: ModelManifest = {
    format: 'hearth-model/1',
    version: 7,
    createdAt: '2024-01-01T00:00:00.000Z',
    dims: model.dims,
    tensors: tensorLayout(model.dims),
    layoutHash: layoutHash(tensorLayout(model.dims)),
    weights: { url: 'weights.bin', dtype, byteLength: bytes.byteLength },
    itemIds: model.itemIds,
    popular: [3, 1, 2],
    // Deliberately different from the server config: the server's values must win.
    federation: { clipNorm: 99, minCohort: 99, maxExamples: 99 },
    training: { run: 'test' },
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  await writeFile(join(dir, 'weights.bin'), bytes);
  return { dir, manifest, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * What the test apps take besides the config: the injected noise source and clock, and the seed
 * model (the 64-parameter test model unless named).
 */
export interface TestAppOptions {
  readonly rng?: GaussianRng;
  readonly now?: () => number;
  readonly model?: { readonly model: SeedModel; readonly weights: Float32Array };
}

/** A test app and its config; `close` closes the app and deletes the seed, not the store. */
export interface ServedStore {
  app: FastifyInstance;
  config: ServerConfig;
  close: () => Promise<void>;
}

/** An app on `store` (seeded with the test model if it is empty), whichever kind of store it is. */
export async function serveStore(
  store: Store,
  overrides: Partial<ServerConfig> = {},
  { model, ...options }: TestAppOptions = {},
): Promise<ServedStore> {
  const seed = await writeSeedDir('float32', model?.weights, model?.model);
  // float32 weights and no noise unless a test asks for it: tests read published versions back and
  // compare them exactly (the private defaults are tested in config.test.ts and privacy.test.ts).
  const config = resolveConfig({
    dbPath: ':memory:',
    modelDir: seed.dir,
    weightsDtype: 'float32',
    noiseMultiplier: 0,
    // Tests post updates one by one (secure rounds: integration/secure-rounds.test.ts).
    aggregation: 'plaintext',
    ...overrides,
  });
  await seedIfEmpty(store, config);
  const app = buildApp({ store, config, ...options });
  await app.ready();
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    await app.close();
    await seed.cleanup();
  };
  // Idempotent: a test may close early (a restart) and its cleanup close again.
  return { app, config, close: () => (closing ??= close()) };
}

/** An app on a fresh SQLite store (in memory unless `dbPath` is given) seeded with the test model. */
export async function makeApp(
  overrides: Partial<ServerConfig> = {},
  options: TestAppOptions = {},
): Promise<{
  app: FastifyInstance;
  store: Store;
  config: ServerConfig;
  close: () => Promise<void>;
}> {
  const store = new SqliteStore(overrides.dbPath ?? ':memory:');
  let served: ServedStore;
  try {
    served = await serveStore(store, overrides, options);
  } catch (error) {
    await store.close();
    throw error;
  }
  return {
    app: served.app,
    store,
    config: served.config,
    close: async () => {
      await served.close();
      await store.close();
    },
  };
}

/** Joins a round through the API (naming round `window` for a server with round windows). */
export async function joinRound(app: FastifyInstance, window?: number): Promise<JoinReply> {
  const res = await app.inject({
    method: 'POST',
    url: PATHS.join,
    ...(window === undefined ? {} : { payload: { window } }),
  });
  if (res.statusCode !== 200) throw new Error(`join failed: ${res.statusCode} ${res.body}`);
  return res.json<JoinReply>();
}

/** Fields of an update body, with test defaults for all but the token. */
export interface BodyOptions {
  token: string;
  delta?: Float32Array;
  baseVersion?: number;
  /** The payload is in the layout of version baseVersion + layoutAhead (default 0). */
  layoutAhead?: number;
  examples?: number;
  dtype?: UpdateDtype;
  layoutHash?: number;
  /** Rounds an int8 / int4 / int2 body (seeded: the same body every run). */
  random?: () => number;
}

/**
 * Another device's round over real HTTP at `endpoint` (a running server): it joins and posts a zero
 * update on `manifest`'s version, in its layout, with `send` (fetch, or the real one where a test
 * has replaced it). Returns the status of the upload.
 */
export async function postZeroUpdate(
  endpoint: string,
  manifest: ModelManifest,
  send: typeof fetch = fetch,
): Promise<number> {
  const joined = await send(new URL(PATHS.join, endpoint), {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json' },
  });
  const { token } = (await joined.json()) as JoinReply;
  const body = encodeUpdate({
    dtype: DTYPE_FLOAT32,
    baseVersion: manifest.version,
    layoutHash: manifest.layoutHash,
    examples: 1,
    clipNorm: manifest.federation.clipNorm,
    roundToken: tokenFromHex(token),
    delta: new Float32Array(updateLength(manifest.dims, manifestLayout(manifest.federation))),
  });
  const res = await send(new URL(PATHS.updates, endpoint), {
    method: 'POST',
    body,
    headers: { 'content-type': UPDATE_CONTENT_TYPE },
  });
  return res.status;
}

/** An encoded update body. */
export function updateBody(options: BodyOptions): Buffer {
  const bytes = encodeUpdate(
    {
      dtype: options.dtype ?? DTYPE_FLOAT32,
      baseVersion: options.baseVersion ?? 1,
      layoutAhead: options.layoutAhead ?? 0,
      layoutHash: options.layoutHash ?? LAYOUT_HASH,
      examples: options.examples ?? 10,
      clipNorm: 1,
      roundToken: tokenFromHex(options.token),
      delta: options.delta ?? makeDelta(0.5),
    },
    options.random ?? mulberry32(1),
  );
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

let lastDevice = 0;

/**
 * A client address no other call has had (10.x.y.z): each test device is its own client, as
 * devices on a real site are, so the per-client join budget (join-budget.ts) sees them apart.
 */
export function deviceAddress(): string {
  const n = ++lastDevice;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Posts a body to /v1/updates, from a device address of its own unless `from` names one. */
export function postUpdate(
  app: FastifyInstance,
  body: Buffer | string,
  contentType: string | undefined = UPDATE_CONTENT_TYPE,
  from: string = deviceAddress(),
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: PATHS.updates,
    headers: contentType === undefined ? {} : { 'content-type': contentType },
    payload: body,
    remoteAddress: from,
  });
}

/**
 * Central DP settings of the privacy tests: m = 3, S = 1, z = 1.2, q = 0.05, delta = 1e-6, and no
 * staleness (s = 0), so the accountant's rate is q itself.
 */
export const PRIVATE = {
  minCohort: 3,
  clipNorm: 1,
  noiseMultiplier: 1.2,
  sampleRate: 0.05,
  maxStaleness: 0,
  delta: 1e-6,
};

/**
 * Runs one full round of `cohort` updates on the current version; returns the new weights. Throws
 * unless every update is accepted (202) and the new version is served (200).
 */
export async function runRound(
  server: FastifyInstance,
  cohort: number,
  version: number,
  salt = 0,
): Promise<Float32Array> {
  for (let k = 0; k < cohort; k++) {
    const { token } = await joinRound(server);
    const body = updateBody({
      token,
      baseVersion: version,
      delta: makeDelta(0.6, salt + k),
      examples: 10 * (k + 1),
    });
    const res = await postUpdate(server, body);
    if (res.statusCode !== 202) throw new Error(`update refused: ${res.statusCode} ${res.body}`);
  }
  const res = await server.inject({ method: 'GET', url: weightsPath(version + 1) });
  if (res.statusCode !== 200) throw new Error(`v${version + 1} not served: ${res.statusCode}`);
  return bytesToFloat32(res.rawPayload);
}

/**
 * The largest |actual[i] - expected[i]|, Infinity when the lengths differ (or a value is NaN): what
 * the rows and sketch tests compare a published change against.
 */
export function worstDifference(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    if (!(difference <= worst)) worst = difference;
  }
  return worst;
}
