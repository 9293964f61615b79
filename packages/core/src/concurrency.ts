/** @module A concurrency limit for bulk work over many names (loading at start, maintenance passes). */

/**
 * Returns a runner that starts at most `limit` tasks at once, in call order. Bulk storage reads stay a short
 * queue, so a handshake's own read of a not-yet-loaded name is not stuck behind thousands of others.
 */
export function concurrencyLimit(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
