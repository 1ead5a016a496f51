import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{src,worker,model,protocol,server,tools,integration}/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['./vitest.setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
