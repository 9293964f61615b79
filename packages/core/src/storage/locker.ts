/** @module Picks the locker that matches the storage: lock files beside the file store, Redis beside Redis. */
import path from 'node:path';
import { FileStore } from './file-store.js';
import { FileLocker } from './lock-file.js';
import { MemoryLocker } from './lock-memory.js';
import { type RedisLockClient, RedisLocker } from './lock-redis.js';
import type { LeaseOptions, Locker } from './locks.js';
import type { Storage } from './storage.js';

/**
 * The locker for `storage` when none is configured:
 * - the file store: a {@link FileLocker} in `<directory>/locks`, shared by the processes of this machine;
 * - a Keyv on `@keyv/redis`: a {@link RedisLocker} on its own connection (a duplicate of the store's
 *   client, watched for errors and closed by the locker's `close()`), shared by every instance using that
 *   Redis; its calls are bounded by the storage's timeout;
 * - anything else: a {@link MemoryLocker}, which excludes only within this process. A store shared between
 *   machines that is not Redis (Postgres, MongoDB, ...) needs an explicit `locker` option for a cluster,
 *   or instances will obtain the same certificate concurrently.
 *
 * @example
 * const locker = createDefaultLocker(openStorage('/var/lib/autotls'));
 */
export function createDefaultLocker(storage: Storage, options: LeaseOptions = {}): Locker {
  const operationTimeoutMs = storage.timeoutMs;
  const store: unknown = storage.keyv.store;
  const directory = store instanceof FileStore ? store.directory : storage.directory;
  if (directory !== undefined) {
    return new FileLocker({ ...options, directory: path.join(directory, 'locks') });
  }
  const client = redisClientOf(store);
  if (client) {
    return new RedisLocker({ ...options, operationTimeoutMs, client: client.duplicate(), closeClient: true });
  }
  if (!(store instanceof Map)) {
    options.log?.warn(
      { store: (store as { constructor?: { name?: string } })?.constructor?.name },
      'storage is neither the file store nor Redis: locks only hold within this process',
    );
  }
  return new MemoryLocker(options);
}

/** The node-redis client of a `@keyv/redis` store (by shape, so a second copy of the package works too). */
export function redisClientOf(store: unknown): { duplicate(): RedisLockClient } | undefined {
  const { opts, client } = (store ?? {}) as {
    opts?: { dialect?: unknown };
    client?: Record<string, unknown>;
  };
  // `isOpen` tells a node-redis client apart from ioredis-style ones, whose `eval` takes other arguments.
  // @keyv/redis 5 says `dialect: 'redis'`; 6 has no `opts` and is told apart by its class name.
  const redis = opts?.dialect === 'redis' || (store as object)?.constructor?.name === 'KeyvRedis';
  if (!redis || typeof client?.duplicate !== 'function' || !('isOpen' in client)) {
    return undefined;
  }
  return client as unknown as { duplicate(): RedisLockClient };
}
