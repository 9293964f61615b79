/**
 * @module Asking a CA for ACME Renewal Information (RFC 9773): the certificate identifier, the unauthenticated
 * GET of its suggested window, and checking the answer.
 */
import https from 'node:https';
import * as x509 from '@peculiar/x509';
import { splitPemChain } from './certificates.js';
import type { Clock } from './clock.js';
import { parseRetryAfterMs } from './problems.js';

/**
 * A renewalInfo request that failed. `temporary` (no answer, 5xx, 429) backs off and asks again soon; any
 * other failure (a 4xx, a malformed answer, a window that ends before it starts) waits 6 hours.
 */
export class RenewalInfoError extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RenewalInfoError';
  }
}

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
  clock: Clock;
}

/**
 * Reads the CA's directory for its `renewalInfo` resource and GETs `<renewalInfo>/<certificate id>` (ARI
 * requests are unauthenticated GETs, so no account or nonce is involved).
 */
export class RenewalInfoClient {
  private directory?: { renewalInfoUrl?: string; fetchedAtMs: number };

  constructor(private readonly options: RenewalInfoClientOptions) {}

  /** `undefined` when the CA offers no ARI; throws when it does but the request fails or the answer is malformed. */
  async fetch(certificatePem: string, signal?: AbortSignal): Promise<RenewalInfo | undefined> {
    const base = await this.renewalInfoUrl(signal);
    if (!base) return undefined;
    const url = `${base.replace(/\/+$/, '')}/${ariCertificateId(certificatePem)}`;
    const response = await this.get(url, signal).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      throw new RenewalInfoError(`${url}: ${(error as Error).message}`, true, undefined, { cause: error });
    });
    const retryAfterMs = parseRetryAfterMs(response.retryAfter, this.options.clock.now());
    if (response.status !== 200) {
      const temporary = response.status >= 500 || response.status === 429;
      throw new RenewalInfoError(`${url} answered HTTP ${response.status}`, temporary, retryAfterMs);
    }
    return parseRenewalInfo(url, response.body, retryAfterMs);
  }

  private async renewalInfoUrl(signal?: AbortSignal): Promise<string | undefined> {
    const nowMs = this.options.clock.now();
    if (!this.directory || nowMs - this.directory.fetchedAtMs > DIRECTORY_MAX_AGE_MS) {
      const response = await this.get(this.options.directoryUrl, signal);
      if (response.status !== 200)
        throw new Error(`${this.options.directoryUrl} answered HTTP ${response.status}`);
      const directory = JSON.parse(response.body) as { renewalInfo?: unknown };
      const renewalInfoUrl = typeof directory.renewalInfo === 'string' ? directory.renewalInfo : undefined;
      this.directory = { renewalInfoUrl, fetchedAtMs: nowMs };
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

/**
 * Validates a renewalInfo body: RFC 9773 requires both bounds, and the end after the start. Anything else is
 * no answer at all — a {@link RenewalInfoError} that is not temporary (asked again in 6 hours).
 */
export function parseRenewalInfo(url: string, body: string, retryAfterMs?: number): RenewalInfo {
  let parsed: { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch (error) {
    throw new RenewalInfoError(`${url}: invalid JSON`, false, undefined, { cause: error });
  }
  const start = Date.parse(String(parsed?.suggestedWindow?.start));
  const end = Date.parse(String(parsed?.suggestedWindow?.end));
  if (Number.isNaN(start) || Number.isNaN(end) || end <= start) {
    throw new RenewalInfoError(
      `${url}: invalid suggestedWindow ${JSON.stringify(parsed?.suggestedWindow)}`,
      false,
      retryAfterMs,
    );
  }
  return {
    windowStartMs: start,
    windowEndMs: end,
    ...(typeof parsed.explanationURL === 'string' ? { explanationUrl: parsed.explanationURL } : {}),
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  };
}
