/**
 * @module Issuer policy inside one attempt: issuers in order, first success wins; the test CA first while
 * retrying; an issuer that said "rate limited, come back later" is skipped until then.
 */
import type { Clock } from './clock.js';
import type { CertificateRequest, IssuedCertificate, Issuer, IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import { isRateLimited } from './problems.js';

/** Per-name memory across attempts. */
export interface PolicyState {
  /** An earlier attempt failed: test CAs go first from now on. */
  failedBefore: boolean;
  /** Issuers whose test CA succeeded while production did not: production is asked directly next time. */
  testCAPassed: Set<string>;
}

export function newPolicyState(): PolicyState {
  return { failedBefore: false, testCAPassed: new Set() };
}

/** Issuer key → time before which it must not be asked (a CA's Retry-After). Shared by all names. */
export type IssuerPauses = Map<string, number>;

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
  for (const issuer of issuers) {
    const pausedUntil = pauses.get(issuer.key) ?? 0;
    if (pausedUntil > context.clock.now()) {
      const waitSeconds = Math.ceil((pausedUntil - context.clock.now()) / 1000);
      logger.info(
        { identifier, issuer: issuer.key, retry_after: waitSeconds },
        'skipping rate-limited issuer',
      );
      errors.push(new Error(`${issuer.key} is rate limited for another ${waitSeconds} s`));
      continue;
    }
    const tryTestCAFirst = issuer.hasTestCA && state.failedBefore && !state.testCAPassed.has(issuer.key);
    try {
      if (tryTestCAFirst) {
        await issuer.issue({ ...request, useTestCA: true }, context);
        state.testCAPassed.add(issuer.key);
        logger.info({ identifier, issuer: issuer.key }, 'test CA succeeded; asking production now');
      }
      const certificate = await issuer.issue({ ...request, useTestCA: false }, context);
      return { certificate, issuer };
    } catch (error) {
      errors.push(error);
      logger.error(
        { identifier, issuer: issuer.key, ...errorFields(error) },
        'could not get certificate from issuer',
      );
      if (isRateLimited(error)) {
        const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
        if (retryAfterMs !== undefined) pauses.set(issuer.key, context.clock.now() + retryAfterMs);
      }
    }
  }
  state.failedBefore = true;
  throw new AllIssuersFailedError(identifier, errors);
}
