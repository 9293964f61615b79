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
import type { ScheduleTimes } from './storage/schedule-index.js';
import type { Storage } from './storage/storage.js';
import { readStoredCertificate } from './stored-certificates.js';

/** Storage reads in flight while `manage()` loads many names; a handshake's own read waits behind at most these. */
const MANAGE_LOAD_CONCURRENCY = 16;
/** Names planned between two turns of the event loop, so handshakes are served while 100,000 are managed. */
const NAMES_PER_TURN = 2_000;
/** Background reads that warm the cache after `manage()`: few, so a handshake's own read never queues long. */
const WARM_UP_CONCURRENCY = 4;

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
  /** Called instead for a newly managed name the shared schedule says is stored and not due before `atMs`. */
  onIndexed(name: string, atMs: number): void;
  onDemand?: OnDemandIssuance;
  /** Whether stored names not due are read into the cache in the background (`cacheWarmUp`). */
  warmUp: boolean;
  /** Ends the background warm-up (the manager closed). */
  signal: AbortSignal;
}

export class ManagedNames {
  private readonly names = new Set<string>();
  /** Handshakes waiting for a managed name's certificate to be read from storage share one read. */
  private readonly handshakeLoad = singleFlight<string, CachedCertificate | undefined>();
  /** Names whose `manage()` is still reading storage. */
  private readonly loading = singleFlight<string, void>();
  private readonly limitLoading = concurrencyLimit(MANAGE_LOAD_CONCURRENCY);
  /** `manage()` batches still reading the shared schedule. */
  private readonly registering = new Set<Promise<unknown>>();

  constructor(private readonly options: ManagedNamesOptions) {}

  has(name: string): boolean {
    return this.names.has(name);
  }

  all(): string[] {
    return [...this.names];
  }

  /**
   * Serves each name's stored certificate, or starts obtaining one; resolves once storage was read. A new
   * name the shared schedule has, not yet due, is not read now: its first handshake reads it, so 100,000
   * names start without 100,000 reads and memory follows the cache, not the names.
   */
  manage(names: Iterable<string>, readSchedule: () => Promise<ScheduleTimes | undefined>): Promise<void> {
    const added = new Set<string>();
    for (const name of names) if (!this.names.has(name)) added.add(name);
    // Managed at once: a handshake for one of them while the schedule is read is served from storage.
    for (const name of added) this.names.add(name);
    const schedule = added.size > 0 ? readSchedule() : Promise.resolve(undefined);
    const registering = this.register(names, added, schedule);
    // Until its reads are registered, ready() waits for the batch instead.
    this.registering.add(registering);
    const forget = () => this.registering.delete(registering);
    registering.then(forget, forget);
    return registering.then(async (reads) => {
      await Promise.all(reads);
    });
  }

  private async register(
    names: Iterable<string>,
    added: Set<string>,
    schedule: Promise<ScheduleTimes | undefined>,
  ): Promise<Array<Promise<void>>> {
    const times = await schedule;
    const nowMs = this.options.clock.now();
    const reads: Array<Promise<void>> = [];
    const notDue: string[] = [];
    let planned = 0;
    for (const name of names) {
      if (++planned % NAMES_PER_TURN === 0) await new Promise(setImmediate);
      if (added.has(name)) {
        const indexedAtMs = times?.get(name)?.atMs;
        if (indexedAtMs !== undefined && indexedAtMs > nowMs) {
          this.options.onIndexed(name, indexedAtMs);
          notDue.push(name);
          continue;
        }
        this.options.onManaged(name);
      }
      reads.push(this.loading(name, () => this.limitLoading(() => this.loadOrObtain(name))));
    }
    if (this.options.warmUp) void this.warmUp(notDue);
    return reads;
  }

  /**
   * Reads stored names that were not due into the cache in the background, while it has room, as a
   * restart used to at once: `getCertificate()`, the ready metric and first handshakes find them. Beyond the
   * cache's capacity names stay in storage and are read at their first handshake.
   */
  private async warmUp(names: readonly string[]): Promise<void> {
    const { cache, signal, logger } = this.options;
    let next = 0;
    let reading = 0;
    const worker = async () => {
      // Reads in flight count against the room, so a full cache never evicts what the warm-up put in.
      while (next < names.length && cache.room > reading && !signal.aborted) {
        const name = names[next++] as string;
        if (cache.get(name)) continue;
        reading++;
        await this.handshakeLoad(name, async () => {
          const certificate = await this.loadFromStorage(name);
          if (certificate) this.adopt(name, certificate, 'loaded certificate from storage');
          return certificate;
        })
          .catch((error: unknown) => {
            // Its first handshake or the maintenance pass reads it again; storage trouble is logged there too.
            logger.warn({ identifier: name, ...errorFields(error) }, 'warming the cache from storage');
          })
          .finally(() => reading--);
      }
    };
    await Promise.all(Array.from({ length: WARM_UP_CONCURRENCY }, worker));
  }

  /** Resolves when every name's certificate is in the cache (read or obtained); rejects on give-up. */
  async ready(names: readonly string[]): Promise<void> {
    const { cache, jobs } = this.options;
    await Promise.all(
      names.map(async (name) => {
        await this.loaded(name);
        if (cache.get(name)) return;
        const job = jobs.get(name);
        if (job) return job.settled;
        if (!this.names.has(name)) {
          throw new Error(`${name} is not managed: call manage([${JSON.stringify(name)}]) first`);
        }
        // Not read yet or evicted: storage still has it. Otherwise its obtain gave up (cert_giving_up).
        if (!(await this.loadMissing(name)))
          throw new Error(`${name} has no certificate: obtaining it gave up`);
      }),
    );
  }

  /**
   * A handshake without SNI: the managed IP address it reached (`localAddress`), else `defaultName`. Not
   * cached yet: this handshake goes without, and the read it starts serves the next one.
   */
  withoutSni(localAddress: string, defaultName: string | undefined): CachedCertificate | undefined {
    const name = this.names.has(localAddress) ? localAddress : defaultName;
    if (!name) return undefined;
    const cached = this.options.cache.get(name);
    if (!cached && this.names.has(name)) this.loadMissing(name).catch(() => {});
    return cached;
  }

  /** The storage read `manage()` started for `name`, while it runs. */
  async loaded(name: string): Promise<void> {
    if (this.registering.size > 0) await Promise.allSettled([...this.registering]);
    await this.loading.pending(name);
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
