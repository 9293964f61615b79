/** @module The ACME issuer: account, orders, challenges and fast polling, on any RFC 8555 CA. */
import acmeClient from 'acme-client';
import { type RenewalInfo, RenewalInfoClient } from '../ari.js';
import { generatePrivateKey, generatePrivateKeyPem, splitPemChain } from '../certificates.js';
import { sleep } from '../clock.js';
import { NoRetryError } from '../errors.js';
import type { Logger } from '../log.js';
import { AcmeProblemError, mayTryOtherChallenge } from '../problems.js';
import { storageKeys } from '../storage/keys.js';
import {
  check,
  isPositiveInteger,
  isPositiveMs,
  isUrl,
  optional,
  POSITIVE_INTEGER,
  POSITIVE_MS,
} from '../validate.js';
import { AcmeTransport } from './acme-transport.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuer.js';

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

export interface ExternalAccountBinding {
  kid: string;
  hmacKey: string;
}

export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** The CA's staging directory, asked first while retrying so failures cost no production rate limit. */
  testDirectoryUrl?: string;
  /** PEM the CA's own HTTPS is trusted with (Pebble's); default: Node's roots. */
  ca?: string;
  /** External Account Binding, given or fetched (ZeroSSL) when the account is created. */
  eab?: ExternalAccountBinding | ((email: string | undefined) => Promise<ExternalAccountBinding>);
  /** Account contact; default: the manager's `email`. */
  email?: string;
  /** ACME profile (draft-ietf-acme-profiles), when the CA offers profiles. */
  profile?: string;
  /** Challenge types in order of preference; default http-01, then tls-alpn-01, then dns-01. */
  challenges?: ChallengeType[];
  /** Orders tried per attempt (acmez: 3). */
  ordersPerAttempt?: number;
  /** Pause between orders of one attempt (acmez: 1 s). */
  orderRetryDelayMs?: number;
  /** First poll delay; doubles up to `pollMaxMs`. A `Retry-After` from the CA overrides both. */
  pollInitialMs?: number;
  pollMaxMs?: number;
  /** Give up on an authorization or order that stays pending this long (acmez: 5 min). */
  pollTimeoutMs?: number;
  requestTimeoutMs?: number;
}

const DEFAULT_CHALLENGES: ChallengeType[] = ['http-01', 'tls-alpn-01', 'dns-01'];
/**
 * Pebble validates within ~5 ms of the challenge POST and Let's Encrypt within a second: start there and
 * double, so a fast CA is seen at once and a slow one gets a handful of polls, not hundreds.
 */
const DEFAULT_POLL_INITIAL_MS = 8;
const DEFAULT_POLL_MAX_MS = 3_000;
const DEFAULT_POLL_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

interface AcmeOrder {
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: unknown;
}

interface AcmeAuthorization {
  status: string;
  identifier: { type: string; value: string };
  wildcard?: boolean;
  challenges: Array<{
    type: string;
    url: string;
    token: string;
    status: string;
    error?: AcmeProblemError['problem'];
  }>;
}

interface StoredAccount {
  privateKeyPem: string;
  url: string;
}

/** Storage-safe id of a directory, Caddy style: `acme-v02.api.letsencrypt.org-directory`. */
export function issuerKeyFor(directoryUrl: string): string {
  const url = new URL(directoryUrl);
  return `${url.host}${url.pathname}`.replace(/[^a-zA-Z0-9.]+/g, '-').replace(/-+$/, '');
}

/**
 * An issuer for any ACME CA.
 * @example acme({ directoryUrl: 'https://127.0.0.1:14000/dir', ca: pebbleHttpsCaPem })
 */
export function acme(options: AcmeIssuerOptions): AcmeIssuer {
  return new AcmeIssuer(options);
}

export class AcmeIssuer implements Issuer {
  readonly key: string;
  readonly hasTestCA: boolean;
  private readonly sessions = new Map<string, Promise<AcmeTransport>>();
  private renewalInfoClient?: RenewalInfoClient;

