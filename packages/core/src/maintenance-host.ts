/** @module What the maintenance loop asks of the manager, and the renewal it hands back: the loop's contract. */
import type { CachedCertificate } from './cache.js';
import type { Issuer } from './issuers/issuer.js';
import type { RenewalReason } from './renewal.js';

/** What the manager lends the loop; the loop never imports the manager. */
export interface MaintenanceHost {
  cached(name: string): CachedCertificate | undefined;
  /** An obtain or renewal for the name is running, or waiting on the backoff schedule. */
  isBusy(name: string): boolean;
  loadFromStorage(name: string): Promise<CachedCertificate | undefined>;
  /** Serves a certificate found in storage (another instance renewed it). */
  adopt(name: string, certificate: CachedCertificate): void;
  /**
   * Starts a renewal in the background, with the obtain machinery (lock, re-check, policy, backoff, events);
   * resolves when it is over, either way.
   */
  renew(name: string, renewal: RenewalRequest): Promise<unknown> | undefined;
  /** Cuts the name's backoff wait short so its next attempt runs now; false when nothing was waiting. */
  hurry(name: string): boolean;
  issuer(key: string): Issuer | undefined;
  /**
   * What a pass saw of a name, for monitoring: the served certificate and when it is due (ARI included);
   * `undefined` while an obtain or renewal runs (ARI was not asked then).
   */
  looked?(name: string, certificate: CachedCertificate, renewalDueAtMs: number | undefined): void;
}

export interface RenewalRequest {
  /** The certificate being replaced: the re-check under the lock compares storage with it. */
  replacing: CachedCertificate;
  reason: RenewalReason;
  /** Its ARI identifier, sent to its issuer as `replaces`. */
  ariCertificateId?: string;
}
