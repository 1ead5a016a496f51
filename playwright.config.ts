import { defineConfig } from '@playwright/test';

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
    launchOptions: {
      executablePath: process.env.HEARTH_CHROMIUM ?? '/usr/bin/chromium',
      // Flags measured to work here (ENV.md): background networking off, or Chromium floods the
      // closed network; swiftshader gives WebGL and WebGPU without a GPU.
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
        '--enable-unsafe-webgpu',
        '--enable-unsafe-swiftshader',
      ],
    },
  },
});
