import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      // Before '@autotls/core', which would otherwise match it as a prefix.
      '@autotls/core/prometheus': fileURLToPath(
        new URL('./packages/core/src/prometheus.ts', import.meta.url),
      ),
      '@autotls/core': source('core'),
      '@autotls/express': source('express'),
      '@autotls/koa': source('koa'),
      '@autotls/fastify': source('fastify'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The type tests (`*.test-d.ts`) run with the rest: a broken public type fails the suite.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: 'test/tsconfig.json' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