  constructor(readonly options: AcmeIssuerOptions) {
    checkAcmeOptions(options);
    this.key = issuerKeyFor(options.directoryUrl);
    this.hasTestCA = Boolean(options.testDirectoryUrl);
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    const directoryUrl =
      request.useTestCA && this.options.testDirectoryUrl
        ? this.options.testDirectoryUrl
        : this.options.directoryUrl;
    try {
      return await this.issueFrom(directoryUrl, request, context);
    } catch (error) {
      // The CA forgot our account (a reset test CA, a deleted account): register anew, once.
      if (!(error instanceof AcmeProblemError && error.shortType === 'accountDoesNotExist')) throw error;
      context.logger.warn({ ca: directoryUrl }, 'ACME account unknown to the CA; registering a new one');
      this.sessions.delete(directoryUrl);
      await context.storage.delete(this.accountStorageKey(directoryUrl, context));
      return this.issueFrom(directoryUrl, request, context);
    }
  }

  close(): void {
    for (const session of this.sessions.values())
      session.then(
        (transport) => transport.close(),
        () => {},
      );
    this.sessions.clear();
  }

  private accountStorageKey(directoryUrl: string, context: IssuerContext): string {
    return storageKeys.account(issuerKeyFor(directoryUrl), this.options.email ?? context.email ?? '');
  }

