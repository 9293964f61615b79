import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testClock } from '../../../test/support/clock.js';
import { recordEvents } from '../../../test/support/events.js';
import { captureLogger } from '../../../test/support/logs.js';
import { DEFAULT_RETRY_INTERVALS_MS } from '../src/backoff.js';
import type { Issuer } from '../src/issuers/issuer.js';
import { CertManager, type CertManagerOptions } from '../src/manager.js';
import { MemoryLocker } from '../src/storage/lock-memory.js';

/** Sleeps advance time instantly: a 30-day schedule runs in milliseconds. */
const fakeClock = () => testClock({ startMs: Date.parse('2026-11-03T20:58:32Z'), sleep: 'instant' });

const failingIssuer: Issuer = {
  key: 'always-fails',
  hasTestCA: false,
  async issue() {
    throw new Error('the CA is having a bad month');
  },
};

/** A manager whose only CA always fails, on the fake clock, with every log line kept. */
async function failingManager(retry?: CertManagerOptions['retry']) {
  const clock = fakeClock();
  const logger = captureLogger();
  const manager = new CertManager({
    issuers: [failingIssuer],
    storage: await mkdtemp(path.join(os.tmpdir(), 'autotls-schedule-')),
    locker: new MemoryLocker(),
    ...(retry === undefined ? {} : { retry }),
    logger,
    clock,
  });
  return { manager, clock, logger };
}

describe('the retry schedule', () => {
  it('waits 1m, 2m, 2m, 5m, 10m×3, 20m×4, 30m×6, 1h×3, 2h×2, 3h×2, then 6h, and gives up after 30 days', async () => {
    const { manager, clock } = await failingManager();
    const events = recordEvents(manager);
    const startedAt = clock.now();
    await manager.manage(['www.example.com']);
    await expect(manager.ready(['www.example.com'])).rejects.toThrow(/bad month/);

    const retryingIn = events.of('cert_failed').map((failed) => failed.retrying_in);
    const minutes = (m: number) => m * 60;
    const expectedStart = [
      1, 2, 2, 5, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30, 60, 60, 60, 120, 120, 180, 180, 360,
    ].map(minutes);
    expect(retryingIn.slice(0, expectedStart.length)).toEqual(expectedStart);
    expect(new Set(retryingIn.slice(expectedStart.length))).toEqual(new Set([minutes(360)]));
    expect(DEFAULT_RETRY_INTERVALS_MS.length).toBe(expectedStart.length);

    const thirtyDays = 30 * 24 * 3600 * 1000;
    const elapsed = clock.now() - startedAt;
    expect(elapsed).toBeLessThanOrEqual(thirtyDays);
    expect(elapsed).toBeGreaterThan(thirtyDays - 6 * 3600 * 1000);
    const givingUp = events.of('cert_giving_up');
    expect(givingUp).toHaveLength(1);
    expect(givingUp[0]).toMatchObject({ identifier: 'www.example.com', retryable: true });
    expect(givingUp[0]?.attempts).toBe(retryingIn.length + 1);
    expect(givingUp[0]?.elapsed).toBe(elapsed / 1000);
    expect(retryingIn.length + 1).toBeGreaterThan(130);
    expect(events.of('cert_failed')[3]).toMatchObject({ attempt: 4, retrying_in: 300 });
    await manager.close();
  });

  it('takes its intervals and maximum duration from the retry option', async () => {
    const { manager } = await failingManager({ intervalsMs: [1000, 5000], maxDurationMs: 20_000 });
    const events = recordEvents(manager);
    await manager.manage(['short.example.com']);
    await expect(manager.ready(['short.example.com'])).rejects.toThrow();
    expect(events.of('cert_failed').map((failed) => failed.retrying_in)).toEqual([1, 5, 5, 5]);
    await manager.close();
  });
});
