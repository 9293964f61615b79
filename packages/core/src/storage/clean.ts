/**
 * @module Storage cleaning (CertMagic's `CleanStorage`): deletes certificates, and their ARI records, long
 * expired, lock entries left by dead holders and temp files of killed writes — at most once a day across every instance on the storage.
 */
import { readCertificateInfo } from '../certificates.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { lockNames, storageKeys } from './keys.js';
import type { Locker } from './locks.js';
import type { KeyvLike, Storage } from './storage.js';

/** Caddy keeps expired certificates two weeks (to look at after an incident), then deletes them. */
export const EXPIRED_CERTIFICATE_RETENTION_MS = 14 * 24 * 60 * 60_000;
/** Cleaning lists the whole store; once a day (across all instances) keeps that cost negligible. */
export const STORAGE_CLEAN_INTERVAL_MS = 24 * 60 * 60_000;

export interface CleanOptions {
  storage: Storage;
  locker: Locker;
  clock: Clock;
  logger: Logger;
  signal: AbortSignal;
  /** How long an expired certificate is kept; default 14 days. */
  expiredRetentionMs?: number;
  /** At most one cleaning per this interval among all instances; default a day. */
  intervalMs?: number;
}

/** A locker that can sweep lock entries left by dead holders (lock files; Redis and memory leases vanish). */
interface StaleLockSweeper {
  removeStaleLocks(): Promise<number>;
}

function sweepsStaleLocks(locker: Locker): locker is Locker & StaleLockSweeper {
  return typeof (locker as Partial<StaleLockSweeper>).removeStaleLocks === 'function';
}

interface LastClean {
  cleanedAtMs: number;
}

/**
 * Cleans when the last cleaning (by any instance, its time kept in storage) is older than the interval.
 * Runs under a lock shared by all instances.
 * @example
 * await cleanStorageIfDue({ storage, locker, clock, logger, signal });
 */
export async function cleanStorageIfDue(options: CleanOptions): Promise<void> {
  const { storage, clock, locker, signal } = options;
  const intervalMs = options.intervalMs ?? STORAGE_CLEAN_INTERVAL_MS;
  const isDue = async () => {
    const last = await storage.get<LastClean>(storageKeys.lastClean()).catch(() => undefined);
    return !last || clock.now() - last.cleanedAtMs >= intervalMs;
  };
  if (!(await isDue())) return;
  const lock = await locker.acquire(lockNames.storageClean, { signal });
  try {
    if (!(await isDue())) return;
    const removed = await removeExpired(options);
    const locks = sweepsStaleLocks(locker) ? await locker.removeStaleLocks() : 0;
    const tempFiles = await storage.removeLeftovers();
    await storage.set(storageKeys.lastClean(), { cleanedAtMs: clock.now() } satisfies LastClean);
    options.logger.info(
      { ...removed, stale_locks_removed: locks, temp_files_removed: tempFiles },
      'finished cleaning storage',
    );
  } finally {
    await lock.release();
  }
}

async function removeExpired(options: CleanOptions) {
  const { storage, clock, logger, signal } = options;
  const cutoffMs = clock.now() - (options.expiredRetentionMs ?? EXPIRED_CERTIFICATE_RETENTION_MS);
  const listed = await listEntries(storage, [
    storageKeys.certificatesPrefix,
    storageKeys.renewalInfoPrefix,
    storageKeys.statusPrefix,
  ]);
  if (!listed) logger.info({}, 'storage cannot list its keys; skipping cleaning of expired certificates');
  let certificates = 0;
  let renewalInfos = 0;
  let statuses = 0;
  for (const [key, value] of listed ?? []) {
    signal.throwIfAborted();
    const notAfter = expiryOf(key, value);
    if (notAfter === undefined || notAfter >= cutoffMs) continue;
    await storage.delete(key);
    if (key.startsWith(storageKeys.certificatesPrefix)) {
      certificates++;
      logger.info({ key, expired_at: new Date(notAfter).toISOString() }, 'deleted expired certificate');
    } else if (key.startsWith(storageKeys.statusPrefix)) {
      statuses++;
    } else {
      renewalInfos++;
    }
  }
  return { certificates_removed: certificates, renewal_info_removed: renewalInfos, status_removed: statuses };
}

/** The expiry a stored entry stands for; `undefined` when unknown (unreadable entries are left alone). */
function expiryOf(key: string, value: unknown): number | undefined {
  if (key.startsWith(storageKeys.statusPrefix)) {
    // A name's status is rewritten by every attempt and success; one untouched past all its times is a name
    // no longer managed.
    const times = Object.values(value ?? {}).filter((time): time is number => typeof time === 'number');
    return times.length > 0 ? Math.max(...times) : undefined;
  }
  if (key.startsWith(storageKeys.renewalInfoPrefix)) {
    const notAfter = (value as { certificateNotAfterMs?: unknown } | undefined)?.certificateNotAfterMs;
    return typeof notAfter === 'number' ? notAfter : undefined;
  }
  const pem = (value as { certificatePem?: unknown } | undefined)?.certificatePem;
  if (typeof pem !== 'string') return undefined;
  try {
    return readCertificateInfo(pem).notAfter;
  } catch {
    return undefined;
  }
}

interface ListableStore {
  namespace?: string;
  iterator?(namespace?: string): AsyncIterable<[string, unknown]>;
}

/**
 * The entries under `prefixes`, read through the store's own iterator (Keyv 5 wires `keyv.iterator` only for
 * some adapters). A corrupt entry is skipped, not fatal. `undefined` when the store cannot list.
 */
export async function listEntries(
  storage: Storage,
  prefixes: string[],
): Promise<Array<[string, unknown]> | undefined> {
  const keyv = storage.keyv;
  if (typeof keyv.deserializeData !== 'function') return listKeyv6Entries(keyv, prefixes);
  const store = keyv.store as ListableStore | Map<string, unknown>;
  const namespace = keyv.namespace;
  let raw: AsyncIterable<[string, unknown]> | Iterable<[string, unknown]>;
  if (store instanceof Map) raw = store.entries();
  else if (typeof store.iterator === 'function') raw = store.iterator(namespace);
  else return undefined;
  const entries: Array<[string, unknown]> = [];
  for await (const [prefixed, data] of raw) {
    // The file store and a Map yield `<namespace>:<key>`; Redis strips its own prefix. A Map also holds other
    // namespaces' entries, which the prefix filter below drops.
    const key =
      namespace && prefixed.startsWith(`${namespace}:`) ? prefixed.slice(namespace.length + 1) : prefixed;
    if (!prefixes.some((prefix) => key.startsWith(prefix))) continue;
    try {
      const envelope = (await keyv.deserializeData(data as string)) as { value?: unknown } | undefined;
      entries.push([key, envelope?.value]);
    } catch {
      // Unreadable: the manager logs and replaces it when it reads it; cleaning leaves it alone.
    }
  }
  return entries;
}

/** Keyv 6 lists through its own `iterator()`: keys without the namespace, values decoded. */
async function listKeyv6Entries(
  keyv: KeyvLike,
  prefixes: string[],
): Promise<Array<[string, unknown]> | undefined> {
  if (typeof keyv.iterator !== 'function') return undefined;
  const entries: Array<[string, unknown]> = [];
  try {
    for await (const [key, value] of keyv.iterator() as AsyncIterable<[string, unknown]>) {
      if (prefixes.some((prefix) => key.startsWith(prefix))) entries.push([key, value]);
    }
  } catch {
    return undefined; // a store that cannot list under a namespace: nothing is cleaned
  }
  return entries;
}