  private async issueFrom(
    directoryUrl: string,
    request: CertificateRequest,
    context: IssuerContext,
  ): Promise<IssuedCertificate> {
    const logger = context.logger.child({ logger: 'acme_client' });
    const transport = await this.session(directoryUrl, context);
    const maxOrders = this.options.ordersPerAttempt ?? 3;
    const triedChallenges = new Set<string>();
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxOrders; attempt++) {
      if (attempt > 1) await sleep(this.options.orderRetryDelayMs ?? 1_000, request.signal);
      if (!request.useTestCA) await this.waitForRateLimiter(transport, request, context, logger);
      try {
        return await this.order(transport, request, context, logger, triedChallenges, attempt, maxOrders);
      } catch (error) {
        lastError = error;
        const otherChallengeLeft = this.challengeTypes(context).some((type) => !triedChallenges.has(type));
        if (!(mayTryOtherChallenge(error) && otherChallengeLeft)) {
          // Same challenge again would fail the same way, unless the failure was transient (timeouts, 5xx).
          if (!isTransient(error)) throw error;
          triedChallenges.clear();
        }
      }
    }
    throw lastError;
  }

  /** ARI (RFC 9773): the production CA's suggested renewal window for a certificate it issued; `undefined` without ARI. */
  renewalInfo(
    certificatePem: string,
    context: IssuerContext,
    signal?: AbortSignal,
  ): Promise<RenewalInfo | undefined> {
    const requestTimeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.renewalInfoClient ??= new RenewalInfoClient({
      directoryUrl: this.options.directoryUrl,
      caPem: this.options.ca,
      requestTimeoutMs,
      clock: context.clock,
    });
    return this.renewalInfoClient.fetch(certificatePem, signal);
  }

  /** Transport with a registered account for one directory; the account is stored and reused. */
  private session(directoryUrl: string, context: IssuerContext): Promise<AcmeTransport> {
    let session = this.sessions.get(directoryUrl);
    if (!session) {
      session = this.openSession(directoryUrl, context);
      this.sessions.set(directoryUrl, session);
      session.catch(() => this.sessions.delete(directoryUrl));
    }
    return session;
  }

  private async openSession(directoryUrl: string, context: IssuerContext): Promise<AcmeTransport> {
    const email = this.options.email ?? context.email ?? '';
    const accountKey = this.accountStorageKey(directoryUrl, context);
    const requestTimeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const stored = await context.storage.get<StoredAccount>(accountKey).catch((error: unknown) => {
      if ((error as Error).name === 'CorruptEntryError') return undefined; // re-register; nothing else depends on it
      throw error;
    });
    if (stored?.privateKeyPem && stored.url) {
      return new AcmeTransport({
        directoryUrl,
        accountKeyPem: stored.privateKeyPem,
        accountUrl: stored.url,
        caPem: this.options.ca,
        requestTimeoutMs,
        clock: context.clock,
      });
    }
    const eab =
      typeof this.options.eab === 'function' ? await this.options.eab(email || undefined) : this.options.eab;
    const privateKeyPem = generatePrivateKeyPem('ecdsa-p256');
    const transport = new AcmeTransport({
      directoryUrl,
      accountKeyPem: privateKeyPem,
      eab,
      caPem: this.options.ca,
      requestTimeoutMs,
      clock: context.clock,
    });
    const response = await transport.post(
      await transport.resourceUrl('newAccount'),
      { termsOfServiceAgreed: true, ...(email ? { contact: [`mailto:${email}`] } : {}) },
      { useKid: false, eab: Boolean(eab) },
    );
    const url = response.headers.location;
    if (!url) throw new Error(`${directoryUrl}: newAccount answered without a Location header`);
    transport.accountUrl = url;
    await context.storage.set(accountKey, { privateKeyPem, url } satisfies StoredAccount);
    context.logger.info(
      { ca: directoryUrl, account: url, email: email || undefined },
      'registered ACME account',
    );
    return transport;
  }

  private async waitForRateLimiter(
    transport: AcmeTransport,
    request: CertificateRequest,
    context: IssuerContext,
    logger: Logger,
  ) {
    const limiter = context.rateLimiters.for(`${transport.directoryUrl}|${transport.accountUrl}`);
    const fields = {
      identifiers: request.names,
      ca: transport.directoryUrl,
      account: this.options.email ?? context.email,
    };
    await limiter.take(request.signal, {
      onWait: () => logger.info(fields, 'waiting on internal rate limiter'),
      onDone: () => logger.info(fields, 'done waiting on internal rate limiter'),
    });
  }

  private challengeTypes(context: IssuerContext): string[] {
    return (this.options.challenges ?? DEFAULT_CHALLENGES).filter((type) => context.solvers.has(type));
  }

  private async order(
    transport: AcmeTransport,
    request: CertificateRequest,
    context: IssuerContext,
    logger: Logger,
    triedChallenges: Set<string>,
    attempt: number,
    maxAttempts: number,
  ): Promise<IssuedCertificate> {
    const ca = transport.directoryUrl;
    const created = await transport.post(await transport.resourceUrl('newOrder'), {
      identifiers: request.names.map((value) => ({ type: /^[\d.]+$|:/.test(value) ? 'ip' : 'dns', value })),
      ...(request.replaces ? { replaces: request.replaces } : {}),
      ...(this.options.profile ? { profile: this.options.profile } : {}),
    });
    const orderUrl = created.headers.location ?? '';
    let order = created.body as AcmeOrder;
    // Key and CSR are made in the thread pool while the CA validates, not after.
    const keyAndCsr = createKeyAndCsr(request);
    keyAndCsr.catch(() => {}); // awaited below; a failed order must not leave it unhandled
    try {
      await Promise.all(
        order.authorizations.map((url) =>
          this.authorize(transport, url, context, logger, triedChallenges, request.signal),
        ),
      );
    } catch (error) {
      if (error instanceof AcmeProblemError) {
        logger.error(
          {
            identifier: request.names[0],
            problem: error.problem,
            order: orderUrl,
            attempt,
            max_attempts: maxAttempts,
          },
          'validating authorization',
        );
      }
      await this.deactivateAuthorizations(transport, order);
      throw error;
    }
    logger.info({ order: orderUrl }, 'validations succeeded; finalizing order');
    const { privateKeyPem, csr } = await keyAndCsr;
    const finalized = await transport.post(order.finalize, { csr });
    order = finalized.body as AcmeOrder;
    order = await this.poll<AcmeOrder>(
      transport,
      orderUrl,
      order,
      (o) => o.status === 'valid',
      request.signal,
    );
    if (!order.certificate) throw new Error(`${ca}: order ${orderUrl} is valid but has no certificate URL`);
    const download = await transport.post(order.certificate, null);
    const certificatePem = String(download.body);
    const chain = splitPemChain(certificatePem);
    if (chain.length === 0) throw new Error(`${ca}: the certificate download is not a PEM chain`);
    logger.info(
      { count: 1, first_url: order.certificate, identifiers: request.names },
      'successfully downloaded available certificate chains',
    );
    return { certificatePem: `${chain.join('\n')}\n`, privateKeyPem, ca };
  }

  private async authorize(
    transport: AcmeTransport,
    url: string,
    context: IssuerContext,
    logger: Logger,
    triedChallenges: Set<string>,
    signal?: AbortSignal,
  ): Promise<void> {
    const authorization = (await transport.post(url, null)).body as AcmeAuthorization;
    if (authorization.status === 'valid') return;
    const identifier = (authorization.wildcard ? '*.' : '') + authorization.identifier.value;
    const offered = new Set(authorization.challenges.map((challenge) => challenge.type));
    const usable = this.challengeTypes(context).filter((type) => offered.has(type));
    const type = usable.find((candidate) => !triedChallenges.has(candidate)) ?? usable[0];
    const challenge = authorization.challenges.find((candidate) => candidate.type === type);
    const solver = type ? context.solvers.get(type) : undefined;
    if (!challenge || !solver) {
      throw new Error(
        `${identifier}: no enabled challenge solver for the types offered (${[...offered].join(', ')})`,
      );
    }
    triedChallenges.add(challenge.type);
    const keyAuthorization = await transport.client.getChallengeKeyAuthorization(challenge as never);
    const presented = { type: challenge.type, identifier, token: challenge.token, keyAuthorization };
    logger.info(
      { identifier, challenge_type: challenge.type, ca: transport.directoryUrl },
      'trying to solve challenge',
    );
    await solver.present(presented);
    try {
      await transport.post(challenge.url, {});
      const done = await this.poll<AcmeAuthorization>(
        transport,
        url,
        undefined,
        (a) => a.status === 'valid',
        signal,
      );
      logger.info({ identifier, authz_status: done.status }, 'authorization finalized');
    } finally {
      await solver.cleanup(presented).catch(() => {});
    }
  }

  /** Polls `url` until `isDone`; fast at first, doubling, honouring `Retry-After`; `invalid` throws the CA's problem. */
  private async poll<T extends { status: string }>(
    transport: AcmeTransport,
    url: string,
    current: T | undefined,
    isDone: (item: T) => boolean,
    signal?: AbortSignal,
  ): Promise<T> {
    let delayMs = this.options.pollInitialMs ?? DEFAULT_POLL_INITIAL_MS;
    const maxDelayMs = this.options.pollMaxMs ?? DEFAULT_POLL_MAX_MS;
    const deadline = Date.now() + (this.options.pollTimeoutMs ?? DEFAULT_POLL_TIMEOUT_MS);
    let retryAfterMs: number | undefined;
    for (;;) {
      if (current) {
        if (isDone(current)) return current;
        if (current.status === 'invalid') throw invalidItemProblem(transport.directoryUrl, url, current);
      }
      if (Date.now() > deadline)
        throw new Error(`${url} still ${current?.status ?? 'pending'} after the poll timeout`);
      await sleep(retryAfterMs ?? delayMs, signal);
      delayMs = Math.min(delayMs * 2, maxDelayMs);
      const response = await transport.post(url, null);
      const header = response.headers['retry-after'];
      retryAfterMs = header ? Math.min(Number(header) * 1000 || delayMs, DEFAULT_POLL_TIMEOUT_MS) : undefined;
      current = response.body as T;
    }
  }

  private async deactivateAuthorizations(transport: AcmeTransport, order: AcmeOrder): Promise<void> {
    await Promise.all(
      order.authorizations.map((url) =>
        transport.post(url, { status: 'deactivated' }).catch(() => undefined),
      ),
    );
  }
}

