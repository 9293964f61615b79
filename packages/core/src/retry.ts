/**
 * @module The retry loop: attempts on the backoff schedule until one succeeds, the job is stopped, or the
 * time is up (CertMagic's `doWithRetry`). While a name that failed for a DNS or connection reason waits, its
 * DNS is watched and a change wakes it early; maintenance can `hurry()` a waiting job too.
 */
import { retryDelayMs } from './backoff.js';
import type { Clock } from './clock.js';
import { type DnsResolver, dnsAnswer, waitBeforeRetry } from './dns-watch.js';
import { isNoRetry } from './errors.js';
import { errorFields, type Logger } from './log.js';
import { isDnsOrConnectionProblem } from './problems.js';

export interface RetrySchedule {
  /** Wait after failed attempt 1, 2, …; the last entry repeats. */
  readonly intervalsMs: readonly number[];
  /** No attempt starts after this much time since the first. */
  readonly maxDurationMs: number;
  /** How often a DNS-failed name is re-resolved while it waits. */
  readonly dnsRecheckMs: number;
}

/** What the job tells its owner; the owner turns these into events. */
export interface RetryListener {
  attempting?(attempt: number): void;
  /** An attempt failed and another is scheduled in `retryingInMs`. */
  failed?(failure: { error: unknown; attempt: number; retryingInMs: number; elapsedMs: number }): void;
  /** No further attempt: the time is up, or the failure is one no retry can fix. */
  gaveUp?(failure: { error: unknown; attempts: number; elapsedMs: number }): void;
}

export interface RetryJobOptions {
  /** The identifier, for logs and the DNS watch. */
  name: string;
  /** One attempt; rejects to fail it (a `NoRetryError` ends the job at once). */
  attempt(attempt: number): Promise<void>;
  schedule: RetrySchedule;
  /** Shortens the schedule's wait (a renewal's, by its certificate's time left); default: the schedule's. */
  delayFor?(scheduledMs: number): number;
  clock: Clock;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  resolver: DnsResolver;
  /** Stops the job (between attempts, or inside one that listens to it). */
  signal: AbortSignal;
  logger: Logger;
  /** `obtaining` or `renewing`, for log lines. */
  verb?: 'obtaining' | 'renewing';
  /** Added to the "obtaining certificate" line (e.g. a renewal's reason). */
  logFields?: Record<string, unknown>;
  listener?: RetryListener;
}

export type FirstOutcome = 'succeeded' | 'failed';

/**
 * One name's obtain or renewal, running from construction. `settled` resolves on success and rejects on
 * give-up or stop; `firstOutcome` tells how the first attempt went (on-demand handshakes wait for it).
 * @example
 * const job = new RetryJob({ name, attempt: () => obtainOnce(name), schedule, clock, sleep, resolver, signal, logger });
 * await job.firstOutcome; // 'succeeded' | 'failed'
 */
export class RetryJob {
  readonly settled: Promise<void>;
  readonly firstOutcome: Promise<FirstOutcome>;
  #reportFirst!: (outcome: FirstOutcome) => void;
  #hurry?: AbortController;

  constructor(private readonly options: RetryJobOptions) {
    this.firstOutcome = new Promise((resolve) => {
      this.#reportFirst = resolve;
    });
    this.settled = this.#run().finally(() => this.#reportFirst('failed'));
    this.settled.catch(() => {}); // failures are logged and reported; awaiting callers see the rejection
  }

  /** Cuts the current wait short so the next attempt runs now; false when the job is not waiting. */
  hurry(): boolean {
    const hurry = this.#hurry;
    hurry?.abort();
    return Boolean(hurry);
  }

  async #run(): Promise<void> {
    const { name, schedule, clock, signal, listener = {} } = this.options;
    const verb = this.options.verb ?? 'obtaining';
    const logger = this.options.logger;
    const startedAt = clock.now();
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      listener.attempting?.(attempt);
      logger.info({ identifier: name, attempt, ...this.options.logFields }, `${verb} certificate`);
      try {
        await this.options.attempt(attempt);
        this.#reportFirst('succeeded');
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        const elapsedMs = clock.now() - startedAt;
        const scheduledMs = retryDelayMs(attempt, schedule.intervalsMs);
        const delayMs = this.options.delayFor?.(scheduledMs) ?? scheduledMs;
        const fields = { identifier: name, attempt, elapsed: elapsedMs / 1000, ...errorFields(error) };
        if (isNoRetry(error) || elapsedMs + delayMs > schedule.maxDurationMs) {
          listener.gaveUp?.({ error, attempts: attempt, elapsedMs });
          const reason = isNoRetry(error) ? 'no retry can fix this' : 'out of time';
          logger.error(
            { ...fields, attempts: attempt, max_duration: schedule.maxDurationMs / 1000, reason },
            `giving up on ${verb} certificate`,
          );
          throw error;
        }
        // Taken before anyone hears of the failure, so a DNS fix made right after it is still noticed.
        const dnsAtFailure = isDnsOrConnectionProblem(firstCause(error))
          ? await dnsAnswer(this.options.resolver, name)
          : undefined;
        this.#reportFirst('failed');
        listener.failed?.({ error, attempt, retryingInMs: delayMs, elapsedMs });
        logger.error(
          { ...fields, retrying_in: delayMs / 1000, max_duration: schedule.maxDurationMs / 1000 },
          'will retry',
        );
        await this.#wait(delayMs, dnsAtFailure, attempt);
      }
    }
  }

  /** The backoff wait; a `hurry()` ends it early, a stop rejects it. */
  async #wait(delayMs: number, dnsAtFailure: string | undefined, attempt: number): Promise<void> {
    const { name, signal, logger } = this.options;
    const hurry = new AbortController();
    this.#hurry = hurry;
    try {
      await waitBeforeRetry({
        name,
        delayMs,
        dnsAtFailure,
        recheckMs: this.options.schedule.dnsRecheckMs,
        resolver: this.options.resolver,
        sleep: this.options.sleep,
        signal: AbortSignal.any([signal, hurry.signal]),
        logger,
      });
    } catch (reason) {
      if (signal.aborted || !hurry.signal.aborted) throw reason;
      logger.info(
        { identifier: name, attempt },
        'retrying before the backoff schedule: maintenance asked for it',
      );
    } finally {
      this.#hurry = undefined;
    }
  }
}

/** A policy failure aggregates each issuer's error; judge by the first DNS or connection one. */
function firstCause(error: unknown): unknown {
  return error instanceof AggregateError
    ? (error.errors.find((cause) => isDnsOrConnectionProblem(cause)) ?? error)
    : error;
}
