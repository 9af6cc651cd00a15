import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['spec/**/*.spec.ts'],
    globalSetup: ['spec/setup/display.ts'],
    testTimeout: 60_000,
    // two workers on the 2-core CI machine: many specs wait on child processes, Chromium or Python
    maxWorkers: 2,
    hookTimeout: 120_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
    },
  },
});
