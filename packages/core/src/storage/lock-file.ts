/** @module The one-machine locker: lock files created exclusively, renewed by their holder, broken when stale. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decodePathSegment, encodePathSegment, writeFileAtomic } from './file-store.js';
import { type Claim, LeaseLocker, type LeaseOptions } from './locks.js';

export interface FileLockerOptions extends LeaseOptions {
  /** Folder of the lock files; created (mode 0700) on first use. Every process must use the same one. */
  directory: string;
}

/** What a lock file holds, so an operator can see who holds a lock and until when. */
interface LockFileContent {
  owner: string;
  pid: number;
  hostname: string;
  token: number;
  expiresAt: number;
}

/** A lock file as read: its text, and its content when the text parses. */
interface Seen {
  raw: string;
  content?: LockFileContent;
  modifiedAtMs: number;
}

/**
 * Locks shared by the processes of one machine, as files in `directory`: `<name>.lock` is created with
 * `O_EXCL`, so exactly one process creates it; its holder rewrites `expiresAt` every `renewEveryMs`; a
 * waiter polls every `pollMs` and removes a lock file whose `expiresAt` has passed (its holder died).
 * `<name>.fencing` counts acquisitions and is only written by the holder.
 *
 * @example
 * const locker = new FileLocker({ directory: '/var/lib/autotls/locks' });
 */
export class FileLocker extends LeaseLocker {
  readonly directory: string;

  constructor(options: FileLockerOptions) {
    super(options);
    this.directory = path.resolve(options.directory);
  }

  protected claim(name: string, owner: string, signal: AbortSignal): Promise<number> {
    return this.poll(signal, () => this.#tryClaim(name, owner));
  }

  protected async extend(claim: Claim): Promise<boolean> {
    const file = this.#file(claim.name, 'lock');
    if ((await readLockFile(file))?.content?.owner !== claim.owner) return false;
    // Residual race, accepted: if this holder stalled past its lease exactly between the read above and the
    // rename below, a waiter may have broken the lock and taken it, and this write clobbers theirs. The
    // waiter's higher fencing token is the backstop.
    await writeFileAtomic(file, this.#content(claim.owner, claim.fencingToken));
    return true;
  }

  protected async unclaim(claim: Claim): Promise<void> {
    const file = this.#file(claim.name, 'lock');
    if ((await readLockFile(file))?.content?.owner === claim.owner) await fs.rm(file, { force: true });
  }

  /**
   * Removes lock files whose lease has passed (their holder died and nobody asked for the name since), the
   * same way a waiter breaks them. Fencing counters stay: tokens must keep growing. Returns how many went.
   */
  async removeStaleLocks(): Promise<number> {
    const files = await fs.readdir(this.directory).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    let removed = 0;
    for (const file of files.filter((entry) => entry.endsWith('.lock'))) {
      const seen = await readLockFile(path.join(this.directory, file));
      if (!seen || !this.#isStale(seen)) continue;
      await this.#breakIfStale(decodePathSegment(file.slice(0, -'.lock'.length)));
      if ((await readLockFile(path.join(this.directory, file)))?.raw !== seen.raw) removed++;
    }
    return removed;
  }

  async #tryClaim(name: string, owner: string): Promise<number | undefined> {
    await fs.mkdir(this.directory, { recursive: true, mode: 0o700 });
    const file = this.#file(name, 'lock');
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      await this.#breakIfStale(name);
      return undefined;
    }
    try {
      const fencingToken = await this.#nextFencingToken(name);
      await handle.writeFile(this.#content(owner, fencingToken));
      return fencingToken;
    } catch (error) {
      await fs.rm(file, { force: true });
      throw error;
    } finally {
      await handle.close();
    }
  }

  /**
   * Removes the lock file if its lease has passed. Breakers take turns through `<name>.lock.break` (also
   * `O_EXCL`) and re-read the lock under it: without that, two waiters that both saw the same stale file
   * could both remove "it", the second removing the fresh lock the first had just created.
   */
  async #breakIfStale(name: string): Promise<void> {
    const file = this.#file(name, 'lock');
    const seen = await readLockFile(file);
    if (!seen || !this.#isStale(seen)) return;
    const guard = this.#file(name, 'lock.break');
    try {
      await (await fs.open(guard, 'wx', 0o600)).close();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A breaker that died between its two syscalls leaves its guard behind; clear it after a lease. (Two
      // waiters clearing the same dead guard at once is the residual race here, and it needs a crash first.)
      const guardSeen = await readLockFile(guard);
      if (guardSeen && guardSeen.modifiedAtMs + this.leaseMs < Date.now()) {
        await fs.rm(guard, { force: true });
      }
      return;
    }
    try {
      if ((await readLockFile(file))?.raw === seen.raw) await fs.rm(file, { force: true });
    } finally {
      await fs.rm(guard, { force: true });
    }
  }

  #isStale(seen: Seen): boolean {
    // A file without content is a holder that died between creating and writing it: judge it by its age.
    const expiresAtMs = seen.content?.expiresAt ?? seen.modifiedAtMs + this.leaseMs;
    return expiresAtMs < Date.now();
  }

  async #nextFencingToken(name: string): Promise<number> {
    const file = this.#file(name, 'fencing');
    const raw = await fs.readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '0';
      throw error;
    });
    const current = Number(raw.trim());
    if (!Number.isSafeInteger(current)) {
      throw new Error(`fencing counter ${file} is corrupt: ${JSON.stringify(raw)}`);
    }
    await writeFileAtomic(file, String(current + 1));
    return current + 1;
  }

  #content(owner: string, token: number): string {
    const content: LockFileContent = {
      owner,
      pid: process.pid,
      hostname: os.hostname(),
      token,
      expiresAt: Date.now() + this.leaseMs,
    };
    return JSON.stringify(content);
  }

  #file(name: string, extension: string): string {
    return path.join(this.directory, `${encodePathSegment(name)}.${extension}`);
  }
}

async function readLockFile(file: string): Promise<Seen | undefined> {
  try {
    const [raw, stats] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    return { raw, content: parseContent(raw), modifiedAtMs: stats.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseContent(raw: string): LockFileContent | undefined {
  try {
    const content = JSON.parse(raw) as Partial<LockFileContent>;
    return typeof content.owner === 'string' && typeof content.expiresAt === 'number'
      ? (content as LockFileContent)
      : undefined;
  } catch {
    return undefined; // Being written, or torn by a crash: the caller judges it by its age.
  }
}
