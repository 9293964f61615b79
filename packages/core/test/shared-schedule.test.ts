import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type TestClock, testClock } from '../../../test/support/clock.js';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import { silentLogger } from '../src/log.js';
import { CertManager } from '../src/manager.js';

const HOUR = 3600_000;
const names = Array.from({ length: 20 }, (_, i) => `n${i}.localhost`);

let redis: Redis;
const directories: string[] = [];
const keyvs: Keyv[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(keyvs.map((keyv) => keyv.disconnect()));
  await redis?.stop();
  await Promise.all(directories.map((directory) => fs.rm(directory, { recursive: true, force: true })));
});

/** A storage option for several managers: one directory, or one Redis namespace (a Keyv each). */
type SharedStorage = () => Promise<() => Keyv | string>;
const backends: Array<[string, SharedStorage]> = [
  [
    'file store',
    async () => {
      const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-shared-schedule-'));
      directories.push(directory);
      return () => directory;
    },
  ],
  [
    'Redis',
    async () => {
      const namespace = `ns${Math.random().toString(36).slice(2)}`;
      return () => {
        const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace });
        keyvs.push(keyv);
        return keyv;
      };
    },
  ],
];

/** A manager on the internal CA (12-hour certificates) whose passes the test runs by hand. */
function instance(storage: Keyv | string, clock: TestClock, cacheCapacity?: number) {
  const manager = new CertManager({
    storage,
    clock,
    ...(cacheCapacity ? { cacheCapacity } : {}),
    logger: silentLogger,
    renewal: { checkIntervalMs: 60_000 }, // longer than the test: its passes are run by hand
  });
  const maintenance = (manager as unknown as { maintenance: { runPass(): Promise<void> } }).maintenance;
  /** Certificate records read from storage while `during` runs. */
  const recordReads = async (during: () => Promise<void>) => {
    const reads = vi.spyOn(manager.storage, 'get');
    try {
      await during();
      return reads.mock.calls.filter(([key]) => String(key).startsWith('certificates/')).length;
    } finally {
      reads.mockRestore();
    }
  };
  return { manager, pass: () => maintenance.runPass(), recordReads };
}

describe.each(backends)('maintenance on the shared renewal schedule (%s)', (_label, shared) => {
  it('reads no certificate record in a pass with nothing due', async () => {
    const storage = await shared();
    const { manager, pass, recordReads } = instance(storage(), testClock());
    try {
      await manager.manage(names);
      await manager.ready(names);
      expect(await recordReads(pass)).toBe(names.length); // the first pass writes every name's time
      expect(await recordReads(pass)).toBe(0);
    } finally {
      await manager.close();
    }
  });

  it('starts again reading no record for names not due, warms the cache up to its capacity in the background, and serves a name beyond it from storage', async () => {
    const storage = await shared();
    const before = instance(storage(), testClock());
    await before.manager.manage(names);
    await before.manager.ready();
    await before.pass();
    await before.manager.close();

    const capacity = 5;
    const after = instance(storage(), testClock(), capacity);
    try {
      const warmUp = await after.recordReads(async () => {
        await after.manager.manage(names);
        await vi.waitFor(() => expect(after.manager.cache.size).toBe(capacity));
        await new Promise((resolve) => setTimeout(resolve, 50)); // nothing more is read once it is full
      });
      expect(warmUp).toBe(capacity);
      expect(after.manager.getCertificate(names[0] as string)?.names).toEqual([names[0]]);
      const beyond = names.at(-1) as string;
      expect(after.manager.getCertificate(beyond)).toBeUndefined();
      const { SNICallback } = after.manager.httpsOptions();
      const served = await after.recordReads(async () => {
        const context = await new Promise((resolve, reject) =>
          SNICallback(beyond, (error, secureContext) => (error ? reject(error) : resolve(secureContext))),
        );
        expect(context).toBeDefined();
      });
      expect(served).toBe(1);
      expect(after.manager.getCertificate(beyond)?.names).toEqual([beyond]);
    } finally {
      await after.manager.close();
    }
  });

  it("picks up another instance's renewal through the schedule, reading only that name's record", async () => {
    const storage = await shared();
    const renewingClock = testClock();
    const renewing = instance(storage(), renewingClock);
    const other = instance(storage(), testClock());
    try {
      await renewing.manager.manage([names[0] as string]);
      await renewing.manager.ready();
      await other.manager.manage(names);
      await other.manager.ready();
      await renewing.pass();
      await other.pass();
      const original = other.manager.getCertificate(names[0] as string)?.serialNumber;

      const renewed = new Promise<{ serial: string }>((resolve) =>
        renewing.manager.once('cert_renewed', (event) => {
          renewingClock.offsetMs = 0;
          resolve(event);
        }),
      );
      renewingClock.offsetMs = 9 * HOUR; // past two thirds of 12 hours
      await renewing.pass();
      const { serial } = await renewed;
      expect(serial).not.toBe(original);
      await renewing.pass(); // publishes the new certificate's time

      expect(await other.recordReads(other.pass)).toBe(1);
      expect(other.manager.getCertificate(names[0] as string)?.serialNumber).toBe(serial);
      expect(await other.recordReads(other.pass)).toBe(0);
    } finally {
      await Promise.all([renewing.manager.close(), other.manager.close()]);
    }
  });
});
