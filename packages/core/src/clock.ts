/** @module Injectable time: tests replace the clock and the sleeper to run a 30-day schedule in milliseconds. */

export interface Clock {
  /** Milliseconds since the epoch, like `Date.now()`. */
  now(): number;
  /** Waits between retry attempts; a test clock advances `now()` instead of waiting. Default: real timers. */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/**
 * Resolves after `ms`, or rejects with the signal's reason when it aborts first. The timer keeps the process
 * alive like any pending work; `close()` aborts every wait the manager started.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
