import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync } from 'node:zlib';
import {
  BROTLI_BEST_MAX_BYTES,
  BROWSER_ACCEPT_ENCODING,
  codedEtag,
  KeptBodies,
  servedByteLength,
  type KeptKind,
} from './kept-bodies.js';

/** A body that compresses well, over 1 KiB. */
const TEXT = JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => `item-${i}`) });

let app: FastifyInstance;
/** What each call of the route's `make` was asked for, in order. */
let made: string[];
/** The body the route serves and its tag; a test may change both. */
let current: { etag: string; body: string | Error };
/** Resolves a pending `make` when a test holds it back. */
let release: (() => void) | undefined;

beforeEach(async () => {
  made = [];
  current = { etag: '"v1-a"', body: TEXT };
  release = undefined;
  app = Fastify();
  const kept = new KeptBodies({
    codings: ['br', 'gzip'],
    contentType: 'application/json; charset=utf-8',
    cacheControl: 'no-cache',
  });
  app.get('/body', async (request, reply) => {
    void reply.header('vary', 'Origin');
    return kept.serve(request, reply, current.etag, async () => {
      made.push(current.etag);
      if (release) await new Promise<void>((resolve) => (release = resolve));
      if (current.body instanceof Error) throw current.body;
      return current.body;
    });
  });
  await app.ready();
});

afterEach(async () => {
  await app.close();
});

function get(headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url: '/body', headers });
}

describe('KeptBodies', () => {
  it('serves the coding a request prefers, each with a tag of its own, from one make', async () => {
    const plain = await get();
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.etag).toBe('"v1-a"');
    expect(plain.body).toBe(TEXT);

    // Chromium's header: brotli, the server's first choice.
    const br = await get({ 'accept-encoding': 'gzip, deflate, br, zstd' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.etag).toBe('"v1-a.br"');
    expect(br.rawPayload.length).toBeLessThan(TEXT.length / 3);
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(TEXT);

    const gzip = await get({ 'accept-encoding': 'br;q=0.5, gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.headers.etag).toBe('"v1-a.gz"');
    expect(gunzipSync(gzip.rawPayload).toString()).toBe(TEXT);

    for (const refused of ['identity', 'br;q=0, gzip;q=0', 'deflate']) {
      const res = await get({ 'accept-encoding': refused });
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body).toBe(TEXT);
    }
    for (const res of [plain, br, gzip]) {
      expect(res.headers.vary).toBe('Origin, accept-encoding');
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
    }
    expect(made).toEqual(['"v1-a"']);
  });

  it('answers 304 to a revalidation naming any coding of the current tag', async () => {
    for (const tag of ['"v1-a"', '"v1-a.br"', 'W/"v1-a.gz"']) {
      const res = await get({ 'accept-encoding': 'gzip', 'if-none-match': tag });
      expect(res.statusCode).toBe(304);
      expect(res.headers.etag).toBe('"v1-a.gz"');
      expect(res.rawPayload.length).toBe(0);
    }
    expect(made).toEqual([]);
    expect((await get({ 'if-none-match': '"v0-a.br"' })).statusCode).toBe(200);
  });

  it('makes a new body when the tag changes, and keeps only the newest', async () => {
    await get({ 'accept-encoding': 'br' });
    current = { etag: '"v2-b"', body: `${TEXT} ` };
    const next = await get({ 'accept-encoding': 'br' });
    expect(brotliDecompressSync(next.rawPayload).toString()).toBe(`${TEXT} `);
    expect(next.headers.etag).toBe('"v2-b.br"');
    current = { etag: '"v1-a"', body: TEXT };
    await get();
    expect(made).toEqual(['"v1-a"', '"v2-b"', '"v1-a"']);
  });

  it('shares one make between requests that arrive before it ends', async () => {
    release = () => {};
    const pending = [get({ 'accept-encoding': 'br' }), get({ 'accept-encoding': 'gzip' }), get()];
    // The first make is held; the other two requests reach the route while it is.
    await vi.waitFor(() => expect(made).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    release!();
    const [br, gzip, plain] = await Promise.all(pending);
    expect(brotliDecompressSync(br!.rawPayload).toString()).toBe(TEXT);
    expect(gunzipSync(gzip!.rawPayload).toString()).toBe(TEXT);
    expect(plain!.body).toBe(TEXT);
    expect(made).toEqual(['"v1-a"']);
  });

  it('keeps no failed body: the next request makes it again', async () => {
    current = { etag: '"v1-a"', body: new Error('gone') };
    expect((await get()).statusCode).toBe(500);
    current = { etag: '"v1-a"', body: TEXT };
    expect((await get()).body).toBe(TEXT);
    expect(made).toEqual(['"v1-a"', '"v1-a"']);
  });
});

describe('brotli settings', () => {
  it('compresses a body up to BROTLI_BEST_MAX_BYTES at the best setting, a larger one fast', async () => {
    const big = JSON.stringify(
      Array.from({ length: 40_000 }, (_, i) => ({ id: `sku-${i}`, title: `Product ${i % 977}` })),
    );
    expect(big.length).toBeGreaterThan(BROTLI_BEST_MAX_BYTES);
    for (const [body, quality] of [
      [TEXT, constants.BROTLI_MAX_QUALITY],
      [big, 5],
    ] as const) {
      current = { etag: `"v${body.length}"`, body };
      const res = await get({ 'accept-encoding': 'br' });
      const expected = brotliCompressSync(body, {
        params: {
          [constants.BROTLI_PARAM_QUALITY]: quality,
          [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
          [constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(body),
        },
      });
      expect(res.rawPayload.equals(expected)).toBe(true);
    }
  });
});

describe('servedByteLength', () => {
  it("is the length of the body a browser's request gets", async () => {
    const kind: KeptKind = {
      codings: ['gzip'],
      contentType: 'application/octet-stream',
      cacheControl: 'no-cache',
    };
    const kept = new KeptBodies(kind);
    const body = Buffer.from(TEXT);
    const other = Fastify();
    other.get('/w', (request, reply) => kept.serve(request, reply, '"w1"', () => body));
    try {
      const res = await other.inject({
        method: 'GET',
        url: '/w',
        headers: { 'accept-encoding': BROWSER_ACCEPT_ENCODING },
      });
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(await servedByteLength(kind, body)).toBe(res.rawPayload.length);
      expect(await servedByteLength(kind, body, 'br')).toBe(body.length);
    } finally {
      await other.close();
    }
  });
});

describe('codedEtag', () => {
  it('suffixes the tag inside its quotes', () => {
    expect(codedEtag('"w3-int8e"', 'identity')).toBe('"w3-int8e"');
    expect(codedEtag('"w3-int8e"', 'gzip')).toBe('"w3-int8e.gz"');
    expect(codedEtag('"m3-x"', 'br')).toBe('"m3-x.br"');
  });
});
