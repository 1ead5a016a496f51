/**
 * The two extra origins of the e2e stack, as a real deployment has them:
 * - a "CDN" serving dist/sdk/ with the CORS header a CDN sends (`Access-Control-Allow-Origin: *`);
 * - a "host" site on another origin: the built demo with its SDK tag pointed at the CDN, the test
 *   pages of e2e/pages/ (`%CDN%` and `%ENDPOINT%` filled in; `?csp=<policy>` sends that policy as
 *   the page's Content-Security-Policy header; `?endpoint=<url>` another aggregation server;
 *   `?debug=1` adds `data-debug` where a page's tag says `%DEBUG%`), and
 *   `/self/` for a site self-hosting the worker.
 * Plain node:http: a static server is a few lines, and nothing here should be clever.
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';

/** A running static origin. */
export interface StaticOrigin {
  /** Base URL with a trailing slash. */
  readonly url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** Reads `path` under `dir`, refusing anything that escapes it; undefined when missing. */
function fileUnder(dir: string, path: string): Buffer | undefined {
  const full = normalize(join(dir, path));
  if (!full.startsWith(normalize(dir))) return undefined;
  try {
    return statSync(full).isFile() ? readFileSync(full) : undefined;
  } catch {
    return undefined;
  }
}

type Handler = (url: URL, res: ServerResponse) => Buffer | string | undefined;

async function listen(host: string, handler: Handler): Promise<StaticOrigin> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const body = req.method === 'GET' ? handler(url, res) : undefined;
    if (body === undefined) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    if (!res.hasHeader('content-type')) {
      res.setHeader('content-type', TYPES[extname(url.pathname)] ?? 'application/octet-stream');
    }
    res.setHeader('cache-control', 'no-cache');
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The CDN: dist/sdk/ with `Access-Control-Allow-Origin: *` (module workers are CORS fetches). */
export function startCdn(sdkDir: string, host: string): Promise<StaticOrigin> {
  return listen(host, (url, res) => {
    res.setHeader('access-control-allow-origin', '*');
    return fileUnder(sdkDir, url.pathname);
  });
}

/** The host site: demo, test pages and a self-hosted copy of the SDK, on an origin of its own. */
export function startHost(
  options: { distDir: string; pagesDir: string; cdnUrl: string; endpoint: string },
  host: string,
): Promise<StaticOrigin> {
  const { distDir, pagesDir, cdnUrl, endpoint } = options;
  const fill = (text: string, server = endpoint, debug = false): string =>
    text
      .replaceAll('%CDN%', cdnUrl)
      .replaceAll('%ENDPOINT%', server)
      .replaceAll(' %DEBUG%', debug ? ' data-debug' : '');
  return listen(host, (url, res) => {
    const path = url.pathname;
    if (path === '/' || path === '/index.html') {
      // The demo exactly as built, with its one SDK line pointed at the CDN.
      res.setHeader('content-type', TYPES['.html']!);
      const html = fileUnder(distDir, 'index.html')?.toString('utf8');
      return html
        ?.replace('src="/sdk/hearth.js"', `src="${cdnUrl}hearth.js"`)
        .replaceAll('%HEARTH_ENDPOINT%', endpoint);
    }
    if (path.startsWith('/pages/')) {
      const file = fileUnder(pagesDir, path.slice('/pages/'.length));
      const csp = url.searchParams.get('csp');
      if (file && csp) res.setHeader('content-security-policy', fill(csp));
      // `?endpoint=<url>`: the page talks to another aggregation server a spec started itself.
      const server = url.searchParams.get('endpoint') ?? endpoint;
      // `?debug=1`: the SDK tag gets data-debug (the worker shows its state: worker/debug-view.ts).
      const debug = url.searchParams.get('debug') === '1';
      return file && extname(path) === '.html' ? fill(file.toString('utf8'), server, debug) : file;
    }
    if (path.startsWith('/self/')) {
      // The site's copy of the SDK, plus the e2e worker entries of e2e/pages/self/ beside it.
      const name = path.slice('/self/'.length);
      return fileUnder(join(pagesDir, 'self'), name) ?? fileUnder(join(distDir, 'sdk'), name);
    }
    if (path.startsWith('/sdk/')) return undefined; // on this origin the SDK only comes from the CDN
    return fileUnder(distDir, path);
  });
}
