/** @module Polling an ACME authorization or order until it is done: fast at first, doubling, honouring Retry-After. */

import type { Clock } from '../clock.js';
import { sleep } from '../clock.js';
import { type AcmeProblem, AcmeProblemError, parseRetryAfterMs } from '../problems.js';
import type { AcmeTransport } from './acme-transport.js';

export interface PollTiming {
  /** First delay; doubles up to `maxMs`. A `Retry-After` from the CA overrides both. */
  initialMs: number;
  maxMs: number;
  /** Give up on an item still pending after this long. */
  timeoutMs: number;
}

export interface PollChecks<T> {
  isDone: (item: T) => boolean;
  /** A problem found in a not-yet-invalid item (a challenge left `pending` with an error). */
  failedEarly?: (item: T) => AcmeProblem | undefined;
}

export function problemError(problem: AcmeProblem, ca: string, url: string): AcmeProblemError {
  return new AcmeProblemError({ ...problem, status: problem.status ?? 400 }, { ca, url });
}

/**
 * Polls `url` until `isDone`. `invalid` throws the CA's problem, and so does `failedEarly` when it finds one.
 * The timeout runs on real time: it bounds the CA's work, which a test clock moved by hours does not change.
 */
export async function pollUntil<T extends { status: string }>(
  transport: AcmeTransport,
  url: string,
  initial: T | undefined,
  checks: PollChecks<T>,
  timing: PollTiming & { clock: Clock; signal?: AbortSignal; guard?: (() => void) | undefined },
): Promise<T> {
  let delayMs = timing.initialMs;
  const deadline = performance.now() + timing.timeoutMs;
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
      throw pollTimeoutProblem(transport.directoryUrl, url, current, timing.timeoutMs);
    await sleep(retryAfterMs ?? delayMs, timing.signal);
    delayMs = Math.min(delayMs * 2, timing.maxMs);
    const response = await transport.post(url, null, { signal: timing.signal, guard: timing.guard });
    const askedMs = parseRetryAfterMs(response.headers['retry-after'], timing.clock.now());
    retryAfterMs = askedMs === undefined ? undefined : Math.min(askedMs, timing.timeoutMs);
    current = response.body as T;
  }
}

interface InvalidItem {
  status: string;
  error?: AcmeProblem;
  challenges?: Array<{ error?: AcmeProblem }>;
}

/** The problem behind an invalid authorization (its failed challenge's error) or order. */
function invalidItemProblem(ca: string, url: string, item: InvalidItem): AcmeProblemError {
  const failed = item.challenges?.find((challenge) => challenge.error)?.error ?? item.error;
  const problem = failed ?? {
    type: 'urn:ietf:params:acme:error:malformed',
    detail: `${url} became invalid`,
    status: 400,
  };
  return problemError(problem, ca, url);
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