/**
 * The CA had an internal error: worth the same order again. A CA we cannot reach at all (status 0) is not:
 * the transport already retried, and the attempt schedule is the right pace for an outage.
 */
async function createKeyAndCsr(request: CertificateRequest): Promise<{ privateKeyPem: string; csr: string }> {
  const privateKeyPem = await generatePrivateKey(request.keyType);
  const [, csrPem] = await acmeClient.crypto.createCsr(
    { commonName: request.names[0], altNames: request.names },
    privateKeyPem,
  );
  const csr = csrPem.toString().replace(/-----[^-]+-----|\s/g, '');
  return { privateKeyPem, csr: Buffer.from(csr, 'base64').toString('base64url') };
}

function isTransient(error: unknown): boolean {
  return error instanceof AcmeProblemError && error.problem.status >= 500;
}

/** The problem behind an invalid authorization (its failed challenge's error) or order. */
function invalidItemProblem(ca: string, url: string, item: { status: string }): AcmeProblemError {
  const authorization = item as Partial<AcmeAuthorization> & { error?: AcmeProblemError['problem'] };
  const failed = authorization.challenges?.find((challenge) => challenge.error)?.error ?? authorization.error;
  const problem = failed ?? {
    type: 'urn:ietf:params:acme:error:malformed',
    detail: `${url} became invalid`,
    status: 400,
  };
  return new AcmeProblemError({ ...problem, status: problem.status ?? 400 }, { ca, url });
}

