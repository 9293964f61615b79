/** @module The ACME issuer's options: their types, defaults, and the check made when an issuer is built. */
import {
  check,
  isPositiveInteger,
  isPositiveMs,
  isUrl,
  optional,
  POSITIVE_INTEGER,
  POSITIVE_MS,
} from '../validate.js';

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

export interface ExternalAccountBinding {
  kid: string;
  hmacKey: string;
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** The CA's staging directory, asked first while retrying so failures cost no production rate limit. */
  testDirectoryUrl?: string;
  /** PEM the CA's own HTTPS is trusted with (Pebble's); default: Node's roots. */
  ca?: string;
  /** External Account Binding, given or fetched (ZeroSSL) when the account is created. */
  eab?: ExternalAccountBinding | ((email: string | undefined) => Promise<ExternalAccountBinding>);
  /** Account contact; default: the manager's `email`. */
  email?: string;
  /**
   * ACME profile (draft-ietf-acme-profiles) for every order; the CA must list it in its directory's
   * `meta.profiles`, else obtaining fails at once with a `NoRetryError` naming the listed ones.
   */
  profile?: string;
  /**
   * The profile for orders with IP addresses when `profile` is not set, used when the CA lists it
   * (Let's Encrypt issues IP certificates only under `shortlived`; `letsEncrypt()` sets it).
   */
  ipProfile?: string;
  /** Challenge types in order of preference; default http-01, then tls-alpn-01, then dns-01. */
  challenges?: ChallengeType[];
  /** Orders tried per attempt (acmez: 3). */
  ordersPerAttempt?: number;
  /** Pause between orders of one attempt (acmez: 1 s). */
  orderRetryDelayMs?: number;
  /** First poll delay; doubles up to `pollMaxMs`. A `Retry-After` from the CA overrides both. */
  pollInitialMs?: number;
  pollMaxMs?: number;
  /** Give up on an authorization or order that stays pending this long (acmez: 5 min). */
  pollTimeoutMs?: number;
  requestTimeoutMs?: number;
}

export const DEFAULT_CHALLENGES: ChallengeType[] = ['http-01', 'tls-alpn-01', 'dns-01'];
/** Challenge types that can validate an IP address (RFC 8738): DNS-01 has no name to put a record under. */
export const IP_CHALLENGES: readonly string[] = ['http-01', 'tls-alpn-01'];
/** acmez: three orders per attempt, so one failed validation can switch challenge type twice. */
export const DEFAULT_ORDERS_PER_ATTEMPT = 3;
/** acmez: a second between the orders of one attempt. */
export const DEFAULT_ORDER_RETRY_DELAY_MS = 1_000;
/**
 * Pebble validates within ~5 ms of the challenge POST and Let's Encrypt within a second: start there and
 * double, so a fast CA is seen at once and a slow one gets a handful of polls, not hundreds.
 */
export const DEFAULT_POLL_INITIAL_MS = 8;
export const DEFAULT_POLL_MAX_MS = 3_000;
export const DEFAULT_POLL_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Options an ACME issuer cannot work with fail here, when the issuer is made, not as failed attempts. */
export function checkAcmeOptions(options: AcmeIssuerOptions): void {
  check('directoryUrl', options?.directoryUrl, isUrl, 'must be the http(s) URL of an ACME directory');
  optional(
    'testDirectoryUrl',
    options.testDirectoryUrl,
    isUrl,
    'must be the http(s) URL of an ACME directory',
  );
  optional(
    'eab',
    options.eab,
    (eab) =>
      typeof eab === 'function' ||
      (typeof (eab as ExternalAccountBinding)?.kid === 'string' &&
        typeof (eab as ExternalAccountBinding).hmacKey === 'string'),
    'must be { kid, hmacKey } (strings) or a function that returns them',
  );
  for (const option of ['profile', 'ipProfile'] as const) {
    optional(option, options[option], (v) => typeof v === 'string' && v.length > 0, 'must be a profile name');
  }
  optional(
    'challenges',
    options.challenges,
    (v) => Array.isArray(v) && v.length > 0 && v.every((type) => DEFAULT_CHALLENGES.includes(type)),
    `must be a non-empty list of ${DEFAULT_CHALLENGES.join(', ')}`,
  );
  optional('ordersPerAttempt', options.ordersPerAttempt, isPositiveInteger, POSITIVE_INTEGER);
  for (const option of ['pollInitialMs', 'pollMaxMs', 'pollTimeoutMs', 'requestTimeoutMs'] as const) {
    optional(option, options[option], isPositiveMs, POSITIVE_MS);
  }
  optional(
    'orderRetryDelayMs',
    options.orderRetryDelayMs,
    (v) => typeof v === 'number' && v >= 0,
    'must be 0 or more milliseconds',
  );
}
