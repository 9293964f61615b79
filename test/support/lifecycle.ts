/** @module test/support/lifecycle — moving a manager's clock forward without waiting, and waiting for what follows. */
import type { EventEmitter } from 'node:events';

export interface OffsetClock {
  now(): number;
  /** How far ahead of the real time this clock runs, in ms. */
  offsetMs: number;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Real time plus an offset the test sets: certificates from a CA (which issues in real time) look as old as
 * the test wants. Sleeps are real unless `sleep` is replaced.
 */
export function offsetClock(): OffsetClock {
  const clock: OffsetClock = { now: () => Date.now() + clock.offsetMs, offsetMs: 0 };
  return clock;
}

/** Resolves with the next `event` (its first argument); rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(emitter: EventEmitter, event: string, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    };
    emitter.once(event, listener);
  });
}

/** Polls `condition` every 25 ms until it holds; rejects after `timeoutMs` with `what` in the message. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves after `ms` of real time (only to show that something did not happen meanwhile). */
export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
