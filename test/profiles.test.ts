/**
 * ACME profiles (draft-ietf-acme-profiles) against real Pebble. Pebble 2.4 lists no profiles and ignores an
 * order's `profile`, so a stand-in in front of it lists Let's Encrypt's, records what each order asked for,
 * and answers `invalidProfile` the way a CA does (see test/support/profile-stand-in.ts).
 */
import { acme, type CertManagerEvents } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageKeys } from '../packages/core/src/storage/keys.js';
import type { StoredCertificate } from '../packages/core/src/stored-certificates.js';
import { testClock } from './support/clock.js';
import {
  ageUntilRenewed,
  CERTIFICATE_LIFETIME_MS,
  nextEvent,
  renewingManager,
  type ShortLivedCA,
  startShortLivedCA,
} from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import {
  LETS_ENCRYPT_PROFILES,
  type ProfileStandIn,
  startProfileStandIn,
} from './support/profile-stand-in.js';
import { handshake, serve, tempDir } from './support/servers.js';

type GivingUp = CertManagerEvents['cert_giving_up'][0];
type Failed = CertManagerEvents['cert_failed'][0];

let ca: ShortLivedCA;
let standIn: ProfileStandIn;

beforeAll(async () => {
  ca = await startShortLivedCA();
  standIn = await startProfileStandIn(ca.pebble);
});

afterAll(async () => {
  await standIn?.stop();
  await ca?.stop();
});

const ordersFor = (name: string) =>
  standIn.orders.filter((order) => order.identifiers.some((identifier) => identifier.value === name));

async function start(options: { profile?: string; storage?: string } = {}) {
  const clock = testClock();
  const logger = captureLogger();
  const issuer = acme({
    directoryUrl: standIn.directoryUrl,
    ca: standIn.caPem,
    orderRetryDelayMs: 10,
    ...(options.profile ? { profile: options.profile } : {}),
  });
  const manager = await renewingManager({
    issuers: [issuer],
    clock,
    logger,
    retry: { intervalsMs: [200] },
    ...(options.storage ? { storage: options.storage } : {}),
  });
  const server = await serve(manager, ca.httpPort);
  return {
    manager,
    clock,
    logger,
    server,
    async close() {
      await server.close();
      await manager.close();
    },
  };
}

describe('ACME profiles', () => {
  it('puts the profile on the order and on its renewal, and stores it with the certificate', async () => {
    const name = 'profile.example.test';
    const storage = await tempDir();
    const { manager, clock, server, close } = await start({ profile: 'shortlived', storage });
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const issuerKey = manager.getCertificate(name)?.issuerKey ?? '';
      const record = await manager.storage.get<StoredCertificate>(storageKeys.certificate(issuerKey, name));
      expect(record?.profile).toBe('shortlived');

      await ageUntilRenewed(manager, clock, 0.7 * CERTIFICATE_LIFETIME_MS);
      expect(ordersFor(name).map((order) => order.profile)).toEqual(['shortlived', 'shortlived']);
      expect((await handshake(server.httpsPort, name, ca.rootPem)).authorized).toBe(true);
    } finally {
      await close();
    }
  });

  it('renews with the profile the certificate was ordered with, also after the option was dropped', async () => {
    const name = 'kept-profile.example.test';
    const storage = await tempDir();
    const first = await start({ profile: 'tlsserver', storage });
    try {
      await first.manager.manage([name]);
      await first.manager.ready([name]);
    } finally {
      await first.close();
    }
    const second = await start({ storage });
    try {
      await second.manager.manage([name]);
      await second.manager.ready([name]);
      await ageUntilRenewed(second.manager, second.clock, 0.7 * CERTIFICATE_LIFETIME_MS);
      expect(ordersFor(name).map((order) => order.profile)).toEqual(['tlsserver', 'tlsserver']);
    } finally {
      await second.close();
    }
  });

  it('refuses a profile the CA does not list: no order at all, one error naming it and the listed ones, no retry', async () => {
    const name = 'unlisted.example.test';
    const { manager, close } = await start({ profile: 'forever' });
    let attempts = 0;
    manager.on('cert_obtaining', () => attempts++);
    try {
      const gaveUp = nextEvent<GivingUp>(manager, 'cert_giving_up');
      await manager.manage([name]);
      const event = await gaveUp;

      expect(event).toMatchObject({ identifier: name, retryable: false, attempts: 1 });
      const message = String((event.error as Error).message);
      expect(message).toContain('"forever"');
      for (const listed of Object.keys(LETS_ENCRYPT_PROFILES)) expect(message).toContain(`"${listed}"`);
      expect(ordersFor(name)).toHaveLength(0);
      expect(attempts).toBe(1);
      await expect(manager.ready([name])).rejects.toThrow(/does not offer the ACME profile "forever"/);
    } finally {
      await close();
    }
  });

  it('reports invalidProfile at finalize with its problem type, with one order per attempt, not a tight loop', async () => {
    const name = 'withdrawn.example.test';
    standIn.refuseAtFinalize('tlsserver');
    const { manager, logger, close } = await start({ profile: 'tlsserver' });
    try {
      const failed = nextEvent<Failed>(manager, 'cert_failed');
      await manager.manage([name]);
      const event = await failed;

      const cause = (event.error as AggregateError).errors[0] as {
        problem?: { type: string; status: number };
      };
      expect(cause.problem).toMatchObject({ type: 'urn:ietf:params:acme:error:invalidProfile', status: 403 });
      expect(ordersFor(name)).toEqual([
        expect.objectContaining({ profile: 'tlsserver', refusedAt: 'finalize' }),
      ]);
      expect(logger.find('could not get certificate from issuer')[0]?.problem).toMatchObject({
        type: 'urn:ietf:params:acme:error:invalidProfile',
      });

      // The CA issues it again: the next scheduled attempt gets the certificate.
      standIn.refuseAtFinalize(undefined);
      await manager.ready([name]);
      expect(ordersFor(name).map((order) => order.refusedAt)).toEqual(['finalize', undefined]);
    } finally {
      standIn.refuseAtFinalize(undefined);
      await close();
    }
  });

  it('reports invalidProfile at newOrder when the CA stops listing the profile, then fails for good', async () => {
    const name = 'dropped.example.test';
    const { manager, close } = await start({ profile: 'tlsserver' });
    try {
      await manager.manage(['warm.example.test']);
      await manager.ready(['warm.example.test']); // the issuer has read the directory: tlsserver was listed
      const { tlsserver: _dropped, ...rest } = LETS_ENCRYPT_PROFILES;
      standIn.listProfiles(rest);
      const failed = nextEvent<Failed>(manager, 'cert_failed');
      const gaveUp = nextEvent<GivingUp>(manager, 'cert_giving_up');
      await manager.manage([name]);

      const first = (await failed).error as AggregateError;
      expect((first.errors[0] as { problem?: { type: string } }).problem?.type).toBe(
        'urn:ietf:params:acme:error:invalidProfile',
      );
      // The refusal makes the issuer read the directory again: the next attempt sees it is gone.
      expect(await gaveUp).toMatchObject({ retryable: false, attempts: 2 });
      expect(ordersFor(name).map((order) => order.refusedAt)).toEqual(['newOrder']);
    } finally {
      standIn.listProfiles(LETS_ENCRYPT_PROFILES);
      await close();
    }
  });
});
