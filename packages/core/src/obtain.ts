/**
 * @module One attempt at a name's certificate, without events: take the name's lock → re-read storage
 * (another instance may have finished) → choose ARI `replaces` → ask the issuers in policy order → write
 * the record. The retry loop (retry.ts) calls it; the manager turns its result into events.
 */
import { lockWhenAdmitted } from './admitted-lock.js';
import { replacingIssuer } from './ari.js';
import type { CachedCertificate } from './cache.js';
import type { Clock } from './clock.js';
import type { OrderAdmission } from './cluster-ratelimit.js';
import type { Issuer, IssuerContext, KeyType } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import type { RenewalRequest } from './maintenance.js';
import { type IssuerPauses, obtainFromIssuers, type PolicyState } from './policy.js';
import { lockNames } from './storage/keys.js';
import type { Lock, Locker } from './storage/locks.js';
import type { Storage } from './storage/storage.js';
import {
  issuedRecord,
  readStoredCertificate,
  readStoredOrderFacts,
  type StoredOrderFacts,
} from './stored-certificates.js';
import type { UnsavedWrites } from './unsaved-writes.js';

/** What every attempt needs; the manager builds it once. */
export interface ObtainContext {
  storage: Storage;
  locker: Locker;
  logger: Logger;
  clock: Clock;
  issuerContext: IssuerContext;
  /** Issuers paused by a CA's Retry-After, shared by every name. */
  pauses: IssuerPauses;
  issuersFor(name: string): Issuer[];
  keyType: KeyType;
  /** The manager's stop signal. */
  signal: AbortSignal;
  /** New-order slots, taken before the name's lock (cluster-wide with Redis). */
  admission: OrderAdmission;
  /** Where an issued certificate goes when storage refuses it: served anyway, its write retried. */
  unsaved: UnsavedWrites;
}

/** One attempt's ask: the name, its renewal (if it is one), and the policy memory of its earlier attempts. */
export interface ObtainAttempt {
  name: string;
  renewal?: RenewalRequest;
  policy: PolicyState;
}

export type ObtainResult =
  | { source: 'storage'; certificate: CachedCertificate }
  | { source: 'issued'; certificate: CachedCertificate; ca: string; replacedStored: boolean };

/**
 * One attempt under the name's lock. Resolves with a certificate to serve: one another instance stored
 * meanwhile, or a new one, written to storage (or, when storage refuses it, kept to be written later:
 * an issued certificate is never thrown away). Rejects when every issuer failed.
 * @example
 * const result = await obtainOnce(context, { name: 'example.com', policy: newPolicyState() });
 */
export async function obtainOnce(context: ObtainContext, attempt: ObtainAttempt): Promise<ObtainResult> {
  const { name, renewal } = attempt;
  const logger = context.logger.child({ logger: 'tls.obtain' });
  const issuers = context.issuersFor(name);
  const accountKey = admissionKey(context, issuers);
  const lockName = lockNames.certificate(name);
  const { lock, slot: admitted } = accountKey
    ? await lockWhenAdmitted(context.locker, context.admission, lockName, accountKey, context.signal, name)
    : { lock: await context.locker.acquire(lockName, { signal: context.signal }), slot: undefined };
  let slot = admitted;
  try {
    const keys = issuers.map((issuer) => issuer.key);
    const stored = await readStoredCertificate(context.storage, keys, name, context.logger, {
      verify: true,
      // Under the lock: an entry about to be replaced is moved aside first, never overwritten unseen.
      unusable: { setAside: true, nowMs: context.clock.now() },
    });
    if (stored && isDoneElsewhere(stored, renewal, context.clock.now())) {
      logger.info(
        { identifier: name, issuer: stored.issuerKey },
        'certificate obtained by another instance; loaded from storage',
      );
      await slot?.giveBack().catch(() => {});
      return { source: 'storage', certificate: stored };
    }
    // Waited for another holder, who did not finish: this attempt orders after all, and needs its slot.
    if (accountKey && !slot) slot = await context.admission.take(accountKey, context.signal, name);
    const names = [name];
    const facts = renewal
      ? await readStoredOrderFacts(context.storage, renewal.replacing.issuerKey, name)
      : ({} satisfies StoredOrderFacts);
    const { certificate, issuer } = await obtainFromIssuers(
      {
        names,
        keyType: context.keyType,
        // The attempt ends when the manager stops or the lease is lost, and checks the lease before each
        // CA request: a holder resumed after its lease lapsed orders nothing.
        signal: AbortSignal.any([context.signal, lock.signal]),
        assertLease: () => lock.assertHeld(),
        ...(facts.profile ? { profile: facts.profile } : {}),
        ...(slot ? { admittedFor: issuers[0]?.key as string } : {}),
      },
      withReplaces(issuers, names, renewal, facts, context.logger),
      attempt.policy,
      context.pauses,
      context.issuerContext,
    );
    const { key, record, entry } = issuedRecord(name, certificate, issuer.key, context.clock.now());
    if (leaseLost(lock, name, logger)) {
      // Another holder may have stored a certificate for this name by now: never overwrite it. This one
      // (already issued) is served from memory.
      return { source: 'issued', certificate: entry, ca: certificate.ca, replacedStored: Boolean(stored) };
    }
    await context.unsaved.write(key, record, name, {
      fencingToken: lock.fencingToken,
      nowMs: context.clock.now(),
    });
    return { source: 'issued', certificate: entry, ca: certificate.ca, replacedStored: Boolean(stored) };
  } finally {
    logger.info({ identifier: name }, 'releasing lock');
    await lock.release();
  }
}

/** True (and logged) when the lock's lease may have lapsed. */
function leaseLost(lock: Lock, name: string, logger: Logger): boolean {
  try {
    lock.assertHeld();
    return false;
  } catch (error) {
    logger.error(
      { identifier: name, ...errorFields(error) },
      'lock lease lost after the certificate was issued; serving it from memory, not writing it',
    );
    return true;
  }
}

/** The rate-limit window an attempt counts against (its first issuer's CA and account); none for the local CA. */
function admissionKey(context: ObtainContext, issuers: Issuer[]): string | undefined {
  const first = issuers[0];
  if (!first || first.key === 'local') return undefined;
  return `${first.key}|${context.issuerContext.email ?? ''}`;
}

/**
 * Storage already has what this attempt is for: a usable certificate, or for a renewal one that replaced
 * the certificate being renewed (another serial, living at least as long).
 */
function isDoneElsewhere(
  stored: CachedCertificate,
  renewal: RenewalRequest | undefined,
  nowMs: number,
): boolean {
  const replacing = renewal?.replacing.info;
  if (!replacing) return stored.info.notAfter > nowMs;
  return stored.info.serialNumber !== replacing.serialNumber && stored.info.notAfter >= replacing.notAfter;
}

/**
 * ARI: the order at the CA that issued the certificate being replaced names it in `replaces` — unless the
 * names changed (RFC 9773 §5: a replacement covers the same identifiers). The issuer checks the account.
 */
function withReplaces(
  issuers: Issuer[],
  names: string[],
  renewal: RenewalRequest | undefined,
  facts: StoredOrderFacts,
  logger: Logger,
): Issuer[] {
  const certificateId = renewal?.ariCertificateId;
  if (!renewal || !certificateId || !sameNames(names, renewal.replacing.info.names)) return issuers;
  const renewLogger = logger.child({ logger: 'tls.renew' });
  return issuers.map((issuer) =>
    issuer.key === renewal.replacing.issuerKey
      ? replacingIssuer(issuer, certificateId, renewLogger, facts.account)
      : issuer,
  );
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((name) => set.has(name));
}
