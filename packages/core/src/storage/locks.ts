/** @module Locks that serialise obtain/renew per name, in one process, across processes on one machine, or across a cluster. */

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
