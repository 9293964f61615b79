/**
 * @module HTTP to an ACME CA: per-CA trust, a timeout on every request, pooled nonces, typed problems.
 * acme-client signs the JWS; everything on the wire is ours (its axios path retries 429s with a spent
 * nonce, has no timeout, and its settings are process-global).
 */
import https from 'node:https';
import acme from 'acme-client';
import type { Clock } from '../clock.js';
import { sleep } from '../clock.js';
import { AcmeProblemError, connectionProblem, parseRetryAfterMs } from '../problems.js';

export interface AcmeResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export interface AcmeTransportOptions {
  directoryUrl: string;
  accountKeyPem: string;
  accountUrl?: string;
  eab?: { kid: string; hmacKey: string };
  /** PEM the CA's own HTTPS is trusted with; default: Node's roots. */
  caPem?: string;
  requestTimeoutMs: number;
  clock: Clock;
}

/** The parts of acme-client's (untyped) HttpClient we drive. */
interface AcmeClientHttp {
  request(url: string, method: string, options?: { data?: unknown }): Promise<unknown>;
  getNonce(): Promise<string>;
  getResourceUrl(resource: string): Promise<string>;
  signedRequest(
    url: string,
    payload: unknown,
    options: { kid: string | null; includeExternalAccountBinding: boolean },
  ): Promise<{ status: number; headers: Record<string, string>; data: unknown }>;
  maxBadNonceRetries: number;
}

/**
 * acmez stops at 10. Against a CA rejecting half its nonces (Pebble's test mode) that fails one request in
 * 2,000 — about one run in ten of 20 certificates lost an attempt and waited out the backoff. At 20, one
 * request in two million; a retry costs one round trip, only when the CA asks for it.
 */
const MAX_BAD_NONCE_RETRIES = 20;
/** Bodiless requests (GET/HEAD) are safe to resend on a network error or 5xx. */
const BODILESS_TRIES = 3;
const BODILESS_RETRY_DELAY_MS = 250;
/** Nonces beyond this are dropped: they expire server-side anyway. */
const MAX_POOLED_NONCES = 32;

export class AcmeTransport {
  readonly client: acme.Client;
  readonly directoryUrl: string;
  accountUrl: string | undefined;
  private readonly http: AcmeClientHttp;
  private readonly agent: https.Agent;
  private readonly nonces: string[] = [];

  constructor(private readonly options: AcmeTransportOptions) {
    this.directoryUrl = options.directoryUrl;
    this.accountUrl = options.accountUrl;
    this.agent = new https.Agent({ keepAlive: true, ca: options.caPem, maxSockets: 16 });
    this.client = new acme.Client({
      directoryUrl: options.directoryUrl,
      accountKey: options.accountKeyPem,
      accountUrl: options.accountUrl,
      externalAccountBinding: options.eab,
    });
    this.http = (this.client as unknown as { http: AcmeClientHttp }).http;
    this.http.request = (url, method, requestOptions) => this.request(url, method, requestOptions?.data);
    this.http.getNonce = () => this.takeNonce();
    // Bad nonces are retried in post(), with a fresh nonce from the pool each time.
    this.http.maxBadNonceRetries = 0;
  }

  resourceUrl(resource: string): Promise<string> {
    return this.http.getResourceUrl(resource);
  }

  /** A JWS-signed POST (`payload` null = POST-as-GET). A problem document or error status throws `AcmeProblemError`. */
  async post(
    url: string,
    payload: unknown,
    options: { useKid?: boolean; eab?: boolean } = {},
  ): Promise<AcmeResponse> {
    const kid = options.useKid === false ? null : (this.accountUrl ?? null);
    for (let attempt = 0; ; attempt++) {
      // acme-client adds the EAB member to the payload object; give it a fresh copy each time.
      const body = payload && typeof payload === 'object' ? { ...payload } : payload;
      const response = await this.http.signedRequest(url, body, {
        kid,
        includeExternalAccountBinding: options.eab ?? false,
      });
      if (response.status < 400)
        return { status: response.status, headers: response.headers, body: response.data };
      const problem = this.problemFrom(url, response);
      if (problem.shortType !== 'badNonce' || attempt >= MAX_BAD_NONCE_RETRIES) throw problem;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private problemFrom(
    url: string,
    response: { status: number; headers: Record<string, string>; data: unknown },
  ) {
    const document = (response.data && typeof response.data === 'object' ? response.data : {}) as Record<
      string,
      unknown
    >;
    const problem = {
      type: typeof document.type === 'string' ? document.type : `about:blank`,
      detail: typeof document.detail === 'string' ? document.detail : `HTTP ${response.status} from the CA`,
      status: response.status,
      subproblems: Array.isArray(document.subproblems) ? document.subproblems : undefined,
    };
    return new AcmeProblemError(problem, {
      ca: this.directoryUrl,
      url,
      retryAfterMs: parseRetryAfterMs(response.headers['retry-after'], this.options.clock.now()),
    });
  }

  private async takeNonce(): Promise<string> {
    const pooled = this.nonces.pop();
    if (pooled) return pooled;
    const response = await this.request(await this.resourceUrl('newNonce'), 'head');
    const nonce = response.headers['replay-nonce'];
    if (!nonce)
      throw connectionProblem(this.directoryUrl, 'newNonce', new Error('the CA sent no Replay-Nonce'));
    // request() pooled it too; take it back out so it is used exactly once.
    this.nonces.splice(this.nonces.indexOf(nonce), 1);
    return nonce;
  }

  private async request(
    url: string,
    method: string,
    data?: unknown,
  ): Promise<AcmeResponse & { data: unknown }> {
    const bodiless = data === undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.send(url, method, data);
        if (bodiless && response.status >= 500 && attempt < BODILESS_TRIES) {
          await sleep(BODILESS_RETRY_DELAY_MS * attempt);
          continue;
        }
        return response;
      } catch (error) {
        if (!bodiless || attempt >= BODILESS_TRIES) throw connectionProblem(this.directoryUrl, url, error);
        await sleep(BODILESS_RETRY_DELAY_MS * attempt);
      }
    }
  }

  private send(url: string, method: string, data?: unknown): Promise<AcmeResponse & { data: unknown }> {
    const payload = data === undefined ? undefined : JSON.stringify(data);
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        {
          method: method.toUpperCase(),
          agent: this.agent,
          timeout: this.options.requestTimeoutMs,
          headers: {
            'content-type': 'application/jose+json',
            'user-agent': 'autotls (acme-client)',
            ...(payload ? { 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(response.headers)) {
              if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            const nonce = headers['replay-nonce'];
            if (nonce && this.nonces.length < MAX_POOLED_NONCES) this.nonces.push(nonce);
            const text = Buffer.concat(chunks).toString('utf8');
            const isJson = /json/.test(headers['content-type'] ?? '');
            let body: unknown = text;
            if (isJson && text) {
              try {
                body = JSON.parse(text);
              } catch {
                body = text;
              }
            }
            const status = response.statusCode ?? 0;
            resolve({ status, headers, body, data: body });
          });
        },
      );
      request.on('timeout', () =>
        request.destroy(new Error(`no answer within ${this.options.requestTimeoutMs} ms`)),
      );
      request.on('error', reject);
      request.end(payload);
    });
  }
}
