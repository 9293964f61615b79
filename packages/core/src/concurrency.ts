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

/**
 * Returns a runner under which concurrent calls for one key share the first call's promise until it
 * settles (handshakes for one name share one storage read). `pending(key)` is that promise, if any.
 * @example
 * const load = singleFlight<string, Cert | undefined>();
 * await Promise.all([load('a.test', read), load('a.test', read)]); // one read
 */
export function singleFlight<K, V>(): ((key: K, task: () => Promise<V>) => Promise<V>) & {
  pending(key: K): Promise<V> | undefined;
} {
  const inFlight = new Map<K, Promise<V>>();
  const run = (key: K, task: () => Promise<V>) => {
    let shared = inFlight.get(key);
    if (!shared) {
      shared = task().finally(() => inFlight.delete(key));
      inFlight.set(key, shared);
    }
    return shared;
  };
  return Object.assign(run, { pending: (key: K) => inFlight.get(key) });
}
