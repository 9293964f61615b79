/** @module The retry schedule between obtain attempts (Caddy's, ~140 attempts over 30 days). */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * Wait before attempt 2, 3, …; the last entry repeats. Short at first (a typo fixed in DNS is caught
 * quickly), long later (a CA outage or a name that will never validate costs little).
 */
export const DEFAULT_RETRY_INTERVALS_MS: readonly number[] = [
  1 * MINUTE,
  2 * MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  ...Array(3).fill(10 * MINUTE),
  ...Array(4).fill(20 * MINUTE),
  ...Array(6).fill(30 * MINUTE),
  ...Array(3).fill(1 * HOUR),
  ...Array(2).fill(2 * HOUR),
  ...Array(2).fill(3 * HOUR),
  6 * HOUR,
];

/** Long enough to ride out any DNS propagation or CA outage; a name failing longer needs a human. */
export const DEFAULT_MAX_RETRY_DURATION_MS = 30 * 24 * HOUR;

/** Re-resolving a waiting name once a minute costs one DNS query and catches a DNS fix within a minute. */
export const DEFAULT_DNS_RECHECK_MS = MINUTE;

export interface RetryOptions {
  intervalsMs?: number[];
  maxDurationMs?: number;
  dnsRecheckMs?: number;
}

/**
 * A renewal's wait is at most a tenth of the time its certificate has left (so ten more attempts fit before
 * expiry), but never below 1/200 of its lifetime nor a minute (so a certificate near or past expiry is not
 * hammered at the CA's rate limits). 90-day certificates keep Caddy's schedule (1/200 is 10.8 hours, more than
 * its longest step); a 160-hour one waits at most 48 minutes near expiry instead of 6 hours; a 12-hour one
 * from Caddy's ACME server, a few minutes.
 */
export const RENEWAL_WAIT_SHARE_OF_TIME_LEFT = 1 / 10;
export const RENEWAL_WAIT_FLOOR_SHARE_OF_LIFETIME = 1 / 200;
export const MIN_RENEWAL_WAIT_MS = MINUTE;

/**
 * The schedule's wait after a failed renewal attempt, capped by the certificate's own time left.
 * @example renewalRetryDelayMs(6 * HOUR, { notBefore: 0, notAfter: 160 * HOUR }, 152 * HOUR) // 48 minutes
 */
export function renewalRetryDelayMs(
  scheduledMs: number,
  validity: { notBefore: number; notAfter: number },
  nowMs: number,
): number {
  const lifetimeMs = Math.max(validity.notAfter - validity.notBefore, 0);
  const capMs = Math.max(
    (validity.notAfter - nowMs) * RENEWAL_WAIT_SHARE_OF_TIME_LEFT,
    lifetimeMs * RENEWAL_WAIT_FLOOR_SHARE_OF_LIFETIME,
    MIN_RENEWAL_WAIT_MS,
  );
  return Math.min(scheduledMs, Math.floor(capMs));
}

/** How long to wait after failed attempt number `attempt` (1-based). */
export function retryDelayMs(
  attempt: number,
  intervalsMs: readonly number[] = DEFAULT_RETRY_INTERVALS_MS,
): number {
  const index = Math.min(Math.max(attempt - 1, 0), intervalsMs.length - 1);
  return intervalsMs[index] ?? 0;
}
