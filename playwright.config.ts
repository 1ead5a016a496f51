import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumPath } from './tools/ensure-chromium-path.js';

/**
 * End-to-end tests on real Chromium (Debian's, see tools/ensure-chromium.ts) against the built
 * files, a real aggregation server on a real port and a real SQLite file (e2e/global-setup.ts).
 */
export default defineConfig({
  testDir: 'e2e',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  globalSetup: './e2e/global-setup.ts',
  use: {
    browserName: 'chromium',
    headless: true,
    // The demo registers a service worker (vite.config.ts demoPwa). Specs about the SDK see the
    // network as a site without one does; e2e/pwa.spec.ts allows it.
    serviceWorkers: 'block',
    launchOptions: {
      executablePath: chromiumPath(),
      args: [...CHROMIUM_ARGS],
    },
  },
});
