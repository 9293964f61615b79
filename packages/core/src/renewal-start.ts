/**
 * @module Acting on a due renewal: start it through the manager's job machinery, or — when one is already
 * waiting on its backoff and the certificate is about to expire — cut that wait short, once per certificate.
 */
import type { StoredRenewalInfo } from './ari.js';
import type { CachedCertificate } from './cache.js';
import type { Logger } from './log.js';
import type { MaintenanceHost } from './maintenance.js';
import type { RenewalReason } from './renewal.js';

export interface DueRenewal {
  name: string;
  current: CachedCertificate;
  reason: RenewalReason;
  ari?: StoredRenewalInfo;
  nowMs: number;
}

export class RenewalStarter {
  /** Name → `<serial>:<reason>` whose backoff wait was already cut short: once per certificate and reason. */
  private readonly hurried = new Map<string, string>();

  constructor(
    private readonly host: MaintenanceHost,
    private readonly logger: Logger,
  ) {}

  start({ name, current, reason, ari, nowMs }: DueRenewal): void {
    const fields = {
      identifier: name,
      issuer: current.issuerKey,
      serial: current.info.serialNumber,
      reason,
      expiration: new Date(current.info.notAfter).toISOString(),
      remaining: Math.round((current.info.notAfter - nowMs) / 1000),
      ...(ari ? { ari_selected_time: new Date(ari.selectedTimeMs).toISOString() } : {}),
      ...(ari?.explanationUrl ? { ari_explanation: ari.explanationUrl } : {}),
    };
    if (this.host.isBusy(name)) {
      // Already renewing; in an emergency the backoff wait (up to hours) is cut short, once per certificate.
      const urgent = reason === 'emergency' || reason === 'expired';
      const key = `${current.info.serialNumber}:${reason}`;
      if (urgent && this.hurried.get(name) !== key && this.host.hurry(name)) {
        this.hurried.set(name, key);
        this.logger.error(
          fields,
          'certificate expires soon and its renewal is waiting to retry; retrying now',
        );
      }
      return;
    }
    if (reason === 'expired') {
      this.logger.error(fields, 'certificate has expired; serving it until a new one arrives, renewing now');
    } else if (reason === 'emergency') {
      this.logger.error(fields, 'certificate expires soon; emergency renewal');
    } else {
      this.logger.info(fields, 'certificate needs renewal');
    }
    this.host.renew(name, {
      replacing: current,
      reason,
      ...(ari ? { ariCertificateId: ari.certificateId } : {}),
    });
  }
}
