/** @module Locks that serialise obtain/renew per name, in one process, across processes on one machine, or across a cluster. */
import { randomUUID } from 'node:crypto';
import { sleep } from '../clock.js';
import { errorFields, type Logger, silentLogger } from '../log.js';

/** A held lock. The holder's lease is renewed in the background until `release()`. */
export interface Lock {
  readonly name: string;
  /** Grows with every acquisition of this name: a store can refuse writes carrying an older token. */
  readonly fencingToken: number;
  /**
   * Fires when the lease is lost: taken by another holder, or not renewed in time (a stalled store, a
   * paused process). Work under the lock stops at its next step.
   */
  readonly signal: AbortSignal;
  /**
   * Throws a {@link LeaseLostError} unless the lease is surely still held, judged by the monotonic clock
   * (a process resumed after SIGSTOP may run this before any timer has told it the lease lapsed). Call it
   * right before an action that must not happen twice (a CA request, a write).
   */
  assertHeld(): void;
  release(): Promise<void>;
}

/** The lock's lease ended before its work did: another holder may be doing that work now. */
export class LeaseLostError extends Error {
  constructor(
    readonly lock: string,
    readonly fencingToken: number,
    reason: string,
  ) {
    super(`lock ${lock} (fencing token ${fencingToken}) lost: ${reason}`);
    this.name = 'LeaseLostError';
  }
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
/**
 * A holder stops trusting its lease this long before it would lapse, counted from when its last claim or
 * renewal was sent (the store set the expiry no earlier): clocks drift, and a check is not the action.
 */
const LEASE_SAFETY_RATIO = 0.1;

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
  readonly #held = new Map<Claim, HeldLease>();
  readonly #winningTrySentAt = new WeakMap<AbortSignal, number>();
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
    // A signal of its own per acquisition: `poll` files the winning try's send time under it.
    const signal = AbortSignal.any(
      options.signal ? [options.signal, this.#closing.signal] : [this.#closing.signal],
    );
    signal.throwIfAborted();
    const owner = randomUUID();
    const fencingToken = await this.claim(name, owner, signal);
    // The lease runs from the try that won (a waiter may have polled for long before it); a backend that
    // does not poll grants in this process, at once.
    const claimSentAt = this.#winningTrySentAt.get(signal) ?? performance.now();
    const claim: Claim = { name, owner, fencingToken };
    if (signal.aborted) {
      // The claim won a race with the abort; the caller has given up, so give the lock back.
      await this.unclaim(claim);
      throw signal.reason;
    }
    const timer = setInterval(() => this.#renew(claim), this.renewEveryMs);
    timer.unref();
    const held: HeldLease = { timer, confirmedAt: claimSentAt, lost: new AbortController() };
    this.#held.set(claim, held);
    this.#watchDeadline(claim, held);
    let released: Promise<void> | undefined;
    return {
      name,
      fencingToken,
      signal: held.lost.signal,
      assertHeld: () => {
        if (!held.lost.signal.aborted && this.#lapsed(held)) this.#lose(claim, held, 'not renewed in time');
        if (held.lost.signal.aborted) throw held.lost.signal.reason;
      },
      release: () => {
        released ??= this.#release(claim);
        return released;
      },
    };
  }

  /** Stops renewals, rejects pending acquires and releases every held lock. */
  async close(): Promise<void> {
    this.#closing.abort(new Error('locker is closed'));
    // A release that fails (the store is down) leaves the lease to lapse on its own: close() goes on.
    await Promise.all(
      [...this.#held.keys()].map((claim) =>
        this.#release(claim).catch((error: unknown) =>
          this.log.warn({ lock: claim.name, ...errorFields(error) }, 'could not release lock on close'),
        ),
      ),
    );
  }

  /**
   * Test hook: behaves like a process that died holding its locks. Renewals stop, nothing is released
   * (the leases lapse on their own), and the locker refuses further work.
   */
  crashForTesting(): void {
    this.#closing.abort(new Error('locker crashed (test hook)'));
    for (const { timer, deadline } of this.#held.values()) {
      clearInterval(timer);
      clearTimeout(deadline);
    }
    this.#held.clear();
  }

  /** Retries `attempt` every `pollMs` until it yields a fencing token. For backends that cannot notify waiters. */
  protected async poll(signal: AbortSignal, attempt: () => Promise<number | undefined>): Promise<number> {
    for (;;) {
      signal.throwIfAborted();
      const sentAt = performance.now();
      const fencingToken = await attempt();
      if (fencingToken !== undefined) {
        this.#winningTrySentAt.set(signal, sentAt);
        return fencingToken;
      }
      await sleep(this.pollMs, signal);
    }
  }

  async #release(claim: Claim): Promise<void> {
    const held = this.#held.get(claim);
    if (!held) return; // Already released, or abandoned by crashForTesting.
    clearInterval(held.timer);
    clearTimeout(held.deadline);
    this.#held.delete(claim);
    // A renewal still in flight could write the lease back after we drop it.
    await held.renewal;
    await this.unclaim(claim);
  }

  #renew(claim: Claim): void {
    const held = this.#held.get(claim);
    if (!held || held.renewal) return; // Released, or a slow backend still busy with the previous renewal.
    if (this.#lapsed(held)) {
      this.#lose(claim, held, 'not renewed in time');
      return;
    }
    const sentAt = performance.now();
    held.renewal = this.extend(claim)
      .then((extended) => {
        if (extended) {
          held.confirmedAt = sentAt;
          this.#watchDeadline(claim, held);
          return;
        }
        this.#lose(claim, held, 'taken by another holder');
      })
      .catch((error: unknown) => {
        this.log.warn({ lock: claim.name, ...errorFields(error) }, 'lock renewal failed; will retry');
      })
      .finally(() => {
        held.renewal = undefined;
      });
  }

  #lapsed(held: HeldLease): boolean {
    return performance.now() - held.confirmedAt >= this.leaseMs * (1 - LEASE_SAFETY_RATIO);
  }

  /** Fires the loss when the lease would lapse without a renewal confirmed by then. */
  #watchDeadline(claim: Claim, held: HeldLease): void {
    clearTimeout(held.deadline);
    const remainingMs = held.confirmedAt + this.leaseMs * (1 - LEASE_SAFETY_RATIO) - performance.now();
    held.deadline = setTimeout(
      () => {
        if (this.#lapsed(held)) this.#lose(claim, held, 'not renewed in time');
      },
      Math.max(0, remainingMs),
    );
    held.deadline.unref();
  }

  #lose(claim: Claim, held: HeldLease, reason: string): void {
    if (held.lost.signal.aborted) return;
    clearInterval(held.timer);
    clearTimeout(held.deadline);
    this.log.error({ lock: claim.name, fencingToken: claim.fencingToken, reason }, 'lock lease lost');
    held.lost.abort(new LeaseLostError(claim.name, claim.fencingToken, reason));
  }
}

interface HeldLease {
  timer: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
  renewal?: Promise<void>;
  /** `performance.now()` when the last claim or renewal the store confirmed was sent. */
  confirmedAt: number;
  lost: AbortController;
}
