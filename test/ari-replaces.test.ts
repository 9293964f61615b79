import { X509Certificate } from 'node:crypto';
import { acme } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ariCertificateId } from '../packages/core/src/ari-client.js';
import { storageKeys } from '../packages/core/src/storage/keys.js';
import type { StoredCertificate } from '../packages/core/src/stored-certificates.js';
import { type AriStandIn, letsEncryptLikeAnswer, startCaBehindAriStandIn } from './support/ari-stand-in.js';
import { testClock } from './support/clock.js';
import { ageUntilRenewed, renewingManager, type ShortLivedCA, waitUntil } from './support/lifecycle.js';
import { serve } from './support/servers.js';

const MINUTE = 60_000;

let ca: ShortLivedCA;
let standIn: AriStandIn;
let stop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ ca, standIn, stop } = await startCaBehindAriStandIn());
});

afterAll(() => stop?.());

const covers = (pem: string, name: string) =>
  new X509Certificate(pem).subjectAltName?.split(', ').includes(`DNS:${name}`) ?? false;

describe('ARI replaces goes only where it belongs', () => {
  it.each([
    ['from the account that ordered the old certificate', undefined, true],
    [
      'not from another account (the certificate was ordered by one this instance does not use)',
      'https://ca.test/acct/other',
      false,
    ],
  ])('renews with replaces %s', async (_case, otherAccount, expectReplaces) => {
    const name = `ari-account-${expectReplaces ? 'same' : 'other'}.example.test`;
    // Asked again a minute later, so the window can move within the test.
    standIn.answerWith((certificate) => ({ ...letsEncryptLikeAnswer(certificate), retryAfterSeconds: 60 }));
    const clock = testClock();
    const manager = await renewingManager({
      issuers: [acme({ directoryUrl: standIn.directoryUrl, ca: standIn.caPem })],
      clock,
    });
    const server = await serve(manager, ca.httpPort);
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const cached = manager.cache.get(name);
      const oldId = ariCertificateId(cached?.certificatePem ?? '');
      // Stored, not just asked: the answer below must not be the one given to the first request.
      const ariKey = storageKeys.renewalInfo(cached?.issuerKey ?? '', name);
      await waitUntil(async () => Boolean(await manager.storage.get(ariKey)), 'the ARI answer is stored');
      if (otherAccount) {
        const key = storageKeys.certificate(cached?.issuerKey ?? '', name);
        const record = await manager.storage.get<StoredCertificate>(key);
        await manager.storage.set(key, { ...record, account: otherAccount });
      }
      // The CA now says "renew now" for this certificate.
      standIn.answerWith(({ pem }) =>
        covers(pem, name)
          ? { start: new Date(Date.now() - 2 * MINUTE), end: new Date(Date.now() - MINUTE) }
          : letsEncryptLikeAnswer({ revoked: false, pem }),
      );
      const event = await ageUntilRenewed(manager, clock, 2 * MINUTE);

      expect(event.reason).toBe('ari');
      const renewal = standIn.newOrders.filter((order) => order.identifiers.includes(name))[1];
      expect(renewal?.replaces).toBe(expectReplaces ? oldId : undefined);
    } finally {
      standIn.answerWith(letsEncryptLikeAnswer);
      await server.close();
      await manager.close();
    }
  });
});
