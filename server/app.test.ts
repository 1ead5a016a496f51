import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ErrorReply, UpdateReply } from '../protocol/api.js';
import {
  parameterCount,
  parseManifest,
  tensorLayout,
  weightsByteLength,
} from '../protocol/manifest.js';
import { mulberry32 } from '../protocol/prng.js';
import {
  DTYPE_FLOAT16,
  DTYPE_INT2,
  DTYPE_INT4,
  UPDATE_CONTENT_TYPE,
  UPDATE_HEADER_BYTES,
  decodeUpdate,
} from '../protocol/update-format.js';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { bytesToFloat32 } from './float32-bytes.js';
import { int8StepError } from '../protocol/testing.js';
import { decodeWeights, INT8E_STEP_RATIO } from '../protocol/weights-codec.js';
import type { ServerConfig } from './config.js';
import type { Store } from './store.js';
import {
  LAYOUT_HASH,
  PARAMS,
  joinRound,
  makeApp,
  makeDelta,
  postUpdate,
  seedWeights,
  updateBody,
} from './test-helpers.js';

let app: FastifyInstance;
let store: Store;
let config: ServerConfig;
let close: () => Promise<void>;

beforeEach(async () => {
  ({ app, store, config, close } = await makeApp());
});
afterEach(async () => {
  await close();
});

function errorCode(res: { json: <T>() => T }): string {
  return res.json<ErrorReply>().error.code;
}

describe('routes', () => {
  it('reports health and the current version', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.json()).toEqual({ ok: true, version: 1 });
  });

  it('serves the manifest with server-side federation params and a weights URL on this server', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/model' });
    expect(res.statusCode).toBe(200);
    const manifest = res.json();
    expect(manifest.version).toBe(1);
    expect(manifest.weights).toEqual({
      url: '/v1/model/1/weights',
      dtype: 'float32',
      byteLength: PARAMS * 4,
    });
    expect(manifest.federation).toEqual({
      clipNorm: 1,
      minCohort: config.minCohort,
      maxExamples: 1000,
      sampleRate: config.sampleRate,
      maxStaleness: config.maxStaleness,
      // With a staleness bound, an update may come in a layout published after its base version.
      layoutAhead: true,
      noiseMultiplier: config.noiseMultiplier,
      delta: config.delta,
      // Plaintext uploads are int4 unless --update-dtype says otherwise.
      updateDtype: 'int4',
    });
    expect(manifest.layoutHash).toBe(LAYOUT_HASH);
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it("serves a version's time to the hour only: a plaintext round publishes when its last update arrives", async () => {
    const at = Date.parse('2026-12-04T12:34:56.789Z');
    const t = await makeApp({ minCohort: 1 }, { now: () => at });
    try {
      const { token } = await joinRound(t.app);
      expect((await postUpdate(t.app, updateBody({ token }))).statusCode).toBe(202);
      expect((await t.store.getManifest(2))!.createdAt).toBe('2026-12-04T12:34:56.789Z');
      const served = (await t.app.inject({ method: 'GET', url: '/v1/model' })).json();
      expect(served).toMatchObject({ version: 2, createdAt: '2026-12-04T12:00:00.000Z' });
    } finally {
      await t.close();
    }
  });

  it('answers 404 with catalogue codes for unknown routes and model versions', async () => {
    const route = await app.inject({ method: 'GET', url: '/nope' });
    expect([route.statusCode, errorCode(route)]).toEqual([404, 'HEARTH_E_NOT_FOUND']);
    for (const url of ['/v1/model/2/weights', '/v1/model/abc/weights', '/v1/model/0/weights']) {
      const res = await app.inject({ method: 'GET', url });
      expect([res.statusCode, errorCode(res)]).toEqual([404, 'HEARTH_E_MODEL_NOT_FOUND']);
    }
  });

  it('joins with no body, an empty JSON body, or {}; bad JSON is a bad request', async () => {
    const a = await joinRound(app);
    expect(a).toMatchObject({ version: 1, round: 1 });
    expect(a.token).toMatch(/^[0-9a-f]{32}$/);
    const empty = await app.inject({
      method: 'POST',
      url: '/v1/rounds/join',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    expect(empty.statusCode).toBe(200);
    const obj = await app.inject({ method: 'POST', url: '/v1/rounds/join', payload: {} });
    expect(obj.statusCode).toBe(200);
    expect(obj.json().token).not.toBe(a.token);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/rounds/join',
      headers: { 'content-type': 'application/json' },
      payload: '{nope',
    });
    expect([bad.statusCode, errorCode(bad)]).toEqual([400, 'HEARTH_E_BAD_REQUEST']);
  });

  it('allows cross-origin reads and exposes ETag', async () => {
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/v1/updates',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(String(res.headers['access-control-allow-headers'])).toMatch(/Content-Type/);
    const get = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { origin: 'https://shop.example' },
    });
    expect(get.headers['access-control-expose-headers']).toBe('ETag, Retry-After');
  });
});

