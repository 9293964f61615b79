/**
 * @module Fenced certificate writes: the record carries the fencing token of the lock it was written
 * under, and a write older than the token already stored is refused. So a holder whose lease lapsed (a
 * paused process, resumed) cannot overwrite what the next holder wrote. Redis checks and writes in one
 * script; other stores compare under the name's lock (the file store: token in the record).
 */
import type { Keyv } from 'keyv';
import type { Storage } from './storage.js';
import { withStorageTimeout } from './timeout.js';

/** What a fenced record holds besides its data. */
export interface Fenced {
  fencingToken?: number;
  info?: { notAfter?: number };
}

/**
 * Writes unless the stored record has a higher token and has not expired (an expired record never blocks:
 * fencing counters lost with their locks must not lock a name out for good).
 */
const fencedSetScript = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and type(decoded.value) == 'table' then
    local token = tonumber(decoded.value.fencingToken)
    local info = decoded.value.info
    local notAfter = type(info) == 'table' and tonumber(info.notAfter) or nil
    if token and token > tonumber(ARGV[2]) and (notAfter == nil or notAfter > tonumber(ARGV[3])) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

interface RedisStoreShape {
  client: { eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown> };
  namespace?: string;
  createKeyPrefix(key: string, namespace?: string): string;
  /** Connects first if needed. */
  getClient?(): Promise<RedisStoreShape['client']>;
  opts?: { dialect?: unknown };
}

/**
 * Writes `record` (with `fencingToken` set) at `key` unless storage has a newer token's record.
 * @example if ((await writeFenced(storage, key, record, lock.fencingToken, Date.now())) === 'refused') …
 */
export async function writeFenced<T extends Fenced>(
  storage: Storage,
  key: string,
  record: T,
  fencingToken: number,
  nowMs: number,
): Promise<'written' | 'refused'> {
  const fenced = { ...record, fencingToken };
  const redis = redisStoreOf(storage.keyv);
  const keyv = storage.keyv as unknown as Partial<Keyv> & { _getKeyPrefix?(key: string): string };
  // Keyv 5 tells how it names and serialises an entry; with another Keyv the compare below is the fence.
  if (redis && typeof keyv._getKeyPrefix === 'function' && typeof keyv.serializeData === 'function') {
    const redisKey = redis.createKeyPrefix(keyv._getKeyPrefix(key), redis.namespace);
    const value = await keyv.serializeData({ value: fenced, expires: undefined });
    const run = async () => {
      const client = typeof redis.getClient === 'function' ? await redis.getClient() : redis.client;
      return client.eval(fencedSetScript, {
        keys: [redisKey],
        arguments: [String(value), String(fencingToken), String(nowMs)],
      });
    };
    try {
      const written = await withStorageTimeout(run(), storage.timeoutMs, `fenced set ${key}`);
      storage.health.answered();
      return Number(written) === 1 ? 'written' : 'refused';
    } catch (error) {
      storage.health.failed(error);
      throw error;
    }
  }
  const current = await storage.get<Fenced>(key).catch(() => undefined); // unreadable: replaced
  if (isNewer(current, fencingToken, nowMs)) return 'refused';
  await storage.set(key, fenced);
  return 'written';
}

function isNewer(current: Fenced | undefined, fencingToken: number, nowMs: number): boolean {
  const token = current?.fencingToken;
  const notAfter = current?.info?.notAfter;
  return (
    typeof token === 'number' && token > fencingToken && (typeof notAfter !== 'number' || notAfter > nowMs)
  );
}

/** `@keyv/redis` with a node-redis client (a shape check, so a second copy of the package works too). */
function redisStoreOf(keyv: { store?: unknown }): RedisStoreShape | undefined {
  const store = keyv.store as Partial<RedisStoreShape> | undefined;
  if (store?.opts?.dialect !== 'redis' || typeof store.createKeyPrefix !== 'function') return undefined;
  if (typeof store.client?.eval !== 'function') return undefined;
  return store as RedisStoreShape;
}
