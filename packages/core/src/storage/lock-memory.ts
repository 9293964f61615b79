/** @module The one-process locker: a table in memory, waiters served first come, first served. */
import { type Claim, LeaseLocker, type LeaseOptions } from './locks.js';

interface Waiter {
  owner: string;
  leaseMs: number;
  grant(fencingToken: number): void;
}

interface Entry {
  holder?: { owner: string; expiry: NodeJS.Timeout };
  waiters: Waiter[];
  /** Kept after the lock frees, so tokens keep growing for the name. */
  fencingToken: number;
}

/** Lock state for one process. Lockers built on the same table contend with each other. */
export class MemoryLockTable {
  readonly #entries = new Map<string, Entry>();

  claim(name: string, owner: string, leaseMs: number, signal: AbortSignal): Promise<number> {
    const entry = this.#entry(name);
    if (!entry.holder && entry.waiters.length === 0) {
      return Promise.resolve(this.#grant(entry, owner, leaseMs));
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        entry.waiters = entry.waiters.filter((other) => other !== waiter);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        owner,
        leaseMs,
        grant: (fencingToken) => {
          signal.removeEventListener('abort', onAbort);
          resolve(fencingToken);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.waiters.push(waiter);
    });
  }

  extend({ name, owner }: Claim): boolean {
    const holder = this.#entries.get(name)?.holder;
    if (holder?.owner !== owner) return false;
    holder.expiry.refresh();
    return true;
  }

  release({ name, owner }: Claim): void {
    const entry = this.#entries.get(name);
    if (entry?.holder?.owner === owner) this.#handOver(entry);
  }

  #entry(name: string): Entry {
    let entry = this.#entries.get(name);
    if (!entry) {
      entry = { waiters: [], fencingToken: 0 };
      this.#entries.set(name, entry);
    }
    return entry;
  }

  #grant(entry: Entry, owner: string, leaseMs: number): number {
    // Fires only if the holder stops renewing (it hung, or crashed without releasing).
    const expiry = setTimeout(() => this.#handOver(entry), leaseMs);
    expiry.unref();
    entry.holder = { owner, expiry };
    entry.fencingToken += 1;
    return entry.fencingToken;
  }

  #handOver(entry: Entry): void {
    if (entry.holder) clearTimeout(entry.holder.expiry);
    entry.holder = undefined;
    const next = entry.waiters.shift();
    if (next) next.grant(this.#grant(entry, next.owner, next.leaseMs));
  }
}

export interface MemoryLockerOptions extends LeaseOptions {
  /** Share one table between lockers that must exclude each other. Default: a table of its own. */
  table?: MemoryLockTable;
}

/**
 * Locks for a single process. Waiters queue instead of polling and are served in arrival order.
 *
 * @example
 * const locker = new MemoryLocker();
 * const lock = await locker.acquire('example.com');
 * try { await renew(); } finally { await lock.release(); }
 */
export class MemoryLocker extends LeaseLocker {
  readonly #table: MemoryLockTable;

  constructor(options: MemoryLockerOptions = {}) {
    super(options);
    this.#table = options.table ?? new MemoryLockTable();
  }

  protected claim(name: string, owner: string, signal: AbortSignal): Promise<number> {
    return this.#table.claim(name, owner, this.leaseMs, signal);
  }

  protected async extend(claim: Claim): Promise<boolean> {
    return this.#table.extend(claim);
  }

  protected async unclaim(claim: Claim): Promise<void> {
    this.#table.release(claim);
  }
}
