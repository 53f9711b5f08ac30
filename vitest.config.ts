import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A test process whose event loop stops for good is killed and reported, not waited on for ever.
    setupFiles: ['test/helpers/stall-watchdog.ts'],
    // ...and a run that does not end for any other reason stops with the process tree printed.
    // The test databases: the given URLs, containers when Docker answers, else 127.0.0.1 (see the file).
    globalSetup: ['test/helpers/run-watchdog.ts', 'test/helpers/test-databases-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real servers and child processes on fixed loopback resources; keep them from starving each other on small machines.
    maxWorkers: 2,
    minWorkers: 1,
    pool: 'forks',
    // CI also writes a JSON report, from which .ci/run prints a one-line summary.
    reporters: process.env.CI === 'true' ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
