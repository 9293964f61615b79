/**
 * @module On-demand TLS: a name nobody configured gets a certificate during its first handshake, only if
 * `ask` allows it. Caddy has no answer cache and no limits here; we add both.
 */
import type { CachedCertificate } from './cache.js';
import { type Clock, sleep } from './clock.js';
import { errorFields, type Logger } from './log.js';
import { normalizeName } from './names.js';
import { SlidingWindowLimiter } from './ratelimit.js';

export interface OnDemandOptions {
  /** May `name` get a certificate? A function, or a URL asked `GET <url>?domain=<name>` (2xx = yes). */
  ask: ((name: string) => boolean | Promise<boolean>) | string;
  /** How long a "yes" is remembered; default 1 hour. */
  allowedCacheMs?: number;
  /** How long a "no" (or a failing ask) is remembered; default 5 minutes. */
  deniedCacheMs?: number;
  /**
   * New on-demand names ordered per window, across all names; default 10 per minute. A name past the limit
   * that `ask` allowed waits in line for its turn (its handshakes wait up to `handshakeTimeoutMs`): the
   * limit bounds orders, it never drops a name.
   */
  maxNewNames?: number;
  windowMs?: number;
  /**
   * How long a handshake waits for a new name's first attempt before it fails (the name keeps its retry
   * schedule and its next handshake is served from the cache); default 3 minutes, CertMagic's cap.
   */
  handshakeTimeoutMs?: number;
}

/** CertMagic's cap on how long a handshake waits for an on-demand certificate. */
export const DEFAULT_ON_DEMAND_HANDSHAKE_TIMEOUT_MS = 3 * 60_000;
/** Caddy's timeout for the ask endpoint. */
const ASK_TIMEOUT_MS = 10_000;
const DEFAULT_ALLOWED_CACHE_MS = 60 * 60_000;
/** Short, so a name the operator just allowed works within minutes, long enough to blunt a handshake flood. */
const DEFAULT_DENIED_CACHE_MS = 5 * 60_000;
/** A flood of random SNI names that `ask` wrongly allows still costs at most this many orders a minute. */
const DEFAULT_MAX_NEW_NAMES = 10;
const DEFAULT_WINDOW_MS = 60_000;
/** Remembered answers kept at most; the oldest go first (a flood of random names must not grow memory). */
const MAX_REMEMBERED_ANSWERS = 10_000;

export class OnDemandPolicy {
  private readonly answers = new Map<string, { allowed: boolean; until: number }>();
  private readonly pendingAsks = new Map<string, Promise<boolean>>();
  private readonly newNames: SlidingWindowLimiter;

  constructor(
    private readonly options: OnDemandOptions,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    if (!options?.ask)
      throw new Error('on-demand TLS needs an `ask` function or URL; it will not start without one');
    this.newNames = new SlidingWindowLimiter(
      options.maxNewNames ?? DEFAULT_MAX_NEW_NAMES,
      options.windowMs ?? DEFAULT_WINDOW_MS,
      clock,
    );
  }

  /**
   * Whether `name` may get a certificate: asked (or remembered). An allowed name resolves once it has its
   * turn under the new-name limit, in arrival order; it rejects only when `signal` aborts.
   */
  async allowedInTurn(name: string, signal: AbortSignal): Promise<boolean> {
    if (!(await this.allowed(name))) return false;
    await this.newNames.take(signal, {
      onWait: () =>
        this.logger.info(
          { identifier: name, waiting: Math.round(this.newNames.waitMs() / 1000) },
          'new on-demand names limit reached; the name waits in line',
        ),
    });
    return true;
  }

  private async allowed(name: string): Promise<boolean> {
    const remembered = this.answers.get(name);
    if (remembered && remembered.until > this.clock.now()) return remembered.allowed;
    // Concurrent handshakes for one name share one question.
    let pending = this.pendingAsks.get(name);
    if (!pending) {
      pending = this.ask(name).finally(() => this.pendingAsks.delete(name));
      this.pendingAsks.set(name, pending);
    }
    return pending;
  }

