import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: run test files two at a time so timing-free tests stay fast and independent.
    maxWorkers: 2,
    // Models, sidecars and downloads the tests cause go to a throwaway cache, not the user's.
    env: { ATOMA_CACHE_DIR: process.env.ATOMA_CACHE_DIR ?? mkdtempSync(join(tmpdir(), 'atoma-test-cache-')) },
  },
});
