import { Keyv } from 'keyv';
import { describe, expect, it } from 'vitest';
import { statusRows, statusTable } from '../src/cli/status.js';
import { storageKeys } from '../src/storage/keys.js';
import { openStorage } from '../src/storage/storage.js';

const DAY = 24 * 60 * 60_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

async function seeded() {
  const storage = openStorage(new Keyv());
  const record = (name: string, serialNumber: string, notAfter: number) => ({
    certificatePem: '',
    privateKeyPem: 'secret',
    issuerKey: 'ca',
    ca: 'https://ca.test/dir',
    obtainedAt: T0,
    info: { names: [name], notBefore: notAfter - 90 * DAY, notAfter, issuer: 'CA', serialNumber },
  });
  await storage.set(storageKeys.certificate('ca', 'a.example'), record('a.example', 'aa', T0 + 90 * DAY));
  await storage.set(storageKeys.certificate('ca', '*.b.example'), record('*.b.example', 'bb', T0 + 90 * DAY));
  // An older certificate from a fallback issuer: the newer one is the row.
  await storage.set(storageKeys.certificate('other', 'a.example'), record('a.example', 'old', T0 + 10 * DAY));
  await storage.set(storageKeys.renewalInfo('ca', 'a.example'), {
    certificateId: 'x',
    windowStartMs: T0 + 40 * DAY,
    windowEndMs: T0 + 42 * DAY,
    selectedTimeMs: T0 + 41 * DAY,
    nextCheckMs: T0,
    certificateNotAfterMs: T0 + 90 * DAY,
  });
  await storage.set(storageKeys.status('new.example'), {
    failedAttempts: 3,
    lastError: { type: 'urn:ietf:params:acme:error:dns', detail: 'NXDOMAIN', ca: 'https://ca.test/dir' },
    lastFailureAt: T0,
    nextAttemptAt: T0 + 5 * 60_000,
  });
  return storage;
}

describe('autotls status rows', () => {
  it('one row per name: the newest certificate, the ARI time when earlier, failing names without a certificate', async () => {
    const rows = await statusRows(await seeded());
    expect(rows.map((row) => row.name)).toEqual(['*.b.example', 'a.example', 'new.example']);
    expect(rows[1]).toEqual({
      name: 'a.example',
      issuer: 'ca',
      notBefore: iso(T0),
      notAfter: iso(T0 + 90 * DAY),
      serial: 'aa',
      renewalAt: iso(T0 + 41 * DAY),
      ariWindow: { start: iso(T0 + 40 * DAY), end: iso(T0 + 42 * DAY) },
    });
    expect(rows[0]?.renewalAt).toBe(iso(T0 + 60 * DAY)); // two thirds in, by the default ratio
    expect(rows[2]).toEqual({
      name: 'new.example',
      failedAttempts: 3,
      lastError: { type: 'urn:ietf:params:acme:error:dns', detail: 'NXDOMAIN', ca: 'https://ca.test/dir' },
      lastFailureAt: iso(T0),
      nextAttemptAt: iso(T0 + 5 * 60_000),
    });
    expect(JSON.stringify(rows)).not.toContain('secret');
  });

  it('the table shows days to expiry, and colours failing names only when asked to', async () => {
    const rows = await statusRows(await seeded());
    const plain = statusTable(rows, T0, false);
    expect(plain).toContain('(90.0d)');
    expect(plain).toContain('failing (3x): dns');
    expect(plain).not.toContain('\u001b[');
    expect(statusTable(rows, T0, true)).toContain('\u001b[31mnew.example');
  });
});
