/** @module CertManager: composes storage, locks, issuers, policy, backoff and the cache into automatic HTTPS. */

import cluster from 'node:cluster';
import { Resolver } from 'node:dns/promises';
import { EventEmitter, setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type tls from 'node:tls';
import type { Keyv } from 'keyv';
import { replacingIssuer } from './ari.js';
import {
  DEFAULT_DNS_RECHECK_MS,
  DEFAULT_MAX_RETRY_DURATION_MS,
  DEFAULT_RETRY_INTERVALS_MS,
  type RetryOptions,
  retryDelayMs,
} from './backoff.js';
import { type CachedCertificate, CertificateCache } from './cache.js';
import { type CertificateInfo, readCertificateInfo } from './certificates.js';
import { type Clock, sleep, systemClock } from './clock.js';
import { concurrencyLimit } from './concurrency.js';
import { type DnsResolver, dnsAnswer, waitBeforeRetry } from './dns-watch.js';
import { httpChallengeRequestOf, notFoundResponse, redirectToHttps, writeHttpResponse } from './http.js';
import { letsEncrypt, zeroSSL } from './issuers/acme.js';
import { internal } from './issuers/internal.js';
import type { ChallengeSolver, Issuer, IssuerContext, KeyType } from './issuers/issuer.js';
import { createDefaultLogger, errorFields, type Logger } from './log.js';
import { Maintenance, type MaintenanceHost, type RenewalRequest } from './maintenance.js';
import { isInternalName, normalizeName, wildcardFor } from './names.js';
import { type OnDemandOptions, OnDemandPolicy } from './on-demand.js';
import { type IssuerPauses, newPolicyState, obtainFromIssuers, type PolicyState } from './policy.js';
import { isDnsOrConnectionProblem } from './problems.js';
import { RateLimiters, type RateLimitOptions } from './ratelimit.js';
import {
  DEFAULT_RENEWAL_CHECK_INTERVAL_MS,
  DEFAULT_RENEWAL_WINDOW_RATIO,
  type RenewalOptions,
} from './renewal.js';
import { createSNICallback, type SNICallback } from './sni.js';
import { Dns01Solver, type DnsProvider } from './solvers/dns01.js';
import { Http01Solver, type HttpChallengeRequest, type HttpChallengeResponse } from './solvers/http01.js';
import { TlsAlpn01Solver } from './solvers/tls-alpn-01.js';
import { storageKeys } from './storage/keys.js';
import { createDefaultLocker } from './storage/locker.js';
import type { Locker } from './storage/locks.js';
import { openStorage, type Storage } from './storage/storage.js';
import { readStoredCertificate, type StoredCertificate } from './stored-certificates.js';

export interface CertManagerOptions {
  /** Names managed from the start (adapters manage them once their servers listen). */
  domains?: string[];
  /** ACME account contact; also enables the ZeroSSL fallback. */
  email?: string;
  /** Default: Let's Encrypt, then ZeroSSL (with `email`). `localhost`-type names always use `internal()`. */
  issuers?: Issuer[];
  /** A Keyv instance, or a directory for the default file store. */
  storage?: Keyv | string;
  /** Default: lock files beside the file store, Redis for a Redis Keyv, else in-process. */
  locker?: Locker;
  /**
   * Challenge types. TLS-ALPN-01 works once a TLS server is handed to `serveTlsAlpnChallenges()`; DNS-01
   * (the only way to a wildcard) needs your DNS provider.
   */
  challenges?: { http01?: boolean; tlsAlpn01?: boolean; dns01?: DnsProvider };
  retry?: RetryOptions;
  /** Used to notice a DNS fix early while a failed name waits; default: the system's resolver. */
  resolver?: DnsResolver;
  rateLimit?: RateLimitOptions;
  /** When to renew (default: a third of the lifetime left) and how often to look (default: 10 minutes). */
  renewal?: RenewalOptions;
  /** On-demand TLS: names not configured get a certificate at their first handshake if `ask` allows. */
  onDemand?: OnDemandOptions;
  keyType?: KeyType;
  logger?: Logger;
  clock?: Clock;
  cacheCapacity?: number;
}

/** What `getCertificate(name)` returns. */
export interface ManagedCertificate extends CertificateInfo {
  issuerKey: string;
}

/** Event payloads, by Caddy's event names. */
export interface CertManagerEvents {
  cert_obtaining: [{ identifier: string; attempt: number }];
  cert_obtained: [{ identifier: string; issuer: string; ca: string; renewal: boolean }];
  cert_renewed: [
    { identifier: string; issuer: string; ca: string; reason: string; old_serial: string; serial: string },
  ];
  cert_failed: [{ identifier: string; error: unknown; attempt: number; retrying_in: number }];
  cert_giving_up: [{ identifier: string; error: unknown; attempts: number; elapsed: number }];
  cached_managed_cert: [{ identifier: string; issuer: string; source: 'storage' }];
  on_demand_denied: [{ identifier: string; reason: 'denied' | 'limited' }];
}

/** Storage reads in flight while `manage()` loads many names; a handshake's own read waits behind at most these. */
const MANAGE_LOAD_CONCURRENCY = 16;

export type { StoredCertificate } from './stored-certificates.js';

/**
 * Gets, serves and keeps certificates for the managed names. Starts nothing until `manage()`.
 * @example
 * const manager = new CertManager({ domains: ['example.com'], email: 'me@example.com' });
 * https.createServer(manager.httpsOptions(), app).listen(443);
 * await manager.manage(['example.com']);
 */
export class CertManager extends EventEmitter<CertManagerEvents> {
  readonly storage: Storage;
  readonly logger: Logger;
  readonly cache: CertificateCache;
  private readonly locker: Locker;
  private readonly clock: Clock;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly http01: Http01Solver;
  private readonly tlsAlpn01: TlsAlpn01Solver;
  private readonly context: IssuerContext;
  private readonly issuers: Issuer[];
  private readonly internalIssuer: Issuer;
  private readonly resolver: DnsResolver;
  private readonly pauses: IssuerPauses = new Map();
  private readonly policyStates = new Map<string, PolicyState>();
  /** Names with an obtain running in the background; settles when cached or given up. */
  private readonly obtaining = new Map<string, Promise<void>>();
  private readonly managed = new Set<string>();
  private readonly onDemand?: OnDemandPolicy;
  /** Handshakes of one on-demand name share one decision and one obtain. */
  private readonly onDemandPending = new Map<string, Promise<CachedCertificate | undefined>>();
  /** Handshakes waiting for a managed name's certificate to be read from storage. */
  private readonly handshakeLoads = new Map<string, Promise<CachedCertificate | undefined>>();
  /** Names whose `manage()` is still reading storage. */
  private readonly loading = new Map<string, Promise<void>>();
  private readonly limitLoading = concurrencyLimit(MANAGE_LOAD_CONCURRENCY);
  private readonly stop = new AbortController();
  private readonly maintenance: Maintenance;
  /** Names whose backoff wait the maintenance loop may cut short (emergency, or renewed elsewhere). */
  private readonly hurries = new Map<string, AbortController>();

  constructor(readonly options: CertManagerOptions = {}) {
    super();
    this.logger = options.logger ?? createDefaultLogger();
    this.clock = options.clock ?? systemClock;
    this.sleep = options.clock?.sleep?.bind(options.clock) ?? sleep;
    this.storage = openStorage(options.storage);
    this.locker =
      options.locker ?? createDefaultLocker(this.storage, { log: this.logger.child({ logger: 'locks' }) });
    this.cache = new CertificateCache(options.cacheCapacity);
    this.http01 = new Http01Solver(this.storage, this.logger.child({ logger: 'http' }));
    // Another instance's TLS-ALPN challenge can reach this one when storage is shared (a Keyv given, e.g.
    // Redis) or the port is (node:cluster workers).
    const maybeClustered = this.storage.directory === undefined || cluster.isWorker;
    this.tlsAlpn01 = new TlsAlpn01Solver(this.storage, this.logger.child({ logger: 'tls' }), maybeClustered);
    const solvers = new Map<string, ChallengeSolver>();
    if (options.challenges?.http01 !== false) solvers.set('http-01', this.http01);
    if (options.challenges?.dns01) solvers.set('dns-01', new Dns01Solver(options.challenges.dns01));
    this.context = {
      storage: this.storage,
      logger: this.logger,
      clock: this.clock,
      email: options.email,
      solvers,
      rateLimiters: new RateLimiters(options.rateLimit ?? {}, this.clock),
    };
    this.issuers = options.issuers ?? [letsEncrypt(), ...(options.email ? [zeroSSL()] : [])];
    this.internalIssuer = internal();
    // A DNS check is a hint, not a verdict: a slow resolver must not hold up the retry schedule.
    this.resolver = options.resolver ?? new Resolver({ timeout: 2_000, tries: 2 });
    if (options.onDemand) {
      // Each on-demand name in flight listens for its first outcome; many at once is normal here.
      this.setMaxListeners(0);
      this.onDemand = new OnDemandPolicy(
        options.onDemand,
        this.clock,
        this.logger.child({ logger: 'tls.on_demand' }),
      );
    }
    // Every waiting obtain, poll and lock listens on this one signal: thousands of names are normal.
    setMaxListeners(0, this.stop.signal);
    const windowRatio = options.renewal?.windowRatio ?? DEFAULT_RENEWAL_WINDOW_RATIO;
    const checkIntervalMs = options.renewal?.checkIntervalMs ?? DEFAULT_RENEWAL_CHECK_INTERVAL_MS;
    if (!(windowRatio > 0 && windowRatio < 1)) {
      throw new RangeError(`renewal.windowRatio must be between 0 and 1: ${windowRatio}`);
    }
    if (!(checkIntervalMs > 0))
      throw new RangeError(`renewal.checkIntervalMs must be positive: ${checkIntervalMs}`);
    this.maintenance = new Maintenance({
      host: this.maintenanceHost(),
      storage: this.storage,
      locker: this.locker,
      clock: this.clock,
      logger: this.logger,
      issuerContext: this.context,
      windowRatio,
      checkIntervalMs,
    });
  }

  /** Starts managing `names`: serves a usable stored certificate, otherwise obtains one in the background. */
  async manage(names: string[]): Promise<void> {
    const normalized = names.map(normalizeName);
    await Promise.all(normalized.map((name) => this.manageOne(name)));
    if (!this.stop.signal.aborted) this.maintenance.start();
  }

  /** Resolves when certificates for `names` (default: every managed name) are in the cache; rejects on give-up. */
  async ready(names?: string[]): Promise<void> {
    const wanted = names ? names.map(normalizeName) : [...this.managed];
    await Promise.all(
      wanted.map(async (name) => {
        await this.loading.get(name);
        if (this.cache.get(name)) return;
        const pending = this.obtaining.get(name);
        if (pending) return pending;
        if (!this.managed.has(name)) {
          throw new Error(`${name} is not managed: call manage([${JSON.stringify(name)}]) first`);
        }
        // Evicted from a full cache: storage still has it. Otherwise its obtain gave up (cert_giving_up).
        if (!(await this.loadMissing(name)))
          throw new Error(`${name} has no certificate: obtaining it gave up`);
      }),
    );
  }

  /** Options for `https.createServer` / `tls.createServer`: certificates chosen per handshake from the cache. */
  httpsOptions(): tls.SecureContextOptions & { SNICallback: SNICallback } {
    return {
      SNICallback: createSNICallback({
        cache: this.cache,
        loadMissing: (name) => this.loadMissing(name),
        onUnusable: (name, certificate, error) => this.onUnusable(name, certificate, error),
      }),
    };
  }

  /** A managed name's certificate read from storage at handshake time: not loaded yet, or evicted. */
  private loadMissing(name: string): Promise<CachedCertificate | undefined> {
    const wildcard = wildcardFor(name);
    const managedName = this.managed.has(name)
      ? name
      : wildcard && this.managed.has(wildcard)
        ? wildcard
        : undefined;
    const onDemand = this.onDemandPending.get(name);
    if (onDemand) return onDemand; // its first obtain is running: wait for it with the first handshake
    if (!managedName) return this.onDemand ? this.obtainOnDemand(name) : Promise.resolve(undefined);
    let pending = this.handshakeLoads.get(managedName);
    if (!pending) {
      pending = this.loadFromStorage(managedName)
        .then((certificate) => {
          if (certificate) this.cache.set(certificate);
          return certificate;
        })
        .finally(() => this.handshakeLoads.delete(managedName));
      this.handshakeLoads.set(managedName, pending);
    }
    return pending;
  }

  /**
   * On-demand TLS: asks (or remembers) whether `servername` may have a certificate, then manages it and
   * waits for its first attempt. A failed attempt fails this handshake; the name keeps its retry schedule.
   */
  private obtainOnDemand(servername: string): Promise<CachedCertificate | undefined> {
    let name: string;
    try {
      name = normalizeName(servername);
    } catch {
      return Promise.resolve(undefined); // a hostile or malformed SNI name is never asked about
    }
    let pending = this.onDemandPending.get(name);
    if (!pending) {
      pending = this.decideAndObtain(name).finally(() => this.onDemandPending.delete(name));
      this.onDemandPending.set(name, pending);
    }
    return pending;
  }

  private async decideAndObtain(name: string): Promise<CachedCertificate | undefined> {
    if (this.managed.has(name) || this.stop.signal.aborted) return this.cache.get(name);
    const verdict = await this.onDemand!.verdict(name);
    if (verdict !== 'allowed') {
      this.emit('on_demand_denied', { identifier: name, reason: verdict });
      this.logger
        .child({ logger: 'tls.on_demand' })
        .warn({ identifier: name, reason: verdict }, 'on-demand certificate refused');
      return undefined;
    }
    const settled = new Promise<void>((resolve) => {
      const onOutcome = ({ identifier }: { identifier: string }) => {
        if (identifier !== name) return;
        this.off('cert_failed', onOutcome).off('cert_giving_up', onOutcome);
        resolve();
      };
      this.on('cert_failed', onOutcome).on('cert_giving_up', onOutcome);
      this.manage([name])
        .then(() => this.ready([name]))
        .catch(() => {})
        .finally(() => onOutcome({ identifier: name }));
    });
    await settled;
    return this.cache.get(name);
  }

  /** A cached certificate that cannot be served: drop it and obtain a new one. */
  private onUnusable(name: string, certificate: CachedCertificate, error: unknown): void {
    this.logger.error(
      { identifier: name, issuer: certificate.issuerKey, ...errorFields(error) },
      'unusable certificate; a new one will be obtained',
    );
    for (const certificateName of certificate.info.names) this.cache.delete(certificateName);
    if (this.managed.has(name) && !this.obtaining.has(name) && !this.stop.signal.aborted) {
      this.obtainInBackground(name);
    }
  }

  /**
   * Lets `server` (the HTTPS server using `httpsOptions()`) answer TLS-ALPN-01 challenges, and enables that
   * challenge type. Adapters call it from `listen()`.
   */
  serveTlsAlpnChallenges(server: tls.Server): void {
    if (this.options.challenges?.tlsAlpn01 === false) return;
    this.tlsAlpn01.attach(server);
    this.context.solvers.set('tls-alpn-01', this.tlsAlpn01);
  }

  /** Answers an ACME HTTP-01 request; `undefined` when the request is not one (let the app handle it). */
  handleHttpChallenge(request: HttpChallengeRequest): Promise<HttpChallengeResponse | undefined> {
    return this.http01.answer(request);
  }

  getCertificate(name: string): ManagedCertificate | undefined {
    const cached = this.cache.get(normalizeName(name));
    return cached && { ...cached.info, issuerKey: cached.issuerKey };
  }

  /** Stops background work and releases held locks. Cached certificates keep being served. */
  async close(): Promise<void> {
    await this.maintenance.stop();
    this.stop.abort(new Error('certificate manager closed'));
    if (this.resolver instanceof Resolver) this.resolver.cancel();
    await Promise.allSettled(this.obtaining.values());
    await this.locker.close();
    for (const issuer of [...this.issuers, this.internalIssuer]) issuer.close?.();
  }

  private manageOne(name: string): Promise<void> {
    this.managed.add(name);
    // Recorded before the first await, so concurrent manage() and ready() calls see the same work.
    let loading = this.loading.get(name);
    if (!loading) {
      loading = this.limitLoading(() => this.loadOrObtain(name)).finally(() => this.loading.delete(name));
      this.loading.set(name, loading);
    }
    return loading;
  }

  private async loadOrObtain(name: string): Promise<void> {
    if (this.cache.get(name) || this.obtaining.has(name)) return;
    let stored: CachedCertificate | undefined;
    try {
      stored = await this.loadFromStorage(name);
    } catch (error) {
      // Storage is failing: an attempt re-reads it under the lock before asking any CA, so nothing is
      // issued twice; until it answers, attempts fail and back off.
      this.logger.error(
        { identifier: name, ...errorFields(error) },
        'reading certificate from storage failed',
      );
      return this.obtainInBackground(name);
    }
    if (stored) {
      this.cache.set(stored);
      this.emit('cached_managed_cert', { identifier: name, issuer: stored.issuerKey, source: 'storage' });
      this.logger.info({ identifier: name, issuer: stored.issuerKey }, 'loaded certificate from storage');
      if (stored.info.notAfter > this.clock.now()) return;
      this.logger.error(
        { identifier: name, expired_at: new Date(stored.info.notAfter).toISOString() },
        'stored certificate has expired; serving it until a new one arrives',
      );
    }
    this.obtainInBackground(name, stored && { replacing: stored, reason: 'expired' });
  }

  /** What the maintenance loop may see and do; it renews through the same obtain machinery. */
  private maintenanceHost(): MaintenanceHost {
    return {
      managedNames: () => this.managed,
      cached: (name) => this.cache.get(name),
      isBusy: (name) => this.obtaining.has(name),
      loadFromStorage: (name) => this.loadFromStorage(name),
      adopt: (name, certificate) => {
        this.cache.set(certificate);
        const { issuerKey: issuer, info } = certificate;
        this.emit('cached_managed_cert', { identifier: name, issuer, source: 'storage' });
        const fields = { identifier: name, issuer, serial: info.serialNumber };
        this.logger
          .child({ logger: 'tls.maintenance' })
          .info(fields, 'loaded renewed certificate from storage');
      },
      renew: (name, renewal) => {
        if (!this.stop.signal.aborted && !this.obtaining.has(name)) this.obtainInBackground(name, renewal);
      },
      hurry: (name) => {
        const hurry = this.hurries.get(name);
        hurry?.abort();
        return Boolean(hurry);
      },
      issuer: (key) => [...this.issuers, this.internalIssuer].find((issuer) => issuer.key === key),
    };
  }

  private issuersFor(name: string): Issuer[] {
    return isInternalName(name) ? [this.internalIssuer] : this.issuers;
  }

  /** The stored certificate for `name`, if one is readable; a corrupt entry is logged and ignored (replaced later). */
  /** The newest readable stored certificate for `name`; a corrupt entry is logged and skipped, a failing store throws. */
  private loadFromStorage(
    name: string,
    options: { verify?: boolean } = {},
  ): Promise<CachedCertificate | undefined> {
    const issuerKeys = this.issuersFor(name).map((issuer) => issuer.key);
    return readStoredCertificate(this.storage, issuerKeys, name, this.logger, options);
  }

  private obtainInBackground(name: string, renewal?: RenewalRequest): void {
    const run = this.obtainWithRetries(name, renewal).finally(() => this.obtaining.delete(name));
    run.catch(() => {}); // failures are logged and emitted; ready() callers see the rejection
    this.obtaining.set(name, run);
  }

  /**
   * Attempts on the backoff schedule until a certificate is cached, the manager closes, or the time is up.
   * A renewal (`renewal` set) runs the same way; the certificate it replaces is served meanwhile.
   */
  private async obtainWithRetries(name: string, renewal?: RenewalRequest): Promise<void> {
    const intervalsMs = this.options.retry?.intervalsMs ?? DEFAULT_RETRY_INTERVALS_MS;
    const maxDurationMs = this.options.retry?.maxDurationMs ?? DEFAULT_MAX_RETRY_DURATION_MS;
    const logger = this.logger.child({ logger: renewal ? 'tls.renew' : 'tls.obtain' });
    const verb = renewal ? 'renewing' : 'obtaining';
    const startedAt = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      this.stop.signal.throwIfAborted();
      this.emit('cert_obtaining', { identifier: name, attempt });
      logger.info(
        { identifier: name, attempt, ...(renewal && { reason: renewal.reason }) },
        `${verb} certificate`,
      );
      try {
        await this.obtainOnce(name, renewal);
        logger.info({ identifier: name }, `certificate ${renewal ? 'renewed' : 'obtained'} successfully`);
        return;
      } catch (error) {
        if (this.stop.signal.aborted) throw error;
        const elapsedMs = this.clock.now() - startedAt;
        const delayMs = retryDelayMs(attempt, intervalsMs);
        if (elapsedMs + delayMs > maxDurationMs) {
          this.emit('cert_giving_up', {
            identifier: name,
            error,
            attempts: attempt,
            elapsed: elapsedMs / 1000,
          });
          logger.error(
            {
              identifier: name,
              attempts: attempt,
              elapsed: elapsedMs / 1000,
              max_duration: maxDurationMs / 1000,
              ...errorFields(error),
            },
            `giving up on ${verb} certificate`,
          );
          throw error;
        }
        // Taken before anyone hears of the failure, so a DNS fix made right after it is still noticed.
        const dnsAtFailure = isDnsOrConnectionProblem(unwrap(error))
          ? await dnsAnswer(this.resolver, name)
          : undefined;
        this.emit('cert_failed', { identifier: name, error, attempt, retrying_in: delayMs / 1000 });
        logger.error(
          {
            identifier: name,
            ...errorFields(error),
            attempt,
            retrying_in: delayMs / 1000,
            elapsed: elapsedMs / 1000,
            max_duration: maxDurationMs / 1000,
          },
          'will retry',
        );
        const hurry = new AbortController();
        this.hurries.set(name, hurry);
        try {
          await waitBeforeRetry({
            name,
            delayMs,
            dnsAtFailure,
            recheckMs: this.options.retry?.dnsRecheckMs ?? DEFAULT_DNS_RECHECK_MS,
            resolver: this.resolver,
            sleep: this.sleep,
            signal: AbortSignal.any([this.stop.signal, hurry.signal]),
            logger,
          });
        } catch (reason) {
          if (this.stop.signal.aborted || !hurry.signal.aborted) throw reason;
          logger.info(
            { identifier: name, attempt },
            'retrying before the backoff schedule: maintenance asked for it',
          );
        } finally {
          this.hurries.delete(name);
        }
      }
    }
  }

  /**
   * One attempt under the name's lock: re-check storage (another instance may have finished: a usable
   * certificate, or for a renewal one that already replaced `renewal.replacing`), then ask the issuers.
   */
  private async obtainOnce(name: string, renewal?: RenewalRequest): Promise<void> {
    const lock = await this.locker.acquire(`cert:${name}`, { signal: this.stop.signal });
    try {
      const stored = await this.loadFromStorage(name, { verify: true });
      const replacing = renewal?.replacing.info;
      const doneElsewhere = replacing
        ? stored &&
          stored.info.serialNumber !== replacing.serialNumber &&
          stored.info.notAfter >= replacing.notAfter
        : stored && stored.info.notAfter > this.clock.now();
      if (stored && doneElsewhere) {
        this.cache.set(stored);
        this.logger.info(
          { identifier: name, issuer: stored.issuerKey },
          'certificate obtained by another instance; loaded from storage',
        );
        return;
      }
      const state = this.policyStates.get(name) ?? newPolicyState();
      this.policyStates.set(name, state);
      const request = {
        names: [name],
        keyType: this.options.keyType ?? 'ecdsa-p256',
        signal: this.stop.signal,
      };
      const ariCertificateId = renewal?.ariCertificateId;
      // ARI: the order at the CA that issued the certificate being replaced names it in `replaces`.
      const issuers = this.issuersFor(name).map((candidate) =>
        ariCertificateId && candidate.key === renewal.replacing.issuerKey
          ? replacingIssuer(candidate, ariCertificateId, this.logger.child({ logger: 'tls.renew' }))
          : candidate,
      );
      const { certificate, issuer } = await obtainFromIssuers(
        { ...request },
        issuers,
        state,
        this.pauses,
        this.context,
      );
      const info = readCertificateInfo(certificate.certificatePem);
      const entry = CertificateCache.entry({
        info,
        issuerKey: issuer.key,
        certificatePem: certificate.certificatePem,
        privateKeyPem: certificate.privateKeyPem,
      });
      void entry.secureContext; // a certificate whose key does not fit is never stored
      const record: StoredCertificate = {
        certificatePem: certificate.certificatePem,
        privateKeyPem: certificate.privateKeyPem,
        issuerKey: issuer.key,
        ca: certificate.ca,
        obtainedAt: this.clock.now(),
        info,
      };
      await this.storage.set(storageKeys.certificate(issuer.key, name), record);
      this.cache.set(entry);
      this.policyStates.delete(name);
      const obtained = { identifier: name, issuer: issuer.key, ca: certificate.ca };
      this.emit('cert_obtained', { ...obtained, renewal: Boolean(renewal ?? stored) });
      if (renewal) {
        const serials = { old_serial: renewal.replacing.info.serialNumber, serial: info.serialNumber };
        this.emit('cert_renewed', { ...obtained, reason: renewal.reason, ...serials });
      }
    } finally {
      this.logger.child({ logger: 'tls.obtain' }).info({ identifier: name }, 'releasing lock');
      await lock.release();
    }
  }

  /**
   * What a plain-HTTP request should get: a challenge answer, else (when `secure` is false and `redirect` is
   * not) a 308 to HTTPS; `undefined` means "not ours, let the app handle it". Adapters call this.
   */
  async handleHttpRequest(
    request: HttpChallengeRequest & { secure: boolean },
    options: { redirect?: boolean; httpsPort?: number } = {},
  ): Promise<HttpChallengeResponse | undefined> {
    const answer = await this.handleHttpChallenge(request).catch((error: unknown) => {
      this.logger.error({ ...errorFields(error), url: request.url }, 'answering challenge request');
      return notFoundResponse;
    });
    if (answer) return answer;
    if (request.secure || options.redirect === false) return undefined;
    return redirectToHttps(request.host, request.url, options.httpsPort);
  }

  /** A request listener for a plain-HTTP server: challenge answers, else a 308 to HTTPS (else 404). */
  httpHandler(options: { httpsPort?: number; redirect?: boolean } = {}) {
    return async (req: IncomingMessage, res: ServerResponse) => {
      const response = await this.handleHttpRequest(
        { ...httpChallengeRequestOf(req), secure: false },
        options,
      );
      writeHttpResponse(res, response ?? notFoundResponse);
    };
  }
}

function unwrap(error: unknown): unknown {
  // A policy failure aggregates each issuer's error; judge by the first real one.
  return error instanceof AggregateError
    ? (error.errors.find((e) => isDnsOrConnectionProblem(e)) ?? error)
    : error;
}

/** Same as `new CertManager(options)`. */
export function createManager(options: CertManagerOptions = {}): CertManager {
  return new CertManager(options);
}
