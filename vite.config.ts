/**
 * Vite configuration of the demo site (demo/ -> dist/). The SDK itself is built by tools/build.ts as
 * library bundles; the demo loads it from /sdk/hearth.js through a script tag, exactly as a
 * third-party site would.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

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

/**
 * The demo as an installable web app (vite-plugin-pwa, Workbox): a manifest with icons, and a
 * service worker that precaches the app shell with the SDK, its worker and the wasm binaries that
 * tools/build.ts wrote into dist/sdk/ before this build. The server's catalogue and model manifest
 * are kept network-first, so an offline visit renders the last ones seen; the weights themselves are
 * kept by version in the device's IndexedDB by Hearth's engine (worker/model-source.ts), which
 * starts from them offline, so the service worker keeps no second copy. Nothing else of the
 * server's passes through it: uploads and secure rounds go straight to the network. A new build
 * waits until the visitor accepts the prompt (demo/main.ts), never half-updating a page.
 */
export function demoPwa(): Plugin[] {
  return VitePWA({
    registerType: 'prompt',
    injectRegister: false,
    manifest: {
      id: '/',
      name: 'The Reading Room: a Hearth demo',
      short_name: 'Reading Room',
      description:
        'A demo content site whose recommendations are computed and learned in your browser.',
      lang: 'en',
      start_url: '/',
      scope: '/',
      display: 'standalone',
      theme_color: '#8a4b2a',
      background_color: '#faf7f0',
      icons: [
        { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
        { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
        {
          src: '/icons/maskable-512.png',
          sizes: '512x512',
          type: 'image/png',
          purpose: 'maskable',
        },
      ],
    },
    workbox: {
      globPatterns: [
        '*.{html,svg,txt}',
        'assets/*.{js,css}',
        // (The manifest's icons are added by the plugin.) The loader, capture, <hearth-recs> and the worker; the wasm builds the worker loads
        // (multithreaded wasm is never used: ENV.md).
        'sdk/hearth.js',
        'sdk/hearth-{capture,recs,worker}.js',
        'sdk/tfjs-backend-wasm{,-simd}.wasm',
      ],
      // hearth-worker.js carries tfjs: about 1.5 MB.
      maximumFileSizeToCacheInBytes: 4 * 1024 * 1024,
      navigateFallback: 'index.html',
      navigateFallbackAllowlist: [/^\/$/, /^\/index\.html$/],
      cleanupOutdatedCaches: true,
      runtimeCaching: [
        {
          // Written into the service worker as source: it may name nothing outside itself.
          urlPattern: ({ url, request }) =>
            request.method === 'GET' && ['/v1/catalog', '/v1/model'].includes(url.pathname),
          // The network's answer whenever there is one; the last one kept only when offline.
          handler: 'NetworkFirst',
          options: {
            cacheName: 'hearth-demo-api',
            expiration: { maxEntries: 4 },
            cacheableResponse: { statuses: [200] },
          },
        },
      ],
    },
  });
}

export default defineConfig({
  root: 'demo',
  publicDir: '../public',
  plugins: [demoEndpoint(), demoPwa()],
  build: { outDir: '../dist', emptyOutDir: false },
});
