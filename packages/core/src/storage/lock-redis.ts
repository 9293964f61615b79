/** @module The cluster locker: leases as Redis keys (`SET NX PX`), renewed and released only by their owner. */
import { type Claim, LeaseLocker, type LeaseOptions } from './locks.js';

/** The part of a node-redis (`@redis/client`) client or cluster the locker uses. */
export interface RedisLockClient {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  close(): Promise<unknown>;
}

export interface RedisLockerOptions extends LeaseOptions {
  /** Connected on first use if it is not open yet. */
  client: RedisLockClient;
  /** Close `client` in `close()`: for a connection made only for this locker. Default false. */
  closeClient?: boolean;
}

/** Key prefix of every lock; the `{name}` hash tag keeps a lock and its fencing counter on one cluster slot. */
const keyPrefix = 'autotls:locks:';

/**
 * Taking the lock and counting the acquisition happen in one script, so fencing tokens grow in the order
 * the lock was actually held (a separate `INCR` could land after the lease lapsed and a newer holder's).
 */
const acquireScript = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`;

const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/**
 * Locks shared by every instance using one Redis: `autotls:locks:{<name>}` holds the owner's random id
 * with a `leaseMs` expiry; renew and release compare the id first, so a holder never touches a lock that
 * has passed to someone else. Waiters poll every `pollMs`.
 *
 * @example
 * const locker = new RedisLocker({ client: createClient({ url: 'redis://10.0.0.5:6379' }), closeClient: true });
 */
export class RedisLocker extends LeaseLocker {
  readonly client: RedisLockClient;
  readonly #closeClient: boolean;
  #connecting?: Promise<unknown>;

  constructor(options: RedisLockerOptions) {
    super(options);
    this.client = options.client;
    this.#closeClient = options.closeClient ?? false;
  }

  protected claim(name: string, owner: string, signal: AbortSignal): Promise<number> {
    return this.poll(signal, async () => {
      const keys = [lockKey(name), `${lockKey(name)}:fencing`];
      const fencingToken = Number(await this.#eval(acquireScript, keys, [owner, String(this.leaseMs)]));
      return fencingToken > 0 ? fencingToken : undefined;
    });
  }

  protected async extend({ name, owner }: Claim): Promise<boolean> {
    return Number(await this.#eval(renewScript, [lockKey(name)], [owner, String(this.leaseMs)])) === 1;
  }

  protected async unclaim({ name, owner }: Claim): Promise<void> {
    await this.#eval(releaseScript, [lockKey(name)], [owner]);
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      if (this.#closeClient && this.client.isOpen) await this.client.close();
    }
  }

  async #eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    if (!this.client.isOpen) {
      this.#connecting ??= this.client.connect().finally(() => {
        this.#connecting = undefined;
      });
      await this.#connecting;
    }
    return this.client.eval(script, { keys, arguments: args });
  }
}

function lockKey(name: string): string {
  return `${keyPrefix}{${name}}`;
}
