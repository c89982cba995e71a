import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['development'] },
  test: {
    include: ['test/**/*.test.ts'],
    // The container suite has its own config and command (npm run test:containers).
    exclude: ['test/containers/**', '**/node_modules/**'],
    setupFiles: ['test/support/node-version-guard.ts'],
    globalSetup: ['test/support/redis-global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Integration tests bind ports and spawn processes; two workers suit a 2-core machine.
    maxWorkers: 2,
  },
});
