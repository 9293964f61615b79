import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import KeyvRedis, { createClient } from '@keyv/redis';
import { Keyv } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess } from '../../../test/support/processes.js';
import { type Redis, startRedis } from '../../../test/support/redis.js';
import { encodePathSegment } from '../src/storage/file-store.js';
import { FileLocker } from '../src/storage/lock-file.js';
import { MemoryLocker, MemoryLockTable } from '../src/storage/lock-memory.js';
import { RedisLocker } from '../src/storage/lock-redis.js';
import { createDefaultLocker } from '../src/storage/locker.js';
import { openStorage, Storage } from '../src/storage/storage.js';
import { runLockConformance, testLease } from './lock-conformance.js';

const temporaryDirectories: string[] = [];

async function makeDirectory(): Promise<string> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'autotls-locks-'));
  temporaryDirectories.push(directory);
  return directory;
}

afterAll(async () => {
  await Promise.all(
    temporaryDirectories.map((directory) => fs.rm(directory, { recursive: true, force: true })),
  );
});

let redis: Redis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

runLockConformance('memory', async () => {
  const table = new MemoryLockTable();
  return { createLocker: (options) => new MemoryLocker({ ...options, table }), cleanup: async () => {} };
});

runLockConformance('lock files', async () => {
  const directory = await makeDirectory();
  return { createLocker: (options) => new FileLocker({ ...options, directory }), cleanup: async () => {} };
});

runLockConformance('redis', async () => ({
  createLocker: (options) =>
    new RedisLocker({ ...options, client: createClient({ url: redis.url }), closeClient: true }),
  cleanup: async () => {},
}));

describe('lock files', () => {
  it('record who holds the lock and until when, readable by the owner only', async () => {
    const directory = path.join(await makeDirectory(), 'locks');
    const locker = new FileLocker({ ...testLease, directory });
    const lock = await locker.acquire('cert:example.com');
    const file = path.join(directory, `${encodePathSegment('cert:example.com')}.lock`);
    const content = JSON.parse(await fs.readFile(file, 'utf8'));
    expect(content).toMatchObject({ pid: process.pid, hostname: os.hostname(), token: lock.fencingToken });
    expect(content.expiresAt).toBeGreaterThan(Date.now());
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(directory)).mode & 0o777).toBe(0o700);
    await lock.release();
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await locker.close();
  });

  it('treat an empty lock file (a holder that died creating it) as held until it is a lease old', async () => {
    const directory = await makeDirectory();
    const file = path.join(directory, `${encodePathSegment('cert:example.com')}.lock`);
    await fs.writeFile(file, '');
    const locker = new FileLocker({ ...testLease, directory });
    const startedAt = Date.now();
    const lock = await locker.acquire('cert:example.com');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(testLease.leaseMs - 50);
    await locker.close();
    expect(lock.fencingToken).toBe(1);
  });
});

