import { describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { SlidingWindowLimiter } from '../src/ratelimit.js';

describe('the internal rate limiter', () => {
  it('admits a burst in arrival order, never more than N per window, and says who had to wait', async () => {
    const limiter = new SlidingWindowLimiter(3, 200, systemClock);
    const admitted: Array<{ caller: number; at: number }> = [];
    const waited: number[] = [];
    await Promise.all(
      Array.from({ length: 7 }, (_, caller) =>
        limiter
          .take(undefined, { onWait: () => waited.push(caller) })
          .then(() => admitted.push({ caller, at: performance.now() })),
      ),
    );
    expect(admitted.map((entry) => entry.caller)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(waited).toEqual([3, 4, 5, 6]);
    for (let i = 3; i < admitted.length; i++) {
      // The 4th admission of any run of four comes a full window after the first (a few ms of clock slack).
      expect(admitted[i]!.at - admitted[i - 3]!.at).toBeGreaterThanOrEqual(195);
    }
  });

  it('lets an aborted caller go without taking a slot', async () => {
    const limiter = new SlidingWindowLimiter(1, 60_000, systemClock);
    await limiter.take();
    const controller = new AbortController();
    const waiting = limiter.take(controller.signal);
    controller.abort(new Error('closed'));
    await expect(waiting).rejects.toThrow('closed');
    expect(limiter.waitMs()).toBeGreaterThan(59_000);
  });
});
