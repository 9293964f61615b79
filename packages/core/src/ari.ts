/**
 * @module ACME Renewal Information (RFC 9773) as renewals use it: the window stored for every instance and the
 * time chosen in it (under a try-lock), when to ask again, and `replaces` on the renewal order. Asking the CA
 * is ari-client.ts.
 */
import { ariCertificateId, type RenewalInfo, RenewalInfoError } from './ari-client.js';
import type { CachedCertificate } from './cache.js';
import type { Clock } from './clock.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import { problemType } from './problems.js';
import { pickTimeInWindow } from './renewal.js';
import { lockNames, storageKeys } from './storage/keys.js';
import type { Lock, Locker } from './storage/locks.js';
import { CorruptEntryError, type Storage } from './storage/storage.js';

/** RFC 9773 leaves the default to the client; Caddy and Certbot ask every 6 hours without a Retry-After. */
const DEFAULT_ARI_RECHECK_MS = 6 * 60 * 60_000;
/** Bounds on a CA's Retry-After: not more than once a minute, at least once a day (RFC 9773 §4.3.2). */
const MIN_ARI_RECHECK_MS = 60_000;
const MAX_ARI_RECHECK_MS = 24 * 60 * 60_000;
/**
 * After a temporary ARI failure (no answer, a 5xx, a 429) the stored (or lifetime-based) decision stands while
 * we back off: a minute, doubling, at most the 6 hours a long-term error waits (RFC 9773 §4.3.3).
 */
const ARI_TEMPORARY_RETRY_MS = 60_000;
/**
 * The ARI record is refreshed under a try-lock: if another instance holds it this long, this pass goes on
 * with the stored record instead of queueing (Caddy's rule). One storage round trip fits easily.
 */
const ARI_TRY_LOCK_MS = 1_000;

/** An issuer that can answer ARI for the certificates it issued. */
export interface RenewalInfoSource {
  renewalInfo(
    certificatePem: string,
    context: IssuerContext,
    signal?: AbortSignal,
  ): Promise<RenewalInfo | undefined>;
}

export function hasRenewalInfo(issuer: Issuer): issuer is Issuer & RenewalInfoSource {
  return typeof (issuer as Partial<RenewalInfoSource>).renewalInfo === 'function';
}

/**
 * Wraps the issuer of the certificate being renewed so its production order carries `replaces` (the CA
 * then exempts the renewal from some rate limits and may end the old certificate's ARI window). A CA that
 * answers `alreadyReplaced` (another order already replaced it) is asked once more without `replaces`.
 * Test-CA orders never carry it: the test CA did not issue the certificate. `account` is the ACME account
 * that ordered it: the ACME issuer sends `replaces` only from that account, and only to a CA whose directory
 * lists `renewalInfo`.
 */
export function replacingIssuer(
  issuer: Issuer,
  certificateId: string,
  logger: Logger,
  account?: string,
): Issuer {
  return {
    key: issuer.key,
    hasTestCA: issuer.hasTestCA,
    async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
      if (request.useTestCA) return issuer.issue(request, context);
      try {
        const replacing = { replaces: certificateId, ...(account ? { replacesAccount: account } : {}) };
        return await issuer.issue({ ...request, ...replacing }, context);
      } catch (error) {
        if (problemType(error) !== 'alreadyReplaced') throw error;
        logger.warn(
          { identifier: request.names[0], issuer: issuer.key, replaces: certificateId },
          'CA says the certificate was already replaced; ordering again without replaces',
        );
        const { replaces: _omitted, replacesAccount: _account, ...withoutReplaces } = request;
        return issuer.issue(withoutReplaces, context);
      }
    },
  };
}

/** The ARI state of one certificate, in storage so that every instance renews at the same selected time. */
export interface StoredRenewalInfo {
  certificateId: string;
  windowStartMs: number;
  windowEndMs: number;
  selectedTimeMs: number;
  /** When to ask the CA again. */
  nextCheckMs: number;
  /** Lets cleaning drop the record with its certificate. */
  certificateNotAfterMs: number;
  explanationUrl?: string;
}

export interface RenewalInfoRecordsOptions {
  storage: Storage;
  locker: Locker;
  clock: Clock;
  logger: Logger;
  /** Handed to issuers for their ARI requests. */
  issuerContext: IssuerContext;
  /** Picks the time inside an ARI window; injectable for tests. */
  random?: () => number;
}

/**
 * Each certificate's ARI window and selected renewal time, from storage while fresh, else asked from its
 * issuer (when it offers ARI). The selected time is chosen and stored under a lock, so all instances use
 * the same one; a new window that still contains the old selected time keeps it.
 */
export class RenewalInfoRecords {
  /** Name → the certificate id whose ARI request failed, when to ask again, and how many failed in a row. */
  private readonly retryAt = new Map<string, { certificateId: string; atMs: number; failures: number }>();

  constructor(private readonly options: RenewalInfoRecordsOptions) {}

