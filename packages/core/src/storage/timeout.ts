/** @module Storage and lock operations that give up: a stalled store (a paused Redis) must never hold the manager. */

/** Default bound on one storage or lock operation: far above a healthy store's milliseconds, short for a handshake. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 3_000;

/** The store did not answer in time. Like any store failure, it never reads as "absent". */
export class StorageTimeoutError extends Error {
  readonly code = 'ESTORAGETIMEOUT';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`storage ${operation} did not answer within ${timeoutMs} ms`);
    this.name = 'StorageTimeoutError';
  }
}

/**
 * `operation`'s result, or a {@link StorageTimeoutError} after `timeoutMs`. The operation itself is not
 * cancelled (a store client cannot take back a sent command); its late result is dropped.
 * @example const record = await withStorageTimeout(keyv.get(key), 3_000, `get ${key}`);
 */
export function withStorageTimeout<T>(operation: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StorageTimeoutError(what, timeoutMs)), timeoutMs);
    timer.unref();
  });
  operation.catch(() => {}); // a late failure after the timeout has nobody left to tell
  return Promise.race([operation, timeout]).finally(() => clearTimeout(timer));
}
