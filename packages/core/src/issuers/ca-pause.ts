/**
 * @module A CA's own pause: a 429 or 503 with `Retry-After` holds back every request to that CA until then.
 * Short pauses are waited out inside the attempt; a long one ends it, and the issuer policy skips the CA.
 */
import { type Clock, sleep } from '../clock.js';
import { AcmeProblemError } from '../problems.js';

/**
 * A CA's `Retry-After` up to this long (on a 429 or 503) is waited out inside the attempt, holding back every
 * request to that CA meanwhile; a longer one ends the attempt, and the issuer policy skips the CA until then.
 * A minute: the retry schedule's own first step, so an attempt never waits longer than it would between two.
 */
export const MAX_IN_ATTEMPT_RETRY_AFTER_MS = 60_000;

const isPauseStatus = (status: number) => status === 429 || status === 503;

export class CaPause {
  /** Set by a 429/503 with `Retry-After`: no request goes to this CA before `untilMs`. */
  private pause?: { untilMs: number; problem: AcmeProblemError };

  constructor(private readonly clock: Clock) {}

  /** A 429/503 whose `Retry-After` is short enough to wait out inside the attempt. */
  static isShort(problem: AcmeProblemError): boolean {
    const { retryAfterMs } = problem;
    return (
      isPauseStatus(problem.problem.status) &&
      retryAfterMs !== undefined &&
      retryAfterMs <= MAX_IN_ATTEMPT_RETRY_AFTER_MS
    );
  }

  /** Remembers a CA's `Retry-After` so that no request of any name goes to it before then. */
  note(problem: AcmeProblemError): void {
    if (!isPauseStatus(problem.problem.status) || problem.retryAfterMs === undefined) return;
    const untilMs = this.clock.now() + problem.retryAfterMs;
    if (!this.pause || untilMs > this.pause.untilMs) this.pause = { untilMs, problem };
  }

  /**
   * Waits out a short pause the CA asked for; a long one throws the CA's problem with the time still left,
   * so the issuer policy skips this CA until then.
   */
  async wait(signal?: AbortSignal): Promise<void> {
    const pause = this.pause;
    if (!pause) return;
    const leftMs = pause.untilMs - this.clock.now();
    if (leftMs <= 0) {
      if (this.pause === pause) this.pause = undefined;
      return;
    }
    if (leftMs > MAX_IN_ATTEMPT_RETRY_AFTER_MS) {
      throw new AcmeProblemError(pause.problem.problem, { ...pause.problem.context, retryAfterMs: leftMs });
    }
    await (this.clock.sleep ?? sleep)(leftMs, signal);
  }
}
