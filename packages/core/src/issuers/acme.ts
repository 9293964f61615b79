/** @module The ACME issuer: account, orders, challenges and fast polling, on any RFC 8555 CA. */
import { isIP } from 'node:net';
import acmeClient from 'acme-client';
import { type RenewalInfo, RenewalInfoClient } from '../ari.js';
import { generatePrivateKey, generatePrivateKeyPem, splitPemChain } from '../certificates.js';
import { sleep } from '../clock.js';
import { isNoRetry, NoRetryError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  type AcmeProblem,
  AcmeProblemError,
  isCaUnreachable,
  mayTryOtherChallenge,
  parseRetryAfterMs,
  problemType,
} from '../problems.js';
import { storageKeys } from '../storage/keys.js';
import { CorruptEntryError } from '../storage/storage.js';
import {
  check,
  isPositiveInteger,
  isPositiveMs,
  isUrl,
  optional,
  POSITIVE_INTEGER,
  POSITIVE_MS,
} from '../validate.js';
import { type AcmeDirectory, AcmeTransport } from './acme-transport.js';
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
  /**
   * ACME profile (draft-ietf-acme-profiles) for every order; the CA must list it in its directory's
   * `meta.profiles`, else obtaining fails at once with a `NoRetryError` naming the listed ones.
   */
  profile?: string;
  /**
   * The profile for orders with IP addresses when `profile` is not set, used when the CA lists it
   * (Let's Encrypt issues IP certificates only under `shortlived`; `letsEncrypt()` sets it).
   */
  ipProfile?: string;
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
/** Challenge types that can validate an IP address (RFC 8738): DNS-01 has no name to put a record under. */
const IP_CHALLENGES: readonly string[] = ['http-01', 'tls-alpn-01'];
/** acmez: three orders per attempt, so one failed validation can switch challenge type twice. */
const DEFAULT_ORDERS_PER_ATTEMPT = 3;
/** acmez: a second between the orders of one attempt. */
const DEFAULT_ORDER_RETRY_DELAY_MS = 1_000;
/** Let's Encrypt issues IP address certificates only under this profile. */
const LETS_ENCRYPT_IP_PROFILE = 'shortlived';
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
  error?: AcmeProblem;
  /** The profile the CA applied (draft-ietf-acme-profiles echoes it). */
  profile?: string;
}

