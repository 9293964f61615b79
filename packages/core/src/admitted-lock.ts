/**
 * @module The name's lock, taken once the rate limiter admits the attempt: an instance holds only locks it
 * can use at once, and a lock held elsewhere costs no slot while it is waited for.
 */
import type { OrderAdmission, OrderSlot } from './cluster-ratelimit.js';
import type { Lock, Locker } from './storage/locks.js';

/** How long a lock may take to answer "free" before it counts as held elsewhere (one Redis round trip is ~1 ms). */
const TRY_LOCK_MS = 100;

export interface AdmittedLock {
  lock: Lock;
  /** The new-order slot this attempt holds; absent when it waited for another holder (take one if needed). */
  slot?: OrderSlot;
}

/**
 * A slot first, then the lock if it is free. If another instance holds the lock (it is most likely
 * ordering this very name), the slot goes back and the lock is waited for without one.
 * @example const { lock, slot } = await lockWhenAdmitted(locker, admission, 'cert:a.com', 'ca|me', signal);
 */
export async function lockWhenAdmitted(
  locker: Locker,
  admission: OrderAdmission,
  lockName: string,
  accountKey: string,
  signal: AbortSignal,
  identifier?: string,
): Promise<AdmittedLock> {
  const slot = await admission.take(accountKey, signal, identifier);
  let lock: Lock | undefined;
  try {
    lock = await tryLock(locker, lockName, signal);
  } catch (error) {
    await slot.giveBack().catch(() => {});
    throw error;
  }
  if (lock) return { lock, slot };
  await slot.giveBack().catch(() => {}); // a lost give-back only costs a slot for one window
  return { lock: await locker.acquire(lockName, { signal }) };
}

async function tryLock(locker: Locker, name: string, signal: AbortSignal): Promise<Lock | undefined> {
  const bounded = AbortSignal.any([signal, AbortSignal.timeout(TRY_LOCK_MS)]);
  try {
    return await locker.acquire(name, { signal: bounded });
  } catch (error) {
    if (signal.aborted || !bounded.aborted) throw error;
    return undefined;
  }
}
