import { defineConfig } from 'vitest/config';

// Forks, not threads: the suites load a native addon and start worker threads of
// their own, which is cleanest from a plain child process.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
