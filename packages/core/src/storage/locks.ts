/** @module Locks that serialise obtain/renew per name, in one process, across processes on one machine, or across a cluster. */
import { randomUUID } from 'node:crypto';
import { sleep } from '../clock.js';
import { errorFields, type Logger, silentLogger } from '../log.js';

/** A held lock. The holder's lease is renewed in the background until `release()`. */
export interface Lock {
  readonly name: string;
  /** Grows with every acquisition of this name: a store can refuse writes carrying an older token. */
  readonly fencingToken: number;
  release(): Promise<void>;
}

export interface AcquireOptions {
  signal?: AbortSignal;
}

/**
 * Mutual exclusion by name with leases: a holder that dies stops renewing, and its lock frees itself
 * after `leaseMs`.
 */
export interface Locker {
  acquire(name: string, options?: AcquireOptions): Promise<Lock>;
  /** Stops lease renewals and releases every lock this locker holds. */
  close(): Promise<void>;
}

/** Caddy's stale-lock age: a dead holder's names resume within about this long. */
export const DEFAULT_LEASE_MS = 10_000;
/** A waiter's retry interval for a lock held elsewhere. */
export const DEFAULT_LOCK_POLL_MS = 250;
/** Leases renewed this many times per lease, so one late renewal is harmless. */
const RENEWALS_PER_LEASE = 3;

/** Lease timing shared by every locker; tests shrink these to tens of milliseconds. */
export interface LeaseOptions {
  /** How long a lock outlives its holder's last renewal. Default 10 s, Caddy's stale-lock age. */
  leaseMs?: number;
  /** How often a waiter retries a lock held elsewhere. Default 250 ms. */
  pollMs?: number;
  /** How often the holder renews its lease. Default a third of the lease, so one late renewal is harmless. */
  renewEveryMs?: number;
  /** Receives failed renewals and lost leases. */
  log?: Logger;
}

/** One acquisition as a backend sees it: `owner` is unique per acquisition, not per process. */
export interface Claim {
  readonly name: string;
  readonly owner: string;
  readonly fencingToken: number;
}

/**
 * The lease machinery every locker shares: renew timers, release, close, abort. A backend only says how to
 * claim, extend and drop a lease.
 */
export abstract class LeaseLocker implements Locker {
  protected readonly leaseMs: number;
  protected readonly pollMs: number;
  protected readonly renewEveryMs: number;
  protected readonly log: Logger;
  readonly #held = new Map<Claim, { timer: NodeJS.Timeout; renewal?: Promise<void> }>();
  readonly #closing = new AbortController();

  constructor(options: LeaseOptions = {}) {
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.pollMs = options.pollMs ?? DEFAULT_LOCK_POLL_MS;
    this.renewEveryMs = options.renewEveryMs ?? Math.floor(this.leaseMs / RENEWALS_PER_LEASE);
    this.log = options.log ?? silentLogger;
    if (!(this.renewEveryMs > 0 && this.renewEveryMs < this.leaseMs)) {
      throw new RangeError(
        `renewEveryMs (${this.renewEveryMs}) must be between 0 and leaseMs (${this.leaseMs})`,
      );
    }
  }

  /** Resolves with the fencing token once `owner` holds `name`; rejects with `signal.reason`, holding nothing. */
  protected abstract claim(name: string, owner: string, signal: AbortSignal): Promise<number>;
  /** Pushes the lease `leaseMs` further; false when the lock is no longer this claim's. */
  protected abstract extend(claim: Claim): Promise<boolean>;
  /** Drops the lock if it is still this claim's. */
  protected abstract unclaim(claim: Claim): Promise<void>;

  async acquire(name: string, options: AcquireOptions = {}): Promise<Lock> {
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
    signal.throwIfAborted();
    const owner = randomUUID();
    const fencingToken = await this.claim(name, owner, signal);
    const claim: Claim = { name, owner, fencingToken };
    if (signal.aborted) {
      // The claim won a race with the abort; the caller has given up, so give the lock back.
      await this.unclaim(claim);
      throw signal.reason;
    }
    const timer = setInterval(() => this.#renew(claim), this.renewEveryMs);
    timer.unref();
    this.#held.set(claim, { timer });
    let released: Promise<void> | undefined;
    return {
      name,
      fencingToken,
      release: () => {
        released ??= this.#release(claim);
        return released;
      },
    };
  }

  /** Stops renewals, rejects pending acquires and releases every held lock. */
  async close(): Promise<void> {
    this.#closing.abort(new Error('locker is closed'));
    await Promise.all([...this.#held.keys()].map((claim) => this.#release(claim)));
  }

  /**
   * Test hook: behaves like a process that died holding its locks. Renewals stop, nothing is released
   * (the leases lapse on their own), and the locker refuses further work.
   */
  crashForTesting(): void {
    this.#closing.abort(new Error('locker crashed (test hook)'));
    for (const { timer } of this.#held.values()) clearInterval(timer);
    this.#held.clear();
  }

  /** Retries `attempt` every `pollMs` until it yields a fencing token. For backends that cannot notify waiters. */
  protected async poll(signal: AbortSignal, attempt: () => Promise<number | undefined>): Promise<number> {
    for (;;) {
      signal.throwIfAborted();
      const fencingToken = await attempt();
      if (fencingToken !== undefined) return fencingToken;
      await sleep(this.pollMs, signal);
    }
  }

  async #release(claim: Claim): Promise<void> {
    const held = this.#held.get(claim);
    if (!held) return; // Already released, or abandoned by crashForTesting.
    clearInterval(held.timer);
    this.#held.delete(claim);
    // A renewal still in flight could write the lease back after we drop it.
    await held.renewal;
    await this.unclaim(claim);
  }

  #renew(claim: Claim): void {
    const held = this.#held.get(claim);
    if (!held || held.renewal) return; // Released, or a slow backend still busy with the previous renewal.
    held.renewal = this.extend(claim)
      .then((extended) => {
        if (extended) return;
        clearInterval(held.timer);
        this.log.error(
          { lock: claim.name, fencingToken: claim.fencingToken },
          'lock lease lost to another holder',
        );
      })
      .catch((error: unknown) => {
        this.log.warn({ lock: claim.name, ...errorFields(error) }, 'lock renewal failed; will retry');
      })
      .finally(() => {
        held.renewal = undefined;
      });
  }
}
