/**
 * @module CertManager: wires storage, locks, issuers, the retry job, one attempt, maintenance and the cache
 * into automatic HTTPS, and is the public API. Each piece lives in its own module; this one composes them.
 */

import { Resolver } from 'node:dns/promises';
import { EventEmitter, setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type tls from 'node:tls';
import { type CachedCertificate, CertificateCache } from './cache.js';
import type { CertificateInfo } from './certificates.js';
import { ChallengeSolvers } from './challenge-solvers.js';
import { type Clock, sleep, systemClock } from './clock.js';
import { admissionFor } from './cluster-ratelimit.js';
import { type CertManagerOptions, type ManagerConfig, resolveConfig } from './config.js';
import type { DnsResolver } from './dns-watch.js';
import type { CertManagerEvents } from './events.js';
import { ExpiryWarnings } from './expiry.js';
import { answerHttpRequest, type HttpAnswerOptions, plainHttpHandler } from './http.js';
import { defaultIssuers } from './issuers/default-issuers.js';
import { internal } from './issuers/internal.js';
import type { Issuer, IssuerContext } from './issuers/issuer.js';
import { ObtainJobs } from './jobs.js';
import { createDefaultLogger, errorFields, type Logger } from './log.js';
import { Maintenance, type MaintenanceHost } from './maintenance.js';
import { ManagedNames } from './managed-names.js';
import { isInternalName, normalizeName } from './names.js';
import { plainAddress, serveHandshakesWithoutSni } from './no-sni.js';
import type { ObtainContext } from './obtain.js';
import { OnDemandIssuance } from './on-demand.js';
import type { IssuerPauses } from './policy.js';
import { RateLimiters } from './ratelimit.js';
import { createSNICallback, type SNICallback } from './sni.js';
import type { HttpChallengeRequest, HttpChallengeResponse } from './solvers/http01.js';
import { StatusWriter } from './status.js';
import { createDefaultLocker } from './storage/locker.js';
import type { Locker } from './storage/locks.js';
import { openScheduleIndex } from './storage/schedule-for-storage.js';
import { openStorage, removeLeftoversAtStart, type Storage } from './storage/storage.js';
import { UnsavedWrites } from './unsaved-writes.js';

export type { CertManagerOptions } from './config.js';
export type { CertManagerEvents } from './events.js';
export type { StoredCertificate } from './stored-certificates.js';

/** What `getCertificate(name)` returns. */
export interface ManagedCertificate extends CertificateInfo {
  issuerKey: string;
}

/** A DNS check is a hint, not a verdict: a slow resolver must not hold up the retry schedule. */
const DNS_HINT_TIMEOUT_MS = 2_000;

/**
 * Gets, serves and keeps certificates for the managed names. Starts nothing until `manage()`: the
 * configured `domains` are managed from the first call, which adapters make once their servers listen.
 * @example
 * const manager = new CertManager({ domains: ['example.com'], email: 'me@example.com' });
 * const server = https.createServer(manager.httpsOptions(), app).listen(443);
 * manager.attach(server);
 * await manager.manage();
 */
export class CertManager extends EventEmitter<CertManagerEvents> {
  readonly config: ManagerConfig;
  readonly storage: Storage;
  readonly logger: Logger;
  readonly cache: CertificateCache;
  private readonly locker: Locker;
  private readonly clock: Clock;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly solvers: ChallengeSolvers;
  private readonly context: IssuerContext;
  private readonly issuers: Issuer[];
  private readonly internalIssuer: Issuer;
  private readonly resolver: DnsResolver;
  /** Names with an obtain or renewal running in the background, until it succeeds or gives up. */
  private readonly jobs: ObtainJobs;
  private readonly managed: ManagedNames;
  private readonly onDemand?: OnDemandIssuance;
  private readonly stop = new AbortController();
  private readonly maintenance: Maintenance;
  private readonly unsaved: UnsavedWrites;
  /** The first manage() removes what killed writes left in storage; in the background. */
  private leftoversRemoved?: Promise<void>;
  private readonly status: StatusWriter;
  private readonly expiryWarnings: ExpiryWarnings;
  /** Name → when its served certificate is due for renewal (ARI included), as the last maintenance pass saw. */
  private readonly renewalDueAt = new Map<string, { serial: string; atMs: number }>();

  constructor(options: CertManagerOptions = {}) {
    super();
    this.config = resolveConfig(options);
    this.logger = options.logger ?? createDefaultLogger();
    this.clock = options.clock ?? systemClock;
    this.sleep = options.clock?.sleep?.bind(options.clock) ?? sleep;
    this.storage = openStorage(options.storage, {
      timeoutMs: this.config.storageTimeoutMs,
      logger: this.logger,
    });
    this.locker =
      options.locker ??
      createDefaultLocker(this.storage, {
        ...this.config.locks,
        log: this.logger.child({ logger: 'locks' }),
      });
    this.cache = new CertificateCache(this.config.cacheCapacity);
    this.unsaved = new UnsavedWrites(this.storage, this.logger.child({ logger: 'storage' }));
    this.solvers = new ChallengeSolvers(this.config, this.storage, this.logger);
    this.context = {
      storage: this.storage,
      logger: this.logger,
      clock: this.clock,
      email: this.config.email,
      solvers: this.solvers.byType,
      rateLimiters: new RateLimiters(this.config.rateLimit, this.clock),
      locker: this.locker,
    };
    this.issuers = options.issuers ?? defaultIssuers(this.config.email);
    this.internalIssuer = internal();
    this.resolver = options.resolver ?? new Resolver({ timeout: DNS_HINT_TIMEOUT_MS, tries: 2 });
    // Every waiting obtain, poll and lock listens on this one signal: thousands of names are normal.
    setMaxListeners(0, this.stop.signal);
    this.status = new StatusWriter(this.storage, this.logger, this.config.renewal.windowRatio);
    this.expiryWarnings = new ExpiryWarnings(this.clock, this.logger.child({ logger: 'tls.expiry' }), this);
    this.jobs = this.obtainJobs();
    // Obtains that failed because storage was down go again once it answers, not at their backoff.
    this.storage.health.onSettled(() => this.jobs.hurryStorageWaiters());
    if (this.config.onDemand) {
      const logger = this.logger.child({ logger: 'tls.on_demand' });
      this.onDemand = new OnDemandIssuance(this.config.onDemand, this.onDemandHost(), this.clock, logger);
    }
    this.maintenance = this.maintenanceLoop();
    this.managed = this.managedNamesFromStorage();
  }

  /**
   * Starts managing `names` and the configured `domains`: serves a usable stored certificate, otherwise
   * obtains one in the background. Call it once your servers can answer the CA (adapters do).
   */
  async manage(names: string[] = []): Promise<void> {
    this.leftoversRemoved ??= removeLeftoversAtStart(this.storage, this.logger);
    const normalized = new Set([...this.config.domains, ...names.map(normalizeName)]);
    await this.managed.manage(normalized, () => this.maintenance.indexedTimes());
    if (!this.stop.signal.aborted) this.maintenance.start();
  }

  /** Resolves when certificates for `names` (default: every managed name) are in the cache; rejects on give-up. */
  ready(names?: string[]): Promise<void> {
    return this.managed.ready(names ? names.map(normalizeName) : this.managed.all());
  }

  /** Options for `https.createServer` / `tls.createServer`: certificates chosen per handshake from the cache. */
  httpsOptions(): tls.SecureContextOptions & { SNICallback: SNICallback } {
    return {
      SNICallback: createSNICallback({
        cache: this.cache,
        loadMissing: (name) => this.managed.loadMissing(name),
        onUnusable: (name, certificate, error) => this.onUnusable(name, certificate, error),
      }),
    };
  }

  /**
   * Lets `server` (the HTTPS server using `httpsOptions()`) serve handshakes without SNI (by the local
   * address, else `defaultName`) and answer TLS-ALPN-01 challenges, which it enables. Adapters call it.
   */
  attach(server: tls.Server): void {
    serveHandshakesWithoutSni(server, (localAddress) =>
      this.managed.withoutSni(plainAddress(localAddress), this.config.defaultName),
    );
    this.solvers.attach(server);
  }

  /** Answers an ACME HTTP-01 request; `undefined` when the request is not one (let the app handle it). */
  handleHttpChallenge(request: HttpChallengeRequest): Promise<HttpChallengeResponse | undefined> {
    return this.solvers.http01.answer(request);
  }

  /**
   * What a plain-HTTP request should get: a challenge answer, else (when `secure` is false and `redirect` is
   * not) a 308 to HTTPS; `undefined` means "not ours, let the app handle it". Adapters call this.
   */
  handleHttpRequest(
    request: HttpChallengeRequest & { secure: boolean },
    options: HttpAnswerOptions = {},
  ): Promise<HttpChallengeResponse | undefined> {
    return answerHttpRequest((r) => this.handleHttpChallenge(r), this.logger, request, options);
  }

  /** A request listener for a plain-HTTP server: challenge answers, else a 308 to HTTPS (else 404). */
  httpHandler(options: HttpAnswerOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
    return plainHttpHandler((r) => this.handleHttpChallenge(r), this.logger, options);
  }

  getCertificate(name: string): ManagedCertificate | undefined {
    const cached = this.cache.get(normalizeName(name));
    return cached && { ...cached.info, issuerKey: cached.issuerKey };
  }

  /**
   * When `name`'s served certificate is due for renewal (ms since the epoch): the ARI selected time when
   * earlier than the lifetime ratio, as the last maintenance pass saw it; `undefined` before one saw it.
   */
  renewalAt(name: string): number | undefined {
    const normalized = normalizeName(name);
    const due = this.renewalDueAt.get(normalized);
    return due?.serial === this.cache.get(normalized)?.info.serialNumber ? due?.atMs : undefined;
  }

  /** Every name under management (the configured domains once `manage()` ran, on-demand names once asked). */
  managedNames(): string[] {
    return this.managed.all();
  }

  /** Stops background work and releases held locks. Cached certificates keep being served. */
  async close(): Promise<void> {
    await this.maintenance.stop();
    this.stop.abort(new Error('certificate manager closed'));
    if (this.resolver instanceof Resolver) this.resolver.cancel();
    await this.jobs.settled();
    await this.status.flushed();
    await this.locker.close();
    await this.unsaved.flush(); // one last try, bounded by the storage timeout
    this.unsaved.close();
    this.storage.health.close();
    for (const issuer of [...this.issuers, this.internalIssuer]) issuer.close?.();
  }

  /** A cached certificate that cannot be served: drop it and obtain a new one. */
  private onUnusable(name: string, certificate: CachedCertificate, error: unknown): void {
    this.logger.error(
      { identifier: name, issuer: certificate.issuerKey, ...errorFields(error) },
      'unusable certificate; a new one will be obtained',
    );
    for (const certificateName of certificate.info.names) this.cache.delete(certificateName);
    if (this.managed.has(name)) this.jobs.start(name);
  }

  /** What the maintenance loop may see and do; it renews through the same job machinery. */
  private maintenanceHost(): MaintenanceHost {
    return {
      cached: (name) => this.cache.get(name),
      isBusy: (name) => this.jobs.has(name),
      loadFromStorage: (name) => this.managed.loadFromStorage(name),
      adopt: (name, certificate) =>
        this.managed.adopt(name, certificate, 'loaded renewed certificate from storage'),
      renew: (name, renewal) => {
        this.jobs.start(name, renewal);
        return this.jobs.get(name)?.settled;
      },
      hurry: (name) => this.jobs.get(name)?.hurry() ?? false,
      issuer: (key) => [...this.issuers, this.internalIssuer].find((issuer) => issuer.key === key),
      looked: (name, certificate, renewalDueAtMs) => {
        if (renewalDueAtMs !== undefined) {
          this.renewalDueAt.set(name, { serial: certificate.info.serialNumber, atMs: renewalDueAtMs });
        }
        this.expiryWarnings.check(name, certificate);
      },
    };
  }

  private onDemandHost() {
    return {
      isManaged: (name: string) => this.managed.has(name),
      manageAndWaitFirstAttempt: async (name: string) => {
        await this.manage([name]).catch(() => {});
        await this.jobs.get(name)?.firstOutcome;
      },
      cached: (name: string) => this.cache.get(name),
      denied: (name: string) => this.emit('on_demand_denied', { identifier: name, reason: 'denied' }),
      signal: this.stop.signal,
    };
  }

  private issuersFor(name: string): Issuer[] {
    return isInternalName(name) ? [this.internalIssuer] : this.issuers;
  }

  private maintenanceLoop(): Maintenance {
    return new Maintenance({
      host: this.maintenanceHost(),
      storage: this.storage,
      locker: this.locker,
      clock: this.clock,
      logger: this.logger,
      issuerContext: this.context,
      windowRatio: this.config.renewal.windowRatio,
      checkIntervalMs: this.config.renewal.checkIntervalMs,
      scheduleIndex: openScheduleIndex(this.storage),
    });
  }

  private managedNamesFromStorage(): ManagedNames {
    return new ManagedNames({
      storage: this.storage,
      cache: this.cache,
      jobs: this.jobs,
      clock: this.clock,
      logger: this.logger,
      events: this,
      issuerKeysFor: (name) => this.issuersFor(name).map((issuer) => issuer.key),
      onManaged: (name) => this.maintenance.checkSoon(name),
      onIndexed: (name, atMs) => this.maintenance.plan(name, atMs),
      ...(this.onDemand ? { onDemand: this.onDemand } : {}),
      warmUp: this.config.cacheWarmUp,
      signal: this.stop.signal,
    });
  }

  private obtainJobs(): ObtainJobs {
    const obtainContext: ObtainContext = {
      storage: this.storage,
      locker: this.locker,
      logger: this.logger,
      clock: this.clock,
      issuerContext: this.context,
      pauses: new Map() satisfies IssuerPauses,
      issuersFor: (name) => this.issuersFor(name),
      keyType: this.config.keyType,
      signal: this.stop.signal,
      unsaved: this.unsaved,
      admission: admissionFor(
        this.locker,
        this.context.rateLimiters,
        this.config.rateLimit,
        this.clock,
        this.logger.child({ logger: 'acme_client' }),
      ),
    };
    return new ObtainJobs({
      obtainContext,
      schedule: this.config.retry,
      clock: this.clock,
      sleep: this.sleep,
      resolver: this.resolver,
      logger: this.logger,
      cache: this.cache,
      events: this,
      status: this.status,
    });
  }
}

/** Same as `new CertManager(options)`. */
export function createManager(options: CertManagerOptions = {}): CertManager {
  return new CertManager(options);
}
