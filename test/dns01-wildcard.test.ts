import { acme, CertManager, type DnsProvider } from '@autotls/core';
import { describe, expect, it } from 'vitest';
import { challtestsrvProvider } from './support/dns-providers.js';
import { captureLogger } from './support/logs.js';
import { handshake, serve, tempDir } from './support/servers.js';
import { usePebble } from './support/use-pebble.js';

const pebble = usePebble();

/** The user's DNS host, played by challtestsrv (the DNS server Pebble asks). */
function recordingProvider(records: string[]): DnsProvider {
  const provider = challtestsrvProvider(pebble.cas.challtestsrv.managementUrl);
  return {
    ...provider,
    present: async (fqdn, value) => {
      records.push(fqdn);
      await provider.present(fqdn, value);
    },
  };
}

describe('DNS-01 through a DNS provider', () => {
  it('gets a wildcard certificate that serves every name under it', async () => {
    const { ca } = pebble.cas.pebbles;
    const records: string[] = [];
    const logger = captureLogger();
    const manager = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
      challenges: {
        dns01: recordingProvider(records),
        dnsPropagation: { nameservers: [pebble.cas.challtestsrv.dnsAddress] },
      },
      storage: await tempDir(),
      logger,
    });
    const server = await serve(manager, pebble.httpPort);
    try {
      await manager.manage(['*.wild.test']);
      await manager.ready(['*.wild.test']);
      expect(records).toEqual(['_acme-challenge.wild.test']);
      expect(logger.find('trying to solve challenge')[0]).toMatchObject({
        identifier: '*.wild.test',
        challenge_type: 'dns-01',
      });
      const root = await ca.rootPem();
      for (const name of ['a.wild.test', 'www.wild.test']) {
        const { authorized, cert } = await handshake(server.httpsPort, name, root);
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe('DNS:*.wild.test');
      }
      await expect(handshake(server.httpsPort, 'a.b.wild.test', root)).rejects.toThrow();
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
