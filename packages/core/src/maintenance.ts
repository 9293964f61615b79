/**
 * @module The maintenance loop: every few minutes, picks up certificates other instances renewed, decides
 * which managed certificates are due (lifetime ratio, ARI, emergency, expiry) and renews them; at most
 * daily, cleans storage of long-expired certificates and stale locks.
 */

import { ariCertificateId, hasRenewalInfo, type RenewalInfo } from './ari.js';
import type { CachedCertificate } from './cache.js';
import { readCertificateInfo } from './certificates.js';
import type { Clock } from './clock.js';
import { concurrencyLimit } from './concurrency.js';
import type { Issuer, IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import { pickTimeInWindow, type RenewalReason, renewalDecision } from './renewal.js';
import { storageKeys } from './storage/keys.js';
import type { Locker } from './storage/locks.js';
import { CorruptEntryError, type Storage } from './storage/storage.js';

/** Caddy keeps expired certificates two weeks (to look at after an incident), then deletes them. */
export const EXPIRED_CERTIFICATE_RETENTION_MS = 14 * 24 * 60 * 60_000;
/** Cleaning lists the whole store; once a day (across all instances) keeps that cost negligible. */
export const STORAGE_CLEAN_INTERVAL_MS = 24 * 60 * 60_000;
/** RFC 9773 leaves the default to the client; Caddy and Certbot ask every 6 hours without a Retry-After. */
const DEFAULT_ARI_RECHECK_MS = 6 * 60 * 60_000;
/** Bounds on a CA's Retry-After: not more than once a minute, at least once a day (RFC 9773 §4.3.2). */
const MIN_ARI_RECHECK_MS = 60_000;
const MAX_ARI_RECHECK_MS = 24 * 60 * 60_000;
/** After a failed ARI request, the stored (or lifetime-based) decision stands for an hour before asking again. */
const ARI_ERROR_RETRY_MS = 60 * 60_000;
/** Names maintained at once in a pass: bounds parallel storage reads and ARI requests on large deployments. */
const MAINTENANCE_CONCURRENCY = 8;
/** Lock names, shared by every instance on the storage (Caddy calls the cleaning lock `storage_clean`). */
const CLEAN_LOCK = 'storage_clean';
const ariLock = (name: string) => `ari:${name}`;

/** What the manager lends the loop; the loop never imports the manager. */
export interface MaintenanceHost {
  managedNames(): Iterable<string>;
  cached(name: string): CachedCertificate | undefined;
  /** An obtain or renewal for the name is running, or waiting on the backoff schedule. */
  isBusy(name: string): boolean;
  loadFromStorage(name: string): Promise<CachedCertificate | undefined>;
  /** Serves a certificate found in storage (another instance renewed it). */
  adopt(name: string, certificate: CachedCertificate): void;
  /** Starts a renewal in the background, with the obtain machinery (lock, re-check, policy, backoff, events). */
  renew(name: string, renewal: RenewalRequest): void;
  /** Cuts the name's backoff wait short so its next attempt runs now; false when nothing was waiting. */
  hurry(name: string): boolean;
  issuer(key: string): Issuer | undefined;
}

export interface RenewalRequest {
  /** The certificate being replaced: the re-check under the lock compares storage with it. */
  replacing: CachedCertificate;
  reason: RenewalReason;
  /** Its ARI identifier, sent to its issuer as `replaces`. */
  ariCertificateId?: string;
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

export interface MaintenanceOptions {
  host: MaintenanceHost;
  storage: Storage;
  locker: Locker;
  clock: Clock;
  logger: Logger;
  /** Handed to issuers for their ARI requests. */
  issuerContext: IssuerContext;
  windowRatio: number;
  checkIntervalMs: number;
  /** Picks the time inside an ARI window; injectable for tests. */
  random?: () => number;
}

/** A locker that can sweep lock entries left by dead holders (lock files; Redis and memory leases vanish). */
interface StaleLockSweeper {
  removeStaleLocks(): Promise<number>;
}

function sweepsStaleLocks(locker: Locker): locker is Locker & StaleLockSweeper {
  return typeof (locker as Partial<StaleLockSweeper>).removeStaleLocks === 'function';
}

export class Maintenance {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly stopping = new AbortController();
  private readonly logger: Logger;
  /** Name → the certificate id whose ARI request failed, and when to ask again. */
  private readonly ariRetryAt = new Map<string, { certificateId: string; atMs: number }>();
  /** Name → `<serial>:<reason>` whose backoff wait was already cut short: once per certificate and reason. */
  private readonly hurried = new Map<string, string>();

  constructor(private readonly options: MaintenanceOptions) {
    this.logger = options.logger.child({ logger: 'tls.maintenance' });
  }

  /** Schedules a pass every `checkIntervalMs`; idempotent. The timer never keeps the process alive. */
  start(): void {
    if (this.timer || this.running || this.stopping.signal.aborted) return;
    this.schedule();
  }

  /** Stops the loop and waits for a pass in progress to wind down (its waits are aborted). */
  async stop(): Promise<void> {
    this.stopping.abort(new Error('maintenance stopped'));
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every managed name, then storage cleaning if a day has passed. Exposed for tests. */
  async runPass(): Promise<void> {
    const names = [...this.options.host.managedNames()];
    const limit = concurrencyLimit(MAINTENANCE_CONCURRENCY);
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          if (this.stopping.signal.aborted) return;
          await this.maintain(name).catch((error: unknown) => {
            if (this.stopping.signal.aborted) return;
            this.logger.error({ identifier: name, ...errorFields(error) }, 'maintaining certificate');
          });
        }),
      ),
    );
    if (this.stopping.signal.aborted) return;
    await this.cleanStorageIfDue().catch((error: unknown) => {
      if (!this.stopping.signal.aborted) this.logger.error(errorFields(error), 'cleaning storage');
    });
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPass().finally(() => {
        this.running = undefined;
        if (!this.stopping.signal.aborted) this.schedule();
      });
    }, this.options.checkIntervalMs);
    this.timer.unref();
  }

  private async maintain(name: string): Promise<void> {
    const { host, clock } = this.options;
    let current = host.cached(name);
    const stored = await host.loadFromStorage(name);
    if (stored && isNewer(stored, current)) {
      host.adopt(name, stored);
      current = stored;
      // A renewal of ours waiting to retry would only find this on its next attempt, hours away maybe.
      if (host.isBusy(name)) host.hurry(name);
    }
    if (!current) return; // Nothing obtained yet: the obtain in flight (or its give-up) owns the name.
    const ari = host.isBusy(name) ? undefined : await this.renewalInfo(name, current);
    const now = clock.now();
    const decision = renewalDecision(current.info, now, {
      windowRatio: this.options.windowRatio,
      checkIntervalMs: this.options.checkIntervalMs,
      ...(ari ? { ariSelectedTimeMs: ari.selectedTimeMs } : {}),
    });
    if (!decision.reason) return;
    const fields = {
      identifier: name,
      issuer: current.issuerKey,
      serial: current.info.serialNumber,
      reason: decision.reason,
      expiration: new Date(current.info.notAfter).toISOString(),
      remaining: Math.round((current.info.notAfter - now) / 1000),
      ...(ari ? { ari_selected_time: new Date(ari.selectedTimeMs).toISOString() } : {}),
      ...(ari?.explanationUrl ? { ari_explanation: ari.explanationUrl } : {}),
    };
    if (host.isBusy(name)) {
      // Already renewing; in an emergency the backoff wait (up to hours) is cut short, once per certificate.
      const urgent = decision.reason === 'emergency' || decision.reason === 'expired';
      const key = `${current.info.serialNumber}:${decision.reason}`;
      if (urgent && this.hurried.get(name) !== key && host.hurry(name)) {
        this.hurried.set(name, key);
        this.logger.error(
          fields,
          'certificate expires soon and its renewal is waiting to retry; retrying now',
        );
      }
      return;
    }
    if (decision.reason === 'expired') {
      this.logger.error(fields, 'certificate has expired; serving it until a new one arrives, renewing now');
    } else if (decision.reason === 'emergency') {
      this.logger.error(fields, 'certificate expires soon; emergency renewal');
    } else {
      this.logger.info(fields, 'certificate needs renewal');
    }
    host.renew(name, {
      replacing: current,
      reason: decision.reason,
      ...(ari ? { ariCertificateId: ari.certificateId } : {}),
    });
  }

  /**
   * The certificate's ARI state: from storage while fresh, else asked from its issuer (when it offers ARI).
   * The selected time is chosen and stored under a lock, so all instances use the same one; a new window
   * that still contains the old selected time keeps it.
   */
  private async renewalInfo(
    name: string,
    current: CachedCertificate,
  ): Promise<StoredRenewalInfo | undefined> {
    const { storage, clock, host } = this.options;
    const issuer = host.issuer(current.issuerKey);
    if (!issuer || !hasRenewalInfo(issuer)) return undefined;
    let certificateId: string;
    try {
      certificateId = ariCertificateId(current.certificatePem);
    } catch {
      return undefined; // No AKI: the CA cannot have ARI for it.
    }
    const key = storageKeys.renewalInfo(current.issuerKey, name);
    const readStored = async () => {
      const record = await storage.get<StoredRenewalInfo>(key).catch((error: unknown) => {
        if (error instanceof CorruptEntryError) return undefined; // Asked again and rewritten below.
        throw error;
      });
      return record?.certificateId === certificateId ? record : undefined;
    };
    const stored = await readStored();
    const now = clock.now();
    if (stored && stored.nextCheckMs > now) return stored;
    const failed = this.ariRetryAt.get(name);
    if (failed?.certificateId === certificateId && failed.atMs > now) return stored;
    let info: RenewalInfo | undefined;
    try {
      info = await issuer.renewalInfo(
        current.certificatePem,
        this.options.issuerContext,
        this.stopping.signal,
      );
    } catch (error) {
      this.ariRetryAt.set(name, { certificateId, atMs: now + ARI_ERROR_RETRY_MS });
      this.logger.warn(
        { identifier: name, issuer: issuer.key, certificate_id: certificateId, ...errorFields(error) },
        'could not get ACME renewal information; using the stored window or the lifetime ratio',
      );
      return stored;
    }
    if (!info) return undefined; // The CA offers no ARI (the issuer caches its directory, so this is cheap).
    this.ariRetryAt.delete(name);
    const lock = await this.options.locker.acquire(ariLock(name), { signal: this.stopping.signal });
    try {
      const latest = await readStored();
      if (latest && latest.nextCheckMs > clock.now()) return latest; // Another instance just refreshed it.
      const window = { startMs: info.windowStartMs, endMs: info.windowEndMs };
      const kept = latest && latest.selectedTimeMs >= window.startMs && latest.selectedTimeMs <= window.endMs;
      const record: StoredRenewalInfo = {
        certificateId,
        windowStartMs: window.startMs,
        windowEndMs: window.endMs,
        selectedTimeMs: kept ? latest.selectedTimeMs : pickTimeInWindow(window, this.options.random),
        nextCheckMs: clock.now() + clampRecheck(info.retryAfterMs),
        certificateNotAfterMs: current.info.notAfter,
        ...(info.explanationUrl ? { explanationUrl: info.explanationUrl } : {}),
      };
      await storage.set(key, record);
      if (!kept) {
        this.logger.info(
          {
            identifier: name,
            issuer: issuer.key,
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

  /**
   * Deletes certificates (and their ARI records) expired for more than 14 days and stale lock entries. Runs
   * under a lock shared by all instances and at most once a day among them (the time is kept in storage).
   */
  private async cleanStorageIfDue(): Promise<void> {
    const { storage, clock, locker } = this.options;
    const last = await storage.get<{ cleanedAtMs: number }>(storageKeys.lastClean()).catch(() => undefined);
    if (last && clock.now() - last.cleanedAtMs < STORAGE_CLEAN_INTERVAL_MS) return;
    const lock = await locker.acquire(CLEAN_LOCK, { signal: this.stopping.signal });
    try {
      const latest = await storage
        .get<{ cleanedAtMs: number }>(storageKeys.lastClean())
        .catch(() => undefined);
      if (latest && clock.now() - latest.cleanedAtMs < STORAGE_CLEAN_INTERVAL_MS) return;
      const cutoffMs = clock.now() - EXPIRED_CERTIFICATE_RETENTION_MS;
      const listed = await listEntries(storage, [
        storageKeys.certificatesPrefix,
        storageKeys.renewalInfoPrefix,
      ]);
      if (!listed) {
        this.logger.info({}, 'storage cannot list its keys; skipping cleaning of expired certificates');
      }
      let certificates = 0;
      let renewalInfos = 0;
      for (const [key, value] of listed ?? []) {
        this.stopping.signal.throwIfAborted();
        const notAfter = expiryOf(key, value);
        if (notAfter === undefined || notAfter >= cutoffMs) continue;
        await storage.delete(key);
        if (key.startsWith(storageKeys.certificatesPrefix)) {
          certificates++;
          this.logger.info(
            { key, expired_at: new Date(notAfter).toISOString() },
            'deleted expired certificate',
          );
        } else {
          renewalInfos++;
        }
      }
      const locks = sweepsStaleLocks(locker) ? await locker.removeStaleLocks() : 0;
      await storage.set(storageKeys.lastClean(), { cleanedAtMs: clock.now() });
      this.logger.info(
        {
          certificates_removed: certificates,
          renewal_info_removed: renewalInfos,
          stale_locks_removed: locks,
        },
        'finished cleaning storage',
      );
    } finally {
      await lock.release();
    }
  }
}

/** A stored certificate replaces the cached one when it is a different, longer-lived certificate. */
function isNewer(stored: CachedCertificate, cached: CachedCertificate | undefined): boolean {
  if (!cached) return true;
  return (
    stored.info.serialNumber !== cached.info.serialNumber && stored.info.notAfter >= cached.info.notAfter
  );
}

function clampRecheck(retryAfterMs: number | undefined): number {
  return Math.min(Math.max(retryAfterMs ?? DEFAULT_ARI_RECHECK_MS, MIN_ARI_RECHECK_MS), MAX_ARI_RECHECK_MS);
}

/** The expiry a stored entry stands for; `undefined` when unknown (unreadable entries are left alone). */
function expiryOf(key: string, value: unknown): number | undefined {
  if (key.startsWith(storageKeys.renewalInfoPrefix)) {
    const notAfter = (value as Partial<StoredRenewalInfo> | undefined)?.certificateNotAfterMs;
    return typeof notAfter === 'number' ? notAfter : undefined;
  }
  const pem = (value as { certificatePem?: unknown } | undefined)?.certificatePem;
  if (typeof pem !== 'string') return undefined;
  try {
    return readCertificateInfo(pem).notAfter;
  } catch {
    return undefined;
  }
}

interface ListableStore {
  namespace?: string;
  iterator?(namespace?: string): AsyncIterable<[string, unknown]>;
}

/**
 * The entries under `prefixes`, read through the store's own iterator (Keyv 5 wires `keyv.iterator` only for
 * some adapters). A corrupt entry is skipped, not fatal. `undefined` when the store cannot list.
 */
async function listEntries(
  storage: Storage,
  prefixes: string[],
): Promise<Array<[string, unknown]> | undefined> {
  const keyv = storage.keyv;
  const store = keyv.store as ListableStore | Map<string, unknown>;
  const namespace = keyv.namespace;
  let raw: AsyncIterable<[string, unknown]> | Iterable<[string, unknown]>;
  if (store instanceof Map) raw = store.entries();
  else if (typeof store.iterator === 'function') raw = store.iterator(namespace);
  else return undefined;
  const entries: Array<[string, unknown]> = [];
  for await (const [prefixed, data] of raw) {
    // The file store and a Map yield `<namespace>:<key>`; Redis strips its own prefix. A Map also holds other
    // namespaces' entries, which the prefix filter below drops.
    const key =
      namespace && prefixed.startsWith(`${namespace}:`) ? prefixed.slice(namespace.length + 1) : prefixed;
    if (!prefixes.some((prefix) => key.startsWith(prefix))) continue;
    try {
      const envelope = (await keyv.deserializeData(data as string)) as { value?: unknown } | undefined;
      entries.push([key, envelope?.value]);
    } catch {
      // Unreadable: the manager logs and replaces it when it reads it; cleaning leaves it alone.
    }
  }
  return entries;
}
