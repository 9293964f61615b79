/** @module The manager's events, by Caddy's names, and their payloads. */
import type { EventEmitter } from 'node:events';
import type { RenewalReason } from './renewal.js';

/** Event payloads, by Caddy's event names. */
export interface CertManagerEvents {
  /** An attempt starts; a renewal says why it was due (`expired`, `emergency`, `ari`, `lifetime`). */
  cert_obtaining: [{ identifier: string; attempt: number; renewal: boolean; reason?: RenewalReason }];
  cert_obtained: [{ identifier: string; issuer: string; ca: string; renewal: boolean }];
  cert_renewed: [
    { identifier: string; issuer: string; ca: string; reason: string; old_serial: string; serial: string },
  ];
  cert_failed: [{ identifier: string; error: unknown; attempt: number; retrying_in: number }];
  /** The retry schedule ran out, or the failure is one no retry can fix (`retryable: false`). */
  cert_giving_up: [
    { identifier: string; error: unknown; attempts: number; elapsed: number; retryable: boolean },
  ];
  cached_managed_cert: [{ identifier: string; issuer: string; source: 'storage' }];
  on_demand_denied: [{ identifier: string; reason: 'denied' | 'limited' }];
  /** A served certificate has under a tenth of its lifetime left and no renewal succeeded; at most hourly. */
  cert_expiring: [{ identifier: string; notAfter: string; remaining_seconds: number }];
}

export type CertManagerEmitter = EventEmitter<CertManagerEvents>;
