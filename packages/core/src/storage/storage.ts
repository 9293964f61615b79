/** @module The manager's view of storage: a namespaced Keyv that throws on store errors, plus typed errors. */
import os from 'node:os';
import path from 'node:path';
import { Keyv } from 'keyv';
import { FileStore } from './file-store.js';

/** A stored value that cannot be read back (truncated file, foreign data). It is replaced, never trusted. */
export class CorruptEntryError extends Error {
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(`storage entry "${key}" is corrupt: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'CorruptEntryError';
  }
}

/**
 * Thin wrapper over Keyv. A failing store throws (Keyv's `throwOnErrors`), so "the store is down" can
 * never read as "no certificate" and trigger a re-issue.
 */
export class Storage {
  constructor(
    readonly keyv: Keyv,
    /** Set when the storage is the default file store: the lock-file locker lives beside it. */
    readonly directory?: string,
  ) {
    keyv.throwOnErrors = true;
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      return (await this.keyv.get<T>(key)) ?? undefined;
    } catch (error) {
      if (error instanceof SyntaxError) throw new CorruptEntryError(key, error);
      throw error;
    }
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    await this.keyv.set(key, value, ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.keyv.delete(key);
  }
}

/** `$AUTOTLS_DATA`, else the platform's per-user data directory. */
export function defaultDataDirectory(): string {
  if (process.env.AUTOTLS_DATA) return process.env.AUTOTLS_DATA;
  const home = os.homedir();
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'autotls');
  if (process.platform === 'win32') {
    return path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'autotls');
  }
  return path.join(process.env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'autotls');
}

/** A Keyv instance is used as given (namespaced by its owner); a string is a directory for the file store. */
export function openStorage(option?: Keyv | string): Storage {
  if (option instanceof Keyv) return new Storage(option);
  const directory = path.resolve(option ?? defaultDataDirectory());
  const store = new FileStore({ directory });
  const keyv = new Keyv({ store, namespace: 'autotls', throwOnErrors: true });
  // Keyv only wires iteration for the stores it knows; ours can list its keys too.
  keyv.iterator = keyv.generateIterator(store.iterator.bind(store));
  return new Storage(keyv, directory);
}
