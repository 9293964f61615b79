/**
 * @module The renewal schedule in Redis: a sorted set of names by check time (and a hash of the serials
 * those times are for), and a second sorted set by the sequence number of their last write, so each
 * instance reads only the names written since its last look.
 */
import type { RedisLockClient } from './lock-redis.js';
import { type ScheduleEntry, ScheduleIndex, type ScheduleTimes } from './schedule-index.js';

/** Entries per script call: keeps one call's arguments and Redis's blocking time small. */
const WRITE_BATCH = 1_000;
/**
 * A call Redis has not answered by then fails (node-redis keeps reconnecting and queueing while Redis is
 * down): the pass logs it and goes on with what it has, instead of hanging.
 */
export const SCHEDULE_CALL_TIMEOUT_MS = 10_000;

const writeScript = `
for i = 1, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i + 2], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[i + 2])
end
return 1`;

const readAllScript = `
return {
  redis.call('GET', KEYS[3]) or '0',
  redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[4])
}`;

const readSinceScript = `
local written = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf', 'WITHSCORES')
local out = {}
for i = 1, #written, 2 do
  out[#out + 1] = written[i]
  out[#out + 1] = written[i + 1]
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], written[i]) or ''
  out[#out + 1] = redis.call('HGET', KEYS[4], written[i]) or ''
end
return out`;

export class RedisScheduleIndex extends ScheduleIndex {
  readonly #client: RedisLockClient;
  readonly #keys: string[];
  /** The write sequence number seen last. */
  #sequence = '0';
  #connecting?: Promise<unknown>;
  readonly #callTimeoutMs: number;

  constructor(client: RedisLockClient, namespace: string, callTimeoutMs = SCHEDULE_CALL_TIMEOUT_MS) {
    super();
    this.#callTimeoutMs = callTimeoutMs;
    this.#client = client;
    // An unheard 'error' event would crash the server; a failing call rejects, and the pass logs it.
    (client as { on?(event: 'error', listener: () => void): unknown }).on?.('error', () => {});
    // One hash tag, so the keys share a cluster slot.
    const base = `autotls:schedule:{${namespace}}`;
    this.#keys = [`${base}:times`, `${base}:written`, `${base}:sequence`, `${base}:serials`];
  }

  async close(): Promise<void> {
    const client = this.#client as RedisLockClient & { isReady?: boolean; destroy?(): void };
    if (!client.isOpen) return;
    // Connecting to (or waiting on) a Redis that does not answer: stop at once rather than wait for it.
    if (client.isReady === false && client.destroy) return client.destroy();
    await client.close();
  }

  protected async readAll(): Promise<ScheduleTimes> {
    const [sequence, flat, serialsFlat] = (await this.#eval(readAllScript, [])) as [
      string | null,
      string[],
      string[],
    ];
    this.#sequence = String(sequence ?? '0');
    const serials = new Map<string, string>();
    for (let i = 0; i + 1 < serialsFlat.length; i += 2) {
      serials.set(serialsFlat[i] as string, serialsFlat[i + 1] as string);
    }
    const times = new Map<string, ScheduleEntry>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i] as string;
      times.set(name, { atMs: Number(flat[i + 1]), serial: serials.get(name) ?? '' });
    }
    return times;
  }

  protected async readSince(): Promise<ScheduleTimes> {
    const flat = (await this.#eval(readSinceScript, [this.#sequence])) as string[];
    const times = new Map<string, ScheduleEntry>();
    for (let i = 0; i + 3 < flat.length; i += 4) {
      this.#sequence = flat[i + 1] as string;
      const atMs = Number(flat[i + 2]);
      const serial = flat[i + 3] as string;
      if (flat[i + 2] !== '' && Number.isFinite(atMs)) times.set(flat[i] as string, { atMs, serial });
    }
    return times;
  }

  protected async append(times: ScheduleTimes): Promise<void> {
    let batch: string[] = [];
    for (const [name, { atMs, serial }] of times) {
      batch.push(String(atMs), serial, name);
      if (batch.length >= 3 * WRITE_BATCH) {
        await this.#eval(writeScript, batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.#eval(writeScript, batch);
  }

  async #eval(script: string, args: string[]): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      const ms = this.#callTimeoutMs;
      timer = setTimeout(
        () => reject(new Error(`Redis did not answer the renewal schedule within ${ms} ms`)),
        ms,
      );
      timer.unref();
    });
    try {
      return await Promise.race([this.#call(script, args), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #call(script: string, args: string[]): Promise<unknown> {
    if (!this.#client.isOpen) {
      this.#connecting ??= this.#client.connect().finally(() => {
        this.#connecting = undefined;
      });
      await this.#connecting;
    }
    return this.#client.eval(script, { keys: this.#keys, arguments: args });
  }
}