describe('ETag and 304', () => {
  it('revalidates the manifest', async () => {
    const first = await app.inject({ method: 'GET', url: '/v1/model' });
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"m1-[0-9a-z]+"$/);
    const again = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { 'if-none-match': etag },
    });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const other = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { 'if-none-match': '"m0", W/"w1"' },
    });
    expect(other.statusCode).toBe(200);
  });

  it('changes the manifest tag when the federation settings change', async () => {
    const before = String((await app.inject({ method: 'GET', url: '/v1/model' })).headers.etag);
    const other = await makeApp({ clipNorm: config.clipNorm * 2 });
    try {
      const res = await other.app.inject({
        method: 'GET',
        url: '/v1/model',
        headers: { 'if-none-match': before },
      });
      expect(res.statusCode).toBe(200);
      expect(res.headers.etag).not.toBe(before);
    } finally {
      await other.close();
    }
  });

  it('serves the weights in the configured dtype: int8e within half a step of each row', async () => {
    const before = String((await app.inject({ method: 'GET', url: '/v1/model' })).headers.etag);
    const int8 = await makeApp({ weightsDtype: 'int8e' });
    try {
      const res = await int8.app.inject({
        method: 'GET',
        url: '/v1/model',
        headers: { 'if-none-match': before },
      });
      expect(res.statusCode).toBe(200);
      const manifest = parseManifest(res.json());
      expect(manifest.weights.dtype).toBe('int8e');
      expect(manifest.weights.byteLength).toBe(weightsByteLength(manifest.tensors, 'int8e'));
      const weights = await int8.app.inject({ method: 'GET', url: manifest.weights.url });
      expect(manifest.weights.url).toBe('/v1/model/1/weights?dtype=int8e');
      expect(weights.headers.etag).toBe('"w1-int8e"');
      expect(weights.rawPayload.length).toBe(manifest.weights.byteLength);
      const decoded = decodeWeights(weights.rawPayload, manifest.tensors, 'int8e');
      expect(int8StepError(decoded, seedWeights(), manifest.tensors)).toBeLessThanOrEqual(
        0.5 * INT8E_STEP_RATIO + 1e-6,
      );
    } finally {
      await int8.close();
    }
  });

  it('serves immutable weights with an ETag', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/model/1/weights' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers.etag).toBe('"w1-float32"');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.rawPayload.byteLength).toBe(PARAMS * 4);
    const again = await app.inject({
      method: 'GET',
      url: '/v1/model/1/weights',
      headers: { 'if-none-match': 'W/"w1-float32"' },
    });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.byteLength).toBe(0);
  });
});

