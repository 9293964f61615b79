/**
 * @module The manager's options: what a user may pass, checked once at construction and resolved into a
 * frozen configuration with every default filled in, so nothing downstream re-reads or re-defaults options.
 */
import {
  DEFAULT_DNS_RECHECK_MS,
  DEFAULT_MAX_RETRY_DURATION_MS,
  DEFAULT_RETRY_INTERVALS_MS,
  type RetryOptions,
} from './backoff.js';
import { DEFAULT_CACHE_CAPACITY } from './cache.js';
import type { Clock } from './clock.js';
import { parseServerAddress } from './dns/exchange.js';
import type { DnsResolver } from './dns-watch.js';
import { ConfigurationError } from './errors.js';
import type { Issuer, KeyType } from './issuers/issuer.js';
import type { Logger } from './log.js';
import { InvalidNameError, normalizeName } from './names.js';
import type { OnDemandOptions } from './on-demand.js';
import { DEFAULT_ORDERS_PER_WINDOW, DEFAULT_RATE_WINDOW_MS, type RateLimitOptions } from './ratelimit.js';
import {
  DEFAULT_RENEWAL_CHECK_INTERVAL_MS,
  DEFAULT_RENEWAL_WINDOW_RATIO,
  type RenewalOptions,
} from './renewal.js';
import type { RetrySchedule } from './retry.js';
import type { DnsPropagationOptions } from './solvers/dns-propagation.js';
import type { DnsProvider } from './solvers/dns01.js';
import type { Locker } from './storage/locks.js';
import type { KeyvLike } from './storage/storage.js';
import { DEFAULT_STORAGE_TIMEOUT_MS } from './storage/timeout.js';
import {
  check,
  isFunctionOf,
  isPositiveInteger,
  isPositiveMs,
  isUrl,
  optional,
  POSITIVE_INTEGER,
  POSITIVE_MS,
} from './validate.js';

export interface CertManagerOptions {
  /** Names managed from the first `manage()` call (adapters make it once their servers listen). */
  domains?: string[];
  /** ACME account contact; also enables the ZeroSSL fallback. */
  email?: string;
  /** Default: Let's Encrypt, then ZeroSSL (with `email`). `localhost`-type names always use `internal()`. */
  issuers?: Issuer[];
  /** A Keyv instance (keyv 5.6+ or 6.1+, any store), or a directory for the default file store. */
  storage?: KeyvLike | string;
  /** Default: lock files beside the file store, Redis for a Redis Keyv, else in-process. */
  locker?: Locker;
  /**
   * Timing of the default locker: `leaseMs` (default 10 s) is how long a dead holder's lock outlives it —
   * its names resume on another instance within about one lease; `pollMs` (default 250 ms) how often a
   * waiter asks again.
   */
  locks?: { leaseMs?: number; pollMs?: number };
  /**
   * Bound on every storage and lock operation (default 3 s): a stalled store (a paused Redis) fails the
   * operation — handshakes of cached names go on, obtains wait on their backoff — and never hangs
   * `manage()`, a handshake, maintenance or `close()`.
   */
  storageTimeoutMs?: number;
  /**
   * Challenge types. TLS-ALPN-01 works once a TLS server is handed to `attach()`; DNS-01
   * (the only way to a wildcard) needs your DNS provider.
   */
  challenges?: {
    http01?: boolean;
    tlsAlpn01?: boolean;
    dns01?: DnsProvider;
    /** DNS-01: how to wait until the TXT value is served before answering; `false` answers at once. */
    dnsPropagation?: DnsPropagationOptions | false;
  };
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
  /** Certificates kept in memory (default 10,000); others are read from storage at their next handshake. */
  cacheCapacity?: number;
  /**
   * After `manage()`, read stored certificates that are not due into the cache in the background, up to
   * `cacheCapacity` (default true), so `getCertificate()` and the metrics see them before their first
   * handshake. Off, a stored name is read at its first handshake (or when due).
   */
  cacheWarmUp?: boolean;
  /**
   * Served to handshakes without SNI (a client that connects by IP address) when no managed IP address
   * matches the local address (CertMagic's DefaultServerName).
   */
  defaultName?: string;
}

/** `options.*` with defaults filled in; built once, frozen, never re-read from the user's object. */
export interface ManagerConfig {
  readonly domains: readonly string[];
  readonly email?: string;
  readonly keyType: KeyType;
  readonly retry: RetrySchedule;
  readonly renewal: Readonly<Required<RenewalOptions>>;
  readonly rateLimit: Readonly<Required<RateLimitOptions>>;
  readonly challenges: {
    readonly http01: boolean;
    readonly tlsAlpn01: boolean;
    readonly dns01?: DnsProvider;
    readonly dnsPropagation?: Readonly<DnsPropagationOptions> | false;
  };
  readonly onDemand?: Readonly<OnDemandOptions>;
  readonly cacheCapacity: number;
  readonly cacheWarmUp: boolean;
  readonly defaultName?: string;
  readonly locks: { readonly leaseMs?: number; readonly pollMs?: number };
  readonly storageTimeoutMs: number;
}

