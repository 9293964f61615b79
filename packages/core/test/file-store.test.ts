import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import {
  decodePathSegment,
  encodePathSegment,
  FileStore,
  STALE_TEMP_FILE_MS,
} from '../src/storage/file-store.js';
import { CorruptEntryError, openStorage } from '../src/storage/storage.js';
import { runStorageConformance } from './storage-conformance.js';

const temporaryDirectories: string[] = [];

async function makeDirectory(): Promise<string> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-file-store-'));
  temporaryDirectories.push(directory);
  return directory;
}

afterAll(async () => {
  await Promise.all(
    temporaryDirectories.map((directory) => fs.rm(directory, { recursive: true, force: true })),
  );
});

/** A Keyv on the file store as autotls opens it, with the iterator Keyv does not wire for unknown dialects. */
function fileKeyv(directory: string, namespace = 'autotls'): { keyv: Keyv; store: FileStore } {
  const store = new FileStore({ directory });
  const keyv = new Keyv({ store, namespace, throwOnErrors: true });
  keyv.iterator = keyv.generateIterator(store.iterator.bind(store));
  return { keyv, store };
}

/** Every file below `directory`, relative to it. */
async function filesBelow(directory: string): Promise<string[]> {
  const entries = await fs.readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(directory, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe('the file store', () => {
  let sharedDirectory: string;
  beforeAll(async () => {
    sharedDirectory = await makeDirectory();
  });
  runStorageConformance('file store', async (namespace) => ({
    keyv: fileKeyv(sharedDirectory, namespace).keyv,
    cleanup: async () => {},
  }));
});

describe('Redis through @keyv/redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  runStorageConformance('redis', async (namespace) => {
    const keyv = new Keyv(new KeyvRedis(redis.url), { namespace, throwOnErrors: true });
    return { keyv, cleanup: () => keyv.disconnect() };
  });
});

