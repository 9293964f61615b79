/**
 * @module Issued certificates that storage refused: a certificate the CA issued is never thrown away for a
 * failed write. It is served from memory, and its write retried until it lands (or a newer one replaces it).
 */
import { errorFields, type Logger } from './log.js';
import type { Storage } from './storage/storage.js';

/** How often a refused write is tried again; storage coming back after an outage tries at once too. */
export const UNSAVED_RETRY_MS = 5_000;

export class UnsavedWrites {
  readonly #pending = new Map<string, unknown>();
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

  /** Writes `value` at `key`; when storage refuses, keeps it and retries. Never rejects. */
  async write(key: string, value: unknown, identifier: string): Promise<'stored' | 'kept'> {
    try {
      await this.storage.set(key, value);
      this.#pending.delete(key); // a newer record landed: the older unsaved one must not overwrite it
      return 'stored';
    } catch (error) {
      this.#pending.set(key, value);
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
    for (const [key, value] of [...this.#pending]) {
      try {
        await this.storage.set(key, value);
        if (this.#pending.get(key) === value) this.#pending.delete(key);
        this.logger.info({ key }, 'stored the certificate kept in memory after a failed write');
      } catch {
        // Still refused: logged once when it was kept; tried again on the next round.
      }
    }
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
