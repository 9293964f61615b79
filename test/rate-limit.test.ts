import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from './support/clock.js';
import { type FaultProxy, type StartedCAs, startCAs, startFaultProxy } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'limited' | 'fallback'>;
let proxy: FaultProxy;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['limited', 'fallback'], httpPort });
  proxy = await startFaultProxy({ target: cas.pebbles.limited.origin });
});

afterAll(async () => {
  await proxy?.stop();
  await cas?.stopAll();
});

describe('a CA that answers 429 with Retry-After', () => {
  it('is not asked again before Retry-After passes; the next issuer serves meanwhile', async () => {
    const { limited, fallback } = cas.pebbles;
    const clock = testClock();
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [
        acme({ directoryUrl: proxy.directoryUrl, ca: proxy.caPem }),
        acme({ directoryUrl: fallback.directoryUrl, ca: fallback.caPem }),
      ],
      storage: await tempDir(),
      clock,
      logger,
    });
    const server = await serve(manager, httpPort);
    try {
      proxy.rateLimit({ retryAfterSeconds: 3600, match: '/order-plz' });
      await manager.manage(['first.limit.test']);
      await manager.ready(['first.limit.test']);
      const refused = logger.find('could not get certificate from issuer')[0];
      expect((refused?.problem as { type?: string } | undefined)?.type).toBe(
        'urn:ietf:params:acme:error:rateLimited',
      );
      const fallbackRoot = await fallback.rootPem();
      expect((await handshake(server.httpsPort, 'first.limit.test', fallbackRoot)).authorized).toBe(true);

      // Within the hour: the limited CA gets no request at all.
      const requests = await proxy.requestsDuring(async () => {
        await manager.manage(['second.limit.test']);
        await manager.ready(['second.limit.test']);
      });
      expect(requests).toBe(0);
      expect(logger.find('skipping rate-limited issuer')[0]).toMatchObject({
        identifier: 'second.limit.test',
      });
      expect((await handshake(server.httpsPort, 'second.limit.test', fallbackRoot)).authorized).toBe(true);

      // An hour later the limited CA is asked first again, and issues.
      await proxy.clear();
      clock.offsetMs = 3601_000;
      await manager.manage(['third.limit.test']);
      await manager.ready(['third.limit.test']);
      expect(
        (await handshake(server.httpsPort, 'third.limit.test', await limited.rootPem())).authorized,
      ).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
