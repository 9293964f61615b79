import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import KeyvRedis, { createClient } from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import { FileScheduleIndex } from '../src/storage/schedule-file.js';
import { openScheduleIndex } from '../src/storage/schedule-for-storage.js';
import type { ScheduleIndex } from '../src/storage/schedule-index.js';
import { RedisScheduleIndex } from '../src/storage/schedule-redis.js';
import { openStorage, Storage } from '../src/storage/storage.js';

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

const entry = (atMs: number, serial = 'aa') => ({ atMs, serial });

/** Opens instances of one shared index: every call is another process on the same storage. */
type IndexFactory = () => Promise<{ open(): ScheduleIndex }>;

const backends: Array<[string, IndexFactory]> = [
  [
    'file store',
    async () => {
      const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-schedule-'));
      directories.push(directory);
      return { open: () => openScheduleIndex(openStorage(directory)) as ScheduleIndex };
    },
  ],
  [
    'Redis',
    async () => {
      const namespace = `ns${Math.random().toString(36).slice(2)}`;
      return {
        open: () => {
          const keyv = new Keyv({ store: new KeyvRedis(redis.url), namespace });
          keyvs.push(keyv);
          return openScheduleIndex(new Storage(keyv)) as ScheduleIndex;
        },
      };
    },
  ],
];

describe.each(backends)('the shared renewal schedule (%s)', (_label, makeShared) => {
  it('shows each instance the times another one wrote, and not its own', async () => {
    const shared = await makeShared();
    const [first, second] = [shared.open(), shared.open()];
    try {
      await Promise.all([first.load(), second.load()]);
      await first.write(new Map([['a.test', entry(1_000)]]));
      expect(await first.changes()).toEqual(new Map());
      expect(await second.changes()).toEqual(new Map([['a.test', entry(1_000)]]));
      expect(await second.changes()).toEqual(new Map());

      // A renewal whose certificate gets the same time is still a change: the serial differs.
      await second.write(new Map([['a.test', entry(1_000, 'bb')]]));
      expect(await first.changes()).toEqual(new Map([['a.test', entry(1_000, 'bb')]]));
      expect(first.entryOf('a.test')).toEqual(entry(1_000, 'bb'));
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('does not write a time it already holds', async () => {
    const shared = await makeShared();
    const [writer, reader] = [shared.open(), shared.open()];
    try {
      await Promise.all([writer.load(), reader.load()]);
      await writer.write(new Map([['b.test', entry(5)]]));
      await reader.changes();
      await writer.write(new Map([['b.test', entry(5)]]));
      expect(await reader.changes()).toEqual(new Map());
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it('survives a restart: a new instance loads every name’s time without reading records', async () => {
    const shared = await makeShared();
    const before = shared.open();
    const times = new Map(Array.from({ length: 2_000 }, (_, i) => [`n${i}.test`, entry(i)] as const));
    await before.write(times);
    await before.close();
    const after = shared.open();
    try {
      expect(await after.load()).toEqual(times);
      expect(await after.changes()).toEqual(new Map());
    } finally {
      await after.close();
    }
  });
});

describe('the file store’s schedule log', () => {
  async function directory() {
    const made = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-schedule-'));
    directories.push(made);
    return made;
  }

  it('is rewritten with the live entries once it has grown, and readers follow the new file', async () => {
    const dir = await directory();
    const [writer, reader] = [new FileScheduleIndex(dir), new FileScheduleIndex(dir)];
    await Promise.all([writer.load(), reader.load()]);
    for (let round = 0; round < 13; round++) {
      await writer.write(new Map(Array.from({ length: 1_000 }, (_, i) => [`n${i}.test`, entry(round)])));
    }
    const { size } = await fs.stat(writer.path);
    expect(size).toBeLessThan(2_000 * 30); // rewritten: about one line per name, not thirteen
    expect((await reader.changes()).get('n999.test')).toEqual(entry(12));
    await writer.write(new Map([['n0.test', entry(99)]]));
    expect(await reader.changes()).toEqual(new Map([['n0.test', entry(99)]]));
  });

  it('starts empty when the log is missing or not its format, so names are read from their records', async () => {
    const dir = await directory();
    expect(await new FileScheduleIndex(dir).load()).toEqual(new Map());
    await fs.writeFile(path.join(dir, 'renewal-schedule.log'), 'garbage\n1 x y\n');
    const index = new FileScheduleIndex(dir);
    expect(await index.load()).toEqual(new Map());
    await index.write(new Map([['c.test', entry(7)]]));
    expect(await new FileScheduleIndex(dir).load()).toEqual(new Map([['c.test', entry(7)]]));
  });

  it('ignores a line still being appended until it is complete', async () => {
    const dir = await directory();
    const writer = new FileScheduleIndex(dir);
    await writer.write(new Map([['d.test', entry(1)]]));
    const reader = new FileScheduleIndex(dir);
    await reader.load();
    await fs.appendFile(writer.path, '2 aa e.te');
    expect(await reader.changes()).toEqual(new Map());
    await fs.appendFile(writer.path, 'st\n');
    expect(await reader.changes()).toEqual(new Map([['e.test', entry(2)]]));
  });
});

describe('the Redis schedule when Redis does not answer', () => {
  it('fails a call within its timeout and closes at once, so a pass never hangs on it', async () => {
    const silent = net.createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const index = new RedisScheduleIndex(
      createClient({ url: `redis://127.0.0.1:${port}` }) as never,
      'silent',
      200,
    );
    try {
      const started = Date.now();
      await expect(index.load()).rejects.toThrow(/did not answer/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await index.close();
      silent.close();
    }
  });
});
