/** @module Errors as values: ACME problem documents and transport failures, with the fields policy decides on. */

export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  subproblems?: AcmeProblem[];
}

const ACME_ERROR = 'urn:ietf:params:acme:error:';

/** An RFC 8555 problem from the CA (or a transport failure dressed as one, type `connection`). */
export class AcmeProblemError extends Error {
  constructor(
    readonly problem: AcmeProblem,
    readonly context: { ca: string; url?: string; retryAfterMs?: number; order?: string },
  ) {
    super(`HTTP ${problem.status} ${problem.type} - ${problem.detail}`);
    this.name = 'AcmeProblemError';
  }

  /** The problem type without the ACME prefix: `dns`, `rateLimited`, `badNonce`… */
  get shortType(): string {
    return this.problem.type.startsWith(ACME_ERROR)
      ? this.problem.type.slice(ACME_ERROR.length)
      : this.problem.type;
  }

  get retryAfterMs(): number | undefined {
    return this.context.retryAfterMs;
  }
}

export function connectionProblem(ca: string, url: string, cause: unknown): AcmeProblemError {
  const detail =
    cause instanceof Error
      ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}`
      : String(cause);
  return new AcmeProblemError({ type: `${ACME_ERROR}connection`, detail, status: 0 }, { ca, url });
}

export function problemType(error: unknown): string | undefined {
  return error instanceof AcmeProblemError ? error.shortType : undefined;
}

/** Problems where another challenge type may succeed (acmez's rule). */
const challengeSwitchingTypes = new Set(['connection', 'dns', 'serverInternal', 'unauthorized', 'tls']);

export function mayTryOtherChallenge(error: unknown): boolean {
  const type = problemType(error);
  return type !== undefined && challengeSwitchingTypes.has(type);
}

/** A failure that may fix itself when DNS or the network changes: worth watching the name's DNS. */
export function isDnsOrConnectionProblem(error: unknown): boolean {
  const type = problemType(error);
  if (type === 'dns' || type === 'connection') return true;
  if (error instanceof AcmeProblemError && error.problem.subproblems) {
    return error.problem.subproblems.some((sub) => /:(dns|connection)$/.test(sub.type));
  }
  return false;
}

export function isRateLimited(error: unknown): boolean {
  return (
    error instanceof AcmeProblemError &&
    (error.shortType === 'rateLimited' || error.problem.status === 429 || error.problem.status === 503)
  );
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfterMs(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