describe('compressed replies', () => {
  /** Chromium's Accept-Encoding. */
  const BROWSER = 'gzip, deflate, br, zstd';

  it('sends the manifest in brotli, the same JSON, with a tag of its own', async () => {
    const plain = await app.inject({ method: 'GET', url: '/v1/model' });
    const br = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { 'accept-encoding': BROWSER, origin: 'https://shop.example' },
    });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(plain.body);
    expect(br.headers.etag).toBe(String(plain.headers.etag).replace(/"$/, '.br"'));
    // CORS varies on Origin; the coding adds Accept-Encoding.
    expect(br.headers.vary).toBe('Origin, accept-encoding');
    const again = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { 'accept-encoding': BROWSER, 'if-none-match': String(br.headers.etag) },
    });
    expect(again.statusCode).toBe(304);
  });

  it('sends the weights in gzip, the same bytes, and never in brotli', async () => {
    const plain = await app.inject({ method: 'GET', url: '/v1/model/1/weights?dtype=int8e' });
    const gzip = await app.inject({
      method: 'GET',
      url: '/v1/model/1/weights?dtype=int8e',
      headers: { 'accept-encoding': BROWSER },
    });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.headers.etag).toBe('"w1-int8e.gz"');
    expect(gzip.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(gunzipSync(gzip.rawPayload).equals(plain.rawPayload)).toBe(true);
    const br = await app.inject({
      method: 'GET',
      url: '/v1/model/1/weights?dtype=int8e',
      headers: { 'accept-encoding': 'br' },
    });
    expect(br.headers['content-encoding']).toBeUndefined();
    expect(br.rawPayload.equals(plain.rawPayload)).toBe(true);
  });

  it('never compresses weights of 1 KiB or more per request, for a client that takes only brotli', async () => {
    // 41 items of 4 values: 1,928 bytes of float32 weights, over the per-request threshold.
    const dims = { items: 41, embedding: 4, hidden: 4, maxSessionLength: 5 };
    const itemIds = ['', ...Array.from({ length: 40 }, (_, i) => `item-${i}`)];
    const length = parameterCount(tensorLayout(dims));
    const weights = Float32Array.from({ length }, (_, i) => Math.sin(i + 1) * 0.5);
    const large = await makeApp({}, { model: { model: { dims, itemIds }, weights } });
    try {
      const url = '/v1/model/1/weights?dtype=float32';
      const plain = await large.app.inject({ method: 'GET', url });
      expect(plain.rawPayload.byteLength).toBe(length * 4);
      expect(plain.rawPayload.byteLength).toBeGreaterThan(1024);
      const br = await large.app.inject({
        method: 'GET',
        url,
        headers: { 'accept-encoding': 'br' },
      });
      expect(br.headers['content-encoding']).toBeUndefined();
      expect(br.rawPayload.equals(plain.rawPayload)).toBe(true);
      const gzip = await large.app.inject({
        method: 'GET',
        url,
        headers: { 'accept-encoding': BROWSER },
      });
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(gzip.rawPayload).equals(plain.rawPayload)).toBe(true);
    } finally {
      await large.close();
    }
  });

  it('compresses the other replies of 1 KiB or more as they are sent', async () => {
    const openapi = await app.inject({
      method: 'GET',
      url: '/v1/openapi.json',
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(openapi.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(gunzipSync(openapi.rawPayload).toString())).toMatchObject({
      openapi: expect.stringMatching(/^3\.1/),
    });
    const health = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(health.headers['content-encoding']).toBeUndefined();
  });

  it('reads an update body as sent: a gzip body is not inflated', async () => {
    const { token } = await joinRound(app);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/updates',
      payload: gzipSync(updateBody({ token })),
      headers: { 'content-type': UPDATE_CONTENT_TYPE, 'content-encoding': 'gzip' },
    });
    expect(res.statusCode).toBe(400);
    expect(errorCode(res)).toBe('HEARTH_E_UPDATE_MAGIC');
    expect(await store.counts()).toMatchObject({ updates: 0 });
  });
});