export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-4096'];

/**
 * Checks every option and resolves defaults. Throws a {@link ConfigurationError} naming the first option
 * that cannot work — at construction, never as a failed attempt 30 days of retries later.
 * @example
 * const config = resolveConfig({ domains: ['Example.COM.'] }); // config.domains: ['example.com']
 */
export function resolveConfig(options: CertManagerOptions): ManagerConfig {
  check('options', options, (o) => typeof o === 'object' && o !== null, 'must be an object');
  checkObjects(options);
  const keyType = options.keyType ?? 'ecdsa-p256';
  check(
    'keyType',
    keyType,
    (v) => KEY_TYPES.includes(v as KeyType),
    `must be one of ${KEY_TYPES.join(', ')}`,
  );
  const config: ManagerConfig = {
    domains: normalizeDomains(options.domains),
    email: optional('email', options.email, isEmail, 'must be an email address'),
    keyType,
    retry: retryConfig(options.retry ?? {}),
    renewal: renewalConfig(options.renewal ?? {}),
    rateLimit: Object.freeze({
      orders: positiveInteger('rateLimit.orders', options.rateLimit?.orders, DEFAULT_ORDERS_PER_WINDOW),
      windowMs: positiveMs('rateLimit.windowMs', options.rateLimit?.windowMs, DEFAULT_RATE_WINDOW_MS),
    }),
    challenges: challengesConfig(options.challenges ?? {}),
    ...(options.onDemand ? { onDemand: Object.freeze(checkOnDemand(options.onDemand)) } : {}),
    cacheCapacity: positiveInteger('cacheCapacity', options.cacheCapacity, DEFAULT_CACHE_CAPACITY),
    cacheWarmUp: optional('cacheWarmUp', options.cacheWarmUp, isBoolean, 'must be a boolean') ?? true,
    locks: Object.freeze({
      ...optionalEntry(
        'leaseMs',
        optional('locks.leaseMs', options.locks?.leaseMs, isPositiveMs, POSITIVE_MS),
      ),
      ...optionalEntry('pollMs', optional('locks.pollMs', options.locks?.pollMs, isPositiveMs, POSITIVE_MS)),
    }),
    storageTimeoutMs: positiveMs('storageTimeoutMs', options.storageTimeoutMs, DEFAULT_STORAGE_TIMEOUT_MS),
    ...(options.defaultName !== undefined ? { defaultName: name('defaultName', options.defaultName) } : {}),
  };
  return Object.freeze(config);
}

function retryConfig(retry: NonNullable<CertManagerOptions['retry']>): ManagerConfig['retry'] {
  const intervalsMs = retry.intervalsMs ?? DEFAULT_RETRY_INTERVALS_MS;
  check(
    'retry.intervalsMs',
    intervalsMs,
    (v) => Array.isArray(v) && v.length > 0 && v.every(isPositiveMs),
    'must be a non-empty list of positive numbers of milliseconds',
  );
  return Object.freeze({
    intervalsMs: Object.freeze([...intervalsMs]),
    maxDurationMs: positiveMs('retry.maxDurationMs', retry.maxDurationMs, DEFAULT_MAX_RETRY_DURATION_MS),
    dnsRecheckMs: positiveMs('retry.dnsRecheckMs', retry.dnsRecheckMs, DEFAULT_DNS_RECHECK_MS),
  });
}

function renewalConfig(renewal: NonNullable<CertManagerOptions['renewal']>): ManagerConfig['renewal'] {
  const windowRatio = renewal.windowRatio ?? DEFAULT_RENEWAL_WINDOW_RATIO;
  check(
    'renewal.windowRatio',
    windowRatio,
    (v) => typeof v === 'number' && v > 0 && v < 1,
    'must be a number between 0 and 1',
  );
  return Object.freeze({
    windowRatio,
    checkIntervalMs: positiveMs(
      'renewal.checkIntervalMs',
      renewal.checkIntervalMs,
      DEFAULT_RENEWAL_CHECK_INTERVAL_MS,
    ),
  });
}

function challengesConfig(
  challenges: NonNullable<CertManagerOptions['challenges']>,
): ManagerConfig['challenges'] {
  const flag = (option: 'http01' | 'tlsAlpn01') =>
    optional(`challenges.${option}`, challenges[option], isBoolean, 'must be a boolean') ?? true;
  return Object.freeze({
    http01: flag('http01'),
    tlsAlpn01: flag('tlsAlpn01'),
    ...(challenges.dns01 ? { dns01: challenges.dns01 } : {}),
    ...(challenges.dnsPropagation !== undefined
      ? { dnsPropagation: checkDnsPropagation(challenges.dnsPropagation) }
      : {}),
  });
}

