import { defineConfig } from 'vitest/config';

// `npm run test:containers`: the suite on a real Docker engine (test/containers/), apart
// from `npm test` because it builds images and runs compose (minutes, not seconds).
export default defineConfig({
  resolve: { conditions: ['development'] },
  test: {
    include: ['test/containers/**/*.test.ts'],
    setupFiles: ['test/support/node-version-guard.ts'],
    globalSetup: ['test/containers/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    // One engine, one published port 8080: files run one after another.
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 1_800_000,
  },
});