  /**
   * The current record for `certificate`, refreshing it when due; `undefined` when its CA has no ARI. An
   * expired certificate is never asked about (the CA would only say "renew", which expiry already says).
   */
  async current(
    name: string,
    certificate: CachedCertificate,
    issuer: Issuer | undefined,
    signal: AbortSignal,
  ): Promise<StoredRenewalInfo | undefined> {
    if (!issuer || !hasRenewalInfo(issuer)) return undefined;
    if (certificate.info.notAfter <= this.options.clock.now()) return undefined;
    let certificateId: string;
    try {
      certificateId = ariCertificateId(certificate.certificatePem);
    } catch {
      return undefined; // No AKI: the CA cannot have ARI for it.
    }
    const key = storageKeys.renewalInfo(certificate.issuerKey, name);
    const stored = await this.read(key, certificateId);
    const now = this.options.clock.now();
    if (stored && stored.nextCheckMs > now) return stored;
    const failed = this.retryAt.get(name);
    if (failed?.certificateId === certificateId && failed.atMs > now) return stored;
    let info: RenewalInfo | undefined;
    try {
      info = await issuer.renewalInfo(certificate.certificatePem, this.options.issuerContext, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      const failures = failed?.certificateId === certificateId ? failed.failures + 1 : 1;
      const retryInMs = ariRetryDelayMs(error, failures);
      this.retryAt.set(name, { certificateId, atMs: now + retryInMs, failures });
      this.options.logger.warn(
        {
          identifier: name,
          issuer: issuer.key,
          certificate_id: certificateId,
          retrying_in: retryInMs / 1000,
          ...errorFields(error),
        },
        'could not get ACME renewal information; using the stored window or the lifetime ratio',
      );
      return stored;
    }
    if (!info) return undefined; // The CA offers no ARI (the issuer caches its directory, so this is cheap).
    this.retryAt.delete(name);
    return this.store({ name, key, certificateId, certificate, issuer, info, signal });
  }

  private async read(key: string, certificateId: string): Promise<StoredRenewalInfo | undefined> {
    const record = await this.options.storage.get<StoredRenewalInfo>(key).catch((error: unknown) => {
      if (error instanceof CorruptEntryError) return undefined; // Asked again and rewritten.
      throw error;
    });
    return record?.certificateId === certificateId ? record : undefined;
  }

  private async store(fresh: {
    name: string;
    key: string;
    certificateId: string;
    certificate: CachedCertificate;
    issuer: Issuer;
    info: RenewalInfo;
    signal: AbortSignal;
  }): Promise<StoredRenewalInfo> {
    const { storage, clock, locker, logger } = this.options;
    const { name, key, certificateId } = fresh;
    const lock = await tryLock(locker, lockNames.renewalInfo(name), fresh.signal);
    if (!lock) {
      // Another instance is refreshing this record right now: go on with what storage has.
      return (
        (await this.read(key, certificateId)) ?? recordOf(fresh, undefined, clock.now(), this.options.random)
      );
    }
    try {
      const latest = await this.read(key, certificateId);
      if (latest && latest.nextCheckMs > clock.now()) return latest; // Another instance just refreshed it.
      const record = recordOf(fresh, latest, clock.now(), this.options.random);
      const kept = latest?.selectedTimeMs === record.selectedTimeMs;
      await storage.set(key, record);
      if (!kept || record.explanationUrl !== latest?.explanationUrl) {
        logger.info(
          {
            identifier: name,
            issuer: fresh.issuer.key,
            window_start: new Date(record.windowStartMs).toISOString(),
            window_end: new Date(record.windowEndMs).toISOString(),
            selected_time: new Date(record.selectedTimeMs).toISOString(),
            ...(record.explanationUrl ? { explanation_url: record.explanationUrl } : {}),
          },
          'updated ACME renewal information',
        );
      }
      return record;
    } finally {
      await lock.release();
    }
  }
}

/** The record for a fresh answer; a selected time that still lies inside the new window is kept. */
function recordOf(
  fresh: { certificateId: string; certificate: CachedCertificate; info: RenewalInfo },
  latest: StoredRenewalInfo | undefined,
  nowMs: number,
  random?: () => number,
): StoredRenewalInfo {
  const { info } = fresh;
  const window = { startMs: info.windowStartMs, endMs: info.windowEndMs };
  const kept = latest && latest.selectedTimeMs >= window.startMs && latest.selectedTimeMs <= window.endMs;
  return {
    certificateId: fresh.certificateId,
    windowStartMs: window.startMs,
    windowEndMs: window.endMs,
    selectedTimeMs: kept ? latest.selectedTimeMs : pickTimeInWindow(window, random),
    nextCheckMs: nowMs + clampRecheck(info.retryAfterMs),
    certificateNotAfterMs: fresh.certificate.info.notAfter,
    ...(info.explanationUrl ? { explanationUrl: info.explanationUrl } : {}),
  };
}

/** The lock if it is free (or frees within {@link ARI_TRY_LOCK_MS}); `undefined` rather than queueing. */
async function tryLock(locker: Locker, name: string, signal: AbortSignal): Promise<Lock | undefined> {
  const bounded = AbortSignal.any([signal, AbortSignal.timeout(ARI_TRY_LOCK_MS)]);
  try {
    return await locker.acquire(name, { signal: bounded });
  } catch (error) {
    if (signal.aborted) throw error;
    return undefined;
  }
}

/**
 * When to ask again after a failed ARI request (RFC 9773 §4.3.3): a temporary failure backs off from a
 * minute, doubling (the CA's Retry-After, clamped, when it sent one); a long-term one waits 6 hours.
 */
export function ariRetryDelayMs(error: unknown, failuresInARow: number): number {
  if (!(error instanceof RenewalInfoError) || !error.temporary) return DEFAULT_ARI_RECHECK_MS;
  if (error.retryAfterMs !== undefined) return clampRecheck(error.retryAfterMs);
  const backoffMs = ARI_TEMPORARY_RETRY_MS * 2 ** Math.min(failuresInARow - 1, 16);
  return Math.min(backoffMs, DEFAULT_ARI_RECHECK_MS);
}

function clampRecheck(retryAfterMs: number | undefined): number {
  return Math.min(Math.max(retryAfterMs ?? DEFAULT_ARI_RECHECK_MS, MIN_ARI_RECHECK_MS), MAX_ARI_RECHECK_MS);
}
