/**
 * @module A session with one ACME CA: per-CA trust and sockets, the directory, pooled nonces, signed POSTs
 * retried on bad nonces and short pauses. acme-client signs the JWS; everything on the wire is ours
 * (acme-http.ts; acme-client's axios path retries 429s with a spent nonce, has no timeout, and its settings
 * are process-global).
 */
import https from 'node:https';
import acme from 'acme-client';
import type { Clock } from '../clock.js';
import { sleep } from '../clock.js';
import { endpointOf, publishAcmeRequest } from '../diagnostics.js';
import { AcmeProblemError, connectionProblem } from '../problems.js';
import {
  type AcmeAnswer,
  describeAnswer,
  problemFromAnswer,
  RequestTimeoutError,
  sendToCa,
} from './acme-http.js';
import { CaPause } from './ca-pause.js';

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

/** The CA's directory (RFC 8555 §7.1.1), with the members we act on. */
export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert?: string;
  keyChange?: string;
  /** RFC 9773: present when the CA offers renewal information (and so accepts `replaces`). */
  renewalInfo?: string;
  meta?: {
    /** draft-ietf-acme-profiles: profile name → description. */
    profiles?: Record<string, string>;
    termsOfService?: string;
    externalAccountRequired?: boolean;
  };
  [resource: string]: unknown;
}

/** The parts of acme-client's (untyped) HttpClient we drive. */
interface AcmeClientHttp {
  request(url: string, method: string, options?: { data?: unknown }): Promise<unknown>;
  getNonce(): Promise<string>;
  getDirectory(): Promise<unknown>;
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
/** Connections kept per CA: enough for many names validating at once, few enough to be polite. */
const MAX_SOCKETS_PER_CA = 16;
/** Nonces beyond this are dropped: they expire server-side anyway. */
const MAX_POOLED_NONCES = 32;
/** acme-client refreshes its directory daily too; its URLs and profiles practically never change. */
const DIRECTORY_MAX_AGE_MS = 24 * 60 * 60_000;
/** How often one request is sent again after a short Retry-After, before the CA's answer stands. */
const MAX_RETRY_AFTER_WAITS = 3;
export class AcmeTransport {
  readonly client: acme.Client;
  readonly directoryUrl: string;
  accountUrl: string | undefined;
  private readonly http: AcmeClientHttp;
  private readonly agent: https.Agent;
  private readonly nonces: string[] = [];
  private cachedDirectory?: { directory: Promise<AcmeDirectory>; fetchedAtMs: number };
  private readonly pause: CaPause;

  constructor(private readonly options: AcmeTransportOptions) {
    this.directoryUrl = options.directoryUrl;
    this.pause = new CaPause(options.clock);
    this.accountUrl = options.accountUrl;
    this.agent = new https.Agent({ keepAlive: true, ca: options.caPem, maxSockets: MAX_SOCKETS_PER_CA });
    this.client = new acme.Client({
      directoryUrl: options.directoryUrl,
      accountKey: options.accountKeyPem,
      accountUrl: options.accountUrl,
      externalAccountBinding: options.eab,
    });
    this.http = (this.client as unknown as { http: AcmeClientHttp }).http;
    this.http.request = (url, method, requestOptions) => this.request(url, method, requestOptions?.data);
    this.http.getNonce = () => this.takeNonce();
    this.http.getDirectory = () => this.directory();
    // Bad nonces are retried in post(), with a fresh nonce from the pool each time.
    this.http.maxBadNonceRetries = 0;
  }

  async resourceUrl(resource: string): Promise<string> {
    const url = (await this.directory())[resource];
    if (typeof url !== 'string') {
      throw new AcmeProblemError(
        {
          type: 'urn:ietf:params:acme:error:malformed',
          detail: `the directory has no "${resource}" resource`,
          status: 200,
        },
        { ca: this.directoryUrl, url: this.directoryUrl, request: 'GET directory' },
      );
    }
    return url;
  }

