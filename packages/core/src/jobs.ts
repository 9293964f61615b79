/**
 * @module The names being obtained or renewed in the background: one retry job per name (retry.ts) running
 * one attempt at a time (obtain.ts), with the events that their outcomes stand for.
 */
import { renewalRetryDelayMs } from './backoff.js';
import type { CertificateCache } from './cache.js';
import type { Clock } from './clock.js';
import { publishCertificateServed } from './diagnostics.js';
import type { DnsResolver } from './dns-watch.js';
import { isNoRetry } from './errors.js';
import type { CertManagerEmitter } from './events.js';
import type { Logger } from './log.js';
import type { RenewalRequest } from './maintenance.js';
import { type ObtainContext, type ObtainResult, obtainOnce } from './obtain.js';
import { newPolicyState } from './policy.js';
import { RetryJob, type RetrySchedule } from './retry.js';
import type { StatusWriter } from './status.js';
import { isStorageOutage } from './storage/health.js';

export interface ObtainJobsOptions {
  obtainContext: ObtainContext;
  schedule: RetrySchedule;
  clock: Clock;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  resolver: DnsResolver;
  logger: Logger;
  /** Where each new certificate goes, to be served. */
  cache: CertificateCache;
  events: CertManagerEmitter;
  /** Where each outcome is recorded for the CLI and the other instances. */
  status?: StatusWriter;
}

export class ObtainJobs {
  private readonly jobs = new Map<string, RetryJob>();
  /** Jobs whose last attempt failed because storage could not be reached. */
  private readonly waitingOnStorage = new Set<string>();

  constructor(private readonly options: ObtainJobsOptions) {}

  get(name: string): RetryJob | undefined {
    return this.jobs.get(name);
  }

  has(name: string): boolean {
    return this.jobs.has(name);
  }

  /** Runs now every job waiting on its backoff because storage was down (it answers again). */
  hurryStorageWaiters(): void {
    for (const name of this.waitingOnStorage) {
      // A job not waiting is mid-attempt: its outcome updates the set.
      if (this.jobs.get(name)?.hurry()) this.waitingOnStorage.delete(name);
    }
  }

  /** Waits for every job to end (after the stop signal, they end at their next step). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((job) => job.settled));
  }

  /**
   * Obtains (or renews) `name` in the background on the retry schedule, unless a job for it runs already
   * or the manager stopped. A renewal serves the certificate it replaces meanwhile.
   */
  start(name: string, renewal?: RenewalRequest): void {
    const { obtainContext, events } = this.options;
    if (this.jobs.has(name) || obtainContext.signal.aborted) return;
    const policy = newPolicyState();
    const job = new RetryJob({
      name,
      attempt: async () =>
        this.served(name, renewal, await obtainOnce(obtainContext, { name, renewal, policy })),
      schedule: this.options.schedule,
      ...(renewal && {
        delayFor: (scheduledMs: number) =>
          renewalRetryDelayMs(scheduledMs, renewal.replacing.info, this.options.clock.now()),
      }),
      clock: this.options.clock,
      sleep: this.options.sleep,
      resolver: this.options.resolver,
      signal: obtainContext.signal,
      logger: this.loggerFor(renewal),
      verb: renewal ? 'renewing' : 'obtaining',
      ...(renewal && { logFields: { reason: renewal.reason } }),
      listener: {
        attempting: (attempt) =>
          events.emit('cert_obtaining', {
            identifier: name,
            attempt,
            renewal: Boolean(renewal),
            ...(renewal && { reason: renewal.reason }),
          }),
        failed: ({ error, attempt, retryingInMs }) => {
          if (isStorageOutage(error)) {
            this.waitingOnStorage.add(name);
            // A lock call that timed out went through the locker, not storage: storage probes from now on.
            obtainContext.storage.health.failed(error);
          } else this.waitingOnStorage.delete(name);
          this.options.status?.failed(name, { error, attempt, atMs: this.options.clock.now(), retryingInMs });
          events.emit('cert_failed', { identifier: name, error, attempt, retrying_in: retryingInMs / 1000 });
        },
        gaveUp: ({ error, attempts, elapsedMs }) => {
          this.options.status?.failed(name, { error, attempt: attempts, atMs: this.options.clock.now() });
          events.emit('cert_giving_up', {
            identifier: name,
            error,
            attempts,
            elapsed: elapsedMs / 1000,
            retryable: !isNoRetry(error),
          });
        },
      },
    });
    this.jobs.set(name, job);
    const forget = () => {
      if (this.jobs.get(name) !== job) return;
      this.jobs.delete(name);
      this.waitingOnStorage.delete(name);
    };
    job.settled.then(forget, forget);
  }

  /** Serves an attempt's certificate and tells listeners what happened. */
  private served(name: string, renewal: RenewalRequest | undefined, result: ObtainResult): void {
    const { cache, events } = this.options;
    cache.set(result.certificate);
    this.options.status?.succeeded(name, result.certificate.info, this.options.clock.now());
    if (result.source === 'storage') return;
    const { issuerKey: issuer, info } = result.certificate;
    const obtained = { identifier: name, issuer, ca: result.ca };
    const { notBefore, notAfter, serialNumber: serial } = info;
    publishCertificateServed({
      identifier: name,
      issuer,
      serial,
      notBefore,
      notAfter,
      renewal: Boolean(renewal),
    });
    events.emit('cert_obtained', { ...obtained, renewal: Boolean(renewal) || result.replacedStored });
    if (renewal) {
      const serials = { old_serial: renewal.replacing.info.serialNumber, serial: info.serialNumber };
      events.emit('cert_renewed', { ...obtained, reason: renewal.reason, ...serials });
    }
    const verb = renewal ? 'renewed' : 'obtained';
    this.loggerFor(renewal).info({ identifier: name }, `certificate ${verb} successfully`);
  }

  private loggerFor(renewal: RenewalRequest | undefined): Logger {
    return this.options.logger.child({ logger: renewal ? 'tls.renew' : 'tls.obtain' });
  }
}