/** The objects the manager uses as given: each must at least have the methods it will call. */
function checkObjects(options: CertManagerOptions): void {
  const { issuers, storage, locker, logger, clock, resolver, challenges } = options;
  if (issuers !== undefined) {
    check('issuers', issuers, (v) => Array.isArray(v) && v.length > 0, 'must be a non-empty list of issuers');
    for (const [index, issuer] of issuers.entries()) {
      check(
        `issuers[${index}]`,
        issuer,
        (v) => isFunctionOf(v, 'issue') && typeof (v as Issuer).key === 'string',
        'must be an issuer: acme({ directoryUrl }), letsEncrypt(), zeroSSL() or internal()',
      );
    }
  }
  optional(
    'storage',
    storage,
    (v) => (typeof v === 'string' && v.length > 0) || isFunctionOf(v, 'get', 'set', 'delete'),
    'must be a Keyv instance or a directory path',
  );
  optional('locker', locker, (v) => isFunctionOf(v, 'acquire', 'close'), 'must be a Locker (acquire, close)');
  optional(
    'logger',
    logger,
    (v) => isFunctionOf(v, 'info', 'warn', 'error', 'child'),
    'must be a pino logger',
  );
  optional('clock', clock, (v) => isFunctionOf(v, 'now'), 'must have now()');
  optional(
    'resolver',
    resolver,
    (v) => isFunctionOf(v, 'resolve4', 'resolve6'),
    'must have resolve4 and resolve6',
  );
  optional(
    'challenges.dns01',
    challenges?.dns01,
    (v) => isFunctionOf(v, 'present', 'cleanup'),
    'must be a DNS provider ({ present, cleanup })',
  );
}

function checkOnDemand(onDemand: OnDemandOptions): OnDemandOptions {
  check(
    'onDemand.ask',
    onDemand.ask,
    (v) => typeof v === 'function' || (typeof v === 'string' && isUrl(v)),
    'must be a function (name) => boolean or an http(s) URL; on-demand TLS will not start without one',
  );
  optional('onDemand.allowedCacheMs', onDemand.allowedCacheMs, isPositiveMs, POSITIVE_MS);
  optional('onDemand.deniedCacheMs', onDemand.deniedCacheMs, isPositiveMs, POSITIVE_MS);
  optional('onDemand.maxNewNames', onDemand.maxNewNames, isPositiveInteger, POSITIVE_INTEGER);
  optional('onDemand.windowMs', onDemand.windowMs, isPositiveMs, POSITIVE_MS);
  optional('onDemand.handshakeTimeoutMs', onDemand.handshakeTimeoutMs, isPositiveMs, POSITIVE_MS);
  return { ...onDemand };
}

function checkDnsPropagation(propagation: DnsPropagationOptions | false): DnsPropagationOptions | false {
  if (propagation === false) return false;
  check(
    'challenges.dnsPropagation',
    propagation,
    (v) => typeof v === 'object' && v !== null,
    'must be an object or false',
  );
  optional(
    'challenges.dnsPropagation.nameservers',
    propagation.nameservers,
    (v) => Array.isArray(v) && v.length > 0 && v.every(isServerAddress),
    "must be a list of 'host' or 'host:port'",
  );
  for (const key of ['timeoutMs', 'initialIntervalMs', 'maxIntervalMs'] as const) {
    optional(`challenges.dnsPropagation.${key}`, propagation[key], isPositiveMs, POSITIVE_MS);
  }
  return Object.freeze({ ...propagation });
}

function isServerAddress(value: unknown): boolean {
  try {
    return typeof value === 'string' && parseServerAddress(value) !== undefined;
  } catch {
    return false;
  }
}

function normalizeDomains(domains: unknown): readonly string[] {
  if (domains === undefined) return Object.freeze([]);
  check('domains', domains, Array.isArray, 'must be a list of host names');
  const names = (domains as unknown[]).map((domain, index) => name(`domains[${index}]`, domain));
  return Object.freeze([...new Set(names)]);
}

function name(option: string, value: unknown): string {
  try {
    return normalizeName(value as string);
  } catch (error) {
    if (!(error instanceof InvalidNameError)) throw error;
    throw new ConfigurationError(option, value, `is not a usable host name: ${error.message}`);
  }
}

function optionalEntry<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function positiveMs(option: string, value: number | undefined, fallback: number): number {
  return optional(option, value, isPositiveMs, POSITIVE_MS) ?? fallback;
}

function positiveInteger(option: string, value: number | undefined, fallback: number): number {
  return optional(option, value, isPositiveInteger, POSITIVE_INTEGER) ?? fallback;
}

function isBoolean(value: unknown): boolean {
  return typeof value === 'boolean';
}

function isEmail(value: unknown): boolean {
  return typeof value === 'string' && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value);
}