  /**
   * The CA's directory, fetched once a day (and again after `forgetDirectory()`). An answer that is not a
   * directory throws an `AcmeProblemError` naming the request and the HTTP status.
   */
  directory(): Promise<AcmeDirectory> {
    const nowMs = this.options.clock.now();
    const cached = this.cachedDirectory;
    if (cached && nowMs - cached.fetchedAtMs <= DIRECTORY_MAX_AGE_MS) return cached.directory;
    const directory = this.fetchDirectory();
    this.cachedDirectory = { directory, fetchedAtMs: nowMs };
    directory.catch(() => {
      if (this.cachedDirectory?.directory === directory) this.cachedDirectory = undefined;
    });
    return directory;
  }

  /** The next `directory()` asks the CA again (after it refused a profile it listed, for instance). */
  forgetDirectory(): void {
    this.cachedDirectory = undefined;
  }

  /**
   * A JWS-signed POST (`payload` null = POST-as-GET). A problem document or error status throws
   * `AcmeProblemError`. A bad nonce is retried with a fresh one; a short `Retry-After` (429/503) is waited
   * out, holding back every request to this CA; `signal` ends such a wait.
   */
  async post(
    url: string,
    payload: unknown,
    options: {
      useKid?: boolean;
      eab?: boolean;
      signal?: AbortSignal;
      /** Throws to stop before the request is sent (a lost lock lease); runs before every try. */
      guard?: () => void;
    } = {},
  ): Promise<AcmeResponse> {
    const kid = options.useKid === false ? null : (this.accountUrl ?? null);
    let badNonces = 0;
    let retryAfterWaits = 0;
    for (;;) {
      await this.pause.wait(options.signal);
      options.signal?.throwIfAborted();
      options.guard?.();
      // acme-client adds the EAB member to the payload object; give it a fresh copy each time.
      const body = payload && typeof payload === 'object' ? { ...payload } : payload;
      const response = await this.http.signedRequest(url, body, {
        kid,
        includeExternalAccountBinding: options.eab ?? false,
      });
      if (response.status < 400)
        return { status: response.status, headers: response.headers, body: response.data };
      const problem = this.problemFrom(url, response, 'POST');
      if (problem.shortType === 'badNonce' && badNonces++ < MAX_BAD_NONCE_RETRIES) continue;
      if (CaPause.isShort(problem) && retryAfterWaits++ < MAX_RETRY_AFTER_WAITS) continue;
      throw problem;
    }
  }

