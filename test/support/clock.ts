/**
 * @module test/support/clock — the one test clock: time a test moves by setting `offsetMs`, from a fixed
 * start or from real time, with sleeps that are real, instant (they move the clock) or held until aborted.
 */
import type { Clock } from '@autotls/core';

export interface TestClock extends Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** How far this clock runs ahead of its base (the fixed start, or real time), in ms. */
  offsetMs: number;
  /** Every wait asked of `sleep()`, in ms, in order. */
  readonly sleeps: number[];
}

export interface TestClockOptions {
  /** A fixed start (time moves only through `offsetMs` and instant sleeps); default: real time. */
  startMs?: number;
  /**
   * - `real` (default): waits for real;
   * - `instant`: resolves at once and moves the clock by `ms` (a 30-day schedule runs in milliseconds);
   * - `until-aborted`: never resolves, rejects when the signal aborts (a wait the test ends by moving on).
   */
  sleep?: 'real' | 'instant' | 'until-aborted';
}

/**
 * @example
 * const clock = testClock({ startMs: Date.parse('2026-11-03T20:58:32Z'), sleep: 'instant' });
 * clock.offsetMs += 61 * DAY;
 */
export function testClock(options: TestClockOptions = {}): TestClock {
  const base = () => options.startMs ?? Date.now();
  const clock: TestClock = {
    offsetMs: 0,
    sleeps: [],
    now: () => base() + clock.offsetMs,
    sleep: (ms, signal) => {
      clock.sleeps.push(ms);
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (options.sleep === 'instant') {
        clock.offsetMs += ms;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const timer = options.sleep === 'until-aborted' ? undefined : setTimeout(resolve, ms);
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            reject(signal.reason);
          },
          { once: true },
        );
      });
    },
  };
  return clock;
}
