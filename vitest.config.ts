import { defineConfig } from 'vitest/config';

// Forks, not threads: the suites load a native addon and start worker threads of
// their own, which is cleanest from a plain child process. The globalSetup rebuilds
// dist/ when lib/ is newer and the addons incrementally, so a test runs the code it names.
export default defineConfig({
  test: {
    globalSetup: ['scripts/vitest-global-setup.mjs'],
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
