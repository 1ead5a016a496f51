import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ErrorReply } from '../protocol/api.js';
import { parseArgs, resolveConfig } from './config.js';
import type { SiteConfig } from './sites.js';
import { joinRound, makeApp, postUpdate, updateBody } from './test-helpers.js';

const SHOP: SiteConfig = {
  id: 'shop',
  key: 'shop-key-0123456789abcdef',
  origins: ['https://shop.example', 'http://localhost:5173'],
};
const BLOG: SiteConfig = { id: 'blog', key: 'blog-key-0123456789abcdef', origins: [] };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-sites-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(content: unknown): Promise<string> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function code(res: { json: <T>() => T }): string {
  return res.json<ErrorReply>().error.code;
}

describe('--config, --rate-limit, --round-deadline', () => {
  it('loads sites and narrows CORS to their origins', async () => {
    const config = parseArgs(['--config', await configFile({ sites: [SHOP, BLOG] })]);
    expect(config.sites).toEqual([SHOP, BLOG]);
    expect(config.corsOrigins).toEqual(SHOP.origins);
    expect(parseArgs([]).sites).toEqual([]);
    expect(parseArgs([]).corsOrigins).toBe(true);
    expect(parseArgs(['--config', await configFile({})]).sites).toEqual([]);
  });

  it('reads the rate limit and deadline, with generous defaults', () => {
    expect(parseArgs([])).toMatchObject({ rateLimitPerMinute: 600, roundDeadlineSeconds: 86_400 });
    expect(parseArgs(['--rate-limit', '0', '--round-deadline=60'])).toMatchObject({
      rateLimitPerMinute: 0,
      roundDeadlineSeconds: 60,
    });
    expect(() => parseArgs(['--rate-limit', '-1'])).toThrow(/--rate-limit must be an integer/);
    expect(() => parseArgs(['--round-deadline', '0'])).toThrow(/--round-deadline/);
    expect(() => parseArgs(['--round-deadline', '1.5'])).toThrow(/--round-deadline/);
  });

  it.each([
    ['not JSON', '{sites', /--config cannot read/],
    ['an array', '[]', /must hold a JSON object/],
    ['a misspelt field', { site: [SHOP] }, /unknown fields: site/],
    ['sites not an array', { sites: {} }, /sites must be an array/],
    ['a short key', { sites: [{ ...SHOP, key: 'short' }] }, /\[0\]\.key must be 16/],
    [
      'a key with spaces',
      { sites: [{ ...SHOP, key: 'x'.repeat(10) + ' ' + 'y'.repeat(10) }] },
      /key/,
    ],
    ['a shared key', { sites: [SHOP, { ...BLOG, key: SHOP.key }] }, /\[1\]\.key is shared/],
    [
      'a duplicate id',
      { sites: [SHOP, { ...BLOG, id: 'shop' }] },
      /\[1\]\.id 'shop' is used twice/,
    ],
    ['a bad id', { sites: [{ ...SHOP, id: 'a b' }] }, /\[0\]\.id must be/],
    ['an origin with a path', { sites: [{ ...SHOP, origins: ['https://a.example/'] }] }, /origin/],
    ['a non-URL origin', { sites: [{ ...SHOP, origins: ['shop.example'] }] }, /not a URL/],
    ['a missing origins list', { sites: [{ id: 'x', key: SHOP.key }] }, /origins must be an array/],
    ['an unknown site field', { sites: [{ ...SHOP, secret: 1 }] }, /unknown fields: secret/],
  ])('refuses a config file with %s', async (_name, content, message) => {
    const path = await configFile(content);
    expect(() => parseArgs(['--config', path])).toThrow(message);
  });

  it('refuses a missing file and validates programmatic sites too', () => {
    expect(() => parseArgs(['--config', join(dir, 'nope.json')])).toThrow(/--config cannot read/);
    expect(() => resolveConfig({ sites: [{ ...SHOP, key: 'k' }] })).toThrow(/key/);
  });
});

