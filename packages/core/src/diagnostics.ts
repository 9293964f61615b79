/**
 * @module The figures behind the metrics, published on `node:diagnostics_channel` for APM tools and for
 * `@autotls/core/prometheus`: every request to a CA, every issuer failure, every rate-limiter wait. A
 * channel without subscribers costs one property check. The channels are process-wide, as the CAs are.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export interface AcmeRequestMessage {
  /** The ACME directory URL. */
  ca: string;
  /** `newOrder`, `directory`, … or the path's fixed part (`/my-order`): never an id, so labels stay few. */
  endpoint: string;
  /** The HTTP status; 0 when no answer came (refused, reset, timed out). */
  status: number;
  durationMs: number;
}

export interface ObtainFailureMessage {
  identifier: string;
  /** The issuer's key (`acme-v02.api.letsencrypt.org-directory`, `local`). */
  issuer: string;
  error: unknown;
}

export interface RateLimiterWaitMessage {
  /** `<directory>|<account>`. */
  key: string;
  waitMs: number;
}

/** A certificate this process obtained or renewed and now serves: the figures of the certificate gauges. */
export interface CertificateServedMessage {
  identifier: string;
  issuer: string;
  serial: string;
  /** ms since the epoch. */
  notBefore: number;
  notAfter: number;
  renewal: boolean;
}

export interface CertificateExpiringMessage {
  identifier: string;
  notAfter: string;
  remaining_seconds: number;
}

export const diagnosticsChannels = {
  acmeRequest: diagnosticsChannel.channel('autotls:acme:request'),
  obtainFailure: diagnosticsChannel.channel('autotls:obtain:failure'),
  rateLimiterWait: diagnosticsChannel.channel('autotls:ratelimit:wait'),
  certificateServed: diagnosticsChannel.channel('autotls:certificate:served'),
  certificateExpiring: diagnosticsChannel.channel('autotls:certificate:expiring'),
};

export function publishAcmeRequest(message: AcmeRequestMessage): void {
  if (diagnosticsChannels.acmeRequest.hasSubscribers) diagnosticsChannels.acmeRequest.publish(message);
}

export function publishObtainFailure(message: ObtainFailureMessage): void {
  if (diagnosticsChannels.obtainFailure.hasSubscribers) diagnosticsChannels.obtainFailure.publish(message);
}

export function publishRateLimiterWait(message: RateLimiterWaitMessage): void {
  if (diagnosticsChannels.rateLimiterWait.hasSubscribers)
    diagnosticsChannels.rateLimiterWait.publish(message);
}

export function publishCertificateServed(message: CertificateServedMessage): void {
  if (diagnosticsChannels.certificateServed.hasSubscribers)
    diagnosticsChannels.certificateServed.publish(message);
}

export function publishCertificateExpiring(message: CertificateExpiringMessage): void {
  if (diagnosticsChannels.certificateExpiring.hasSubscribers) {
    diagnosticsChannels.certificateExpiring.publish(message);
  }
}

/** Path segments from the first one that looks like an id (has a digit, or is long) are dropped. */
const ID_SEGMENT = /\d|^.{17,}$/;

/** The endpoint label of a URL that is not a directory resource: `/acme/order/123/456` → `/acme/order`. */
export function endpointOf(url: string): string {
  const segments = new URL(url).pathname.split('/').filter(Boolean);
  const fixed: string[] = [];
  for (const segment of segments) {
    if (ID_SEGMENT.test(segment)) break;
    fixed.push(segment);
  }
  return `/${fixed.join('/')}`;
}