  /**
   * Whether the account this transport signs with is known to the CA (RFC 8555 §7.3.1,
   * `onlyReturnExisting`): `false` when the CA says `accountDoesNotExist`, `undefined` when it cannot tell.
   */
  async accountExists(signal?: AbortSignal): Promise<boolean | undefined> {
    try {
      await this.post(
        await this.resourceUrl('newAccount'),
        { onlyReturnExisting: true },
        { useKid: false, signal },
      );
      return true;
    } catch (error) {
      if (error instanceof AcmeProblemError && error.shortType === 'accountDoesNotExist') return false;
      return undefined;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /** A problem from an error answer, naming the request. */
  private problemFrom(
    url: string,
    answer: Pick<AcmeAnswer, 'status' | 'headers' | 'data'>,
    method: string,
  ): AcmeProblemError {
    return problemFromAnswer(answer, {
      ca: this.directoryUrl,
      url,
      request: `${method.toUpperCase()} ${this.resourceName(url)}`,
      nowMs: this.options.clock.now(),
    });
  }

  /** `newOrder`, `directory`…: the directory's name for a URL, else its path. */
  private resourceName(url: string): string {
    if (url === this.directoryUrl) return 'directory';
    const known = this.knownDirectory;
    const resource = known && Object.entries(known).find(([, value]) => value === url)?.[0];
    return resource ?? new URL(url).pathname;
  }

  /** The directory when already fetched (for naming requests), without waiting for it. */
  private knownDirectory?: AcmeDirectory;

  private async fetchDirectory(): Promise<AcmeDirectory> {
    const response = await this.request(this.directoryUrl, 'get');
    const body = response.body as Partial<AcmeDirectory> | undefined;
    if (response.status >= 400) throw this.problemFrom(this.directoryUrl, response, 'GET');
    if (!body || typeof body !== 'object' || typeof body.newNonce !== 'string') {
      throw new AcmeProblemError(
        {
          type: 'urn:ietf:params:acme:error:malformed',
          detail: `not an ACME directory: ${describeAnswer(response)}`,
          status: response.status,
        },
        { ca: this.directoryUrl, url: this.directoryUrl, request: 'GET directory' },
      );
    }
    this.knownDirectory = body as AcmeDirectory;
    return body as AcmeDirectory;
  }

  private async takeNonce(): Promise<string> {
    const pooled = this.nonces.pop();
    if (pooled) return pooled;
    const url = await this.resourceUrl('newNonce');
    const response = await this.request(url, 'head');
    if (response.status >= 400) throw this.problemFrom(url, response, 'HEAD');
    const nonce = response.headers['replay-nonce'];
    if (!nonce) {
      const cause = new Error(`HTTP ${response.status} without a Replay-Nonce header`);
      throw connectionProblem(this.directoryUrl, url, cause, 'HEAD newNonce');
    }
    // request() pooled it too; take it back out so it is used exactly once.
    this.nonces.splice(this.nonces.indexOf(nonce), 1);
    return nonce;
  }

  private async request(url: string, method: string, data?: unknown): Promise<AcmeAnswer> {
    const bodiless = data === undefined;
    const requestName = () => `${method.toUpperCase()} ${this.resourceName(url)}`;
    let retryAfterWaits = 0;
    for (let attempt = 1; ; attempt++) {
      await this.pause.wait();
      let response: AcmeAnswer;
      const startedMs = performance.now();
      try {
        response = await this.send(url, method, data);
        this.reportRequest(url, response.status, startedMs);
      } catch (error) {
        this.reportRequest(url, 0, startedMs);
        // A CA that does not answer in time is not asked the same again: that would cost another timeout.
        const retry = bodiless && attempt < BODILESS_TRIES && !(error instanceof RequestTimeoutError);
        if (!retry) throw connectionProblem(this.directoryUrl, url, error, requestName());
        await sleep(BODILESS_RETRY_DELAY_MS * attempt);
        continue;
      }
      if (response.status === 429 || response.status === 503) {
        const problem = this.problemFrom(url, response, method);
        this.pause.note(problem);
        if (bodiless && CaPause.isShort(problem) && retryAfterWaits++ < MAX_RETRY_AFTER_WAITS) continue;
        return response;
      }
      if (bodiless && response.status >= 500 && attempt < BODILESS_TRIES) {
        await sleep(BODILESS_RETRY_DELAY_MS * attempt);
        continue;
      }
      return response;
    }
  }

  /** For the metrics (diagnostics.ts): one message per request sent, answered or not. */
  private reportRequest(url: string, status: number, startedMs: number): void {
    const endpoint = url === this.directoryUrl ? 'directory' : this.resourceName(url);
    const label = endpoint.startsWith('/') ? endpointOf(url) : endpoint;
    publishAcmeRequest({
      ca: this.directoryUrl,
      endpoint: label,
      status,
      durationMs: performance.now() - startedMs,
    });
  }

  private async send(url: string, method: string, data?: unknown): Promise<AcmeAnswer> {
    const answer = await sendToCa(this.agent, this.options.requestTimeoutMs, url, method, data);
    const nonce = answer.headers['replay-nonce'];
    if (nonce && this.nonces.length < MAX_POOLED_NONCES) this.nonces.push(nonce);
    return answer;
  }
}
