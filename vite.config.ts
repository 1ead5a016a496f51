/**
 * Vite configuration of the demo site (demo/ -> dist/). The SDK itself is built by tools/build.ts as
 * library bundles; the demo loads it from /sdk/hearth.js through a script tag, exactly as a
 * third-party site would.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

/** Placeholder in demo/index.html for the aggregation server URL, filled in at serve time. */
export const ENDPOINT_PLACEHOLDER = '%HEARTH_ENDPOINT%';

/**
 * Fills the endpoint placeholder when the demo is served (dev server or preview), so one build of the
 * demo works against whichever server `npm start` or the e2e suite started.
 */
export function demoEndpoint(
  endpoint = process.env.HEARTH_ENDPOINT ?? 'http://127.0.0.1:8787',
): Plugin {
  return {
    name: 'hearth-demo-endpoint',
    transformIndexHtml: {
      order: 'pre',
      handler: (html, ctx) => (ctx.server ? html.replaceAll(ENDPOINT_PLACEHOLDER, endpoint) : html),
    },
    configurePreviewServer(server) {
      const outDir = resolve(server.config.root, server.config.build.outDir);
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path !== '/' && path !== '/index.html') return next();
        const html = readFileSync(join(outDir, 'index.html'), 'utf8');
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.setHeader('cache-control', 'no-cache');
        res.end(html.replaceAll(ENDPOINT_PLACEHOLDER, endpoint));
      });
    },
  };
}

export default defineConfig({
  root: 'demo',
  publicDir: '../public',
  plugins: [demoEndpoint()],
  build: { outDir: '../dist', emptyOutDir: false },
});