/** Let's Encrypt; its staging CA serves as the test CA while retrying. */
export function letsEncrypt(options: { staging?: boolean } & Partial<AcmeIssuerOptions> = {}): AcmeIssuer {
  const production = 'https://acme-v02.api.letsencrypt.org/directory';
  const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
  return acme({
    ...options,
    directoryUrl: options.staging ? staging : production,
    testDirectoryUrl: options.staging ? undefined : staging,
  });
}

/** ZeroSSL's EAB endpoint: hands out EAB credentials for an email address. */
export const ZEROSSL_EAB_URL = 'https://api.zerossl.com/acme/eab-credentials-email';

/** ZeroSSL; needs EAB: given, or fetched with the email from `eabUrl` when the account is created. */
export function zeroSSL(
  options: { eab?: ExternalAccountBinding; eabUrl?: string } & Partial<AcmeIssuerOptions> = {},
): AcmeIssuer {
  const { eabUrl = ZEROSSL_EAB_URL, ...rest } = options;
  return acme({
    ...rest,
    directoryUrl: options.directoryUrl ?? 'https://acme.zerossl.com/v2/DV90',
    eab: options.eab ?? ((email) => fetchZeroSslEab(eabUrl, email)),
  });
}

export async function fetchZeroSslEab(
  eabUrl: string,
  email: string | undefined,
): Promise<ExternalAccountBinding> {
  if (!email) throw new NoRetryError('ZeroSSL needs an email address (or explicit eab credentials)');
  const response = await fetch(eabUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email }).toString(),
    signal: AbortSignal.timeout(DEFAULT_REQUEST_TIMEOUT_MS),
  });
  const body = (await response.json().catch(() => ({}))) as {
    success?: boolean;
    eab_kid?: string;
    eab_hmac_key?: string;
  };
  if (!response.ok || !body.eab_kid || !body.eab_hmac_key) {
    throw new Error(`ZeroSSL EAB endpoint ${eabUrl} answered HTTP ${response.status} without credentials`);
  }
  return { kid: body.eab_kid, hmacKey: body.eab_hmac_key };
}

/** Options an ACME issuer cannot work with fail here, when the issuer is made, not as failed attempts. */
function checkAcmeOptions(options: AcmeIssuerOptions): void {
  check('directoryUrl', options?.directoryUrl, isUrl, 'must be the http(s) URL of an ACME directory');
  optional(
    'testDirectoryUrl',
    options.testDirectoryUrl,
    isUrl,
    'must be the http(s) URL of an ACME directory',
  );
  optional(
    'eab',
    options.eab,
    (eab) =>
      typeof eab === 'function' ||
      (typeof (eab as ExternalAccountBinding)?.kid === 'string' &&
        typeof (eab as ExternalAccountBinding).hmacKey === 'string'),
    'must be { kid, hmacKey } (strings) or a function that returns them',
  );
  optional(
    'profile',
    options.profile,
    (v) => typeof v === 'string' && v.length > 0,
    'must be a profile name',
  );
  optional(
    'challenges',
    options.challenges,
    (v) => Array.isArray(v) && v.length > 0 && v.every((type) => DEFAULT_CHALLENGES.includes(type)),
    `must be a non-empty list of ${DEFAULT_CHALLENGES.join(', ')}`,
  );
  optional('ordersPerAttempt', options.ordersPerAttempt, isPositiveInteger, POSITIVE_INTEGER);
  for (const option of ['pollInitialMs', 'pollMaxMs', 'pollTimeoutMs', 'requestTimeoutMs'] as const) {
    optional(option, options[option], isPositiveMs, POSITIVE_MS);
  }
  optional(
    'orderRetryDelayMs',
    options.orderRetryDelayMs,
    (v) => typeof v === 'number' && v >= 0,
    'must be 0 or more milliseconds',
  );
}
