/**
 * @module ACME Renewal Information (RFC 9773): the certificate identifier, asking the CA for its suggested
 * renewal window, and `replaces` on the renewal order.
 */
import https from 'node:https';
import * as x509 from '@peculiar/x509';
import { splitPemChain } from './certificates.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuers/issuer.js';
import type { Logger } from './log.js';
import { parseRetryAfterMs, problemType } from './problems.js';

/** The CA's answer: renew at some time inside the window; ask again after `retryAfterMs`. */
export interface RenewalInfo {
  windowStartMs: number;
  windowEndMs: number;
  /** A page explaining why the window moved (an incident, a revocation), when the CA gives one. */
  explanationUrl?: string;
  /** The CA's `Retry-After`, if it sent one. */
  retryAfterMs?: number;
}

/**
 * The RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial, DER content bytes).
 * @example ariCertificateId(pem) // 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE'
 */
export function ariCertificateId(certificatePem: string): string {
  const leafPem = splitPemChain(certificatePem)[0];
  if (!leafPem) throw new Error('no PEM certificate found');
  const leaf = new x509.X509Certificate(leafPem);
  const keyId = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  if (!keyId) throw new Error('the certificate has no authority key identifier: ARI cannot name it');
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${serialDerBytes(leaf.serialNumber).toString('base64url')}`;
}

/** @peculiar/x509 prints the serial without its sign byte; DER keeps a leading 00 when the top bit is set. */
function serialDerBytes(serialHex: string): Buffer {
  const bytes = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  return (bytes[0] ?? 0) >= 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

/** acme-client refreshes its directory daily too; the `renewalInfo` URL practically never changes. */
const DIRECTORY_MAX_AGE_MS = 24 * 60 * 60_000;

export interface RenewalInfoClientOptions {
  directoryUrl: string;
  /** PEM the CA's HTTPS is trusted with; default: Node's roots. */
  caPem?: string;
  requestTimeoutMs: number;
}

/**
 * Reads the CA's directory for its `renewalInfo` resource and GETs `<renewalInfo>/<certificate id>` (ARI
 * requests are unauthenticated GETs, so no account or nonce is involved).
 */
export class RenewalInfoClient {
  private directory?: { renewalInfoUrl?: string; fetchedAtMs: number };

  constructor(private readonly options: RenewalInfoClientOptions) {}

  /** `undefined` when the CA offers no ARI; throws when it does but the request fails or the answer is malformed. */
  async fetch(certificatePem: string, nowMs: number, signal?: AbortSignal): Promise<RenewalInfo | undefined> {
    const base = await this.renewalInfoUrl(signal);
    if (!base) return undefined;
    const url = `${base.replace(/\/+$/, '')}/${ariCertificateId(certificatePem)}`;
    const response = await this.get(url, signal);
    if (response.status !== 200) throw new Error(`${url} answered HTTP ${response.status}`);
    return parseRenewalInfo(url, response.body, parseRetryAfterMs(response.retryAfter, nowMs));
  }

  private async renewalInfoUrl(signal?: AbortSignal): Promise<string | undefined> {
    if (!this.directory || Date.now() - this.directory.fetchedAtMs > DIRECTORY_MAX_AGE_MS) {
      const response = await this.get(this.options.directoryUrl, signal);
      if (response.status !== 200)
        throw new Error(`${this.options.directoryUrl} answered HTTP ${response.status}`);
      const directory = JSON.parse(response.body) as { renewalInfo?: unknown };
      const renewalInfoUrl = typeof directory.renewalInfo === 'string' ? directory.renewalInfo : undefined;
      this.directory = { renewalInfoUrl, fetchedAtMs: Date.now() };
    }
    return this.directory.renewalInfoUrl;
  }

  /** One GET on a fresh connection: maintenance asks rarely, and nothing is left open after `close()`. */
  private get(
    url: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: string; retryAfter?: string }> {
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        {
          method: 'GET',
          agent: false,
          ca: this.options.caPem,
          timeout: this.options.requestTimeoutMs,
          signal,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const retryAfter = response.headers['retry-after'];
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              retryAfter,
            });
          });
        },
      );
      request.on('timeout', () =>
        request.destroy(new Error(`no answer within ${this.options.requestTimeoutMs} ms`)),
      );
      request.on('error', reject);
      request.end();
    });
  }
}

/** Validates a renewalInfo body: RFC 9773 requires both bounds, and the end after the start. */
export function parseRenewalInfo(url: string, body: string, retryAfterMs?: number): RenewalInfo {
  const parsed = JSON.parse(body) as {
    suggestedWindow?: { start?: unknown; end?: unknown };
    explanationURL?: unknown;
  };
  const start = Date.parse(String(parsed.suggestedWindow?.start));
  const end = Date.parse(String(parsed.suggestedWindow?.end));
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
    throw new Error(`${url}: invalid suggestedWindow ${JSON.stringify(parsed.suggestedWindow)}`);
  }
  return {
    windowStartMs: start,
    windowEndMs: end,
    ...(typeof parsed.explanationURL === 'string' ? { explanationUrl: parsed.explanationURL } : {}),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
}

/** An issuer that can answer ARI for the certificates it issued. */
export interface RenewalInfoSource {
  renewalInfo(
    certificatePem: string,
    context: IssuerContext,
    signal?: AbortSignal,
  ): Promise<RenewalInfo | undefined>;
}

export function hasRenewalInfo(issuer: Issuer): issuer is Issuer & RenewalInfoSource {
  return typeof (issuer as Partial<RenewalInfoSource>).renewalInfo === 'function';
}

/**
 * Wraps the issuer of the certificate being renewed so its production order carries `replaces` (the CA
 * then exempts the renewal from some rate limits and may end the old certificate's ARI window). A CA that
 * answers `alreadyReplaced` (another order already replaced it) is asked once more without `replaces`.
 * Test-CA orders never carry it: the test CA did not issue the certificate.
 */
export function replacingIssuer(issuer: Issuer, certificateId: string, logger: Logger): Issuer {
  return {
    key: issuer.key,
    hasTestCA: issuer.hasTestCA,
    async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
      if (request.useTestCA) return issuer.issue(request, context);
      try {
        return await issuer.issue({ ...request, replaces: certificateId }, context);
      } catch (error) {
        if (problemType(error) !== 'alreadyReplaced') throw error;
        logger.warn(
          { identifier: request.names[0], issuer: issuer.key, replaces: certificateId },
          'CA says the certificate was already replaced; ordering again without replaces',
        );
        const { replaces: _omitted, ...withoutReplaces } = request;
        return issuer.issue(withoutReplaces, context);
      }
    },
  };
}
