/** @module Type tests for @autotls/koa, run by vitest's typecheck mode in CI. */
import type https from 'node:https';
import { type AutoTls, type AutoTlsServers, type CertManager, createManager } from '@autotls/core';
import { autoTls } from '@autotls/koa';
import Koa from 'koa';
import { expectTypeOf, test } from 'vitest';

test('the Koa middleware carries the adapter contract', () => {
  const tls = autoTls({ domains: ['example.com'], email: 'me@example.com' });
  expectTypeOf(tls).toExtend<AutoTls<Koa>>();
  expectTypeOf(tls.manager).toEqualTypeOf<CertManager>();
  expectTypeOf(tls.httpsOptions()).toEqualTypeOf<https.ServerOptions>();
  expectTypeOf(tls.listen).returns.resolves.toEqualTypeOf<AutoTlsServers>();
  // It is a middleware Koa accepts as it is.
  new Koa().use(tls);
});

test('options are the manager options plus manager and redirect', () => {
  autoTls({ manager: createManager(), redirect: false });
  // @ts-expect-error redirect is a boolean
  autoTls({ redirect: 'no' });
});
