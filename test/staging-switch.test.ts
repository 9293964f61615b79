import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvents } from './support/events.js';
import { type StartedCAs, startCAs } from './support/index.js';
import { captureLogger } from './support/logs.js';
import { freePort } from './support/ports.js';
import { handshake, resolverFor, serve, tempDir } from './support/servers.js';

let cas: StartedCAs<'production' | 'staging' | 'zerossl'>;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  cas = await startCAs({ names: ['production', 'staging', 'zerossl'], httpPort, eabFor: ['zerossl'] });
  // Like a www. record that has not propagated yet: names have no A record unless a test adds one.
  await cas.challtestsrv.setDefaultIPv4('');
});

afterAll(() => cas?.stopAll());

describe('the seed scenario: a name whose DNS record is missing at first', () => {
  it('retries on the staging CA, then gets the production certificate right after DNS is fixed', async () => {
    const { production, staging, zerossl } = cas.pebbles;
    const name = 'www.example.test';
    const logger = captureLogger();
    const [kid, hmacKey] = Object.entries(zerossl.eab)[0]!;
    const manager = new CertManager({
      issuers: [
        acme({
          directoryUrl: production.directoryUrl,
          testDirectoryUrl: staging.directoryUrl,
          ca: production.caPem,
        }),
        acme({ directoryUrl: zerossl.directoryUrl, eab: { kid, hmacKey }, ca: zerossl.caPem }),
      ],
      storage: await tempDir(),
      retry: { intervalsMs: [200], dnsRecheckMs: 60_000 },
      resolver: resolverFor(cas.challtestsrv.dnsAddress),
      logger,
    });
    const server = await serve(manager, httpPort);
    const events = recordEvents(manager);
    let failures = 0;
    manager.on('cert_failed', () => {
      if (++failures === 2) void cas.challtestsrv.addA(name, '127.0.0.1');
    });
    try {
      await manager.manage([name]);
      await manager.ready([name]);

      const cas_ = (msg: string) => logger.find(msg).map((line) => line.ca);
      const tried = cas_('trying to solve challenge');
      // Attempt 1: production, then ZeroSSL. Attempt 2: staging, then ZeroSSL. Attempt 3: staging, then production.
      expect(tried).toEqual([
        production.directoryUrl,
        zerossl.directoryUrl,
        staging.directoryUrl,
        zerossl.directoryUrl,
        staging.directoryUrl,
        production.directoryUrl,
      ]);
      const failed = logger.find('validating authorization');
      expect(failed[0]).toMatchObject({ identifier: name, attempt: 1, max_attempts: 3 });
      // Let's Encrypt calls it `dns`, Pebble `connection` ("could not resolve URL").
      expect((failed[0]?.problem as { type?: string } | undefined)?.type).toMatch(/:(dns|connection)$/);
      expect(logger.find('could not get certificate from issuer')[0]).toMatchObject({
        identifier: name,
        issuer: production.directoryUrl.replace('https://', '').replace(/[:/]/g, '-'),
      });
      expect(events.of('cert_failed')).toHaveLength(2);
      expect(events.of('cert_failed')[0]).toMatchObject({ identifier: name, attempt: 1, retrying_in: 0.2 });
      expect(logger.find('test CA succeeded; asking production now')).toHaveLength(1);

      const { authorized, cert } = await handshake(server.httpsPort, name, await production.rootPem());
      expect(authorized).toBe(true);
      expect(cert.subjectaltname).toBe(`DNS:${name}`);
      const stagingVerdict = await handshake(server.httpsPort, name, await staging.rootPem());
      expect(stagingVerdict.authorized).toBe(false);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
