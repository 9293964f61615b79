import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureLogger } from '../../../test/support/logs.js';
import { type CertManagerEvents, createManager, NoRetryError, zeroSSL } from '../src/index.js';

describe('a configuration error met while obtaining', () => {
  it('fails once with a typed error and a cert_giving_up event, instead of entering the retry schedule', async () => {
    // ZeroSSL without an email and without EAB credentials: no wait makes that work.
    const manager = createManager({
      issuers: [zeroSSL({ eabUrl: 'http://127.0.0.1:9/unused' })],
      storage: await mkdtemp(path.join(os.tmpdir(), 'autotls-no-retry-')),
      retry: { intervalsMs: [3_600_000] },
      logger: captureLogger(),
    });
    const failed: unknown[] = [];
    const gaveUp: Array<CertManagerEvents['cert_giving_up'][0]> = [];
    manager.on('cert_failed', (event) => failed.push(event));
    manager.on('cert_giving_up', (event) => gaveUp.push(event));
    try {
      await manager.manage(['no-email.example.com']);
      await expect(manager.ready(['no-email.example.com'])).rejects.toThrow(/email/);
      expect(failed).toEqual([]);
      expect(gaveUp).toHaveLength(1);
      expect(gaveUp[0]).toMatchObject({ identifier: 'no-email.example.com', attempts: 1, retryable: false });
      expect((gaveUp[0]!.error as AggregateError).errors[0]).toBeInstanceOf(NoRetryError);
    } finally {
      await manager.close();
    }
  });
});