describe('lock files across processes', () => {
  let scriptDirectory: string;
  let register: string;

  beforeAll(async () => {
    // Node 20 cannot run TypeScript and the workspace has no tsx, so the children load the sources through
    // a small module hook that transpiles them with the workspace's TypeScript (no build, no type check).
    scriptDirectory = await makeDirectory();
    const typescript = pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href;
    await fs.writeFile(
      path.join(scriptDirectory, 'ts-hooks.mjs'),
      `import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from ${JSON.stringify(typescript)};
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier.replace(/\\.js$/, '.ts'), context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const { outputText } = ts.transpileModule(readFileSync(fileURLToPath(url), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
`,
    );
    register = path.join(scriptDirectory, 'register.mjs');
    await fs.writeFile(
      register,
      `import { register } from 'node:module';\nregister('./ts-hooks.mjs', import.meta.url);\n`,
    );
    await fs.writeFile(
      path.join(scriptDirectory, 'lock-worker.mjs'),
      `import { appendFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
const [modulePath, directory, output, mode, rounds, leaseMs] = process.argv.slice(2);
const { FileLocker } = await import(modulePath);
const keepAlive = setInterval(() => {}, 1000); // The locker's timers are unref'd and would let us exit.
const locker = new FileLocker({ directory, leaseMs: Number(leaseMs), pollMs: 5 });
if (mode === 'hold') {
  const lock = await locker.acquire('shared');
  console.log('held ' + lock.fencingToken);
} else {
  for (let round = 0; round < Number(rounds); round++) {
    const lock = await locker.acquire('shared');
    await appendFile(output, process.pid + ' enter ' + lock.fencingToken + '\\n');
    await delay(1);
    await appendFile(output, process.pid + ' leave ' + lock.fencingToken + '\\n');
    await lock.release();
  }
  await locker.close();
  clearInterval(keepAlive);
}
`,
    );
  });

  const startWorker = (directory: string, output: string, mode: 'rounds' | 'hold', leaseMs: number) =>
    startProcess({
      name: `lock-worker-${mode}`,
      command: process.execPath,
      args: [
        ...['--import', pathToFileURL(register).href, path.join(scriptDirectory, 'lock-worker.mjs')],
        ...[pathToFileURL(fileURLToPath(new URL('../src/storage/lock-file.ts', import.meta.url))).href],
        ...[directory, output, mode, '20', String(leaseMs)],
      ],
    });

  it('lets two processes take turns without ever overlapping', async () => {
    const directory = await makeDirectory();
    const output = path.join(directory, 'turns.log');
    const workers = await Promise.all([1, 2].map(() => startWorker(directory, output, 'rounds', 2000)));
    const statuses = await Promise.all(workers.map((worker) => worker.exited));
    for (const [index, status] of statuses.entries())
      expect(status, workers[index]!.output()).toEqual({ code: 0, signal: null });

    const lines = (await fs.readFile(output, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(80);
    let previousToken = 0;
    for (let index = 0; index < lines.length; index += 2) {
      const [enterPid, enter, enterToken] = lines[index]!.split(' ');
      const [leavePid, leave, leaveToken] = lines[index + 1]!.split(' ');
      expect([enter, leave]).toEqual(['enter', 'leave']);
      expect(leavePid).toBe(enterPid);
      expect(leaveToken).toBe(enterToken);
      expect(Number(enterToken)).toBeGreaterThan(previousToken);
      previousToken = Number(enterToken);
    }
    expect(new Set(lines.map((line) => line.split(' ')[0])).size).toBe(2);
  });

  it('takes over the lock of a process killed while holding it, after its lease', async () => {
    const directory = await makeDirectory();
    const leaseMs = 400;
    const holder = await startWorker(directory, '', 'hold', leaseMs);
    await holder.waitForOutput(/held \d+/, 10_000);
    const heldToken = Number(/held (\d+)/.exec(holder.output())![1]);
    process.kill(holder.pid, 'SIGKILL');
    await holder.exited;

    const locker = new FileLocker({ directory, leaseMs, pollMs: 10 });
    const lock = await locker.acquire('shared', { signal: AbortSignal.timeout(leaseMs * 10) });
    expect(lock.fencingToken).toBeGreaterThan(heldToken);
    await locker.close();
  });
});

describe('the default locker', () => {
  it('uses lock files beside the file store', async () => {
    const directory = await makeDirectory();
    const locker = createDefaultLocker(openStorage(directory), testLease);
    expect(locker).toBeInstanceOf(FileLocker);
    expect((locker as FileLocker).directory).toBe(path.join(directory, 'locks'));
    const lock = await locker.acquire('cert:example.com');
    await expect(fs.readdir(path.join(directory, 'locks'))).resolves.toContain('cert%3Aexample.com.lock');
    await lock.release();
    await locker.close();
  });

  it('uses Redis, on a connection of its own, beside a Redis store', async () => {
    const keyv = new Keyv(new KeyvRedis(redis.url), { namespace: 'autotls', throwOnErrors: true });
    const locker = createDefaultLocker(new Storage(keyv), testLease);
    expect(locker).toBeInstanceOf(RedisLocker);
    const client = (locker as RedisLocker).client;
    expect(client).not.toBe((keyv.store as KeyvRedis<unknown>).client);
    const lock = await locker.acquire('cert:example.com');
    expect(await redis.command('EXISTS', 'autotls:locks:{cert:example.com}')).toBe(1);
    await keyv.set('certificates/ca/example.com', 'stored while locked');
    await lock.release();
    expect(await redis.command('EXISTS', 'autotls:locks:{cert:example.com}')).toBe(0);
    await locker.close();
    expect(client.isOpen).toBe(false);
    await keyv.disconnect();
  });

  it('falls back to memory for any other store', () => {
    expect(createDefaultLocker(new Storage(new Keyv()))).toBeInstanceOf(MemoryLocker);
  });
});
