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

/** How long to wait after failed attempt number `attempt` (1-based). */
export function retryDelayMs(
  attempt: number,
  intervalsMs: readonly number[] = DEFAULT_RETRY_INTERVALS_MS,
): number {
  const index = Math.min(Math.max(attempt - 1, 0), intervalsMs.length - 1);
  return intervalsMs[index] ?? 0;
}
