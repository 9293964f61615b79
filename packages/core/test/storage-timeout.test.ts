import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import { acme } from '../src/issuers/acme.js';
import { silentLogger } from '../src/log.js';
import { CertManager } from '../src/manager.js';
import { isStorageOutage } from '../src/storage/health.js';
import { createDefaultLocker } from '../src/storage/locker.js';
import { Storage } from '../src/storage/storage.js';
import { StorageTimeoutError } from '../src/storage/timeout.js';

const TIMEOUT_MS = 300;
let redis: Redis;

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(() => {
  process.kill(redis.pid, 'SIGCONT');
});

afterAll(async () => {
  await redis?.stop();
});

const elapsedMs = async (work: () => Promise<unknown>) => {
  const startedAt = Date.now();
  await work();
  return Date.now() - startedAt;
};

describe('a paused Redis (SIGSTOP)', () => {
  it('fails storage and lock calls after the timeout instead of hanging, and answers again once resumed', async () => {
    const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'autotls' });
    const storage = new Storage(keyv, { timeoutMs: TIMEOUT_MS });
    const locker = createDefaultLocker(storage, { leaseMs: 1_000, pollMs: 50 });
    try {
      await storage.set('k', 'v');
      process.kill(redis.pid, 'SIGSTOP');
      const failure = await storage.get('k').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StorageTimeoutError);
      expect(isStorageOutage(failure)).toBe(true);
      expect(storage.health.down).toBe(true);
      await expect(locker.acquire('cert:paused.test')).rejects.toBeInstanceOf(StorageTimeoutError);
      process.kill(redis.pid, 'SIGCONT');
      expect(await storage.get('k')).toBe('v');
      expect(storage.health.down).toBe(false);
      // The timed-out acquire ran once Redis resumed; the release queued behind it gave the lock back.
      const lock = await locker.acquire('cert:paused.test', { signal: AbortSignal.timeout(500) });
      await lock.release();
    } finally {
      storage.health.close();
      await locker.close();
      await keyv.disconnect();
    }
  });

  it('lets manage() and close() of a manager on it return within a few timeouts', async () => {
    const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'autotls' });
    const manager = new CertManager({
      storage: keyv,
      storageTimeoutMs: TIMEOUT_MS,
      issuers: [acme({ directoryUrl: 'https://127.0.0.1:1/dir' })],
      logger: silentLogger,
    });
    try {
      await manager.manage(['warm.paused.test']).catch(() => {});
      process.kill(redis.pid, 'SIGSTOP');
      expect(await elapsedMs(() => manager.manage(['new.paused.test']))).toBeLessThan(3 * TIMEOUT_MS);
      expect(await elapsedMs(() => manager.close())).toBeLessThan(6 * TIMEOUT_MS);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
      await keyv.disconnect();
    }
  });
});
