/** @module The ACME issuer: one attempt of up to a few orders on any RFC 8555 CA, choosing profile and `replaces`. */
import { isIP } from 'node:net';
import { type RenewalInfo, RenewalInfoClient } from '../ari-client.js';
import { sleep } from '../clock.js';
import { isNoRetry, NoRetryError } from '../errors.js';
import type { Logger } from '../log.js';
import { AcmeProblemError, isCaUnreachable, mayTryOtherChallenge, problemType } from '../problems.js';
import { AcmeAccounts, accountForgottenOr, issuerKeyFor } from './acme-account.js';
import {
  type AcmeIssuerOptions,
  checkAcmeOptions,
  DEFAULT_CHALLENGES,
  DEFAULT_ORDER_RETRY_DELAY_MS,
  DEFAULT_ORDERS_PER_ATTEMPT,
  DEFAULT_POLL_INITIAL_MS,
  DEFAULT_POLL_MAX_MS,
  DEFAULT_POLL_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  IP_CHALLENGES,
} from './acme-options.js';
import { placeOrder } from './acme-order.js';
import type { PollTiming } from './acme-poll.js';
import type { AcmeDirectory, AcmeTransport } from './acme-transport.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuer.js';

export { issuerKeyFor } from './acme-account.js';
export type { AcmeIssuerOptions, ChallengeType, ExternalAccountBinding } from './acme-options.js';

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
  private readonly accounts: AcmeAccounts;
  private readonly pollTiming: PollTiming;
  private renewalInfoClient?: RenewalInfoClient;

  constructor(readonly options: AcmeIssuerOptions) {
    checkAcmeOptions(options);
    this.key = issuerKeyFor(options.directoryUrl);
    this.hasTestCA = Boolean(options.testDirectoryUrl);
    this.accounts = new AcmeAccounts(options);
    this.pollTiming = {
      initialMs: options.pollInitialMs ?? DEFAULT_POLL_INITIAL_MS,
      maxMs: options.pollMaxMs ?? DEFAULT_POLL_MAX_MS,
      timeoutMs: options.pollTimeoutMs ?? DEFAULT_POLL_TIMEOUT_MS,
    };
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
      await this.accounts.forget(directoryUrl, context);
      return this.issueFrom(directoryUrl, request, context);
    }
  }

  close(): void {
    this.accounts.close();
  }

  private async issueFrom(
    directoryUrl: string,
    request: CertificateRequest,
    context: IssuerContext,
  ): Promise<IssuedCertificate> {
    const logger = context.logger.child({ logger: 'acme_client' });
    this.checkIpChallenges(request, context);
    const transport = await this.accounts.session(directoryUrl, context);
    const directory = await transport.directory();
    const base = {
      transport,
      request,
      context,
      logger,
      challengeTypes: this.challengeTypes(context),
      profile: this.profileFor(request, directory, logger),
      replaces: this.replacesFor(request, directory, transport),
      triedChallenges: new Set<string>(),
      maxOrders: this.options.ordersPerAttempt ?? DEFAULT_ORDERS_PER_ATTEMPT,
      poll: this.pollTiming,
    };
    let lastError: unknown;
    for (let orderNumber = 1; orderNumber <= base.maxOrders; orderNumber++) {
      if (orderNumber > 1)
        await sleep(this.options.orderRetryDelayMs ?? DEFAULT_ORDER_RETRY_DELAY_MS, request.signal);
      // The first order's slot was taken before the name's lock (cluster-ratelimit.ts); later ones take theirs.
      const admitted = orderNumber === 1 && request.admittedFor === this.key;
      if (!request.useTestCA && !admitted) await this.waitForRateLimiter(transport, request, context, logger);
      try {
        return await placeOrder({ ...base, orderNumber });
      } catch (error) {
        lastError = await accountForgottenOr(error, transport, request.signal);
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
}

/**
 * The CA had an internal error: worth the same order again. A CA we cannot reach at all (status 0) is not:
 * the transport already retried, and the attempt schedule is the right pace for an outage.
 */
function isTransient(error: unknown): boolean {
  return error instanceof AcmeProblemError && error.problem.status >= 500;
}
