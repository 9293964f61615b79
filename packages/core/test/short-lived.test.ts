import { describe, expect, it } from 'vitest';
import { ariRetryDelayMs } from '../src/ari.js';
import { parseRenewalInfo, RenewalInfoError } from '../src/ari-client.js';
import { DEFAULT_RETRY_INTERVALS_MS, renewalRetryDelayMs } from '../src/backoff.js';
import {
  DEFAULT_RENEWAL_CHECK_INTERVAL_MS,
  DEFAULT_RENEWAL_WINDOW_RATIO,
  maintenanceIntervalMs,
  renewalDecision,
} from '../src/renewal.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const lifetimes = {
  'a 12-hour certificate (Caddy’s ACME server)': 12 * HOUR,
  'a 160-hour shortlived certificate': 160 * HOUR,
  'a 45-day tlsserver certificate': 45 * DAY,
  'a 90-day classic certificate': 90 * DAY,
};

describe('renewal timing from the certificate’s own lifetime', () => {
  it.each(Object.entries(lifetimes))('renews %s with a third of its lifetime left', (_, lifetimeMs) => {
    const validity = { notBefore: 0, notAfter: lifetimeMs };
    const options = {
      windowRatio: DEFAULT_RENEWAL_WINDOW_RATIO,
      checkIntervalMs: maintenanceIntervalMs(DEFAULT_RENEWAL_CHECK_INTERVAL_MS, [lifetimeMs]),
    };
    const dueAtMs = lifetimeMs - lifetimeMs / 3;
    expect(renewalDecision(validity, dueAtMs - 1, options).reason).toBeUndefined();
    expect(renewalDecision(validity, dueAtMs + 1, options).reason).toBe('lifetime');
    // Emergency with a twentieth left: 36 minutes of 12 hours, 8 hours of 160, 4.5 days of 90.
    expect(renewalDecision(validity, lifetimeMs * 0.96, options).reason).toBe('emergency');
  });

  it('looks at least a hundred times per lifetime: the default 10 minutes, less for certificates under ~17 hours', () => {
    expect(maintenanceIntervalMs(10 * MINUTE, [90 * DAY, 160 * HOUR])).toBe(10 * MINUTE);
    expect(maintenanceIntervalMs(10 * MINUTE, [90 * DAY, 12 * HOUR])).toBe(7.2 * MINUTE);
    expect(maintenanceIntervalMs(10 * MINUTE, [HOUR])).toBe(36_000);
    expect(maintenanceIntervalMs(10 * MINUTE, [10_000])).toBe(1_000);
    expect(maintenanceIntervalMs(100, [HOUR])).toBe(100);
  });

  it('never lets a 160-hour certificate wait out a 6-hour backoff step near expiry', () => {
    const validity = { notBefore: 0, notAfter: 160 * HOUR };
    // At the renewal time (53 h left) a 6-hour step is cut to 5.3 hours; with 8 hours left, to 48 minutes.
    expect(renewalRetryDelayMs(6 * HOUR, validity, (160 - 53) * HOUR)).toBe(5.3 * HOUR);
    expect(renewalRetryDelayMs(6 * HOUR, validity, 152 * HOUR)).toBe(48 * MINUTE);
    expect(renewalRetryDelayMs(6 * HOUR, validity, 170 * HOUR)).toBe(48 * MINUTE);
    expect(renewalRetryDelayMs(MINUTE, validity, 152 * HOUR)).toBe(MINUTE);
  });

  it('keeps Caddy’s schedule for 90-day certificates and a minute’s floor for 12-hour ones', () => {
    const classic = { notBefore: 0, notAfter: 90 * DAY };
    for (const stepMs of DEFAULT_RETRY_INTERVALS_MS) {
      expect(renewalRetryDelayMs(stepMs, classic, 89 * DAY)).toBe(stepMs);
    }
    const caddy = { notBefore: 0, notAfter: 12 * HOUR };
    expect(renewalRetryDelayMs(6 * HOUR, caddy, 8 * HOUR)).toBe(24 * MINUTE);
    expect(renewalRetryDelayMs(6 * HOUR, caddy, 12 * HOUR - MINUTE)).toBe(3.6 * MINUTE);
  });
});

describe('ARI answers and errors (RFC 9773)', () => {
  it('treats a window that ends before it starts as no answer, asked again in 6 hours', () => {
    const body = JSON.stringify({
      suggestedWindow: { start: '2026-01-02T00:00:00Z', end: '2026-01-01T00:00:00Z' },
    });
    let error: unknown;
    try {
      parseRenewalInfo('u', body, 60_000);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RenewalInfoError);
    expect((error as RenewalInfoError).temporary).toBe(false);
    expect(ariRetryDelayMs(error, 1)).toBe(6 * HOUR);
  });

  it('backs off from a minute after temporary failures, and honours a Retry-After clamped to a minute–a day', () => {
    const temporary = new RenewalInfoError('503', true);
    expect([1, 2, 3, 10, 30].map((failures) => ariRetryDelayMs(temporary, failures))).toEqual([
      MINUTE,
      2 * MINUTE,
      4 * MINUTE,
      6 * HOUR,
      6 * HOUR,
    ]);
    expect(ariRetryDelayMs(new RenewalInfoError('503', true, 1_000), 1)).toBe(MINUTE);
    expect(ariRetryDelayMs(new RenewalInfoError('503', true, 3 * DAY), 1)).toBe(DAY);
    expect(ariRetryDelayMs(new RenewalInfoError('404', false, 60_000), 1)).toBe(6 * HOUR);
    expect(ariRetryDelayMs(new Error('anything else'), 1)).toBe(6 * HOUR);
  });
});
