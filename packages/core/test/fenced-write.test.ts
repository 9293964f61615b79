import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import { writeFenced } from '../src/storage/fenced-write.js';
import { openStorage, Storage } from '../src/storage/storage.js';

let redis: Redis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

const NOW = Date.UTC(2026, 11, 2);
const record = (serial: string, notAfter = NOW + 86_400_000) => ({ serial, info: { notAfter } });

describe.each([
  [
    'Redis (one script)',
    async () => {
      const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace: 'autotls' });
      return { storage: new Storage(keyv), close: () => keyv.disconnect() };
    },
  ],
  [
    'the file store (token in the record)',
    async () => {
      const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-fenced-'));
      return { storage: openStorage(directory), close: async () => {} };
    },
  ],
])('fenced certificate writes on %s', (_store, open) => {
  it('refuses a write older than the token stored, accepts newer ones, and never lets an expired record block', async () => {
    const { storage, close } = await open();
    const key = `certificates/ca/fenced-${Math.random().toString(36).slice(2)}.test`;
    try {
      expect(await writeFenced(storage, key, record('a'), 5, NOW)).toBe('written');
      expect(await writeFenced(storage, key, record('stale'), 4, NOW)).toBe('refused');
      expect(await storage.get(key)).toMatchObject({ serial: 'a', fencingToken: 5 });
      expect(await writeFenced(storage, key, record('b'), 6, NOW)).toBe('written');
      expect(await storage.get(key)).toMatchObject({ serial: 'b', fencingToken: 6 });
      // Counters lost with their locks restart low: an expired record must not lock the name out.
      await writeFenced(storage, key, record('expired', NOW - 1), 9, NOW);
      expect(await writeFenced(storage, key, record('after reset'), 1, NOW)).toBe('written');
    } finally {
      await close();
    }
  });
});
