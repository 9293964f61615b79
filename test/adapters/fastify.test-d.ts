/** @module Type tests for @autotls/fastify, run by vitest's typecheck mode in CI (and `pnpm typecheck`). */
import type https from 'node:https';
import { type CertManager, createManager } from '@autotls/core';
import { type AutoTlsPluginOptions, autoTls, httpsOptions } from '@autotls/fastify';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { expectTypeOf, test } from 'vitest';

test('the Fastify plugin, decorator and httpsOptions types', async () => {
  const manager = createManager({ domains: ['example.com'] });

  // The decorator is merged into every Fastify instance's type, plain HTTP or HTTPS.
  expectTypeOf<FastifyInstance['autoTls']>().toEqualTypeOf<CertManager>();
  const app = Fastify({ https: httpsOptions(manager) });
  expectTypeOf(app.autoTls).toEqualTypeOf<CertManager>();
  expectTypeOf(Fastify().autoTls.ready).toEqualTypeOf<CertManager['ready']>();

  // httpsOptions takes the manager and fits Fastify's `https` option.
  expectTypeOf(httpsOptions).parameter(0).toEqualTypeOf<CertManager>();
  expectTypeOf(httpsOptions(manager)).toEqualTypeOf<https.ServerOptions>();

  // The plugin is an async Fastify plugin over AutoTlsPluginOptions, registered with its options.
  expectTypeOf(autoTls).toExtend<FastifyPluginAsync<AutoTlsPluginOptions>>();
  await app.register(autoTls, { manager, httpPort: 80, host: '::', redirect: false });
  await app.register(autoTls, { domains: ['example.com'], email: 'me@example.com', httpsPort: 8443 });
  // @ts-expect-error httpPort is a number
  await app.register(autoTls, { httpPort: '80' });
  // @ts-expect-error manager must be a CertManager
  await app.register(autoTls, { manager: {} });
  // @ts-expect-error autoTls is read as the manager, not something else
  const notAString: string = app.autoTls;
  void notAString;
});
