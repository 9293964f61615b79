import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvents } from './support/events.js';
import { type StartedCAs, startCAs } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, resolverFor, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'ca'>;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['ca'], httpPort });
  await cas.challtestsrv.setDefaultIPv4('');
});

afterAll(() => cas?.stopAll());

describe('noticing a DNS fix before the next scheduled attempt', () => {
  it('re-resolves the failed name and retries as soon as its A record appears, not 10 minutes later', async () => {
    const { ca } = cas.pebbles;
    const name = 'late.dns.test';
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
      storage: await tempDir(),
      retry: { intervalsMs: [10 * 60_000], dnsRecheckMs: 200 },
      resolver: resolverFor(cas.challtestsrv.dnsAddress),
      logger,
    });
    const events = recordEvents(manager);
    const server = await serve(manager, httpPort);
    try {
      const failed = new Promise((resolve) => manager.once('cert_failed', resolve));
      await manager.manage([name]);
      await failed;
      await cas.challtestsrv.addA(name, '127.0.0.1');
      await manager.ready([name]); // the 10-minute interval would outlast the test's timeout

      expect(events.of('cert_failed')[0]).toMatchObject({ identifier: name, retrying_in: 600 });
      expect(logger.find('DNS answer changed; retrying now')[0]).toMatchObject({ identifier: name });
      expect((await handshake(server.httpsPort, name, await ca.rootPem())).authorized).toBe(true);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
