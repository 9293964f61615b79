/** @module One lock suite, many lockers: what autotls needs from any Locker it is given. */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLostError, type LeaseOptions, type Lock, type Locker } from '../src/storage/locks.js';

/** A locker the suite can kill: `crashForTesting` stops renewing without releasing, like a dead process. */
export type CrashableLocker = Locker & { crashForTesting(): void };

export interface LockBackend {
  /** A locker on this backend; lockers made by one backend exclude each other, as two processes would. */
  createLocker(options: LeaseOptions): CrashableLocker;
  cleanup(): Promise<void>;
}

/** Leases short enough for fast tests, long enough that a busy test machine never lets a live one lapse. */
export const testLease = { leaseMs: 300, pollMs: 10, renewEveryMs: 50 } satisfies LeaseOptions;

/** Registers the suite; `makeBackend` is called once per test. */
export function runLockConformance(name: string, makeBackend: () => Promise<LockBackend>): void {
  describe(`lock conformance: ${name}`, () => {
    let backend: LockBackend | undefined;
    const lockers: CrashableLocker[] = [];

    const setUp = async (count: number, options: LeaseOptions = testLease) => {
      backend = await makeBackend();
      for (let index = 0; index < count; index++) lockers.push(backend.createLocker(options));
      return { lockers: [...lockers], name: `cert:${randomUUID()}.example` };
    };

    afterEach(async () => {
      await Promise.all(lockers.splice(0).map((locker) => locker.close()));
      await backend?.cleanup();
      backend = undefined;
    });

    /** Whether `locker` gets `name` within `ms`; a lock it gets is released at once. */
    const getsWithin = async (locker: Locker, name: string, ms: number) => {
      try {
        await (await locker.acquire(name, { signal: AbortSignal.timeout(ms) })).release();
        return true;
      } catch (error) {
        if ((error as Error).name === 'TimeoutError') return false;
        throw error;
      }
    };

    it('lets one holder in at a time among many concurrent acquirers, with growing fencing tokens', async () => {
      const { lockers, name } = await setUp(3);
      let inside = 0;
      let mostInside = 0;
      const tokens: number[] = [];
      const worker = async (locker: Locker) => {
        for (let round = 0; round < 3; round++) {
          const lock = await locker.acquire(name);
          inside += 1;
          mostInside = Math.max(mostInside, inside);
          tokens.push(lock.fencingToken);
          await delay(2);
          inside -= 1;
          await lock.release();
        }
      };
      await Promise.all(lockers.flatMap((locker) => [worker(locker), worker(locker), worker(locker)]));
      expect(mostInside).toBe(1);
      expect(tokens).toHaveLength(27);
      for (let index = 1; index < tokens.length; index++)
        expect(tokens[index]).toBeGreaterThan(tokens[index - 1]!);
    });

    it('keeps separate names independent', async () => {
      const { lockers, name } = await setUp(2);
      const [first, second] = lockers as [CrashableLocker, CrashableLocker];
      const held = await first.acquire(name);
      expect(await getsWithin(second, `${name}.other`, 1000)).toBe(true);
      await held.release();
    });

    it('keeps a live holder’s lock past the lease by renewing it', async () => {
      const { lockers, name } = await setUp(2);
      const [holder, waiter] = lockers as [CrashableLocker, CrashableLocker];
      const lock = await holder.acquire(name);
      expect(await getsWithin(waiter, name, testLease.leaseMs * 3)).toBe(false);
      await lock.release();
      expect(await getsWithin(waiter, name, 1000)).toBe(true);
    });

    it('frees the lock of a holder that died, once its lease has passed', async () => {
      const { lockers, name } = await setUp(2);
      const [doomed, survivor] = lockers as [CrashableLocker, CrashableLocker];
      const lost = await doomed.acquire(name);
      doomed.crashForTesting();
      const startedAt = Date.now();
      const lock = await survivor.acquire(name, { signal: AbortSignal.timeout(testLease.leaseMs * 10) });
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(testLease.leaseMs / 2);
      expect(lock.fencingToken).toBeGreaterThan(lost.fencingToken);
      await lock.release();
    });

    it('tells a holder stalled past its lease, before its next step, that the lease is lost', async () => {
      const { lockers, name } = await setUp(2);
      const [stalled, other] = lockers as [CrashableLocker, CrashableLocker];
      const lock = await stalled.acquire(name);
      lock.assertHeld();
      // A stall like a SIGSTOP or a long GC pause: no timer, no renewal runs meanwhile.
      const until = performance.now() + testLease.leaseMs * 1.2;
      while (performance.now() < until) {}
      expect(() => lock.assertHeld()).toThrow(LeaseLostError);
      expect(lock.signal.aborted).toBe(true);
      const next = await other.acquire(name, { signal: AbortSignal.timeout(testLease.leaseMs * 10) });
      expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
      await Promise.all([lock.release(), next.release()]);
    });

    it('releases idempotently, and a stale release never frees the next holder’s lock', async () => {
      const { lockers, name } = await setUp(3);
      const [first, second, third] = lockers as [CrashableLocker, CrashableLocker, CrashableLocker];
      const early: Lock = await first.acquire(name);
      await early.release();
      await early.release();
      const current = await second.acquire(name);
      await early.release();
      expect(await getsWithin(third, name, 100)).toBe(false);
      await current.release();
      expect(await getsWithin(third, name, 1000)).toBe(true);
    });

    it('gives up when the signal aborts, with its reason, holding nothing', async () => {
      const { lockers, name } = await setUp(3);
      const [holder, quitter, next] = lockers as [CrashableLocker, CrashableLocker, CrashableLocker];
      const lock = await holder.acquire(name);
      const controller = new AbortController();
      const reason = new Error('shutting down');
      const waiting = quitter.acquire(name, { signal: controller.signal });
      await delay(30);
      controller.abort(reason);
      await expect(waiting).rejects.toBe(reason);
      await expect(quitter.acquire(name, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      await lock.release();
      expect(await getsWithin(next, name, 1000)).toBe(true);
    });

    it('releases every held lock on close, and refuses to acquire afterwards', async () => {
      const { lockers, name } = await setUp(2);
      const [closing, other] = lockers as [CrashableLocker, CrashableLocker];
      await closing.acquire(name);
      await closing.acquire(`${name}.second`);
      const pending = expect(closing.acquire(name)).rejects.toThrow('closed');
      await closing.close();
      await pending;
      await expect(closing.acquire(`${name}.third`)).rejects.toThrow('closed');
      expect(await getsWithin(other, name, testLease.leaseMs / 2)).toBe(true);
      expect(await getsWithin(other, `${name}.second`, testLease.leaseMs / 2)).toBe(true);
    });
  });
}
