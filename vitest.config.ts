import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{src,worker,model,protocol,server,tools}/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
