import { webcrypto } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import * as x509 from '@peculiar/x509';
import { Keyv } from 'keyv';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { testClock } from '../../../test/support/clock.js';
import { captureLogger } from '../../../test/support/logs.js';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import type { StoredRenewalInfo } from '../src/ari.js';
import { replacingIssuer } from '../src/ari.js';
import { ariCertificateId, parseRenewalInfo } from '../src/ari-client.js';
import type { CertificateRequest, Issuer, IssuerContext } from '../src/issuers/issuer.js';
import { silentLogger } from '../src/log.js';
import { CertManager } from '../src/manager.js';
import { AcmeProblemError } from '../src/problems.js';
import { EMERGENCY_RENEWAL_RATIO, pickTimeInWindow, renewalDecision } from '../src/renewal.js';
import { storageKeys } from '../src/storage/keys.js';
import { FileLocker } from '../src/storage/lock-file.js';
import { MemoryLocker } from '../src/storage/lock-memory.js';

x509.cryptoProvider.set(webcrypto);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const CHECK_INTERVAL_MS = 20;
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

const directories: string[] = [];
afterAll(async () => {
  await Promise.all(directories.map((directory) => fs.rm(directory, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-maintenance-'));
  directories.push(directory);
  return directory;
}

/** A clock the test moves; backoff waits last until their signal aborts. */
const movableClock = () => testClock({ startMs: Date.parse('2026-11-03T20:58:32Z'), sleep: 'until-aborted' });

/** A self-signed certificate for `names`, with the given validity and optional serial and AKI. */
async function certificate(options: {
  names: string[];
  notBefore: number;
  notAfter: number;
  serialNumber?: string;
  authorityKeyId?: string;
}) {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber:
      options.serialNumber ?? Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: `CN=${options.names[0]}`,
    issuer: 'CN=maintenance test CA',
    notBefore: new Date(options.notBefore),
    notAfter: new Date(options.notAfter),
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        options.names.map((value) => ({ type: 'dns' as const, value })),
      ),
      ...(options.authorityKeyId ? [new x509.AuthorityKeyIdentifierExtension(options.authorityKeyId)] : []),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const privateKeyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return { certificatePem: leaf.toString('pem'), privateKeyPem };
}

/** An issuer that signs `lifetimeMs` certificates on the manager's clock; `failOn` attempts throw. */
function testIssuer(lifetimeMs: number, failOn: (call: number) => boolean = () => false) {
  const requests: CertificateRequest[] = [];
  const issuer: Issuer & { requests: CertificateRequest[] } = {
    key: 'test-ca',
    hasTestCA: false,
    requests,
    async issue(request, context) {
      requests.push(request);
      if (failOn(requests.length)) throw new Error(`the test CA fails call ${requests.length}`);
      const now = context.clock.now();
      const validity = { notBefore: now, notAfter: now + lifetimeMs };
      return {
        ...(await certificate({ names: request.names, ...validity, authorityKeyId: 'ab'.repeat(20) })),
        ca: 'test',
      };
    },
  };
  return issuer;
}

function nextEvent<T>(manager: CertManager, event: 'cert_renewed', timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    manager.once(event, (payload) => {
      clearTimeout(timer);
      resolve(payload as T);
    });
  });
}

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('when a certificate is due', () => {
  const validity = { notBefore: 0, notAfter: 90 * DAY };
  const options = { windowRatio: 1 / 3, checkIntervalMs: 10 * MINUTE };

  it('is not due with more than a third of its lifetime left, and due with less', () => {
    expect(renewalDecision(validity, 59 * DAY, options)).toEqual({ dueAtMs: 60 * DAY });
    expect(renewalDecision(validity, 61 * DAY, options).reason).toBe('lifetime');
    expect(renewalDecision(validity, 46 * DAY, { ...options, windowRatio: 1 / 2 }).reason).toBe('lifetime');
  });

  it('is due earlier when the ARI selected time comes first, including within the next check interval', () => {
    const ariSelectedTimeMs = 30 * DAY;
    expect(renewalDecision(validity, 29 * DAY, { ...options, ariSelectedTimeMs }).reason).toBeUndefined();
    expect(renewalDecision(validity, 30 * DAY - 5 * MINUTE, { ...options, ariSelectedTimeMs }).reason).toBe(
      'ari',
    );
    expect(renewalDecision(validity, 0, { ...options, ariSelectedTimeMs: -DAY }).reason).toBe('ari');
  });

  it('keeps the lifetime ratio when ARI suggests a later time, and renews in an emergency whatever ARI says', () => {
    const late = { ...options, ariSelectedTimeMs: 89 * DAY };
    expect(renewalDecision(validity, 61 * DAY, late).reason).toBe('lifetime');
    expect(renewalDecision(validity, 90 * DAY * (1 - EMERGENCY_RENEWAL_RATIO) + HOUR, late).reason).toBe(
      'emergency',
    );
    expect(renewalDecision(validity, 90 * DAY, late).reason).toBe('expired');
  });

  it('picks a time inside the window', () => {
    const window = { startMs: 1_000, endMs: 2_000 };
    expect(pickTimeInWindow(window, () => 0)).toBe(1_000);
    expect(pickTimeInWindow(window, () => 0.999_999)).toBe(1_999);
  });
});

describe('ARI protocol pieces', () => {
  it('names a certificate as RFC 9773 does (its example: AKI 69:88:5B:… and serial 00:87:65:43:21)', async () => {
    const { certificatePem } = await certificate({
      names: ['example.com'],
      notBefore: Date.now(),
      notAfter: Date.now() + DAY,
      serialNumber: '0087654321',
      authorityKeyId: '69885B6B87464041E1B37B847BA0AE2CDE01C8D4',
    });
    expect(ariCertificateId(certificatePem)).toBe('aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  it('accepts a well-formed window and refuses one that ends before it starts', () => {
    const body = (start: string, end: string) => JSON.stringify({ suggestedWindow: { start, end } });
    expect(parseRenewalInfo('u', body('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'), 60_000)).toEqual({
      windowStartMs: Date.parse('2026-01-01T00:00:00Z'),
      windowEndMs: Date.parse('2026-01-02T00:00:00Z'),
      retryAfterMs: 60_000,
    });
    expect(() => parseRenewalInfo('u', body('2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z'))).toThrow(
      /invalid/,
    );
    expect(() => parseRenewalInfo('u', '{}')).toThrow(/invalid/);
  });

  it('sends replaces to production only, and orders again without it after alreadyReplaced', async () => {
    const seen: Array<{ replaces?: string; useTestCA?: boolean }> = [];
    const alreadyReplaced = new AcmeProblemError(
      { type: 'urn:ietf:params:acme:error:alreadyReplaced', detail: 'replaced', status: 409 },
      { ca: 'test' },
    );
    const inner: Issuer = {
      key: 'ca',
      hasTestCA: true,
      async issue(request) {
        seen.push({ replaces: request.replaces, useTestCA: request.useTestCA });
        if (request.replaces && !request.useTestCA) throw alreadyReplaced;
        return { certificatePem: '', privateKeyPem: '', ca: 'ca' };
      },
    };
    const logger = captureLogger(false);
    const wrapped = replacingIssuer(inner, 'id.1', logger);
    const context = {} as IssuerContext;
    await wrapped.issue({ names: ['a.test'], keyType: 'ecdsa-p256', useTestCA: true }, context);
    await wrapped.issue({ names: ['a.test'], keyType: 'ecdsa-p256' }, context);
    expect(seen).toEqual([
      { replaces: undefined, useTestCA: true },
      { replaces: 'id.1', useTestCA: undefined },
      { replaces: undefined, useTestCA: undefined },
    ]);
    expect(
      logger.find('CA says the certificate was already replaced; ordering again without replaces'),
    ).toHaveLength(1);
    const failing = replacingIssuer(
      { ...inner, issue: () => Promise.reject(new Error('down')) },
      'id.1',
      logger,
    );
    await expect(failing.issue({ names: ['a.test'], keyType: 'ecdsa-p256' }, context)).rejects.toThrow(
      'down',
    );
  });
});

describe('the maintenance loop', () => {
  it('renews a due certificate in place, and after close() it stops for good', async () => {
    const clock = movableClock();
    const issuer = testIssuer(90 * DAY);
    const manager = new CertManager({
      issuers: [issuer],
      storage: new Keyv({ namespace: 'autotls' }),
      locker: new MemoryLocker(),
      clock,
      logger: silentLogger,
      renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
    });
    await manager.manage(['www.example.com']);
    await manager.ready(['www.example.com']);
    const first = manager.getCertificate('www.example.com')!;
    const timer = (manager as unknown as { maintenance: { timer?: NodeJS.Timeout } }).maintenance;
    expect(timer.timer?.hasRef()).toBe(false);

    const renewed = nextEvent<{ reason: string; serial: string; old_serial: string }>(
      manager,
      'cert_renewed',
    );
    clock.offsetMs += 61 * DAY;
    const event = await renewed;
    expect(event).toMatchObject({ reason: 'lifetime', old_serial: first.serialNumber });
    expect(manager.getCertificate('www.example.com')?.serialNumber).toBe(event.serial);
    expect(issuer.requests).toHaveLength(2);

    await manager.close();
    expect(timer.timer).toBeUndefined();
    const reads = vi.spyOn(manager.storage, 'get');
    clock.offsetMs += 30 * DAY;
    await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_INTERVAL_MS));
    expect(reads).not.toHaveBeenCalled();
    expect(issuer.requests).toHaveLength(2);
  });

  it('renews localhost certificates from the internal CA too', async () => {
    const clock = movableClock();
    const manager = new CertManager({
      storage: new Keyv({ namespace: 'autotls' }),
      locker: new MemoryLocker(),
      clock,
      logger: silentLogger,
      renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
    });
    try {
      await manager.manage(['localhost']);
      await manager.ready(['localhost']);
      const renewed = nextEvent<{ issuer: string }>(manager, 'cert_renewed');
      clock.offsetMs += 9 * HOUR; // Leaves last 12 hours.
      expect((await renewed).issuer).toBe('local');
    } finally {
      await manager.close();
    }
  });

  it('cuts a failed renewal’s backoff wait short once the certificate is in its emergency window', async () => {
    const clock = movableClock();
    const issuer = testIssuer(90 * DAY, (call) => call === 2);
    const logger = captureLogger(false);
    const manager = new CertManager({
      issuers: [issuer],
      storage: new Keyv({ namespace: 'autotls' }),
      locker: new MemoryLocker(),
      clock,
      logger,
      renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
    });
    try {
      await manager.manage(['www.example.com']);
      await manager.ready(['www.example.com']);
      const renewed = nextEvent<{ reason: string }>(manager, 'cert_renewed');
      clock.offsetMs += 61 * DAY;
      await waitUntil(() => clock.sleeps.length === 1, 'the failed renewal waits on the backoff schedule');
      expect(clock.sleeps).toEqual([MINUTE]);

      clock.offsetMs += 25 * DAY; // 4 of 90 days left: under 1/20.
      expect((await renewed).reason).toBe('lifetime');
      expect(issuer.requests).toHaveLength(3);
      expect(
        logger.find('certificate expires soon and its renewal is waiting to retry; retrying now')[0],
      ).toMatchObject({ identifier: 'www.example.com', reason: 'emergency' });
    } finally {
      await manager.close();
    }
  });

  it('keeps an ARI choice per certificate in storage, so a second instance reads it instead of picking its own', async () => {
    const clock = movableClock();
    const now = clock.now();
    const windowStart = now + 10 * DAY;
    let asked = 0;
    const issuer = Object.assign(testIssuer(90 * DAY), {
      renewalInfo: async () => {
        asked++;
        return { windowStartMs: windowStart, windowEndMs: windowStart + DAY, retryAfterMs: 6 * HOUR };
      },
    });
    const storage = new Keyv({ namespace: 'autotls' });
    const locker = new MemoryLocker();
    const make = () =>
      new CertManager({
        issuers: [issuer],
        storage,
        locker,
        clock,
        logger: silentLogger,
        renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
      });
    const [first, second] = [make(), make()];
    try {
      await first.manage(['www.example.com']);
      await first.ready(['www.example.com']);
      const key = storageKeys.renewalInfo('test-ca', 'www.example.com');
      await waitUntil(async () => Boolean(await first.storage.get(key)), 'the ARI choice is stored');
      const stored = (await first.storage.get<StoredRenewalInfo>(key))!;
      expect(stored.selectedTimeMs).toBeGreaterThanOrEqual(windowStart);
      expect(stored.selectedTimeMs).toBeLessThanOrEqual(windowStart + DAY);
      expect(stored.nextCheckMs).toBe(now + 6 * HOUR); // the CA's Retry-After
      await second.manage(['www.example.com']);
      await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_INTERVAL_MS));
      expect(asked).toBe(1);

      // After Retry-After the CA is asked again; a window that still holds the choice keeps it.
      clock.offsetMs += 6 * HOUR + MINUTE;
      await waitUntil(() => asked >= 2, 'the CA is asked again');
      await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_INTERVAL_MS));
      expect((await first.storage.get<StoredRenewalInfo>(key))?.selectedTimeMs).toBe(stored.selectedTimeMs);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});

