/**
 * @module The managed names and their certificates' way from storage into the cache: the bulk load of
 * `manage()` (then an obtain for what storage lacks), and the read a handshake makes for a name not cached.
 */
import type { CachedCertificate, CertificateCache } from './cache.js';
import type { Clock } from './clock.js';
import { concurrencyLimit, singleFlight } from './concurrency.js';
import type { CertManagerEmitter } from './events.js';
import type { ObtainJobs } from './jobs.js';
import { errorFields, type Logger } from './log.js';
import { wildcardFor } from './names.js';
import type { OnDemandIssuance } from './on-demand.js';
import type { Storage } from './storage/storage.js';
import { readStoredCertificate } from './stored-certificates.js';

/** Storage reads in flight while `manage()` loads many names; a handshake's own read waits behind at most these. */
const MANAGE_LOAD_CONCURRENCY = 16;

export interface ManagedNamesOptions {
  storage: Storage;
  cache: CertificateCache;
  jobs: ObtainJobs;
  clock: Clock;
  logger: Logger;
  events: CertManagerEmitter;
  /** Storage ids of the issuers that may hold `name`'s certificate. */
  issuerKeysFor(name: string): string[];
  /** Called once per newly managed name (maintenance looks at it soon). */
  onManaged(name: string): void;
  onDemand?: OnDemandIssuance;
}

export class ManagedNames {
  private readonly names = new Set<string>();
  /** Handshakes waiting for a managed name's certificate to be read from storage share one read. */
  private readonly handshakeLoad = singleFlight<string, CachedCertificate | undefined>();
  /** Names whose `manage()` is still reading storage. */
  private readonly loading = singleFlight<string, void>();
  private readonly limitLoading = concurrencyLimit(MANAGE_LOAD_CONCURRENCY);

  constructor(private readonly options: ManagedNamesOptions) {}

  has(name: string): boolean {
    return this.names.has(name);
  }

  all(): string[] {
    return [...this.names];
  }

  /** Serves `name`'s stored certificate, or starts obtaining one; resolves once storage was read. */
  manage(name: string): Promise<void> {
    if (!this.names.has(name)) {
      this.names.add(name);
      this.options.onManaged(name);
    }
    // Recorded before the first await, so concurrent manage() and ready() calls see the same work.
    return this.loading(name, () => this.limitLoading(() => this.loadOrObtain(name)));
  }

  /** The storage read `manage(name)` started, while it runs. */
  loaded(name: string): Promise<void> | undefined {
    return this.loading.pending(name);
  }

  /**
   * A certificate read from storage at handshake time: a managed name not loaded yet (or evicted), or an
   * on-demand name (whose first obtain the handshake may wait for).
   */
  loadMissing(name: string): Promise<CachedCertificate | undefined> {
    const wildcard = wildcardFor(name);
    const managedName = this.names.has(name)
      ? name
      : wildcard && this.names.has(wildcard)
        ? wildcard
        : undefined;
    const onDemand = this.options.onDemand?.inFlight(name);
    if (onDemand) return onDemand; // its first obtain is running: wait for it with the first handshake
    if (!managedName) return this.options.onDemand?.certificateFor(name) ?? Promise.resolve(undefined);
    return this.handshakeLoad(managedName, async () => {
      const certificate = await this.loadFromStorage(managedName);
      if (certificate) this.options.cache.set(certificate);
      return certificate;
    });
  }

  /** The newest readable stored certificate for `name`; a corrupt entry is logged and skipped, a failing store throws. */
  loadFromStorage(name: string): Promise<CachedCertificate | undefined> {
    const { storage, logger } = this.options;
    return readStoredCertificate(storage, this.options.issuerKeysFor(name), name, logger);
  }

  /** Serves a certificate found in storage. */
  adopt(name: string, certificate: CachedCertificate, message: string): void {
    this.options.cache.set(certificate);
    const { issuerKey: issuer, info } = certificate;
    this.options.events.emit('cached_managed_cert', { identifier: name, issuer, source: 'storage' });
    this.options.logger.info({ identifier: name, issuer, serial: info.serialNumber }, message);
  }

  private async loadOrObtain(name: string): Promise<void> {
    const { cache, jobs, logger, clock } = this.options;
    if (cache.get(name) || jobs.has(name)) return;
    let stored: CachedCertificate | undefined;
    try {
      stored = await this.loadFromStorage(name);
    } catch (error) {
      // Storage is failing: an attempt re-reads it under the lock before asking any CA, so nothing is
      // issued twice; until it answers, attempts fail and back off.
      logger.error({ identifier: name, ...errorFields(error) }, 'reading certificate from storage failed');
      return jobs.start(name);
    }
    if (stored) {
      this.adopt(name, stored, 'loaded certificate from storage');
      if (stored.info.notAfter > clock.now()) return;
      logger.error(
        { identifier: name, expired_at: new Date(stored.info.notAfter).toISOString() },
        'stored certificate has expired; serving it until a new one arrives',
      );
    }
    jobs.start(name, stored && { replacing: stored, reason: 'expired' });
  }
}