describe('POST /v1/updates', () => {
  it('accepts a valid update and stores it durably before answering', async () => {
    const { token } = await joinRound(app);
    const res = await postUpdate(app, updateBody({ token }));
    expect(res.statusCode).toBe(202);
    expect(res.json<UpdateReply>()).toEqual({ accepted: true, round: 1, received: 1, version: 1 });
    expect(await store.counts()).toMatchObject({ updates: 1, usedTokens: 1, versions: 1 });
  });

  it('accepts a float16 update whose rounding lifts the norm just over S', async () => {
    const { token } = await joinRound(app);
    const delta = makeDelta(config.clipNorm * 1.0004);
    const res = await postUpdate(app, updateBody({ token, delta, dtype: DTYPE_FLOAT16 }));
    expect(res.statusCode).toBe(202);
  });

  // A level no encoder writes, as the first byte of levels: int4's -8, int2's -2.
  for (const [form, dtype, badLevel] of [
    ['int4', DTYPE_INT4, 0x08],
    ['int2', DTYPE_INT2, 0b10],
  ] as const) {
    it(`with --update-dtype ${form}: names it, takes a device body at S, refuses a level no encoder writes`, async () => {
      const quantized = await makeApp({ updateDtype: form, minCohort: 2 });
      try {
        const manifest = parseManifest(
          (await quantized.app.inject({ method: 'GET', url: '/v1/model' })).json(),
        );
        expect(manifest.federation.updateDtype).toBe(form);
        const deltas = [makeDelta(1, 1), makeDelta(0.3, 2)];
        const sent: Float32Array[] = [];
        for (const [i, delta] of deltas.entries()) {
          const { token } = await joinRound(quantized.app);
          // What a device posts in the dtype named (worker/federated-client.ts encodeDeviceUpdate).
          const body = updateBody({ token, delta, dtype, random: mulberry32(i) });
          sent.push(decodeUpdate(body, PARAMS).delta);
          const res = await postUpdate(quantized.app, body);
          expect(res.statusCode).toBe(202);
        }
        // The round published the mean of what the bodies decode to (FedAvg, step 1, equal weights).
        const published = bytesToFloat32((await quantized.store.getWeightBytes(2))!);
        const base = seedWeights();
        for (let i = 0; i < PARAMS; i++) {
          expect(published[i]).toBeCloseTo(base[i]! + (sent[0]![i]! + sent[1]![i]!) / 2, 6);
        }
        const { token } = await joinRound(quantized.app);
        const body = updateBody({ token, baseVersion: 2, dtype });
        body[UPDATE_HEADER_BYTES + 4 * Math.ceil(PARAMS / 64)] = badLevel;
        const res = await postUpdate(quantized.app, body);
        expect(res.statusCode).toBe(400);
        expect(errorCode(res)).toBe('HEARTH_E_UPDATE_PAYLOAD');
      } finally {
        await quantized.close();
      }
    });
  }

  /** Each case builds a body (given a fresh valid token) and names the status and code it must get. */
  const cases: [string, number, string, (token: string) => Buffer | string, string?][] = [
    ['wrong magic', 400, 'HEARTH_E_UPDATE_MAGIC', (t) => patch(updateBody({ token: t }), 0, 0x58)],
    [
      'wrong format version',
      400,
      'HEARTH_E_UPDATE_FORMAT_VERSION',
      (t) => patch(updateBody({ token: t }), 4, 2),
    ],
    ['wrong dtype', 400, 'HEARTH_E_UPDATE_DTYPE', (t) => patch(updateBody({ token: t }), 5, 9)],
    [
      'in the layout of a version not published yet',
      422,
      'HEARTH_E_UPDATE_VERSION_UNKNOWN',
      (t) => patch(updateBody({ token: t }), 6, 1),
    ],
    [
      'shorter than a header',
      400,
      'HEARTH_E_UPDATE_TRUNCATED',
      (t) => updateBody({ token: t }).subarray(0, 20),
    ],
    [
      'header only',
      400,
      'HEARTH_E_UPDATE_TRUNCATED',
      (t) => updateBody({ token: t }).subarray(0, 44),
    ],
    [
      'payload cut short',
      400,
      'HEARTH_E_UPDATE_TRUNCATED',
      (t) => updateBody({ token: t }).subarray(0, 44 + 4 * PARAMS - 4),
    ],
    ['empty body', 400, 'HEARTH_E_UPDATE_TRUNCATED', () => Buffer.alloc(0)],
    [
      'extra bytes after the payload',
      413,
      'HEARTH_E_UPDATE_TOO_LARGE',
      (t) => Buffer.concat([updateBody({ token: t, dtype: DTYPE_FLOAT16 }), Buffer.alloc(2)]),
    ],
    [
      'a body over the limit',
      413,
      'HEARTH_E_UPDATE_TOO_LARGE',
      (t) => Buffer.concat([updateBody({ token: t }), Buffer.alloc(4)]),
    ],
    ['a huge body', 413, 'HEARTH_E_UPDATE_TOO_LARGE', () => Buffer.alloc(2 * 1024 * 1024)],
    [
      'too few values',
      422,
      'HEARTH_E_UPDATE_SHAPE',
      (t) => updateBody({ token: t, delta: makeDelta(0.5).subarray(1) }),
    ],
    [
      'too many values',
      422,
      'HEARTH_E_UPDATE_SHAPE',
      (t) => updateBody({ token: t, dtype: DTYPE_FLOAT16, delta: new Float32Array(PARAMS + 1) }),
    ],
    [
      'a wrong layout hash',
      422,
      'HEARTH_E_UPDATE_SHAPE',
      (t) => updateBody({ token: t, layoutHash: LAYOUT_HASH ^ 1 }),
    ],
    [
      'NaN',
      422,
      'HEARTH_E_UPDATE_NONFINITE',
      (t) => updateBody({ token: t, delta: withValue(NaN) }),
    ],
    [
      'Infinity',
      422,
      'HEARTH_E_UPDATE_NONFINITE',
      (t) => updateBody({ token: t, delta: withValue(-Infinity) }),
    ],
    [
      'float16 overflow',
      422,
      'HEARTH_E_UPDATE_NONFINITE',
      (t) => updateBody({ token: t, dtype: DTYPE_FLOAT16, delta: withValue(1e6) }),
    ],
    [
      'norm over S',
      422,
      'HEARTH_E_UPDATE_NORM',
      (t) => updateBody({ token: t, delta: makeDelta(1.01) }),
    ],
    [
      'norm 1000 x S',
      422,
      'HEARTH_E_UPDATE_NORM',
      (t) => updateBody({ token: t, delta: makeDelta(1000) }),
    ],
    [
      'an unknown version',
      422,
      'HEARTH_E_UPDATE_VERSION_UNKNOWN',
      (t) => updateBody({ token: t, baseVersion: 5 }),
    ],
    [
      'version 0',
      422,
      'HEARTH_E_UPDATE_VERSION_UNKNOWN',
      (t) => updateBody({ token: t, baseVersion: 0 }),
    ],
    ['a forged token', 403, 'HEARTH_E_ROUND_TOKEN', () => updateBody({ token: 'ab'.repeat(16) })],
    ['an all-zero token', 403, 'HEARTH_E_ROUND_TOKEN', () => updateBody({ token: '0'.repeat(32) })],
    ['JSON', 415, 'HEARTH_E_CONTENT_TYPE', () => '{"delta":[1,2]}', 'application/json'],
    ['text', 415, 'HEARTH_E_CONTENT_TYPE', () => 'hello', 'text/plain'],
    [
      'octet-stream',
      415,
      'HEARTH_E_CONTENT_TYPE',
      (t) => updateBody({ token: t }),
      'application/octet-stream',
    ],
  ];

  it.each(cases)(
    'rejects %s with %i %s and changes nothing',
    async (_name, status, code, body, type) => {
      const { token } = await joinRound(app);
      const before = await store.counts();
      const res = await postUpdate(app, body(token), type);
      expect(res.statusCode).toBe(status);
      expect(errorCode(res)).toBe(code);
      expect(typeof res.json<ErrorReply>().error.message).toBe('string');
      expect(await store.counts()).toEqual(before);
      // The token was not spent by the rejected request: it still works.
      expect((await postUpdate(app, updateBody({ token }))).statusCode).toBe(202);
    },
  );

  it('rejects a request without a content type', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/updates' });
    expect([res.statusCode, errorCode(res)]).toEqual([415, 'HEARTH_E_CONTENT_TYPE']);
  });

  it('rejects a reused token', async () => {
    const { token } = await joinRound(app);
    expect((await postUpdate(app, updateBody({ token }))).statusCode).toBe(202);
    const before = await store.counts();
    const res = await postUpdate(app, updateBody({ token, delta: makeDelta(0.3, 1) }));
    expect([res.statusCode, errorCode(res)]).toEqual([403, 'HEARTH_E_ROUND_TOKEN']);
    expect(await store.counts()).toEqual(before);
  });
});

function patch(body: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(body);
  copy[offset] = value;
  return copy;
}

function withValue(value: number): Float32Array {
  const delta = makeDelta(0.5);
  delta[7] = value;
  return delta;
}
