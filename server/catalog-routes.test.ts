/**
 * The catalogue's routes on an app over a real SQLite store (inject()), and the catalogue at start on
 * a real port: `--catalog` as a file and as a URL served by a local HTTP server.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorReply } from '../protocol/api.js';
import type { ModelManifest } from '../protocol/manifest.js';
import { CATALOG_LIMITS, type CatalogDocument } from '../protocol/catalog.js';
import { PATHS, SITE_KEY_HEADER } from '../protocol/routes.js';
import { resolveConfig } from './config.js';
import { startServer } from './start.js';
import { makeApp, writeSeedDir } from './test-helpers.js';

const TOKEN = 'operator-token-0123456789abcdef';
const SITE_KEY = 'site-key-0123456789abcdef';
const fixture = (name: string) =>
  readFile(join(import.meta.dirname, 'catalog-fixtures', name), 'utf8');

type App = Awaited<ReturnType<typeof makeApp>>;
let served: App | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

async function app(operatorToken: string | null = TOKEN): Promise<App['app']> {
  served = await makeApp({
    ...(operatorToken ? { operatorToken } : {}),
    sites: [{ id: 'shop', key: SITE_KEY, origins: ['https://shop.example'] }],
  });
  return served.app;
}

function put(
  server: App['app'],
  body: string,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  contentType = 'application/json',
) {
  return server.inject({
    method: 'PUT',
    url: PATHS.catalog,
    headers: { 'content-type': contentType, ...headers },
    payload: body,
  });
}

const ITEMS = JSON.stringify([
  { id: 'a', title: 'First', url: '/a' },
  { id: 'b', title: 'Second', url: 'https://shop.example/b', tags: ['x'] },
]);

describe('GET and PUT /v1/catalog', () => {
  it('has no catalogue until one is put, then serves it with an ETag and 304s', async () => {
    const server = await app();
    const none = await server.inject({ method: 'GET', url: PATHS.catalog });
    expect(none.statusCode).toBe(404);
    expect(none.json<ErrorReply>().error.code).toBe('HEARTH_E_CATALOG_NOT_FOUND');

    const stored = await put(server, ITEMS);
    expect(stored.statusCode).toBe(200);
    expect(stored.json()).toEqual({ version: 1, items: 2, changed: true });

    const got = await server.inject({ method: 'GET', url: PATHS.catalog });
    expect(got.statusCode).toBe(200);
    expect(got.headers['cache-control']).toBe('no-cache');
    const etag = got.headers.etag as string;
    expect(etag).toMatch(/^"c1-[0-9a-f]{16}"$/);
    const doc = got.json<CatalogDocument>();
    expect(doc.version).toBe(1);
    expect(doc.items).toEqual(JSON.parse(ITEMS));
    const again = await server.inject({
      method: 'GET',
      url: PATHS.catalog,
      headers: { 'if-none-match': etag },
    });
    expect(again.statusCode).toBe(304);

    // The same items again: no new version, the same tag.
    expect((await put(server, ITEMS)).json()).toEqual({ version: 1, items: 2, changed: false });
    // A changed title: a new version and tag, while the model's tag stays as it was.
    const model = (await server.inject({ method: 'GET', url: PATHS.model })).headers.etag;
    const renamed = ITEMS.replace('First', 'First, renamed');
    expect((await put(server, renamed)).json()).toEqual({ version: 2, items: 2, changed: true });
    const after = await server.inject({
      method: 'GET',
      url: PATHS.catalog,
      headers: { 'if-none-match': etag },
    });
    expect(after.statusCode).toBe(200);
    expect(after.headers.etag).not.toBe(etag);
    expect((await server.inject({ method: 'GET', url: PATHS.model })).headers.etag).toBe(model);
  });

  it('refuses a missing token, a site key, and a wrong token; nothing is stored', async () => {
    const server = await app();
    const refusals = [
      await put(server, ITEMS, {}),
      await put(server, ITEMS, { [SITE_KEY_HEADER]: SITE_KEY }),
      await put(server, ITEMS, { authorization: `Bearer ${SITE_KEY}` }),
      await put(server, ITEMS, { authorization: `Basic ${TOKEN}` }),
      await put(server, ITEMS, { authorization: `Bearer ${TOKEN}x` }),
    ];
    for (const res of refusals) {
      expect(res.statusCode).toBe(401);
      expect(res.json<ErrorReply>().error.code).toBe('HEARTH_E_OPERATOR_TOKEN');
    }
    expect(refusals[1]!.json<ErrorReply>().error.message).toContain('site key');
    expect((await server.inject({ method: 'GET', url: PATHS.catalog })).statusCode).toBe(404);
  });

  it('refuses every update when the server has no operator token', async () => {
    const server = await app(null);
    const res = await put(server, ITEMS, { authorization: `Bearer ${TOKEN}` });
    expect(res.statusCode).toBe(401);
    expect(res.json<ErrorReply>().error.message).toContain('HEARTH_OPERATOR_TOKEN');
  });

  it('reads feeds by content type; a broken one names its line and the stored catalogue stays', async () => {
    const server = await app();
    const rss = await fixture('rss.xml');
    const stored = await put(server, rss, undefined, 'application/rss+xml; charset=utf-8');
    // The feed's items are new to the model: a version with their rows is published at once.
    expect(stored.json()).toEqual({ version: 1, items: 3, changed: true, modelVersion: 2 });
    const model = (await server.inject({ method: 'GET', url: PATHS.model })).json<ModelManifest>();
    expect(model.version).toBe(2);
    const feedIds = (await server.inject({ method: 'GET', url: PATHS.catalog }))
      .json<CatalogDocument>()
      .items.map((item) => item.id);
    expect(model.itemIds.slice(-3).sort()).toEqual([...feedIds].sort());
    const etag = (await server.inject({ method: 'GET', url: PATHS.catalog })).headers.etag;

    const broken = await put(server, rss.replace('</guid>', ''), undefined, 'application/rss+xml');
    expect(broken.statusCode).toBe(422);
    expect(broken.json<ErrorReply>().error).toMatchObject({ code: 'HEARTH_E_CATALOG' });
    expect(broken.json<ErrorReply>().error.message).toMatch(/request body: line \d+, column \d+/);
    const duplicate = await put(
      server,
      'id,title,url\na,A,/a\nb,B,/b\na,C,/c\n',
      undefined,
      'text/csv',
    );
    expect(duplicate.json<ErrorReply>().error.message).toContain(
      'line 4: duplicate id "a" (first at line 2)',
    );
    const after = await server.inject({ method: 'GET', url: PATHS.catalog });
    expect(after.headers.etag).toBe(etag);
    expect(after.json<CatalogDocument>().items).toHaveLength(3);
  });

  it('refuses a body past the limit as HEARTH_E_CATALOG_TOO_LARGE', async () => {
    const server = await app();
    const res = await put(server, 'x'.repeat(CATALOG_LIMITS.bytes + 1), undefined, 'text/csv');
    expect(res.statusCode).toBe(413);
    expect(res.json<ErrorReply>().error.code).toBe('HEARTH_E_CATALOG_TOO_LARGE');
  });
});

describe('--catalog at start (real port, SQLite file)', () => {
  let dir: string;
  let feed: Server | undefined;
  let feedBody = '';
  let feedStatus = 200;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hearth-catalog-'));
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => (feed ? feed.close(() => resolve()) : resolve()));
    feed = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function serveFeed(): Promise<string> {
    feed = createServer((_req, res) => {
      res.writeHead(feedStatus, { 'content-type': 'application/atom+xml' }).end(feedBody);
    });
    await new Promise<void>((resolve) => feed!.listen(0, '127.0.0.1', resolve));
    const address = feed.address() as { port: number };
    return `http://127.0.0.1:${address.port}/news`;
  }

  async function start(catalogSource: string, withModel = true) {
    const seed = await writeSeedDir();
    try {
      return await startServer(
        resolveConfig({
          aggregation: 'plaintext',
          port: 0,
          dbPath: join(dir, 'hearth.db'),
          ...(withModel ? { modelDir: seed.dir } : {}),
          catalogSource,
        }),
      );
    } finally {
      await seed.cleanup();
    }
  }

  it('starts cold from the catalogue alone: version 1 over its items, newest first', async () => {
    const file = join(dir, 'items.csv');
    await writeFile(file, await fixture('catalog.csv'));
    const server = await start(file, false);
    try {
      expect(server.version).toBe(1);
      const manifest = (await (await fetch(`${server.url}${PATHS.model}`)).json()) as {
        itemIds: string[];
        recent: number[];
      };
      expect(manifest.itemIds).toEqual(['', 'a-1', 'a-2', 'a-3']);
      expect(manifest.recent).toEqual([2, 1, 3]);
    } finally {
      await server.close();
    }
  });

  it('loads a file; a broken file later keeps the stored one, and stops a start that has none', async () => {
    const file = join(dir, 'items.csv');
    await writeFile(file, await fixture('catalog.csv'));
    const first = await start(file);
    expect(first.catalog).toEqual({ version: 1, items: 3 });
    const doc = (await (await fetch(`${first.url}${PATHS.catalog}`)).json()) as CatalogDocument;
    expect(doc.items.map((i) => i.id)).toEqual(['a-1', 'a-2', 'a-3']);
    // The seed model lacks those items: the start publishes version 2 with their rows.
    expect(first.version).toBe(2);
    const model = (await (await fetch(`${first.url}${PATHS.model}`)).json()) as ModelManifest;
    expect(model.itemIds.slice(-3)).toEqual(['a-1', 'a-2', 'a-3']);
    await first.close();

    await writeFile(file, 'id,title,url\nz,,/z\n');
    const second = await start(file);
    expect(second.catalog?.version).toBe(1);
    // Nothing new since: no further version.
    expect(second.version).toBe(2);
    expect(second.catalog?.warning).toMatch(
      /line 2: "title" is missing; serving the stored catalogue v1/,
    );
    await second.close();

    await rm(join(dir, 'hearth.db'));
    await expect(start(file)).rejects.toMatchObject({ code: 'HEARTH_E_CATALOG' });
  });

  it('fetches a feed URL, with its content type', async () => {
    feedBody = await fixture('atom.xml');
    const server = await start(await serveFeed());
    try {
      expect(server.catalog).toEqual({ version: 1, items: 2 });
    } finally {
      await server.close();
    }
    feedStatus = 503;
    const down = await start(`http://127.0.0.1:${(feed!.address() as { port: number }).port}/news`);
    expect(down.catalog?.warning).toContain('HTTP 503');
    await down.close();
  });
});