/** Everything one order of an attempt works with. */
interface OrderAttempt {
  transport: AcmeTransport;
  request: CertificateRequest;
  context: IssuerContext;
  logger: Logger;
  /** Challenge types tried by earlier orders of this attempt: the next order prefers another. */
  triedChallenges: Set<string>;
  /** 1-based number of this order within the attempt, and how many the attempt may place. */
  orderNumber: number;
  maxOrders: number;
  /** The profile to put on the order, already checked against the directory. */
  profile?: string;
  /** Whether the order may carry `replaces` (the CA offers ARI and issued the old certificate to us). */
  replaces?: string;
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
    error?: AcmeProblem;
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
    this.checkIpChallenges(request, context);
    const transport = await this.session(directoryUrl, context);
    const directory = await transport.directory();
    const base = {
      transport,
      request,
      context,
      logger,
      profile: this.profileFor(request, directory, logger),
      replaces: this.replacesFor(request, directory, transport),
      triedChallenges: new Set<string>(),
      maxOrders: this.options.ordersPerAttempt ?? DEFAULT_ORDERS_PER_ATTEMPT,
    };
    let lastError: unknown;
    for (let orderNumber = 1; orderNumber <= base.maxOrders; orderNumber++) {
      if (orderNumber > 1)
        await sleep(this.options.orderRetryDelayMs ?? DEFAULT_ORDER_RETRY_DELAY_MS, request.signal);
      if (!request.useTestCA) await this.waitForRateLimiter(transport, request, context, logger);
      try {
        return await this.order({ ...base, orderNumber });
      } catch (error) {
        lastError = await this.accountForgottenOr(error, transport, request.signal);
        // The CA refused a profile it listed: the next attempt reads its list again, and so learns whether
        // the profile is gone for good (then it fails without retrying) or was refused for this order only.
        if (problemType(lastError) === 'invalidProfile') transport.forgetDirectory();
        if (!this.mayOrderAgain(lastError, base.triedChallenges, context)) throw lastError;
      }
    }
    throw lastError;
  }

  /**
   * Whether another order in this attempt may help. Never when the CA cannot be reached (each order would
   * wait out another request timeout), nor for a refused profile or anything no retry fixes. Otherwise
   * acmez's rule: another challenge type for validation-like problems, the same again for a CA's 5xx.
   */
  private mayOrderAgain(error: unknown, triedChallenges: Set<string>, context: IssuerContext): boolean {
    if (isCaUnreachable(error) || isNoRetry(error)) return false;
    if (problemType(error) === 'invalidProfile' || problemType(error) === 'accountDoesNotExist') return false;
    const otherChallengeLeft = this.challengeTypes(context).some((type) => !triedChallenges.has(type));
    if (mayTryOtherChallenge(error) && otherChallengeLeft) return true;
    if (!isTransient(error)) return false;
    triedChallenges.clear();
    return true;
  }

  /**
   * A CA that lost our account may say so only with a bare 500 (Caddy's ACME server answers `{}`): ask it
   * whether the account exists, and if not, turn the error into `accountDoesNotExist` so `issue` registers
   * a new one within this attempt.
   */
  private async accountForgottenOr(
    error: unknown,
    transport: AcmeTransport,
    signal?: AbortSignal,
  ): Promise<unknown> {
    if (!(error instanceof AcmeProblemError) || error.problem.status < 500) return error;
    if (error.problem.type !== 'about:blank') return error;
    if ((await transport.accountExists(signal)) !== false) return error;
    return new AcmeProblemError(
      {
        type: 'urn:ietf:params:acme:error:accountDoesNotExist',
        detail: `the CA no longer knows account ${transport.accountUrl} (it answered: ${error.message})`,
        status: 400,
      },
      error.context,
    );
  }

  /**
   * The profile for this order: the configured one (which production must list, else a `NoRetryError`),
   * else the one the certificate being renewed was ordered with, else `ipProfile` for IP addresses — the
   * last two only when listed. The test CA may list other profiles: there an unlisted one is left off.
   */
  private profileFor(
    request: CertificateRequest,
    directory: AcmeDirectory,
    logger: Logger,
  ): string | undefined {
    const listed = directory.meta?.profiles ?? {};
    const names = Object.keys(listed);
    const configured = this.options.profile;
    if (configured) {
      if (configured in listed) return configured;
      if (request.useTestCA) return undefined;
      const offered = names.length
        ? `it lists ${names.map((name) => `"${name}" (${listed[name]})`).join(', ')}`
        : 'it lists no profiles';
      throw new NoRetryError(
        `the CA at ${this.options.directoryUrl} does not offer the ACME profile "${configured}": ${offered}`,
      );
    }
    if (request.profile) {
      if (request.profile in listed) return request.profile;
      logger.warn(
        { identifiers: request.names, profile: request.profile, profiles: names },
        'the CA no longer lists the profile of the certificate being renewed; ordering without one',
      );
    }
    const ipProfile = this.options.ipProfile;
    if (ipProfile && ipProfile in listed && request.names.some((name) => isIP(name))) return ipProfile;
    return undefined;
  }

  /**
   * RFC 9773 `replaces`, only where it belongs: the CA offers ARI (lists `renewalInfo`), the certificate
   * came from this production CA and from this very account, and the test CA is not being asked.
   */
  private replacesFor(
    request: CertificateRequest,
    directory: AcmeDirectory,
    transport: AcmeTransport,
  ): string | undefined {
    if (!request.replaces || request.useTestCA || typeof directory.renewalInfo !== 'string') return undefined;
    return request.replacesAccount === transport.accountUrl ? request.replaces : undefined;
  }

  /** IP addresses validate by HTTP-01 or TLS-ALPN-01 only: with neither enabled, no attempt can succeed. */
  private checkIpChallenges(request: CertificateRequest, context: IssuerContext): void {
    const addresses = request.names.filter((name) => isIP(name));
    if (addresses.length === 0) return;
    if (this.challengeTypes(context).some((type) => IP_CHALLENGES.includes(type))) return;
    throw new NoRetryError(
      `${addresses.join(', ')}: an IP address certificate needs the http-01 or tls-alpn-01 challenge ` +
        '(DNS-01 cannot validate an IP address); enable one of them',
    );
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
      if (error instanceof CorruptEntryError) return undefined; // re-register; nothing else depends on it
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

  private async order(attempt: OrderAttempt): Promise<IssuedCertificate> {
    const { transport, request, logger } = attempt;
    const ca = transport.directoryUrl;
    const post = (url: string, payload: unknown) => transport.post(url, payload, { signal: request.signal });
    const created = await post(await transport.resourceUrl('newOrder'), {
      identifiers: request.names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
      ...(attempt.replaces ? { replaces: attempt.replaces } : {}),
      ...(attempt.profile ? { profile: attempt.profile } : {}),
    });
    const orderUrl = created.headers.location ?? '';
    let order = created.body as AcmeOrder;
    // Key and CSR are made in the thread pool while the CA validates, not after.
    const keyAndCsr = createKeyAndCsr(request);
    keyAndCsr.catch(() => {}); // awaited below; a failed order must not leave it unhandled
    try {
      await Promise.all(order.authorizations.map((url) => this.authorize(attempt, url)));
    } catch (error) {
      if (error instanceof AcmeProblemError) {
        logger.error(
          {
            identifier: request.names[0],
            problem: error.problem,
            order: orderUrl,
            attempt: attempt.orderNumber,
            max_attempts: attempt.maxOrders,
          },
          'validating authorization',
        );
      }
      if (!isCaUnreachable(error)) await this.deactivateAuthorizations(transport, order);
      throw error;
    }
    logger.info({ order: orderUrl }, 'validations succeeded; finalizing order');
    const { privateKeyPem, csr } = await keyAndCsr;
    order = (await post(order.finalize, { csr })).body as AcmeOrder;
    order = await this.poll<AcmeOrder>(attempt, orderUrl, order, {
      isDone: (o) => o.status === 'valid',
    });
    if (!order.certificate) throw new Error(`${ca}: order ${orderUrl} is valid but has no certificate URL`);
    const download = await post(order.certificate, null);
    const certificatePem = String(download.body);
    const chain = splitPemChain(certificatePem);
    if (chain.length === 0) throw new Error(`${ca}: the certificate download is not a PEM chain`);
    logger.info(
      { count: 1, first_url: order.certificate, identifiers: request.names },
      'successfully downloaded available certificate chains',
    );
    const profile = order.profile ?? attempt.profile;
    return {
      certificatePem: `${chain.join('\n')}\n`,
      privateKeyPem,
      ca,
      ...(profile ? { profile } : {}),
      ...(transport.accountUrl ? { account: transport.accountUrl } : {}),
    };
  }

  private async authorize(attempt: OrderAttempt, url: string): Promise<void> {
    const { transport, context, logger, triedChallenges, request } = attempt;
    const authorization = (await transport.post(url, null, { signal: request.signal }))
      .body as AcmeAuthorization;
    if (authorization.status === 'valid') return;
    const isIpIdentifier = authorization.identifier.type === 'ip';
    const identifier = (authorization.wildcard ? '*.' : '') + authorization.identifier.value;
    const offered = new Set(authorization.challenges.map((challenge) => challenge.type));
    const usable = this.challengeTypes(context).filter(
      (type) => offered.has(type) && (!isIpIdentifier || IP_CHALLENGES.includes(type)),
    );
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
    const presented = {
      type: challenge.type,
      identifier,
      token: challenge.token,
      keyAuthorization,
      ...(isIpIdentifier ? { identifierType: 'ip' as const } : {}),
    };
    logger.info(
      { identifier, challenge_type: challenge.type, ca: transport.directoryUrl },
      'trying to solve challenge',
    );
    await solver.present(presented);
    try {
      await transport.post(challenge.url, {}, { signal: request.signal });
      const done = await this.poll<AcmeAuthorization>(attempt, url, undefined, {
        isDone: (a) => a.status === 'valid',
        failedEarly: (a) => pendingChallengeError(a, challenge.url),
      });
      logger.info({ identifier, authz_status: done.status }, 'authorization finalized');
    } finally {
      await solver.cleanup(presented).catch(() => {});
    }
  }

  /**
   * Polls `url` until `isDone`; fast at first, doubling, honouring `Retry-After`. `invalid` throws the CA's
   * problem, and so does `failedEarly` when it finds one (a challenge left `pending` with an error). The
   * timeout runs on real time: it bounds the CA's work, which a test clock moved by hours does not change.
   */
  private async poll<T extends { status: string }>(
    attempt: OrderAttempt,
    url: string,
    initial: T | undefined,
    checks: { isDone: (item: T) => boolean; failedEarly?: (item: T) => AcmeProblem | undefined },
  ): Promise<T> {
    const { transport, request } = attempt;
    let delayMs = this.options.pollInitialMs ?? DEFAULT_POLL_INITIAL_MS;
    const maxDelayMs = this.options.pollMaxMs ?? DEFAULT_POLL_MAX_MS;
    const timeoutMs = this.options.pollTimeoutMs ?? DEFAULT_POLL_TIMEOUT_MS;
    const deadline = performance.now() + timeoutMs;
    let retryAfterMs: number | undefined;
    let current = initial;
    for (;;) {
      if (current) {
        if (checks.isDone(current)) return current;
        if (current.status === 'invalid') throw invalidItemProblem(transport.directoryUrl, url, current);
        const early = checks.failedEarly?.(current);
        if (early) throw problemError(early, transport.directoryUrl, url);
      }
      if (performance.now() > deadline)
        throw pollTimeoutProblem(transport.directoryUrl, url, current, timeoutMs);
      await sleep(retryAfterMs ?? delayMs, request.signal);
      delayMs = Math.min(delayMs * 2, maxDelayMs);
      const response = await transport.post(url, null, { signal: request.signal });
      const header = response.headers['retry-after'];
      const askedMs = parseRetryAfterMs(header, attempt.context.clock.now());
      retryAfterMs = askedMs === undefined ? undefined : Math.min(askedMs, timeoutMs);
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

async function createKeyAndCsr(request: CertificateRequest): Promise<{ privateKeyPem: string; csr: string }> {
  const privateKeyPem = await generatePrivateKey(request.keyType);
  const [, csrPem] = await acmeClient.crypto.createCsr(
    { commonName: request.names[0], altNames: request.names },
    privateKeyPem,
  );
  const csr = csrPem.toString().replace(/-----[^-]+-----|\s/g, '');
  return { privateKeyPem, csr: Buffer.from(csr, 'base64').toString('base64url') };
}

/**
 * The CA had an internal error: worth the same order again. A CA we cannot reach at all (status 0) is not:
 * the transport already retried, and the attempt schedule is the right pace for an outage.
 */
function isTransient(error: unknown): boolean {
  return error instanceof AcmeProblemError && error.problem.status >= 500;
}

function problemError(problem: AcmeProblem, ca: string, url: string): AcmeProblemError {
  return new AcmeProblemError({ ...problem, status: problem.status ?? 400 }, { ca, url });
}

/** The problem behind an invalid authorization (its failed challenge's error) or order. */
function invalidItemProblem(ca: string, url: string, item: { status: string }): AcmeProblemError {
  const authorization = item as Partial<AcmeAuthorization> & { error?: AcmeProblem };
  const failed = authorization.challenges?.find((challenge) => challenge.error)?.error ?? authorization.error;
  const problem = failed ?? {
    type: 'urn:ietf:params:acme:error:malformed',
    detail: `${url} became invalid`,
    status: 400,
  };
  return problemError(problem, ca, url);
}

/**
 * Our challenge came back `pending` with an `error`: the CA tried and failed, and will not move on by itself
 * (Caddy's ACME server leaves it so for ever; RFC 8555 servers that retry say `processing` instead).
 */
function pendingChallengeError(
  authorization: AcmeAuthorization,
  challengeUrl: string,
): AcmeProblem | undefined {
  if (authorization.status !== 'pending') return undefined;
  const challenge = authorization.challenges.find((candidate) => candidate.url === challengeUrl);
  return challenge?.status === 'pending' ? challenge.error : undefined;
}

/** Still pending at the poll timeout: a typed problem, so the policy can judge it like any other. */
function pollTimeoutProblem(
  ca: string,
  url: string,
  item: { status: string } | undefined,
  timeoutMs: number,
): AcmeProblemError {
  return new AcmeProblemError(
    {
      type: 'urn:ietf:params:acme:error:serverInternal',
      detail: `${url} still ${item?.status ?? 'pending'} after ${timeoutMs} ms of polling`,
      status: 0,
    },
    { ca, url },
  );
}

/**
 * Let's Encrypt; its staging CA serves as the test CA while retrying. IP addresses get the `shortlived`
 * profile (the only one Let's Encrypt issues them under) unless `profile` says otherwise.
 * @example letsEncrypt({ profile: 'tlsserver' })
 */
export function letsEncrypt(options: { staging?: boolean } & Partial<AcmeIssuerOptions> = {}): AcmeIssuer {
  const production = 'https://acme-v02.api.letsencrypt.org/directory';
  const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
  return acme({
    ipProfile: LETS_ENCRYPT_IP_PROFILE,
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
  for (const option of ['profile', 'ipProfile'] as const) {
    optional(option, options[option], (v) => typeof v === 'string' && v.length > 0, 'must be a profile name');
  }
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
