/** @module The manager's view of storage: a namespaced Keyv that throws on store errors, plus typed errors. */
import os from 'node:os';
import path from 'node:path';
import { Keyv } from 'keyv';
import { errorFields, type Logger, silentLogger } from '../log.js';
import { FileStore } from './file-store.js';
import { DEFAULT_STORAGE_PROBE_MS, StorageHealth } from './health.js';
import { DEFAULT_STORAGE_TIMEOUT_MS, withStorageTimeout } from './timeout.js';

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
    /** The entry as stored, when it could be read back: it is moved aside, never just overwritten. */
    readonly raw?: unknown,
  ) {
    super(`storage entry "${key}" is corrupt: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'CorruptEntryError';
  }
}

export interface StorageOptions {
  /** Set when the storage is the default file store: the lock-file locker lives beside it. */
  directory?: string;
  /** Bound on each operation (default 3 s): a stalled store fails the operation, never hangs it. */
  timeoutMs?: number;
  /** How often a store found down is probed (default 1 s). */
  probeEveryMs?: number;
  logger?: Logger;
}

/** Read while the store is down to notice its return; never written. */
const PROBE_KEY = 'health-probe';

/**
 * Thin wrapper over Keyv. A failing store throws (Keyv's `throwOnErrors`, and the store's own where it has
 * one, as `@keyv/redis` does), so "the store is down" can never read as "no certificate" and trigger a
 * re-issue. Every operation is bounded by `timeoutMs`; `health` knows whether the store answers.
 */
export class Storage {
  readonly directory?: string;
  readonly timeoutMs: number;
  readonly health: StorageHealth;
  #connecting?: Promise<unknown>;
  /** Keyv 6 store failures seen so far (its `error` events); an operation during which one happened throws. */
  private failures = 0;
  private lastFailure: unknown;

  constructor(
    readonly keyv: KeyvLike,
    /** The file store's directory, or the options. */
    optionsOrDirectory: StorageOptions | string = {},
  ) {
    const options =
      typeof optionsOrDirectory === 'string' ? { directory: optionsOrDirectory } : optionsOrDirectory;
    // @keyv/redis swallows its errors (returning undefined: "absent") unless told to throw.
    const store = keyv.store as { throwOnErrors?: boolean } | undefined;
    if (typeof store?.throwOnErrors === 'boolean') store.throwOnErrors = true;
    if ('throwOnErrors' in keyv) keyv.throwOnErrors = true;
    else {
      keyv.on?.('error', (error) => {
        this.failures += 1;
        this.lastFailure = error;
      });
    }
    if (options.directory !== undefined) this.directory = options.directory;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS;
    this.health = new StorageHealth(
      () => this.get(PROBE_KEY),
      options.probeEveryMs ?? DEFAULT_STORAGE_PROBE_MS,
      (options.logger ?? silentLogger).child({ logger: 'storage' }),
    );
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      return ((await this.#bounded('get', key, () => this.keyv.get(key))) as T | null) ?? undefined;
    } catch (error) {
      if (error instanceof SyntaxError) throw new CorruptEntryError(key, error, await this.#raw(key));
      if (error instanceof StoreError && error.cause instanceof SyntaxError) {
        throw new CorruptEntryError(key, error.cause, await this.#raw(key));
      }
      throw error;
    }
  }

  async set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    // A store may report a failed write by answering false instead of throwing.
    const written = await this.#bounded('set', key, () => this.keyv.set(key, value, ttlMs));
    if (written === false) throw new Error(`storage did not write ${key}`);
  }

  async delete(key: string): Promise<void> {
    await this.#bounded('delete', key, () => this.keyv.delete(key));
  }

  /**
   * Removes what killed writes left behind (the file store's temp files, which may hold private keys);
   * resolves with how many. Other stores write atomically themselves: 0.
   */
  async removeLeftovers(): Promise<number> {
    const store = this.keyv.store as { removeStaleTempFiles?: () => Promise<number> };
    return typeof store?.removeStaleTempFiles === 'function' ? store.removeStaleTempFiles() : 0;
  }

  /** The stored text behind a key whose value Keyv cannot parse; `undefined` when even that fails. */
  async #raw(key: string): Promise<unknown> {
    const keyv = this.keyv as KeyvLike & { _getKeyPrefix?(key: string): string };
    const prefixed = typeof keyv._getKeyPrefix === 'function' ? keyv._getKeyPrefix(key) : key;
    const store = keyv.store as { get?(key: string): Promise<unknown> };
    if (typeof store?.get !== 'function') return undefined;
    return withStorageTimeout(store.get(prefixed), this.timeoutMs, `get ${key}`).catch(() => undefined);
  }

  /**
   * Resolves once the store's client has connected (@keyv/redis connects on first use; a cluster client
   * is "open" before it knows its slots, and commands sent then fail with "reading 'master'"). Shared by
   * every first operation; retried after a failure.
   */
  #connected(): Promise<unknown> {
    const store = this.keyv.store as { getClient?: () => Promise<unknown>; opts?: { dialect?: unknown } };
    if (store?.opts?.dialect !== 'redis' || typeof store.getClient !== 'function') return Promise.resolve();
    this.#connecting ??= store.getClient().catch((error: unknown) => {
      this.#connecting = undefined;
      throw error;
    });
    return this.#connecting;
  }

  /**
   * One Keyv call, bounded by the timeout, after the first connect; throws if the store failed meanwhile
   * (Keyv 6 has no `throwOnErrors`: a failure is an `error` event, so an operation overlapping any failure
   * throws — conservative: never "missing").
   */
  async #bounded<T>(operation: string, key: string, call: () => Promise<T>): Promise<T> {
    try {
      const run = async () => {
        await this.#connected();
        const before = this.failures;
        const result = await call();
        if (this.failures !== before) throw new StoreError(operation, key, this.lastFailure);
        return result;
      };
      const result = await withStorageTimeout(run(), this.timeoutMs, `${operation} ${key}`);
      this.health.answered();
      return result;
    } catch (error) {
      // A corrupt entry is an answer: the store works.
      if (
        error instanceof SyntaxError ||
        (error instanceof StoreError && error.cause instanceof SyntaxError)
      ) {
        this.health.answered();
      } else this.health.failed(error);
      throw error;
    }
  }
}

/** {@link Storage.removeLeftovers}, logged; never rejects (a failure is retried by the cleaning pass). */
export async function removeLeftoversAtStart(storage: Storage, logger: Logger): Promise<void> {
  try {
    const removed = await storage.removeLeftovers();
    if (removed > 0)
      logger.info({ temp_files_removed: removed }, 'removed temp files left by interrupted writes');
  } catch (error) {
    logger.warn(errorFields(error), 'could not remove temp files left by interrupted writes');
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
export function openStorage(
  option?: KeyvLike | string,
  options: Omit<StorageOptions, 'directory'> = {},
): Storage {
  if (isKeyvLike(option)) return new Storage(option, options);
  const directory = path.resolve(option ?? defaultDataDirectory());
  const store = new FileStore({ directory });
  const keyv = new Keyv({ store, namespace: 'autotls', throwOnErrors: true });
  // Keyv only wires iteration for the stores it knows; ours can list its keys too.
  keyv.iterator = keyv.generateIterator(store.iterator.bind(store));
  return new Storage(keyv, { ...options, directory });
}
