/** @module Picks the renewal schedule index that matches the storage, as the locker is picked. */
import { FileStore } from './file-store.js';
import { redisClientOf } from './locker.js';
import { FileScheduleIndex } from './schedule-file.js';
import type { ScheduleIndex } from './schedule-index.js';
import { RedisScheduleIndex } from './schedule-redis.js';
import type { Storage } from './storage.js';

/**
 * The index beside the storage: a file in the file store's directory, sorted sets in Redis. Undefined for
 * other stores: their instances keep looking at every name every pass (they cannot tell who wrote what).
 */
export function openScheduleIndex(storage: Storage): ScheduleIndex | undefined {
  const store: unknown = storage.keyv.store;
  const directory = store instanceof FileStore ? store.directory : storage.directory;
  if (directory !== undefined) return new FileScheduleIndex(directory);
  const client = redisClientOf(store);
  if (client) return new RedisScheduleIndex(client.duplicate(), storage.keyv.namespace ?? '');
  return undefined;
}

/**
 * Moves `name` to `atMs` in the storage's shared schedule, for every running instance to look at it then
 * (the CLI's renewal request); nothing without a schedule, whose instances look at every name every pass.
 */
export async function rescheduleInStorage(storage: Storage, name: string, atMs: number): Promise<void> {
  const index = openScheduleIndex(storage);
  if (!index) return;
  try {
    // A serial no certificate has, so every instance sees the entry as moved.
    await index.write(new Map([[name, { atMs, serial: `requested-${atMs}` }]]));
  } finally {
    await index.close();
  }
}
