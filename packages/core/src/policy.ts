/**
 * @module Issuer policy inside one attempt: issuers in order, first success wins; the test CA first while
 * retrying; an issuer that said "rate limited, come back later" is skipped until then.
 */
import type { Clock } from './clock.js';
import { publishObtainFailure } from './diagnostics.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import { AcmeProblemError, isRateLimited, type ProblemLink } from './problems.js';

/** Per-name memory across attempts. */
export interface PolicyState {
  /** An earlier attempt failed: test CAs go first from now on. */
  failedBefore: boolean;
  /**
   * Issuers whose production CA is asked directly next time: their test CA succeeded while production did
   * not, or production refused with a rate limit (the test CA has its own limits and cannot tell us more).
   */
  testCAPassed: Set<string>;
}

export function newPolicyState(): PolicyState {
  return { failedBefore: false, testCAPassed: new Set() };
}

/**
 * CA → time before which it must not be asked (its Retry-After on a 429/503), shared by all names. Keyed by
 * {@link pauseKey}: an issuer's production and test CA are paused apart.
 */
export type IssuerPauses = Map<string, number>;

/** The pause key of an issuer's production CA (its key) or test CA. */
export function pauseKey(issuer: Issuer, testCA: boolean): string {
  return testCA ? `${issuer.key}|test` : issuer.key;
}

export interface ObtainResult {
  certificate: IssuedCertificate;
  issuer: Issuer;
}

/** Every issuer failed (or was paused); `errors` keeps each issuer's typed error for the retry decision. */
export class AllIssuersFailedError extends AggregateError {
  constructor(
    readonly identifier: string,
    errors: unknown[],
  ) {
    super(
      errors,
      `[${identifier}] no issuer could provide a certificate: ${errors.map((e) => (e as Error)?.message ?? String(e)).join('; ')}`,
    );
    this.name = 'AllIssuersFailedError';
  }

  /** Every page the CAs pointed to (an unpause page, a rate-limit doc), for the log and `cert_failed`. */
  get links(): ProblemLink[] {
    return this.errors.flatMap((error) => (error instanceof AcmeProblemError ? error.links : []));
  }
}

export async function obtainFromIssuers(
  request: CertificateRequest,
  issuers: Issuer[],
  state: PolicyState,
  pauses: IssuerPauses,
  context: IssuerContext & { clock: Clock },
): Promise<ObtainResult> {
  const logger: Logger = context.logger.child({ logger: 'tls.obtain' });
  const identifier = request.names[0] ?? '';
  const errors: unknown[] = [];
  const pausedFor = (key: string) => Math.max((pauses.get(key) ?? 0) - context.clock.now(), 0);
  for (const issuer of issuers) {
    const waitMs = pausedFor(pauseKey(issuer, false));
    if (waitMs > 0) {
      const waitSeconds = Math.ceil(waitMs / 1000);
      logger.info(
        { identifier, issuer: issuer.key, retry_after: waitSeconds },
        'skipping rate-limited issuer',
      );
      errors.push(new Error(`${issuer.key} is rate limited for another ${waitSeconds} s`));
      continue;
    }
    const tryTestCAFirst =
      issuer.hasTestCA &&
      state.failedBefore &&
      !state.testCAPassed.has(issuer.key) &&
      pausedFor(pauseKey(issuer, true)) === 0;
    let testCA = tryTestCAFirst;
    try {
      if (tryTestCAFirst) {
        await issuer.issue({ ...request, useTestCA: true }, context);
        state.testCAPassed.add(issuer.key);
        logger.info({ identifier, issuer: issuer.key }, 'test CA succeeded; asking production now');
      }
      testCA = false;
      const certificate = await issuer.issue({ ...request, useTestCA: false }, context);
      return { certificate, issuer };
    } catch (error) {
      errors.push(error);
      publishObtainFailure({ identifier, issuer: issuer.key, error });
      logger.error(
        { identifier, issuer: issuer.key, test_ca: testCA, ...errorFields(error) },
        'could not get certificate from issuer',
      );
      if (isRateLimited(error)) {
        const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
        if (retryAfterMs !== undefined)
          pauses.set(pauseKey(issuer, testCA), context.clock.now() + retryAfterMs);
        // Production's own limit: once it has passed, production is asked directly; a test CA cannot help.
        if (!testCA) state.testCAPassed.add(issuer.key);
      }
    }
  }
  state.failedBefore = true;
  throw new AllIssuersFailedError(identifier, errors);
}
