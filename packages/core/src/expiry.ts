/**
 * @module Expiry warnings: what the CAs' expiry e-mails used to catch. A served certificate with less than a
 * tenth of its lifetime left means every renewal so far has failed; say so loudly, at most hourly per name.
 */
import type { CachedCertificate } from './cache.js';
import type { Clock } from './clock.js';
import { publishCertificateExpiring } from './diagnostics.js';
import type { CertManagerEmitter } from './events.js';
import type { Logger } from './log.js';

/** Renewal starts with a third left (an ARI window earlier still): a tenth left is days of failures. */
export const EXPIRY_WARNING_RATIO = 1 / 10;
/** Loud enough to be seen, rare enough not to bury the log. */
export const EXPIRY_WARNING_INTERVAL_MS = 60 * 60_000;

export class ExpiryWarnings {
  /** Name → when it was last warned about. */
  private readonly warnedAtMs = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly events: CertManagerEmitter,
  ) {}

  /** Warns when `certificate`, served for `name`, is nearly expired (and was not warned about this hour). */
  check(name: string, certificate: CachedCertificate): void {
    const { notBefore, notAfter } = certificate.info;
    const now = this.clock.now();
    const remainingMs = notAfter - now;
    if (remainingMs >= (notAfter - notBefore) * EXPIRY_WARNING_RATIO) {
      this.warnedAtMs.delete(name);
      return;
    }
    const last = this.warnedAtMs.get(name);
    if (last !== undefined && now - last < EXPIRY_WARNING_INTERVAL_MS) return;
    this.warnedAtMs.set(name, now);
    const warning = {
      identifier: name,
      notAfter: new Date(notAfter).toISOString(),
      remaining_seconds: Math.round(remainingMs / 1000),
    };
    this.logger.error(
      { ...warning, issuer: certificate.issuerKey, serial: certificate.info.serialNumber },
      'certificate expires soon and no renewal has succeeded',
    );
    publishCertificateExpiring(warning);
    this.events.emit('cert_expiring', warning);
  }
}
