import { X509Certificate } from 'node:crypto';
import { acme } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredRenewalInfo } from '../packages/core/src/ari.js';
import { ariCertificateId } from '../packages/core/src/ari-client.js';
import { storageKeys } from '../packages/core/src/storage/keys.js';
import {
  type AriStandIn,
  letsEncryptLikeAnswer,
  revokeWithCertificateKey,
  startCaBehindAriStandIn,
} from './support/ari-stand-in.js';
import { type TestClock, testClock } from './support/clock.js';
import { recordEvents } from './support/events.js';
import {
  ageUntilRenewed,
  type CertRenewedEvent,
  CHECK_INTERVAL_MS,
  nextEvent,
  pause,
  renewingManager,
  type ShortLivedCA,
  waitUntil,
} from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import { handshake, serve, tempDir } from './support/servers.js';

const MINUTE = 60_000;

let ca: ShortLivedCA;
let standIn: AriStandIn;
let stop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ ca, standIn, stop } = await startCaBehindAriStandIn());
});

afterAll(() => stop?.());

/** Pebble's issuer, reached through the ARI stand-in. */
const issuer = () => acme({ directoryUrl: standIn.directoryUrl, ca: standIn.caPem });

/** A manager on the ARI stand-in (Pebble behind it), with its HTTP-01 and HTTPS listeners. */
async function start(options: { storage?: string; clock?: TestClock } = {}) {
  const clock = options.clock ?? testClock();
  const logger = captureLogger();
  const manager = await renewingManager({ issuers: [issuer()], storage: options.storage, clock, logger });
  const server = await serve(manager, ca.httpPort);
  return {
    manager,
    events: recordEvents(manager),
    clock,
    logger,
    server,
    /** The served certificate's PEM, as the cache holds it. */
    pem: (name: string) => manager.cache.get(name)?.certificatePem ?? '',
    async close() {
      await server.close();
      await manager.close();
    },
  };
}

const ordersFor = (name: string) => standIn.newOrders.filter((order) => order.identifiers.includes(name));

