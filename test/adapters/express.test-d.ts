/** @module Type tests for @autotls/express, run by vitest's typecheck mode in CI. */
import type https from 'node:https';
import { type AutoTls, type AutoTlsServers, type CertManager, createManager } from '@autotls/core';
import { type AutoTlsMiddleware, autoTls } from '@autotls/express';
import express, { type Express } from 'express';
import { expectTypeOf, test } from 'vitest';

test('the Express middleware carries the adapter contract', () => {
  const tls = autoTls({ domains: ['example.com'], email: 'me@example.com' });
  expectTypeOf(tls).toExtend<AutoTls<Express>>();
  expectTypeOf(tls.manager).toEqualTypeOf<CertManager>();
  expectTypeOf(tls.httpsOptions()).toEqualTypeOf<https.ServerOptions>();
  expectTypeOf(tls.listen).returns.resolves.toEqualTypeOf<AutoTlsServers>();
  // It is a middleware Express accepts as it is.
  express().use(tls);
  expectTypeOf<AutoTlsMiddleware>().toBeCallableWith({} as express.Request, {} as express.Response, () => {});
});

test('options are the manager options plus manager and redirect', () => {
  autoTls({ manager: createManager(), redirect: false });
  // @ts-expect-error domains is a list of names
  autoTls({ domains: 'example.com' });
  // @ts-expect-error manager must be a CertManager
  autoTls({ manager: {} });
});
