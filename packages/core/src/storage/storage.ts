/** @module The manager's view of storage: a namespaced Keyv that throws on store errors, plus typed errors. */
import os from 'node:os';
import path from 'node:path';
import { Keyv } from 'keyv';
import { FileStore } from './file-store.js';

/**
 * What autotls needs of a Keyv instance, by shape: Keyv 5 and Keyv 6 both fit, and so does a second copy
 * of either package (an app's own `keyv` next to the one core carries for its file store).
 */
export interface KeyvLike {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  /** Keyv 5: store failures throw instead of reading as "missing". */
  throwOnErrors?: boolean;
  /** Keyv 6 reports store failures only as `error` events. */
  on?(event: 'error', listener: (error: unknown) => void): unknown;
  namespace?: string | undefined;
  store?: unknown;
  iterator?: unknown;
  /** Keyv 5 only: the store's raw entries are decoded with it. */
  deserializeData?(data: string): Promise<unknown> | unknown;
}

/** Whether `value` can be used as storage: a Keyv (any major version) rather than a directory. */
export function isKeyvLike(value: unknown): value is KeyvLike {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as Record<string, unknown>;
  return ['get', 'set', 'delete'].every((method) => typeof candidate[method] === 'function');
}

/** A Keyv 6 store failure, which Keyv 6 reports as an event and an `undefined`/`false` result. */
export class StoreError extends Error {
  constructor(
    readonly operation: string,
    readonly key: string,
    cause: unknown,
  ) {
    super(`storage ${operation} "${key}" failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'StoreError';
  }
}

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
  /** Keyv 6 store failures seen so far (its `error` events); an operation during which one happened throws. */
  private failures = 0;
  private lastFailure: unknown;

  constructor(
    readonly keyv: KeyvLike,
    /** Set when the storage is the default file store: the lock-file locker lives beside it. */
    readonly directory?: string,
  ) {
    if ('throwOnErrors' in keyv) {
      keyv.throwOnErrors = true;
      return;
    }
    keyv.on?.('error', (error) => {
      this.failures += 1;
      this.lastFailure = error;
    });
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      return ((await this.guarded('get', key, () => this.keyv.get(key))) as T | null) ?? undefined;
    } catch (error) {
      if (error instanceof SyntaxError) throw new CorruptEntryError(key, error);
      if (error instanceof StoreError && error.cause instanceof SyntaxError) {
        throw new CorruptEntryError(key, error.cause);
      }
      throw error;
    }
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    await this.guarded('set', key, () => this.keyv.set(key, value, ttlMs));
  }

  async delete(key: string): Promise<void> {
    await this.guarded('delete', key, () => this.keyv.delete(key));
  }

  /**
   * Runs one Keyv call and throws if the store failed meanwhile. Keyv 6 has no `throwOnErrors`: a failure
   * is an `error` event, so an operation overlapping any failure throws (conservative: never "missing").
   */
  private async guarded(operation: string, key: string, call: () => Promise<unknown>): Promise<unknown> {
    const before = this.failures;
    const result = await call();
    if (this.failures !== before) throw new StoreError(operation, key, this.lastFailure);
    return result;
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
export function openStorage(option?: KeyvLike | string): Storage {
  if (isKeyvLike(option)) return new Storage(option);
  const directory = path.resolve(option ?? defaultDataDirectory());
  const store = new FileStore({ directory });
  const keyv = new Keyv({ store, namespace: 'autotls', throwOnErrors: true });
  // Keyv only wires iteration for the stores it knows; ours can list its keys too.
  keyv.iterator = keyv.generateIterator(store.iterator.bind(store));
  return new Storage(keyv, directory);
}
