import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import tls from 'node:tls';
import {
  acme,
  CertManager,
  type CertManagerEvents,
  type CertManagerOptions,
  type DnsProvider,
  rfc2136,
  Storage,
} from '@autotls/core';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../packages/core/src/clock.js';
import { RateLimiters } from '../packages/core/src/ratelimit.js';
import { Dns01Solver } from '../packages/core/src/solvers/dns01.js';
import { type Bind, type BindResolver, startBind, startBindResolver } from './support/bind.js';
import { captureLogger } from './support/logs.js';
import { type Pebble, startPebble } from './support/pebble.js';
import { freePort } from './support/ports.js';
import { handshake, serve, tempDir } from './support/servers.js';

type Failed = CertManagerEvents['cert_failed'][0];

let bind: Bind;
let resolver: BindResolver;
/** Asks BIND directly, as a CA's resolver does for a name without CNAMEs. */
let pebble: Pebble;
/** Asks a recursive resolver in front of BIND, which follows CNAMEs into the delegated zone. */
let pebbleViaResolver: Pebble;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  bind = await startBind({
    zones: [
      { name: 'zone.test', records: ['_acme-challenge.a IN CNAME a.acme-delegated.test.'] },
      { name: 'acme-delegated.test' },
      { name: 'late.test' },
    ],
  });
  resolver = await startBindResolver(bind);
  [pebble, pebbleViaResolver] = await Promise.all([
    startPebble({ name: 'pebble(bind)', dnsServer: bind.address, httpPort }),
    startPebble({ name: 'pebble(resolver)', dnsServer: resolver.address, httpPort }),
  ]);
});

afterAll(async () => {
  await Promise.all([pebble?.stop(), pebbleViaResolver?.stop()]);
  await Promise.all([resolver?.stop(), bind?.stop()]);
});

function provider(overrides: { keySecret?: string } = {}): DnsProvider {
  return rfc2136({
    server: bind.address,
    keyName: bind.key.name,
    keySecret: overrides.keySecret ?? bind.key.secret,
    keyAlgorithm: bind.key.algorithm,
  });
}

async function start(ca: Pebble, dns01: DnsProvider, options: Partial<CertManagerOptions> = {}) {
  const manager = new CertManager({
    issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem, ordersPerAttempt: 1 })],
    challenges: {
      http01: false,
      tlsAlpn01: false,
      dns01,
      dnsPropagation: { nameservers: [bind.address], initialIntervalMs: 100, maxIntervalMs: 250 },
    },
    storage: await tempDir(),
    logger: captureLogger(),
    retry: { intervalsMs: [200] },
    ...options,
  });
  const failures: Failed[] = [];
  manager.on('cert_failed', (failure) => failures.push(failure));
  const server = await serve(manager, httpPort);
  return {
    manager,
    server,
    failures,
    async close() {
      await server.close();
      await manager.close();
    },
  };
}

describe('DNS-01 through rfc2136() on BIND 9, validated by Pebble', () => {
  it('obtains *.zone.test and zone.test at once (two TXT values at one name), both verify, no TXT is left', async () => {
    const names = ['*.zone.test', 'zone.test'];
    const { manager, server, failures, close } = await start(pebble, provider());
    try {
      await manager.manage(names);
      await manager.ready(names);
      const root = await pebble.rootPem();
      for (const [servername, san] of [
        ['www.zone.test', 'DNS:*.zone.test'],
        ['zone.test', 'DNS:zone.test'],
      ] as const) {
        const { authorized, cert } = await handshake(server.httpsPort, servername, root);
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe(san);
      }
      expect(failures).toEqual([]);
      expect(bind.txt('_acme-challenge.zone.test')).toEqual([]);
    } finally {
      await close();
    }
  });

  it('obtains one certificate for *.zone.test and zone.test in one order (two authorizations, one TXT name)', async () => {
    const logger = captureLogger();
    const solver = new Dns01Solver(provider(), { logger, propagation: { nameservers: [bind.address] } });
    const issued = await acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem }).issue(
      { names: ['*.zone.test', 'zone.test'], keyType: 'ecdsa-p256' },
      {
        storage: new Storage(new Keyv()),
        logger,
        clock: systemClock,
        solvers: new Map([['dns-01', solver]]),
        rateLimiters: new RateLimiters({}, systemClock),
      },
    );
    const server = tls.createServer({ cert: issued.certificatePem, key: issued.privateKeyPem });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const root = await pebble.rootPem();
      for (const servername of ['zone.test', 'a.zone.test']) {
        const { authorized, cert } = await handshake(port, servername, root);
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe('DNS:*.zone.test, DNS:zone.test');
      }
      expect(bind.txt('_acme-challenge.zone.test')).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reports a wrong TSIG secret as the TSIG failure on every retry, and keeps running', async () => {
    const wrong = Buffer.from('this is not the key secret at all').toString('base64');
    const { manager, failures, close } = await start(pebble, provider({ keySecret: wrong }));
    try {
      await manager.manage(['wrong-secret.zone.test']);
      while (failures.length < 2) await delay(50);
      for (const failure of failures.slice(0, 2)) {
        expect(String((failure.error as Error).message)).toMatch(
          /failed with NOTAUTH \(TSIG BADSIG: key name or secret wrong/,
        );
        expect(failure.retrying_in).toBeGreaterThan(0);
      }
      expect(failures.map((failure) => failure.attempt).slice(0, 2)).toEqual([1, 2]);
      expect(manager.getCertificate('wrong-secret.zone.test')).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('obtains a.zone.test with _acme-challenge CNAMEd into a delegated zone, the TXT written at the target', async () => {
    const seenAtTarget: string[][] = [];
    const inner = provider();
    const watching: DnsProvider = {
      present: async (fqdn, value) => {
        await inner.present(fqdn, value);
        seenAtTarget.push(bind.txt('a.acme-delegated.test'));
      },
      cleanup: (fqdn, value) => inner.cleanup(fqdn, value),
    };
    const { manager, server, failures, close } = await start(pebbleViaResolver, watching);
    try {
      await manager.manage(['a.zone.test']);
      await manager.ready(['a.zone.test']);
      const { authorized } = await handshake(
        server.httpsPort,
        'a.zone.test',
        await pebbleViaResolver.rootPem(),
      );
      expect(authorized).toBe(true);
      expect(failures).toEqual([]);
      expect(seenAtTarget).toHaveLength(1);
      expect(seenAtTarget[0]).toHaveLength(1);
      expect(bind.txt('a.acme-delegated.test')).toEqual([]);
    } finally {
      await close();
    }
  });

  it('answers the challenge only once a record that appears 2 s late is served: no failed authorization', async () => {
    const inner = provider();
    const late: DnsProvider = {
      // The provider's API accepts at once and publishes later, as hosted DNS often does.
      present: async (fqdn, value) => {
        void delay(2_000).then(() => inner.present(fqdn, value));
      },
      cleanup: (fqdn, value) => inner.cleanup(fqdn, value),
    };
    const { manager, server, failures, close } = await start(pebble, late);
    try {
      await manager.manage(['late.test']);
      await manager.ready(['late.test']);
      const { authorized } = await handshake(server.httpsPort, 'late.test', await pebble.rootPem());
      expect(authorized).toBe(true);
      // One order per attempt: no failure means the first authorization was valid.
      expect(failures).toEqual([]);
    } finally {
      await close();
    }
  });
});