describe('ACME Renewal Information (RFC 9773) from the CA', () => {
  it('renews at once when the suggested window is in the past, naming the old certificate in replaces', async () => {
    const name = 'ari-past.example.test';
    standIn.answerWith(({ pem }) =>
      covers(pem, name)
        ? { start: new Date(Date.now() - 2 * MINUTE), end: new Date(Date.now() - MINUTE) }
        : letsEncryptLikeAnswer({ revoked: false, pem }),
    );
    const { manager, events, server, pem, close } = await start();
    try {
      const renewed = nextEvent<CertRenewedEvent>(manager, 'cert_renewed');
      await manager.manage([name]);
      await manager.ready([name]);
      const oldId = ariCertificateId(pem(name));
      const event = await renewed;

      expect(event.reason).toBe('ari');
      expect(ordersFor(name).map(({ replaces, rejected }) => ({ replaces, rejected }))).toEqual([
        { replaces: undefined, rejected: false },
        { replaces: oldId, rejected: false },
      ]);
      expect(standIn.renewalInfoRequests).toContain(oldId);
      const served = await handshake(server.httpsPort, name, ca.rootPem);
      expect(served.cert.serialNumber.toLowerCase()).toBe(event.serial);
      expect(events.of('cert_obtaining', name).at(-1)).toMatchObject({ renewal: true, reason: 'ari' });
    } finally {
      standIn.answerWith(letsEncryptLikeAnswer);
      await close();
    }
  });

  it('schedules the renewal at a stored random time inside a future window, the same for every instance', async () => {
    const name = 'ari-future.example.test';
    const windowStart = Date.now() + 10 * MINUTE;
    const windowEnd = Date.now() + 20 * MINUTE;
    standIn.answerWith(({ pem }) =>
      covers(pem, name)
        ? { start: new Date(windowStart), end: new Date(windowEnd) }
        : letsEncryptLikeAnswer({ revoked: false, pem }),
    );
    const storage = await tempDir();
    const first = await start({ storage });
    try {
      await first.manager.manage([name]);
      await first.manager.ready([name]);
      const key = storageKeys.renewalInfo(first.manager.getCertificate(name)?.issuerKey ?? '', name);
      const read = () => first.manager.storage.get<StoredRenewalInfo>(key);
      await waitUntil(async () => Boolean(await read()), 'the ARI choice is stored');
      const stored = await read();
      const selected = stored?.selectedTimeMs ?? 0;
      expect(stored).toMatchObject({
        certificateId: ariCertificateId(first.pem(name)),
        windowStartMs: windowStart,
      });
      expect(selected).toBeGreaterThanOrEqual(windowStart);
      expect(selected).toBeLessThanOrEqual(windowEnd);

      // A second instance on the same storage reads the choice instead of asking the CA and picking its own.
      const asked = standIn.renewalInfoRequests.length;
      const second = await renewingManager({ issuers: [issuer()], storage, clock: first.clock });
      await second.manage([name]);
      await pause(5 * CHECK_INTERVAL_MS);
      await second.close();
      expect(standIn.renewalInfoRequests.length).toBe(asked);
      expect((await read())?.selectedTimeMs).toBe(selected);

      // Just before the selected time (more than one check interval before it): nothing happens.
      let renewals = 0;
      first.manager.on('cert_renewed', () => {
        renewals++;
        first.clock.offsetMs = 0;
      });
      first.clock.offsetMs = selected - Date.now() - 2 * CHECK_INTERVAL_MS - 1_000;
      await pause(5 * CHECK_INTERVAL_MS);
      expect(renewals).toBe(0);

      const renewed = nextEvent<CertRenewedEvent>(first.manager, 'cert_renewed');
      first.clock.offsetMs = selected - Date.now() + 1_000;
      // The window ends a third of the way into the lifetime: ARI, not the lifetime ratio, made it due.
      expect((await renewed).reason).toBe('ari');
    } finally {
      standIn.answerWith(letsEncryptLikeAnswer);
      await first.close();
    }
  });

  it('orders again without replaces when the CA answers alreadyReplaced', async () => {
    const name = 'ari-replaced.example.test';
    standIn.answerWith(({ pem }) =>
      covers(pem, name)
        ? { start: new Date(Date.now() - 2 * MINUTE), end: new Date(Date.now() - MINUTE) }
        : letsEncryptLikeAnswer({ revoked: false, pem }),
    );
    const { manager, events, logger, pem, close } = await start();
    try {
      const renewed = nextEvent<CertRenewedEvent>(manager, 'cert_renewed');
      standIn.rejectReplaces(1);
      await manager.manage([name]);
      await manager.ready([name]);
      const oldId = ariCertificateId(pem(name));
      await renewed;

      expect(ordersFor(name).map(({ replaces, rejected }) => ({ replaces, rejected }))).toEqual([
        { replaces: undefined, rejected: false },
        { replaces: oldId, rejected: true },
        { replaces: undefined, rejected: false },
      ]);
      expect(
        logger.find('CA says the certificate was already replaced; ordering again without replaces')[0],
      ).toMatchObject({
        identifier: name,
        replaces: oldId,
      });
      expect(events.of('cert_failed')).toHaveLength(0);
    } finally {
      standIn.rejectReplaces(0);
      standIn.answerWith(letsEncryptLikeAnswer);
      await close();
    }
  });

  it('replaces a certificate the CA revoked', async () => {
    const name = 'ari-revoked.example.test';
    // Asked again a minute later (the least the client accepts), so a revocation shows within the lifetime.
    standIn.answerWith((certificate) => ({ ...letsEncryptLikeAnswer(certificate), retryAfterSeconds: 60 }));
    const { manager, events, logger, clock, server, close } = await start();
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const cached = manager.cache.get(name)!;
      await waitUntil(
        () => standIn.renewalInfoRequests.includes(ariCertificateId(cached.certificatePem)),
        'ARI asked',
      );
      await pause(3 * CHECK_INTERVAL_MS);
      expect(events.of('cert_obtaining', name).filter((obtaining) => obtaining.renewal)).toHaveLength(0);

      await revokeWithCertificateKey({
        directoryUrl: ca.pebble.directoryUrl,
        caPem: ca.pebble.caPem,
        certificatePem: cached.certificatePem,
        privateKeyPem: cached.privateKeyPem,
      });
      expect((await ca.pebble.certStatus(cached.info.serialNumber))?.Status).toBe('Revoked');
      // The CA is asked again once its Retry-After has passed.
      const event = await ageUntilRenewed(manager, clock, 2 * MINUTE);

      expect(event).toMatchObject({ reason: 'ari', old_serial: cached.info.serialNumber });
      expect(logger.find('certificate needs renewal')[0]).toMatchObject({
        identifier: name,
        ari_explanation: 'https://ari-stand-in.test/revoked',
      });
      const served = await handshake(server.httpsPort, name, ca.rootPem);
      expect(served.cert.serialNumber.toLowerCase()).toBe(event.serial);
      expect((await ca.pebble.certStatus(event.serial))?.Status).toBe('Valid');
    } finally {
      standIn.answerWith(letsEncryptLikeAnswer);
      await close();
    }
  });
});

/** Whether a PEM certificate names `name` (tells this test's certificate from the other tests'). */
function covers(pem: string, name: string): boolean {
  return new X509Certificate(pem).subjectAltName?.split(', ').includes(`DNS:${name}`) ?? false;
}