  private async ask(name: string): Promise<boolean> {
    let allowed = false;
    try {
      const { ask } = this.options;
      allowed = typeof ask === 'string' ? await askUrl(ask, name) : (await ask(name)) === true;
    } catch (error) {
      this.logger.error(
        { identifier: name, ...errorFields(error) },
        'on-demand ask failed; treating as denied',
      );
    }
    const cacheMs = allowed
      ? (this.options.allowedCacheMs ?? DEFAULT_ALLOWED_CACHE_MS)
      : (this.options.deniedCacheMs ?? DEFAULT_DENIED_CACHE_MS);
    this.answers.delete(name);
    this.answers.set(name, { allowed, until: this.clock.now() + cacheMs });
    if (this.answers.size > MAX_REMEMBERED_ANSWERS)
      this.answers.delete(this.answers.keys().next().value as string);
    return allowed;
  }
}

async function askUrl(endpoint: string, name: string): Promise<boolean> {
  const url = new URL(endpoint);
  url.searchParams.set('domain', name);
  const response = await fetch(url, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
  await response.body?.cancel();
  return response.ok;
}

/** What on-demand issuance needs from the manager. */
export interface OnDemandHost {
  isManaged(name: string): boolean;
  /** Starts managing `name` and resolves once its first attempt is over (either way). */
  manageAndWaitFirstAttempt(name: string): Promise<void>;
  cached(name: string): CachedCertificate | undefined;
  denied(name: string): void;
  /** Aborts when the manager closes: names waiting in line stop waiting. */
  signal: AbortSignal;
}

/**
 * The handshake side of on-demand TLS: handshakes for one new name share one decision and one obtain, and
 * each waits at most `handshakeTimeoutMs` for the first attempt.
 */
export class OnDemandIssuance {
  private readonly pending = new Map<string, Promise<CachedCertificate | undefined>>();
  private readonly policy: OnDemandPolicy;

  constructor(
    private readonly options: OnDemandOptions,
    private readonly host: OnDemandHost,
    clock: Clock,
    private readonly logger: Logger,
  ) {
    this.policy = new OnDemandPolicy(options, clock, logger);
  }

  /** A first obtain is running for this name (its handshakes wait for it). */
  inFlight(name: string): Promise<CachedCertificate | undefined> | undefined {
    return this.pending.get(name);
  }

  /** The certificate for a handshake naming `servername`, obtaining it if `ask` allows. */
  certificateFor(servername: string): Promise<CachedCertificate | undefined> {
    let name: string;
    try {
      name = normalizeName(servername);
    } catch {
      return Promise.resolve(undefined); // a hostile or malformed SNI name is never asked about
    }
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.decideAndObtain(name)
        .catch(() => undefined) // closed while waiting in line
        .finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return this.withinHandshakeTimeout(pending);
  }

  private async decideAndObtain(name: string): Promise<CachedCertificate | undefined> {
    if (this.host.isManaged(name) || this.host.signal.aborted) return this.host.cached(name);
    if (!(await this.policy.allowedInTurn(name, this.host.signal))) {
      this.host.denied(name);
      this.logger.warn({ identifier: name, reason: 'denied' }, 'on-demand certificate refused');
      return undefined;
    }
    if (this.host.isManaged(name)) return this.host.cached(name);
    await this.host.manageAndWaitFirstAttempt(name);
    return this.host.cached(name);
  }

  private async withinHandshakeTimeout(
    pending: Promise<CachedCertificate | undefined>,
  ): Promise<CachedCertificate | undefined> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? DEFAULT_ON_DEMAND_HANDSHAKE_TIMEOUT_MS;
    const stop = new AbortController();
    // Real time, not the injected clock: this bounds how long a client's handshake hangs.
    const timeout = sleep(timeoutMs, stop.signal).then(
      () => undefined,
      () => undefined,
    );
    try {
      return await Promise.race([pending, timeout]);
    } finally {
      stop.abort();
    }
  }
}
