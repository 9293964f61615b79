import { Keyv } from 'keyv';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { AllIssuersFailedError } from '../src/policy.js';
import { AcmeProblemError } from '../src/problems.js';
import { type NameStatus, readNameStatus, StatusWriter, writeRenewalRequest } from '../src/status.js';
import { storageKeys } from '../src/storage/keys.js';
import { openStorage } from '../src/storage/storage.js';

const DAY = 24 * 60 * 60_000;
const info = { names: ['a.example'], notBefore: 0, notAfter: 90 * DAY, issuer: 'CA', serialNumber: 'ab01' };
const dnsProblem = new AcmeProblemError(
  { type: 'urn:ietf:params:acme:error:dns', detail: `no A record ${'x'.repeat(2_000)}`, status: 400 },
  { ca: 'https://ca.test/dir' },
);

describe('the stored status of a name', () => {
  it('records a failure with the CA’s problem, bounded, and the next attempt; a success clears it', async () => {
    const storage = openStorage(new Keyv());
    const writer = new StatusWriter(storage, silentLogger, 1 / 3);
    const failure = new AllIssuersFailedError('a.example', [new Error('paused'), dnsProblem]);
    writer.failed('a.example', { error: failure, attempt: 2, atMs: 1_000, retryingInMs: 60_000 });
    await writer.flushed();
    const failed = (await readNameStatus(storage, 'a.example')) as NameStatus;
    expect(failed).toMatchObject({ failedAttempts: 2, lastFailureAt: 1_000, nextAttemptAt: 61_000 });
    expect(failed.lastError).toMatchObject({
      type: 'urn:ietf:params:acme:error:dns',
      ca: 'https://ca.test/dir',
    });
    expect(failed.lastError?.detail.length).toBeLessThanOrEqual(500);

    await writeRenewalRequest(storage, 'a.example', { serial: 'old', requestedAt: 0, reason: 'requested' });
    writer.succeeded('a.example', info, 2_000);
    await writer.flushed();
    expect(await readNameStatus(storage, 'a.example')).toEqual({
      lastSuccessAt: 2_000,
      serial: 'ab01',
      renewalAt: 60 * DAY,
    });
    expect(await storage.get(storageKeys.renewalRequest('a.example'))).toBeUndefined();
  });

  it('keeps the order of outcomes: a success right after a failure is what stays', async () => {
    const storage = openStorage(new Keyv());
    const writer = new StatusWriter(storage, silentLogger, 1 / 3);
    writer.failed('a.example', { error: dnsProblem, attempt: 1, atMs: 1_000, retryingInMs: 10 });
    writer.succeeded('a.example', info, 1_010);
    await writer.flushed();
    expect((await readNameStatus(storage, 'a.example'))?.failedAttempts).toBeUndefined();
  });

  it('a give-up keeps the failure but schedules nothing', async () => {
    const storage = openStorage(new Keyv());
    const writer = new StatusWriter(storage, silentLogger, 1 / 3);
    writer.failed('a.example', { error: new Error('out of time'), attempt: 140, atMs: 5_000 });
    await writer.flushed();
    const status = await readNameStatus(storage, 'a.example');
    expect(status).toMatchObject({
      failedAttempts: 140,
      lastError: { type: 'Error', detail: 'out of time' },
    });
    expect(status?.nextAttemptAt).toBeUndefined();
  });
});
