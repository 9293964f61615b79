import { acme, CertManager, type CertManagerEvents } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from './support/clock.js';
import { type FaultProxy, type StartedCAs, startCAs, startFaultProxy } from './support/index.js';
import { nextEvent } from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

type Failed = CertManagerEvents['cert_failed'][0];

let cas: StartedCAs<'production' | 'staging'>;
let proxy: FaultProxy;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['production', 'staging'], httpPort });
  proxy = await startFaultProxy({ target: cas.pebbles.production.origin });
});

afterAll(async () => {
  await proxy?.stop();
  await cas?.stopAll();
});

const newOrdersAt = (pebble: { requestLog(): Array<{ route: string }> }) =>
  pebble.requestLog().filter((line) => line.route.includes('order-plz')).length;

describe('a CA that asks for time with Retry-After', () => {
  it('gets no request at all during a 503 with Retry-After: 3, then issues within the same attempt', async () => {
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: proxy.directoryUrl, ca: proxy.caPem })],
      storage: await tempDir(),
      logger: captureLogger(),
    });
    const server = await serve(manager, httpPort);
    let failures = 0;
    manager.on('cert_failed', () => failures++);
    try {
      proxy.resetLog();
      proxy.rateLimit({ status: 503, retryAfterSeconds: 3, forRequests: 1, match: '/order-plz' });
      await manager.manage(['busy.example.test']);
      await manager.ready(['busy.example.test']);

      const refused = proxy.log.find((entry) => entry.fault === 'rateLimited');
      expect(refused?.status).toBe(503);
      const after = proxy.log.filter((entry) => entry.time > (refused?.time ?? 0));
      expect(after.length).toBeGreaterThan(0);
      // Nothing for 3 s (less a little: the proxy's clock stamps arrival, the client's the answer).
      expect((after[0]?.time ?? 0) - (refused?.time ?? 0)).toBeGreaterThanOrEqual(2_900);
      expect(failures).toBe(0);
      const root = await cas.pebbles.production.rootPem();
      expect((await handshake(server.httpsPort, 'busy.example.test', root)).authorized).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });

  it('after production answers 429, asks production again once Retry-After has passed, with no staging detour, and shows the unpause link', async () => {
    const { production, staging } = cas.pebbles;
    const clock = testClock();
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [
        acme({ directoryUrl: proxy.directoryUrl, ca: proxy.caPem, testDirectoryUrl: staging.directoryUrl }),
      ],
      storage: await tempDir(),
      retry: { intervalsMs: [300] },
      clock,
      logger,
    });
    const server = await serve(manager, httpPort);
    const unpause = 'https://portal.ca.test/sfe/v1/unpause?jwt=abc';
    try {
      proxy.rateLimit({
        retryAfterSeconds: 120,
        forRequests: 1,
        match: '/order-plz',
        detail: `account paused for this identifier; visit ${unpause} to unpause`,
      });
      const failed = nextEvent<Failed>(manager, 'cert_failed');
      const stagingOrders = newOrdersAt(staging);
      await manager.manage(['paused.example.test']);
      const event = await failed;
      expect((event.error as { links?: unknown }).links).toContainEqual({ rel: 'detail', url: unpause });
      expect(logger.find('could not get certificate from issuer')[0]?.links).toContainEqual({
        rel: 'detail',
        url: unpause,
      });
      // Retry-After passes (the test clock moves); the next attempts go to production itself.
      const productionOrders = newOrdersAt(production);
      clock.offsetMs += 121_000;
      await manager.ready(['paused.example.test']);

      expect(newOrdersAt(staging)).toBe(stagingOrders);
      expect(newOrdersAt(production)).toBe(productionOrders + 1);
      const root = await production.rootPem();
      expect((await handshake(server.httpsPort, 'paused.example.test', root)).authorized).toBe(true);
    } finally {
      await proxy.clear();
      await server.close();
      await manager.close();
    }
  });
});
