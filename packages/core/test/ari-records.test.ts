import { webcrypto } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, describe, expect, it } from 'vitest';
import { testClock } from '../../../test/support/clock.js';
import { captureLogger } from '../../../test/support/logs.js';
import { RenewalInfoRecords } from '../src/ari.js';
import { type RenewalInfo, RenewalInfoError } from '../src/ari-client.js';
import { type CachedCertificate, CertificateCache } from '../src/cache.js';
import { readCertificateInfo } from '../src/certificates.js';
import type { Issuer, IssuerContext } from '../src/issuers/issuer.js';
import { lockNames } from '../src/storage/keys.js';
import { MemoryLocker, MemoryLockTable } from '../src/storage/lock-memory.js';
import { openStorage } from '../src/storage/storage.js';

x509.cryptoProvider.set(webcrypto);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const START_MS = Date.parse('2026-11-03T20:58:32Z');
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const directories: string[] = [];

afterAll(async () => {
  await Promise.all(directories.map((directory) => fs.rm(directory, { recursive: true, force: true })));
});

/** A certificate for `name` valid `lifetimeMs` from START_MS, with an AKI (so ARI can name it). */
async function cachedCertificate(name: string, lifetimeMs: number): Promise<CachedCertificate> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '0123456789',
    subject: `CN=${name}`,
    issuer: 'CN=ARI test CA',
    notBefore: new Date(START_MS),
    notAfter: new Date(START_MS + lifetimeMs),
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }]),
      new x509.AuthorityKeyIdentifierExtension('cd'.repeat(20)),
    ],
  });
  const certificatePem = leaf.toString('pem');
  return CertificateCache.entry({
    info: readCertificateInfo(certificatePem),
    issuerKey: 'ca',
    certificatePem,
    privateKeyPem: '',
  });
}

/** An issuer whose ARI answers come from `answer`; `asked` counts the requests. */
function ariIssuer(answer: () => RenewalInfo | Promise<RenewalInfo>) {
  const issuer = {
    key: 'ca',
    hasTestCA: false,
    asked: 0,
    issue: () => Promise.reject(new Error('not used')),
    async renewalInfo() {
      issuer.asked++;
      return answer();
    },
  };
  return issuer satisfies Issuer & { asked: number };
}

async function records(options: { locker?: MemoryLocker } = {}) {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-ari-'));
  directories.push(directory);
  const clock = testClock({ startMs: START_MS });
  const logger = captureLogger(false);
  const storage = openStorage(directory);
  const locker = options.locker ?? new MemoryLocker();
  const ari = new RenewalInfoRecords({
    storage,
    locker,
    clock,
    logger,
    issuerContext: {} as IssuerContext,
    random: () => 0.5,
  });
  return { ari, clock, logger, storage, signal: new AbortController().signal };
}

const window = (
  startOffsetMs: number,
  endOffsetMs: number,
  extra: Partial<RenewalInfo> = {},
): RenewalInfo => ({
  windowStartMs: START_MS + startOffsetMs,
  windowEndMs: START_MS + endOffsetMs,
  ...extra,
});

describe('ARI records (RFC 9773)', () => {
  it('never asks about a certificate that has expired', async () => {
    const { ari, clock, signal } = await records();
    const issuer = ariIssuer(() => window(HOUR, 2 * HOUR));
    const certificate = await cachedCertificate('expired.example', 3 * HOUR);
    clock.offsetMs = 3 * HOUR + 1;
    expect(await ari.current('expired.example', certificate, issuer, signal)).toBeUndefined();
    expect(issuer.asked).toBe(0);
  });

  it('backs off from a minute after a temporary failure, and waits 6 hours after a long-term one', async () => {
    const { ari, clock, signal } = await records();
    let failure: RenewalInfoError = new RenewalInfoError('HTTP 503', true);
    const issuer = ariIssuer(() => Promise.reject(failure));
    const certificate = await cachedCertificate('failing.example', 160 * HOUR);
    const ask = () => ari.current('failing.example', certificate, issuer, signal);

    await ask();
    clock.offsetMs = 59_000;
    await ask();
    expect(issuer.asked).toBe(1);
    clock.offsetMs = 61_000;
    await ask();
    expect(issuer.asked).toBe(2);
    // The second failure in a row waits two minutes.
    failure = new RenewalInfoError('invalid suggestedWindow', false);
    clock.offsetMs = 61_000 + 2 * MINUTE + 1_000;
    await ask();
    expect(issuer.asked).toBe(3);
    clock.offsetMs += 6 * HOUR - MINUTE;
    await ask();
    expect(issuer.asked).toBe(3);
    clock.offsetMs += 2 * MINUTE;
    await ask();
    expect(issuer.asked).toBe(4);
  });

  it('does not queue behind another holder of the ARI lock: it goes on with the answer, unstored', async () => {
    const table = new MemoryLockTable();
    const { ari, storage, signal } = await records({ locker: new MemoryLocker({ table }) });
    const other = await new MemoryLocker({ table }).acquire(lockNames.renewalInfo('busy.example'));
    const issuer = ariIssuer(() => window(HOUR, 2 * HOUR));
    const certificate = await cachedCertificate('busy.example', 3 * HOUR);
    try {
      const started = performance.now();
      const record = await ari.current('busy.example', certificate, issuer, signal);
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(record?.selectedTimeMs).toBe(START_MS + 1.5 * HOUR);
      expect(await storage.get(`renewal_info/ca/busy.example`)).toBeUndefined();
    } finally {
      await other.release();
    }
    await ari.current('busy.example', certificate, issuer, signal);
    expect(await storage.get(`renewal_info/ca/busy.example`)).toMatchObject({
      selectedTimeMs: START_MS + 1.5 * HOUR,
    });
  });

  it('logs the explanation URL the CA gives with a window', async () => {
    const { ari, logger, signal } = await records();
    const explanationUrl = 'https://ca.example/incident/2026-03-19';
    const issuer = ariIssuer(() => window(HOUR, 2 * HOUR, { explanationUrl }));
    const certificate = await cachedCertificate('explained.example', 3 * HOUR);
    await ari.current('explained.example', certificate, issuer, signal);
    expect(logger.find('updated ACME renewal information')[0]).toMatchObject({
      identifier: 'explained.example',
      explanation_url: explanationUrl,
    });
  });
});
