/** @module The cluster locker: leases as Redis keys (`SET NX PX`), renewed and released only by their owner. */
import { errorFields } from '../log.js';
import { type Claim, LeaseLocker, type LeaseOptions } from './locks.js';
import { DEFAULT_STORAGE_TIMEOUT_MS, StorageTimeoutError, withStorageTimeout } from './timeout.js';

/** The part of a node-redis (`@redis/client`) client or cluster the locker uses. */
export interface RedisLockClient {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  close(): Promise<unknown>;
  /** Drops the connection at once (node-redis); used when a graceful close does not finish in time. */
  destroy?(): void;
  on?(event: 'error', listener: (error: unknown) => void): unknown;
}

export interface RedisLockerOptions extends LeaseOptions {
  /** Connected on first use if it is not open yet. */
  client: RedisLockClient;
  /** Close `client` in `close()`: for a connection made only for this locker. Default false. */
  closeClient?: boolean;
  /** Bound on each Redis call (default 3 s): a stalled Redis fails the call, never hangs a lock. */
  operationTimeoutMs?: number;
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
  readonly #timeoutMs: number;
  #connecting?: Promise<unknown>;

  constructor(options: RedisLockerOptions) {
    super(options);
    this.client = options.client;
    this.#closeClient = options.closeClient ?? false;
    this.#timeoutMs = options.operationTimeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS;
    // A connection this locker owns is this locker's to watch: node-redis emits `error` on every lost
    // connection (and reconnects by itself), and an `error` nobody listens to ends the process.
    if (this.#closeClient) {
      this.client.on?.('error', (error: unknown) =>
        this.log.warn({ ...errorFields(error) }, 'lock connection to Redis failed; reconnecting'),
      );
    }
  }

  protected claim(name: string, owner: string, signal: AbortSignal): Promise<number> {
    return this.poll(signal, async () => {
      const keys = [lockKey(name), `${lockKey(name)}:fencing`];
      try {
        const fencingToken = Number(await this.#eval(acquireScript, keys, [owner, String(this.leaseMs)]));
        return fencingToken > 0 ? fencingToken : undefined;
      } catch (error) {
        // The SET may still run once Redis answers again; the release queued behind it on the same
        // connection gives the lock straight back instead of leaving it to lapse after a lease.
        if (error instanceof StorageTimeoutError) {
          this.#eval(releaseScript, [lockKey(name)], [owner], 10 * this.#timeoutMs).catch(() => {});
        }
        throw error;
      }
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
      if (this.#closeClient && this.client.isOpen) {
        await withStorageTimeout(this.client.close(), this.#timeoutMs, 'close lock connection').catch(() => {
          try {
            this.client.destroy?.(); // a graceful close that did not finish (Redis stalled): drop it
          } catch {
            // Already closing or closed: nothing is left to drop.
          }
        });
      }
    }
  }

  /** Runs a script on the locker's connection, bounded by its timeout (the cluster rate limiter uses it). */
  evalScript(script: string, keys: string[], args: string[]): Promise<unknown> {
    return this.#eval(script, keys, args);
  }

  #eval(script: string, keys: string[], args: string[], timeoutMs = this.#timeoutMs): Promise<unknown> {
    return withStorageTimeout(this.#evalUnbounded(script, keys, args), timeoutMs, `lock ${keys[0]}`);
  }

  async #evalUnbounded(script: string, keys: string[], args: string[]): Promise<unknown> {
    // Every call waits for the first connect to finish, not just to start: a cluster client is open
    // before it knows its slots, and a script sent then fails with "reading 'master'".
    if (!this.#connecting && !this.client.isOpen) {
      this.#connecting = this.client.connect().catch((error: unknown) => {
        this.#connecting = undefined;
        throw error;
      });
    }
    await this.#connecting;
    return this.client.eval(script, { keys, arguments: args });
  }
}

function lockKey(name: string): string {
  return `${keyPrefix}{${name}}`;
}