describe('with sites configured', () => {
  let t: Awaited<ReturnType<typeof makeApp>>;
  beforeAll(async () => {
    t = await makeApp({ sites: [SHOP, BLOG] });
  });
  afterAll(async () => {
    await t.close();
  });

  const join_ = (headers: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: '/v1/rounds/join', headers });

  it('requires a known key on join and updates', async () => {
    const before = await t.store.counts();
    const missing = await join_({});
    expect([missing.statusCode, code(missing)]).toEqual([401, 'HEARTH_E_API_KEY']);
    // Same length as the real key, one character off.
    const wrong = await join_({ 'x-hearth-key': SHOP.key.slice(0, -1) + 'X' });
    expect([wrong.statusCode, code(wrong)]).toEqual([401, 'HEARTH_E_API_KEY']);
    const prefix = await join_({ 'x-hearth-key': SHOP.key.slice(0, 8) });
    expect(prefix.statusCode).toBe(401);
    const update = await postUpdate(t.app, updateBody({ token: 'ab'.repeat(16) }));
    expect([update.statusCode, code(update)]).toEqual([401, 'HEARTH_E_API_KEY']);
    // Checked before the body is read: an oversized body without a key is a 401, not a 413.
    const big = await postUpdate(t.app, Buffer.alloc(1 << 20));
    expect([big.statusCode, code(big)]).toEqual([401, 'HEARTH_E_API_KEY']);
    expect(await t.store.counts()).toEqual(before);
  });

  it("accepts a site's key from its origins or without an Origin, and refuses other origins", async () => {
    const key = { 'x-hearth-key': SHOP.key };
    expect((await join_(key)).statusCode).toBe(200);
    expect((await join_({ ...key, origin: 'https://shop.example' })).statusCode).toBe(200);
    expect((await join_({ ...key, origin: 'http://localhost:5173' })).statusCode).toBe(200);
    for (const origin of ['https://evil.example', 'https://shop.example.evil', 'null', '']) {
      const res = await join_({ ...key, origin });
      expect([res.statusCode, code(res)], origin).toEqual([403, 'HEARTH_E_ORIGIN']);
    }
    // A site without origins is for server-side clients only.
    const blog = await join_({ 'x-hearth-key': BLOG.key, origin: 'https://shop.example' });
    expect([blog.statusCode, code(blog)]).toEqual([403, 'HEARTH_E_ORIGIN']);
    expect((await join_({ 'x-hearth-key': BLOG.key })).statusCode).toBe(200);
  });

  it('takes an update with the key and an allowed origin', async () => {
    const headers = { 'x-hearth-key': SHOP.key, origin: 'https://shop.example' };
    const { token } = (await join_(headers)).json<{ token: string }>();
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/updates',
      headers: { ...headers, 'content-type': 'application/vnd.hearth.update' },
      payload: updateBody({ token }),
    });
    expect(res.statusCode).toBe(202);
    expect(res.headers['access-control-allow-origin']).toBe('https://shop.example');
  });

  it('answers CORS only for configured origins, and keeps the model public', async () => {
    const preflight = (origin: string) =>
      t.app.inject({
        method: 'OPTIONS',
        url: '/v1/updates',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-hearth-key',
        },
      });
    const allowed = await preflight('https://shop.example');
    expect(allowed.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(String(allowed.headers['access-control-allow-headers'])).toMatch(/x-hearth-key/i);
    const other = await preflight('https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const model = await t.app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { origin: 'https://evil.example' },
    });
    expect(model.statusCode).toBe(200);
    expect(model.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('rate limit', () => {
  it('answers 429 with retry-after past the limit, per client IP, until its minute is over', async () => {
    // @fastify/rate-limit counts per one-minute window on Date.now.
    const start = 1_700_000_000_000;
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(start);
    const t = await makeApp({ rateLimitPerMinute: 3 });
    try {
      for (let i = 0; i < 3; i++) await joinRound(t.app);
      const before = await t.store.counts();
      const limited = await t.app.inject({ method: 'POST', url: '/v1/rounds/join' });
      expect([limited.statusCode, code(limited)]).toEqual([429, 'HEARTH_E_RATE_LIMIT']);
      expect(limited.headers['retry-after']).toBe('60');
      expect(limited.headers['x-ratelimit-limit']).toBe('3');
      // From the client that used up its budget (inject's default address).
      const update = await postUpdate(
        t.app,
        updateBody({ token: 'ab'.repeat(16) }),
        undefined,
        '127.0.0.1',
      );
      expect(update.statusCode).toBe(429);
      expect(await t.store.counts()).toEqual(before);
      const elsewhere = await t.app.inject({
        method: 'POST',
        url: '/v1/rounds/join',
        remoteAddress: '10.0.0.2',
      });
      expect(elsewhere.statusCode).toBe(200);
      // GETs are never limited.
      expect((await t.app.inject({ method: 'GET', url: '/v1/model' })).statusCode).toBe(200);
      vi.setSystemTime(start + 45_000);
      const later = await t.app.inject({ method: 'POST', url: '/v1/rounds/join' });
      expect([later.statusCode, later.headers['retry-after']]).toEqual([429, '15']);
      vi.setSystemTime(start + 60_000);
      expect((await t.app.inject({ method: 'POST', url: '/v1/rounds/join' })).statusCode).toBe(200);
    } finally {
      await t.close();
      vi.useRealTimers();
    }
  });

  it('counts an IPv6 /64 as one client, like the join budget', async () => {
    const t = await makeApp({ rateLimitPerMinute: 1 });
    try {
      const join = (remoteAddress: string) =>
        t.app.inject({ method: 'POST', url: '/v1/rounds/join', remoteAddress });
      expect((await join('2001:db8:1:2::1')).statusCode).toBe(200);
      expect((await join('2001:db8:1:2:ffff::9')).statusCode).toBe(429);
      expect((await join('2001:db8:1:3::1')).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('believes X-Forwarded-For only from as many proxies as --trust-proxy says', async () => {
    const join = (app: FastifyInstance, client: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/rounds/join',
        remoteAddress: '10.0.0.1', // the proxy
        headers: { 'x-forwarded-for': client },
      });
    for (const hops of [0, 1]) {
      const t = await makeApp({ rateLimitPerMinute: 2, trustProxyHops: hops });
      try {
        expect((await join(t.app, '203.0.113.7')).statusCode).toBe(200);
        expect((await join(t.app, '203.0.113.7')).statusCode).toBe(200);
        expect((await join(t.app, '203.0.113.7')).statusCode).toBe(429);
        // Another client behind the proxy: its own budget only when the proxy is trusted; else a
        // client could pick any address by sending the header itself.
        expect((await join(t.app, '198.51.100.9')).statusCode).toBe(hops === 0 ? 429 : 200);
      } finally {
        await t.close();
      }
    }
  });

  it('charges requests to unknown paths to the same budget, whatever their method', async () => {
    const t = await makeApp({ rateLimitPerMinute: 3 });
    try {
      const unknown = (method: 'GET' | 'POST') =>
        t.app.inject({
          method,
          url: '/no/such/path',
          headers: { 'content-type': 'application/json' },
          ...(method === 'POST' ? { payload: '{}' } : {}),
        });
      for (const method of ['POST', 'GET', 'POST'] as const) {
        const res = await unknown(method);
        expect([res.statusCode, code(res)]).toEqual([404, 'HEARTH_E_NOT_FOUND']);
      }
      const limited = await unknown('POST');
      expect([limited.statusCode, code(limited)]).toEqual([429, 'HEARTH_E_RATE_LIMIT']);
      // One bucket per address: the real routes are spent too.
      const join = await t.app.inject({ method: 'POST', url: '/v1/rounds/join' });
      expect(join.statusCode).toBe(429);
    } finally {
      await t.close();
    }
  });

  it('charges wrong keys to the IP, and valid keys to (site, IP)', async () => {
    const t = await makeApp({ rateLimitPerMinute: 2, sites: [SHOP, BLOG] });
    try {
      const join = (key: string) =>
        t.app.inject({ method: 'POST', url: '/v1/rounds/join', headers: { 'x-hearth-key': key } });
      expect((await join('guess-000000000000')).statusCode).toBe(401);
      expect((await join('guess-000000000001')).statusCode).toBe(401);
      // Guessing more from this address is rate limited, whatever key is tried.
      expect((await join('guess-000000000002')).statusCode).toBe(429);
      // A valid site key has its own bucket per address, so guessing did not lock the site out.
      expect((await join(SHOP.key)).statusCode).toBe(200);
      expect((await join(SHOP.key)).statusCode).toBe(200);
      expect((await join(SHOP.key)).statusCode).toBe(429);
      expect((await join(BLOG.key)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
