/** @module When a certificate is due for renewal: the lifetime ratio, the ARI selected time, emergencies. */

/**
 * Renew with a third of the lifetime left (Caddy's default): 30 days of a 90-day certificate, enough for the
 * whole 30-day retry schedule to run before expiry; 2 days of a 6-day one.
 */
export const DEFAULT_RENEWAL_WINDOW_RATIO = 1 / 3;

/**
 * Under a twentieth of the lifetime left (4.5 days of 90, 7 hours of 6 days) nothing may delay a renewal:
 * not an ARI window, not a long backoff wait.
 */
export const EMERGENCY_RENEWAL_RATIO = 1 / 20;

/** Caddy's maintenance interval: one storage read per name every 10 minutes costs nothing. */
export const DEFAULT_RENEWAL_CHECK_INTERVAL_MS = 10 * 60_000;

/**
 * The maintenance loop looks at least this many times per lifetime of the shortest-lived certificate it
 * manages, so a renewal starts within 1% of the lifetime after it is due: 10 minutes stands for 90-day,
 * 45-day, 160-hour and 12-hour certificates alike (7.2 minutes for the last), a 1-hour one is looked at every
 * 36 seconds.
 */
export const CHECKS_PER_LIFETIME = 100;
/** However short the lifetime, the loop never spins faster than this. */
export const MIN_RENEWAL_CHECK_INTERVAL_MS = 1_000;

/**
 * The maintenance interval for certificates of these lifetimes: the configured one, shortened so the
 * shortest lifetime gets {@link CHECKS_PER_LIFETIME} looks.
 * @example maintenanceIntervalMs(600_000, [12 * 3600_000]) // 432_000 (7.2 minutes)
 */
export function maintenanceIntervalMs(configuredMs: number, lifetimesMs: Iterable<number>): number {
  let intervalMs = configuredMs;
  for (const lifetimeMs of lifetimesMs) {
    if (lifetimeMs > 0) intervalMs = Math.min(intervalMs, lifetimeMs / CHECKS_PER_LIFETIME);
  }
  return Math.max(Math.floor(intervalMs), Math.min(MIN_RENEWAL_CHECK_INTERVAL_MS, configuredMs));
}

export interface RenewalOptions {
  /** Renew when less than this fraction of the lifetime remains; default 1/3. */
  windowRatio?: number;
  /** How often the maintenance loop looks at every managed certificate; default 10 minutes. */
  checkIntervalMs?: number;
}

/**
 * Why a certificate is renewed. `ari`: the CA's window (a past window also means "revoked, replace it");
 * `requested` / `revoked`: asked for from outside the app (`autotls renew`, `autotls revoke`).
 */
export type RenewalReason = 'expired' | 'emergency' | 'ari' | 'lifetime' | 'requested' | 'revoked';

export interface RenewalDecision {
  /** Set when the certificate is due now. */
  reason?: RenewalReason;
  /** When it becomes due (the earlier of the ARI selected time and the lifetime ratio). */
  dueAtMs: number;
}

export interface Validity {
  notBefore: number;
  notAfter: number;
}

/**
 * Decides whether a certificate is due: expired, in an emergency, at the ARI selected time, or with less
 * than `windowRatio` of its lifetime left. ARI can only make a renewal earlier than the ratio (Caddy gives
 * the expiry date credence too, in case the CA's or our ARI is wrong). Following RFC 9773 §4.3.3, the
 * selected time counts as reached when the next check (`checkIntervalMs` away) would come after it.
 */
export function renewalDecision(
  validity: Validity,
  nowMs: number,
  options: { windowRatio: number; checkIntervalMs: number; ariSelectedTimeMs?: number },
): RenewalDecision {
  const lifetimeMs = Math.max(validity.notAfter - validity.notBefore, 0);
  const remainingMs = validity.notAfter - nowMs;
  const ratioDueAtMs = validity.notAfter - lifetimeMs * options.windowRatio;
  const dueAtMs = Math.min(ratioDueAtMs, options.ariSelectedTimeMs ?? Number.POSITIVE_INFINITY);
  if (remainingMs <= 0) return { reason: 'expired', dueAtMs };
  if (remainingMs < lifetimeMs * EMERGENCY_RENEWAL_RATIO) return { reason: 'emergency', dueAtMs };
  if (
    options.ariSelectedTimeMs !== undefined &&
    options.ariSelectedTimeMs < nowMs + options.checkIntervalMs
  ) {
    return { reason: 'ari', dueAtMs };
  }
  if (nowMs >= ratioDueAtMs) return { reason: 'lifetime', dueAtMs };
  return { dueAtMs };
}

/** A uniformly random time inside the window, as RFC 9773 asks (it spreads a CA's renewals over the window). */
export function pickTimeInWindow(
  window: { startMs: number; endMs: number },
  random: () => number = Math.random,
): number {
  return Math.floor(window.startMs + random() * (window.endMs - window.startMs));
}
