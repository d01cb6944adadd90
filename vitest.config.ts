import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    // Training tests are CPU-bound: give them room, and run files in separate processes so a
    // TensorFlow.js backend's global state never leaks from one file into another.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
