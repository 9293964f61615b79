/**
 * IP address certificates (RFC 8738) from real Pebble, on non-loopback addresses: the scenarios run inside a
 * network namespace this test makes (a veth pair carrying 192.0.2.10/24 and 2001:db8::10/64), so no address
 * is added to the machine. Outside, the file runs itself again in that namespace and reports its results.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { acme, CertManager, type CertManagerEvents, letsEncrypt } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedCAs, startCAs } from './support/index.js';
import { nextEvent } from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import {
  insideTestNamespace,
  type NamespaceRun,
  namespaceUnavailable,
  runInNamespace,
  TEST_IPV4,
  TEST_IPV6,
  VETH_SETUP,
} from './support/netns.js';
import { freePort } from './support/ports.js';
import { type ProfileStandIn, startProfileStandIn } from './support/profile-stand-in.js';
import { tempDir } from './support/servers.js';

type GivingUp = CertManagerEvents['cert_giving_up'][0];

const SCENARIOS = {
  http01:
    'gets certificates for 192.0.2.10 and 2001:db8::10 by HTTP-01 (the IP literal as Host), under the shortlived profile, served without SNI',
  tlsAlpn01:
    'gets a certificate for 192.0.2.10 by TLS-ALPN-01 alone (the reverse name as SNI), served without SNI',
} as const;

describe('IP address certificates (RFC 8738)', () => {
  it('refuses DNS-01 for an IP address at once: one give-up, not retryable', async () => {
    const manager = new CertManager({
      // Never reached: the refusal comes before any request.
      issuers: [acme({ directoryUrl: 'https://127.0.0.1:9/dir' })],
      challenges: {
        http01: false,
        tlsAlpn01: false,
        dns01: { present: async () => {}, cleanup: async () => {} },
      },
      storage: await tempDir(),
      logger: captureLogger(),
    });
    try {
      const gaveUp = nextEvent<GivingUp>(manager, 'cert_giving_up');
      await manager.manage([TEST_IPV4]);
      const event = await gaveUp;
      expect(event).toMatchObject({ identifier: TEST_IPV4, retryable: false, attempts: 1 });
      expect(String((event.error as Error).message)).toMatch(/DNS-01 cannot validate an IP address/);
    } finally {
      await manager.close();
    }
  });

  it("chooses Let's Encrypt's shortlived profile for IP addresses", () => {
    expect(letsEncrypt().options.ipProfile).toBe('shortlived');
    expect(letsEncrypt({ profile: 'classic' }).options).toMatchObject({ profile: 'classic' });
  });
});

if (!insideTestNamespace()) {
  const unavailable = namespaceUnavailable();
  describe.skipIf(unavailable !== undefined)(
    `IP address certificates on non-loopback addresses, in a network namespace${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      let run: NamespaceRun;
      beforeAll(async () => {
        run = await runInNamespace(import.meta.url, VETH_SETUP);
      }, 120_000);

      it.each(Object.values(SCENARIOS))('%s', (title) => {
        expect(run.status(title), run.failures(title)).toBe('passed');
      });
    },
  );
} else {
  describe('inside the namespace', () => {
    let cas: StartedCAs<'ca'>;
    let standIn: ProfileStandIn;
    let httpPort: number;
    let tlsPort: number;

    beforeAll(async () => {
      [httpPort, tlsPort] = [await freePort(), await freePort()];
      cas = await startCAs({ names: ['ca'], httpPort, tlsPort });
      standIn = await startProfileStandIn(cas.pebbles.ca);
    });

    afterAll(async () => {
      await standIn?.stop();
      await cas?.stopAll();
    });

    it(SCENARIOS.http01, async () => {
      const manager = new CertManager({
        issuers: [
          acme({
            directoryUrl: standIn.directoryUrl,
            ca: standIn.caPem,
            challenges: ['http-01'],
            ipProfile: 'shortlived',
          }),
        ],
        challenges: { tlsAlpn01: false },
        storage: await tempDir(),
        logger: captureLogger(),
      });
      const hosts: string[] = [];
      const answer = manager.httpHandler();
      const plain = http.createServer((req, res) => {
        hosts.push(req.headers.host ?? '');
        return answer(req, res);
      });
      const secure = await listenHttps(manager, 0);
      await new Promise<void>((resolve) => plain.listen(httpPort, '::', resolve));
      try {
        await manager.manage([TEST_IPV4, TEST_IPV6]);
        await manager.ready();

        expect(hosts).toContain(`${TEST_IPV4}:${httpPort}`);
        expect(hosts).toContain(`[${TEST_IPV6}]:${httpPort}`);
        const orders = standIn.orders.map((order) => ({
          identifiers: order.identifiers,
          profile: order.profile,
        }));
        expect(orders).toContainEqual({
          identifiers: [{ type: 'ip', value: TEST_IPV4 }],
          profile: 'shortlived',
        });
        expect(orders).toContainEqual({
          identifiers: [{ type: 'ip', value: TEST_IPV6 }],
          profile: 'shortlived',
        });
        const root = await cas.pebbles.ca.rootPem();
        expect(await handshakeWithoutSni(TEST_IPV4, secure.port, root)).toBe(`IP Address:${TEST_IPV4}`);
        expect(await handshakeWithoutSni(TEST_IPV6, secure.port, root)).toBe(`IP Address:${TEST_IPV6}`);
      } finally {
        plain.closeAllConnections();
        await new Promise((resolve) => plain.close(resolve));
        await secure.close();
        await manager.close();
      }
    });

    it(SCENARIOS.tlsAlpn01, async () => {
      const { ca } = cas.pebbles;
      const logger = captureLogger();
      const manager = new CertManager({
        issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, challenges: ['tls-alpn-01'] })],
        challenges: { http01: false },
        storage: await tempDir(),
        logger,
      });
      const secure = await listenHttps(manager, tlsPort);
      try {
        await manager.manage([TEST_IPV4]);
        await manager.ready();

        expect(logger.find('served key authentication certificate')[0]).toMatchObject({
          identifier: '10.2.0.192.in-addr.arpa',
          challenge: 'tls-alpn-01',
        });
        const root = await ca.rootPem();
        expect(await handshakeWithoutSni(TEST_IPV4, tlsPort, root)).toBe(`IP Address:${TEST_IPV4}`);
      } finally {
        await secure.close();
        await manager.close();
      }
    });
  });
}

/** An HTTPS server on every address (`::`) with the manager attached (no-SNI handshakes, TLS-ALPN-01). */
async function listenHttps(manager: CertManager, port: number) {
  const server = https.createServer(manager.httpsOptions(), (_req, res) => res.end('ok'));
  manager.attach(server);
  await new Promise<void>((resolve) => server.listen(port, '::', resolve));
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Connects to `address` by IP, as a browser would: no SNI. Node verifies the chain against `rootPem` and the
 * address against the certificate's iPAddress SAN; resolves with the SAN.
 */
function handshakeWithoutSni(address: string, port: number, rootPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: address, port, ca: rootPem }, () => {
      const san = socket.getPeerCertificate().subjectaltname ?? '';
      socket.end();
      resolve(san.replace(/IP Address:([0-9A-F:]+)$/i, (_, ip: string) => `IP Address:${canonical(ip)}`));
    });
    socket.on('error', reject);
  });
}

/** Node prints IPv6 SANs in full; compare in the short form. */
function canonical(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}
