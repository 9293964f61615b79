/**
 * @module Order admission: an attempt takes its new-order slot from the rate limiter before it takes the
 * name's lock, so no instance sits on locks it cannot use while other instances idle. With Redis storage
 * the limiter is the cluster's (10 orders per 10 s per CA account for all instances together, in Redis);
 * otherwise it is this process's.
 */
import type { Clock } from './clock.js';
import { sleep } from './clock.js';
import type { Logger } from './log.js';
import type { RateLimiters } from './ratelimit.js';

/** A slot for one new order; given back when the attempt ends up placing none. */
export interface OrderSlot {
  giveBack(): Promise<void>;
}

export interface OrderAdmission {
  /** Resolves once a new order for `accountKey` (a CA and account) fits in the window; `name` is for logs. */
  take(accountKey: string, signal: AbortSignal, name?: string): Promise<OrderSlot>;
}

/** The two log lines of a wait, as the issuer's own limiter writes them. */
function waitLogs(logger: Logger, accountKey: string, name: string | undefined) {
  const fields = { identifiers: name === undefined ? [] : [name], ca: accountKey.split('|')[0] };
  return {
    onWait: () => logger.info(fields, 'waiting on internal rate limiter'),
    onDone: () => logger.info(fields, 'done waiting on internal rate limiter'),
  };
}

/** This process's limiters (the issuers' own), for storage that only this machine shares. */
export class LocalAdmission implements OrderAdmission {
  constructor(
    private readonly limiters: RateLimiters,
    private readonly logger: Logger,
  ) {}

  async take(accountKey: string, signal: AbortSignal, name?: string): Promise<OrderSlot> {
    const limiter = this.limiters.for(accountKey);
    const takenAtMs = await limiter.take(signal, waitLogs(this.logger, accountKey, name));
    return { giveBack: async () => limiter.giveBack(takenAtMs) };
  }
}

/** What the Redis limiter needs: one bounded script call (the Redis locker's connection). */
export interface ScriptRunner {
  evalScript(script: string, keys: string[], args: string[]): Promise<unknown>;
}

/**
 * A sliding window as a sorted set of slot ids scored by Redis's own clock (instances' clocks may
 * disagree): drop what left the window, then admit if there is room, else answer how long until there is.
 */
const takeScript = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local windowMs = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs - windowMs)
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], nowMs, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], windowMs)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], count - tonumber(ARGV[1]), count - tonumber(ARGV[1]), 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + windowMs - nowMs)`;

const giveBackScript = `return redis.call('ZREM', KEYS[1], ARGV[1])`;

const WAKE_JITTER_MS = 200;
/** Never wait longer than this between two looks: a slot given back elsewhere is taken soon. */
const MAX_POLL_MS = 1_000;

/** The cluster's limiter, kept in Redis: every instance on that Redis shares its window. */
export class RedisAdmission implements OrderAdmission {
  #sequence = 0;

  constructor(
    private readonly redis: ScriptRunner,
    private readonly orders: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  async take(accountKey: string, signal: AbortSignal, name?: string): Promise<OrderSlot> {
    const logs = waitLogs(this.logger, accountKey, name);
    let waited = false;
    // The `{…}` hash tag keeps the key on one Redis Cluster slot, as scripts need.
    const key = `autotls:ratelimit:{${accountKey}}`;
    const slotId = `${process.pid}-${this.clock.now()}-${this.#sequence++}-${Math.random().toString(36).slice(2)}`;
    for (;;) {
      signal.throwIfAborted();
      const args = [String(this.orders), String(this.windowMs), slotId];
      let waitMs: number;
      try {
        waitMs = Number(await this.redis.evalScript(takeScript, [key], args));
      } catch (error) {
        // A script that timed out may still run once Redis answers; the give-back queued behind it on the
        // same connection frees that slot instead of leaving it taken for a window by nobody.
        this.redis.evalScript(giveBackScript, [key], [slotId]).catch(() => {});
        throw error;
      }
      if (waitMs === 0) {
        if (waited) logs.onDone();
        return { giveBack: async () => void (await this.redis.evalScript(giveBackScript, [key], [slotId])) };
      }
      if (!waited) logs.onWait();
      waited = true;
      // Jitter, so that when the window opens the slots go to every waiting instance, not the first caller.
      await sleep(Math.min(waitMs, MAX_POLL_MS) + Math.random() * WAKE_JITTER_MS, signal);
    }
  }
}

/**
 * The cluster's limiter when the locker runs on Redis (so does storage, as a rule), else this process's.
 * @example const admission = admissionFor(locker, rateLimiters, { orders: 10, windowMs: 10_000 }, clock, logger);
 */
export function admissionFor(
  locker: unknown,
  limiters: RateLimiters,
  limits: { orders: number; windowMs: number },
  clock: Clock,
  logger: Logger,
): OrderAdmission {
  if (typeof (locker as Partial<ScriptRunner>)?.evalScript === 'function') {
    return new RedisAdmission(locker as ScriptRunner, limits.orders, limits.windowMs, clock, logger);
  }
  return new LocalAdmission(limiters, logger);
}