let redis: Redis | undefined;
afterAll(async () => {
  await redis?.stop();
});

type StorageUnderTest = { storage: string | Keyv; locker?: MemoryLocker; lockDirectory?: string };

const storages: Record<string, () => Promise<StorageUnderTest>> = {
  'the file store': async () => {
    const directory = await tempDir();
    return { storage: directory, lockDirectory: path.join(directory, 'locks') };
  },
  'an in-memory Keyv': async () => ({
    storage: new Keyv({ namespace: 'autotls' }),
    locker: new MemoryLocker(),
  }),
  Redis: async () => {
    redis ??= await startRedis();
    const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: `autotls-${Date.now()}` });
    return { storage: keyv };
  },
};

describe.each(Object.keys(storages))('storage cleaning on %s', (kind) => {
  it('removes certificates expired over 14 days (and stale lock files), at most once a day', async () => {
    const { storage, locker, lockDirectory } = await storages[kind]!();
    const clock = movableClock();
    const logger = captureLogger(false);
    const manager = new CertManager({
      issuers: [testIssuer(90 * DAY)],
      storage,
      ...(locker ? { locker } : {}),
      clock,
      logger,
      renewal: { checkIntervalMs: CHECK_INTERVAL_MS },
    });
    const store = async (name: string, expiredForMs: number) => {
      const notAfter = clock.now() - expiredForMs;
      const pems = await certificate({ names: [name], notBefore: notAfter - 90 * DAY, notAfter });
      await manager.storage.set(storageKeys.certificate('test-ca', name), { ...pems, issuerKey: 'test-ca' });
      await manager.storage.set(storageKeys.renewalInfo('test-ca', name), {
        certificateNotAfterMs: notAfter,
      });
      // The status of a name nobody works on any more: its newest time is as old as the certificate.
      await manager.storage.set(storageKeys.status(name), {
        lastSuccessAt: notAfter - 90 * DAY,
        renewalAt: notAfter,
      });
    };
    const has = async (name: string) =>
      Boolean(await manager.storage.get(storageKeys.certificate('test-ca', name)));
    await store('old.example.com', 15 * DAY);
    await store('recent.example.com', 13.5 * DAY);
    const lockFiles = async () =>
      lockDirectory ? (await fs.readdir(lockDirectory)).filter((file) => file.endsWith('.lock')) : [];
    if (lockDirectory) {
      // A process that died holding a lock leaves its lock file behind.
      const crashed = new FileLocker({ directory: lockDirectory, leaseMs: 50, renewEveryMs: 10 });
      await crashed.acquire('cert:gone.example.com');
      crashed.crashForTesting();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await lockFiles()).toEqual(['cert%3Agone.example.com.lock']);
    }
    try {
      await manager.manage([]);
      await waitUntil(() => logger.find('finished cleaning storage').length === 1, 'cleaned');
      expect(logger.find('finished cleaning storage')[0]).toMatchObject({
        certificates_removed: 1,
        renewal_info_removed: 1,
        status_removed: 1,
        stale_locks_removed: lockDirectory ? 1 : 0,
      });
      expect(await has('old.example.com')).toBe(false);
      expect(await has('recent.example.com')).toBe(true);
      expect(
        await manager.storage.get(storageKeys.renewalInfo('test-ca', 'recent.example.com')),
      ).toBeDefined();
      expect(await lockFiles()).toEqual([]);

      clock.offsetMs += 23 * HOUR; // recent.example.com is now over 14 days expired, but a day has not passed...
      await new Promise((resolve) => setTimeout(resolve, 5 * CHECK_INTERVAL_MS));
      expect(await has('recent.example.com')).toBe(true);
      clock.offsetMs += 2 * HOUR; // ...and now it has.
      await waitUntil(() => logger.find('finished cleaning storage').length === 2, 'cleaned again');
      expect(await has('recent.example.com')).toBe(false);
    } finally {
      await manager.close();
      if (storage instanceof Keyv) await storage.disconnect();
    }
  });
});
