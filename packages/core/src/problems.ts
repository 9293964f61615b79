/** @module Errors as values: ACME problem documents and transport failures, with the fields policy decides on. */

export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  subproblems?: AcmeProblem[];
  /** RFC 7807 `instance`: a page about this occurrence (Let's Encrypt's unpause page, for instance). */
  instance?: string;
}

/** A `Link` header of the CA's answer, e.g. `{ rel: 'help', url: 'https://…/unpause?…' }`. */
export interface ProblemLink {
  rel: string;
  url: string;
}

/** Where a problem came from, beyond the problem document itself. */
export interface ProblemContext {
  /** The ACME directory URL of the CA. */
  ca: string;
  url?: string;
  /** The request that failed, e.g. `POST newOrder` or `GET directory`. */
  request?: string;
  retryAfterMs?: number;
  order?: string;
  /** Pages the CA pointed to: `Link` headers (but the directory index) and URLs in `instance`/`detail`. */
  links?: ProblemLink[];
  /** The CA could not be reached or did not answer in time: no validation was judged. */
  unreachable?: boolean;
}

const ACME_ERROR = 'urn:ietf:params:acme:error:';

/** An RFC 8555 problem from the CA (or a transport failure dressed as one, type `connection`). */
export class AcmeProblemError extends Error {
  constructor(
    readonly problem: AcmeProblem,
    readonly context: ProblemContext,
  ) {
    const where = context.request ? `${context.request} at ${context.ca}` : context.ca;
    const status = problem.status ? `HTTP ${problem.status}` : 'no HTTP answer';
    super(`${where}: ${status} ${problem.type} - ${problem.detail}`);
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

  get links(): ProblemLink[] {
    return this.context.links ?? [];
  }
}

/** The CA itself could not be reached or did not answer (`request` e.g. `GET directory`). */
export function connectionProblem(
  ca: string,
  url: string,
  cause: unknown,
  request?: string,
): AcmeProblemError {
  const detail =
    cause instanceof Error
      ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}`
      : String(cause);
  return new AcmeProblemError(
    { type: `${ACME_ERROR}connection`, detail, status: 0 },
    { ca, url, unreachable: true, ...(request ? { request } : {}) },
  );
}

/** Talking to the CA failed (no answer, refused, timed out): nothing about the names was judged. */
export function isCaUnreachable(error: unknown): boolean {
  return error instanceof AcmeProblemError && error.context.unreachable === true;
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

/** 429, 503 or `rateLimited`: the CA asks to be left alone for a while (its `Retry-After`, when given). */
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

/**
 * The links a person may need to act on a problem: `Link` headers other than the directory index, the
 * problem's `instance`, and URLs in its `detail` (Let's Encrypt puts its unpause page there).
 * @example problemLinks('<https://ca.test/unpause?x>;rel="help"', { detail: 'see https://ca.test/docs' })
 */
export function problemLinks(
  linkHeader: string | undefined,
  problem: Pick<AcmeProblem, 'detail' | 'instance'>,
): ProblemLink[] {
  const links: ProblemLink[] = [];
  for (const match of (linkHeader ?? '').matchAll(/<([^>]+)>\s*;\s*rel="?([^";,]+)"?/g)) {
    const [, url, rel] = match;
    if (url && rel && rel !== 'index') links.push({ rel, url });
  }
  if (problem.instance) links.push({ rel: 'instance', url: problem.instance });
  for (const url of problem.detail.match(/https?:\/\/[^\s"'<>]+[^\s"'<>.,;:)]/g) ?? []) {
    if (!links.some((link) => link.url === url)) links.push({ rel: 'detail', url });
  }
  return links;
}
