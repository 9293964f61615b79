import { describe, expect, it } from 'vitest';
import { testClock } from '../../../test/support/clock.js';
import { captureLogger } from '../../../test/support/logs.js';
import { NoRetryError } from '../src/errors.js';
import { RetryJob, type RetryJobOptions } from '../src/retry.js';

/** A resolver whose answer never changes: no early wake-up. */
const steadyResolver = { resolve4: async () => ['192.0.2.1'], resolve6: async () => [] };

/** A job whose attempts fail `failures` times, then succeed (or throw what `failWith` makes). */
function job(overrides: Partial<RetryJobOptions> & { failures?: number; failWith?: () => unknown } = {}) {
  const clock = testClock({ startMs: Date.parse('2026-11-03T20:58:32Z'), sleep: 'instant' });
  const attempts: number[] = [];
  const failed: Array<{ attempt: number; retryingInMs: number }> = [];
  const gaveUp: Array<{ attempts: number }> = [];
  const stop = new AbortController();
  const running = new RetryJob({
    name: 'retry.example',
    attempt: async (attempt) => {
      attempts.push(attempt);
      if (attempt <= (overrides.failures ?? 0)) throw overrides.failWith?.() ?? new Error('not yet');
    },
    schedule: { intervalsMs: [1_000, 5_000], maxDurationMs: 60_000, dnsRecheckMs: 500 },
    clock,
    sleep: clock.sleep,
    resolver: steadyResolver,
    signal: stop.signal,
    logger: captureLogger(),
    listener: {
      failed: ({ attempt, retryingInMs }) => failed.push({ attempt, retryingInMs }),
      gaveUp: ({ attempts }) => gaveUp.push({ attempts }),
    },
    ...overrides,
  });
  return { running, attempts, failed, gaveUp, clock, stop };
}

describe('the retry job', () => {
  it('retries on the schedule until an attempt succeeds, the last interval repeating', async () => {
    const { running, attempts, failed, clock } = job({ failures: 3 });
    await running.settled;
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(failed).toEqual([
      { attempt: 1, retryingInMs: 1_000 },
      { attempt: 2, retryingInMs: 5_000 },
      { attempt: 3, retryingInMs: 5_000 },
    ]);
    expect(clock.offsetMs).toBe(11_000);
    expect(await running.firstOutcome).toBe('failed');
  });

  it('reports a first attempt that succeeds', async () => {
    const { running } = job();
    expect(await running.firstOutcome).toBe('succeeded');
    await running.settled;
  });

  it('gives up once the next attempt would start past the maximum duration', async () => {
    const { running, attempts, gaveUp } = job({ failures: 100 });
    await expect(running.settled).rejects.toThrow('not yet');
    // 1 s + 5 s × 11 = 56 s; one more wait would end past 60 s.
    expect(attempts.length).toBe(13);
    expect(gaveUp).toEqual([{ attempts: 13 }]);
  });

  it('fails once, without waiting, on a failure no retry can fix', async () => {
    const { running, attempts, failed, gaveUp, clock } = job({
      failures: 100,
      failWith: () => new NoRetryError('the CA does not list profile "nope"'),
    });
    await expect(running.settled).rejects.toBeInstanceOf(NoRetryError);
    expect({ attempts, failed, gaveUp, waitedMs: clock.offsetMs }).toEqual({
      attempts: [1],
      failed: [],
      gaveUp: [{ attempts: 1 }],
      waitedMs: 0,
    });
  });

  it('treats an aggregate of failures that no retry can fix as one', async () => {
    const { running, attempts } = job({
      failures: 100,
      failWith: () => new AggregateError([new NoRetryError('a'), new NoRetryError('b')], 'all issuers'),
    });
    await expect(running.settled).rejects.toBeInstanceOf(AggregateError);
    expect(attempts).toEqual([1]);
  });

  it('runs the next attempt at once when hurried during a wait', async () => {
    const clock = testClock({ sleep: 'until-aborted' });
    const { running, attempts } = job({ failures: 1, clock, sleep: clock.sleep });
    expect(await running.firstOutcome).toBe('failed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(running.hurry()).toBe(true);
    await running.settled;
    expect(attempts).toEqual([1, 2]);
    expect(running.hurry()).toBe(false);
  });

  it('stops between attempts when its signal aborts', async () => {
    const clock = testClock({ sleep: 'until-aborted' });
    const { running, attempts, stop } = job({ failures: 5, clock, sleep: clock.sleep });
    await running.firstOutcome;
    stop.abort(new Error('closed'));
    await expect(running.settled).rejects.toThrow('closed');
    expect(attempts).toEqual([1]);
  });
});
