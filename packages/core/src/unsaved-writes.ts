/**
 * @module Issued certificates that storage refused: a certificate the CA issued is never thrown away for a
 * failed write. It is served from memory, and its write retried until it lands (or a newer one replaces it).
 */
import { errorFields, type Logger } from './log.js';
import { writeFenced } from './storage/fenced-write.js';
import type { Storage } from './storage/storage.js';

/** The lock a write was made under: storage refuses it when a later holder wrote meanwhile. */
export interface WriteFence {
  fencingToken: number;
  nowMs: number;
}

interface Pending {
  value: object;
  fence?: WriteFence;
}

/** How often a refused write is tried again; storage coming back after an outage tries at once too. */
export const UNSAVED_RETRY_MS = 5_000;

export class UnsavedWrites {
  readonly #pending = new Map<string, Pending>();
  #timer?: NodeJS.Timeout;
  #flushing?: Promise<void>;

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly retryEveryMs = UNSAVED_RETRY_MS,
  ) {
    storage.health.onRecovered(() => void this.flush());
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Writes `value` at `key` (fenced, when given the lock's token); when storage fails, keeps it and
   * retries. 'refused': a later lock holder wrote a record meanwhile, which stays. Never rejects.
   */
  async write(
    key: string,
    value: object,
    identifier: string,
    fence?: WriteFence,
  ): Promise<'stored' | 'kept' | 'refused'> {
    const pending: Pending = { value, ...(fence ? { fence } : {}) };
    try {
      const outcome = await this.#set(key, pending);
      this.#pending.delete(key); // a newer record landed: the older unsaved one must not overwrite it
      if (outcome === 'refused') this.#refused(key, identifier, fence);
      return outcome;
    } catch (error) {
      this.#pending.set(key, pending);
      this.logger.error(
        { identifier, key, retry_every: this.retryEveryMs / 1000, ...errorFields(error) },
        'issued certificate could not be stored; serving it from memory and retrying the write',
      );
      this.#schedule();
      return 'kept';
    }
  }

  /** Tries every kept write once now. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.size > 0) this.#schedule();
    });
    return this.#flushing;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #flushOnce(): Promise<void> {
    for (const [key, pending] of [...this.#pending]) {
      try {
        const outcome = await this.#set(key, pending);
        if (this.#pending.get(key) === pending) this.#pending.delete(key);
        if (outcome === 'refused') this.#refused(key, undefined, pending.fence);
        else this.logger.info({ key }, 'stored the certificate kept in memory after a failed write');
      } catch {
        // Still refused: logged once when it was kept; tried again on the next round.
      }
    }
  }

  #set(key: string, { value, fence }: Pending): Promise<'stored' | 'refused'> {
    if (!fence) return this.storage.set(key, value).then(() => 'stored');
    return writeFenced(this.storage, key, value, fence.fencingToken, fence.nowMs).then((outcome) =>
      outcome === 'written' ? 'stored' : 'refused',
    );
  }

  #refused(key: string, identifier: string | undefined, fence: WriteFence | undefined): void {
    this.logger.warn(
      { identifier, key, fencingToken: fence?.fencingToken },
      'certificate not written: storage holds one written under a later lock',
    );
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.retryEveryMs);
    this.#timer.unref();
  }
}