describe('the file store on disk', () => {
  it('writes entries readable by the owner only (files 0600, folders 0700)', async () => {
    const directory = path.join(await makeDirectory(), 'data');
    const { keyv } = fileKeyv(directory);
    await keyv.set('certificates/acme-v02.api.letsencrypt.org-directory/example.com', { key: 'private' });
    const file = path.join(
      directory,
      'autotls/certificates/acme-v02.api.letsencrypt.org-directory/example.com',
    );
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    for (const folder of [
      '',
      'autotls',
      'autotls/certificates',
      'autotls/certificates/acme-v02.api.letsencrypt.org-directory',
    ]) {
      expect((await fs.stat(path.join(directory, folder))).mode & 0o777, folder).toBe(0o700);
    }
  });

  it('keeps hostile keys and namespaces inside its directory, each in a file of its own', async () => {
    const outer = await makeDirectory();
    const directory = path.join(outer, 'store');
    // No key here is a folder of another (`..` beside `../../escape`, `` beside `/etc/passwd`): a leaf and a
    // folder cannot share a name.
    const hostile = [
      '../../escape',
      '.',
      '/etc/passwd',
      'a/../../b',
      'a/./b',
      'a//b',
      'a\\..\\..\\b',
      'nul\0byte',
      '%2e%2e/%2F',
      '%',
      'Example.COM',
      'example.com',
      '.hidden',
      'ünïcode/日本',
      'C:\\windows',
    ];
    const { keyv } = fileKeyv(directory, '../namespace');
    for (const [index, key] of hostile.entries()) await keyv.set(key, index);
    for (const [index, key] of hostile.entries())
      expect(await keyv.get(key), JSON.stringify(key)).toBe(index);
    const { keyv: dotDot } = fileKeyv(directory, '..');
    await dotDot.set('..', 'dot-dot');
    await dotDot.set('', 'empty');
    expect(await dotDot.get('..')).toBe('dot-dot');
    expect(await dotDot.get('')).toBe('empty');

    expect(await fs.readdir(outer)).toEqual(['store']);
    const files = await filesBelow(directory);
    expect(files).toHaveLength(hostile.length + 2);
    for (const file of files) {
      const segments = file.split(path.sep);
      expect(
        segments.every((segment) => segment !== '.' && segment !== '..' && !segment.startsWith('.')),
      ).toBe(true);
    }
    const listed: string[] = [];
    for await (const [key] of keyv.iterator!(undefined)) listed.push(key as string);
    expect(listed.sort()).toEqual([...hostile].sort());
  });

  it('encodes path segments reversibly', () => {
    for (const segment of [
      '',
      '.',
      '..',
      '%',
      '%25',
      'a.b',
      '.a',
      'A',
      'ü',
      'a/b',
      'a\\b',
      '\0',
      ':',
      '*.example.com',
    ]) {
      const encoded = encodePathSegment(segment);
      expect(encoded).toMatch(/^(%|(%[0-9A-F]{2}|[a-z0-9_-])(%[0-9A-F]{2}|[a-z0-9._-])*)$/);
      expect(decodePathSegment(encoded)).toBe(segment);
    }
  });

  it('keeps the old value when a write dies before its rename', async () => {
    const directory = await makeDirectory();
    const { keyv } = fileKeyv(directory);
    const key = 'certificates/ca/example.com';
    await keyv.set(key, 'old');

    const rename = vi
      .spyOn(fs, 'rename')
      .mockRejectedValueOnce(Object.assign(new Error('power cut'), { code: 'EIO' }));
    try {
      await expect(keyv.set(key, 'new')).rejects.toThrow('power cut');
    } finally {
      rename.mockRestore();
    }
    expect(await keyv.get(key)).toBe('old');

    // A process killed mid-write leaves its temp file behind: it is neither read nor listed.
    const folder = path.join(directory, 'autotls/certificates/ca');
    await fs.writeFile(path.join(folder, '.example.com.0123456789ab.tmp'), '{"value":"ne');
    expect(await keyv.get(key)).toBe('old');
    const listed: string[] = [];
    for await (const [listedKey] of keyv.iterator!(undefined)) listed.push(listedKey as string);
    expect(listed).toEqual([key]);
    await keyv.set(key, 'new');
    expect(await keyv.get(key)).toBe('new');
  });

  it('removes temp files of writers that died, and keeps those of live writers until they are stale', async () => {
    const directory = await makeDirectory();
    const { keyv, store } = fileKeyv(directory);
    await keyv.set('certificates/ca/example.com', 'value');
    const folder = path.join(directory, 'autotls/certificates/ca');
    const dead = spawnSync(process.execPath, ['-e', '']).pid as number; // exited and reaped
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)']);
    try {
      const files = {
        dead: `.example.com.${dead}.0123456789ab.tmp`,
        live: `.example.com.${live.pid}.0123456789ac.tmp`,
        liveButStale: `.example.com.${live.pid}.0123456789ad.tmp`,
        olderFormat: '.example.com.0123456789ae.tmp',
      };
      for (const file of Object.values(files)) await fs.writeFile(path.join(folder, file), '{"value":"ne');
      const longAgo = new Date(Date.now() - STALE_TEMP_FILE_MS - 1_000);
      await fs.utimes(path.join(folder, files.liveButStale), longAgo, longAgo);

      expect(await store.removeStaleTempFiles()).toBe(3);
      expect((await fs.readdir(folder)).sort()).toEqual([files.live, 'example.com'].sort());
      expect(await keyv.get('certificates/ca/example.com')).toBe('value');
    } finally {
      live.kill('SIGKILL');
    }
  });

  it('takes a folder where an entry file should be as an error that names the path', async () => {
    const directory = await makeDirectory();
    const { keyv } = fileKeyv(directory);
    const file = path.join(directory, 'autotls/certificates/ca/example.com');
    await fs.mkdir(path.join(file, 'inside'), { recursive: true });
    await expect(keyv.get('certificates/ca/example.com')).rejects.toThrow(file);
  });

  it.skipIf(process.getuid?.() === 0)(
    'throws, rather than answering "no entry", when its folder is unreadable',
    async () => {
      const directory = await makeDirectory();
      const { keyv } = fileKeyv(directory);
      await keyv.set('certificates/ca/example.com', 'value');
      const folder = path.join(directory, 'autotls/certificates');
      await fs.chmod(folder, 0o000);
      try {
        await expect(keyv.get('certificates/ca/example.com')).rejects.toMatchObject({ code: 'EACCES' });
      } finally {
        await fs.chmod(folder, 0o700);
      }
    },
  );

  it('throws, rather than answering "no entry", when its folder cannot be resolved', async () => {
    // Works as root too, where permissions do not stop reads: a symlink loop in place of a folder.
    const directory = await makeDirectory();
    const { keyv } = fileKeyv(directory);
    await keyv.set('certificates/ca/example.com', 'value');
    const folder = path.join(directory, 'autotls/certificates');
    await fs.rm(folder, { recursive: true });
    await fs.symlink(folder, folder);
    await expect(keyv.get('certificates/ca/example.com')).rejects.toMatchObject({ code: 'ELOOP' });
    await expect(keyv.set('certificates/ca/example.com', 'value')).rejects.toMatchObject({ code: 'ELOOP' });
  });

  it('reports a truncated entry as corrupt through Storage', async () => {
    const directory = await makeDirectory();
    const storage = openStorage(directory);
    await storage.set('certificates/ca/example.com', { certificatePem: 'x'.repeat(100) });
    const file = path.join(directory, 'autotls/certificates/ca/example.com');
    await fs.truncate(file, 40);
    await expect(storage.get('certificates/ca/example.com')).rejects.toBeInstanceOf(CorruptEntryError);
  });

  it('clears only its own namespace', async () => {
    const directory = await makeDirectory();
    const { keyv: mine } = fileKeyv(directory, 'autotls');
    const { keyv: theirs } = fileKeyv(directory, 'other');
    await mine.set('a', 1);
    await theirs.set('a', 2);
    await mine.clear();
    expect(await filesBelow(directory)).toEqual([path.join('other', 'a')]);
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});
