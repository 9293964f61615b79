/**
 * @module Whether the store answers: an outage (a timeout, a lost connection) is noticed on the first
 * failing operation, probed on a short interval while it lasts, and its end announced so that work that
 * waited for storage (obtains on their backoff) can go at once instead of at its next scheduled attempt.
 */
import { errorFields, type Logger } from '../log.js';
import { StorageTimeoutError } from './timeout.js';

/** How often a store that is down is probed: recovery is noticed within about this long. */
export const DEFAULT_STORAGE_PROBE_MS = 1_000;

/** Error names and codes of a store that cannot be reached (node-redis, sockets), as opposed to a bad entry. */
const OUTAGE_NAMES = new Set([
  'StorageTimeoutError',
  'ConnectionTimeoutError',
  'SocketClosedUnexpectedlyError',
  'ClientClosedError',
  'ClientOfflineError',
  'ReconnectStrategyError',
  'SocketTimeoutError',
]);
/**
 * How long after storage answers again obtains wait before they go: every instance's client reconnects
 * on its own backoff (@keyv/redis: up to 2 s), and the CA's validation request may reach any instance,
 * which must be able to read the challenge from storage by then.
 */
export const STORAGE_SETTLE_MS = 2_500;

const OUTAGE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** True when `error` (or, for an aggregate, one of its causes) says the store could not be reached. */
export function isStorageOutage(error: unknown): boolean {
  if (error instanceof StorageTimeoutError) return true;
  if (error instanceof AggregateError) return error.errors.some(isStorageOutage);
  if (!(error instanceof Error)) return false;
  const { code } = error as { code?: unknown };
  if (OUTAGE_NAMES.has(error.name) || (typeof code === 'string' && OUTAGE_CODES.has(code))) return true;
  return error.cause !== undefined && error.cause !== error && isStorageOutage(error.cause);
}

export class StorageHealth {
  #down = false;
  #probeTimer?: NodeJS.Timeout;
  #settleTimer?: NodeJS.Timeout;
  readonly #recoveryListeners: Array<() => void> = [];
  readonly #settledListeners: Array<() => void> = [];

  constructor(
    /** One cheap read; resolves when the store answers. */
    private readonly probe: () => Promise<unknown>,
    private readonly probeEveryMs: number,
    private readonly log: Logger,
  ) {}

  get down(): boolean {
    return this.#down;
  }

  /** Runs `listener` each time the store answers again after an outage. */
  onRecovered(listener: () => void): void {
    this.#recoveryListeners.push(listener);
  }

  /** Runs `listener` {@link STORAGE_SETTLE_MS} after the store answers again, if it still does. */
  onSettled(listener: () => void): void {
    this.#settledListeners.push(listener);
  }

  /** An operation failed; an outage starts probing until the store answers. */
  failed(error: unknown): void {
    if (this.#down || !isStorageOutage(error)) return;
    this.#down = true;
    clearTimeout(this.#settleTimer);
    this.log.error(
      { ...errorFields(error), probe_every: this.probeEveryMs / 1000 },
      'storage unavailable: serving cached certificates, obtains wait until it answers',
    );
    this.#probeTimer = setInterval(() => {
      this.probe().then(
        () => this.answered(),
        () => {},
      );
    }, this.probeEveryMs);
    this.#probeTimer.unref();
  }

  /** An operation succeeded: an outage, if any, is over. */
  answered(): void {
    if (!this.#down) return;
    this.#down = false;
    clearInterval(this.#probeTimer);
    this.log.info({}, 'storage answers again');
    for (const listener of this.#recoveryListeners) listener();
    this.#settleTimer = setTimeout(() => {
      for (const listener of this.#settledListeners) listener();
    }, STORAGE_SETTLE_MS);
    this.#settleTimer.unref();
  }

  close(): void {
    clearInterval(this.#probeTimer);
    clearTimeout(this.#settleTimer);
  }
}
