/**
 * @module The maintenance loop: every few minutes, picks up certificates other instances renewed, decides
 * which managed certificates are due (lifetime ratio, ARI, emergency, expiry) and renews them; at most
 * daily, cleans storage of long-expired certificates and stale locks.
 */

import { RenewalInfoRecords } from './ari.js';
import { type CachedCertificate, supersedes } from './cache.js';
import type { Clock } from './clock.js';
import { concurrencyLimit } from './concurrency.js';
import type { IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import type { MaintenanceHost } from './maintenance-host.js';
import { maintenanceIntervalMs, type RenewalReason, renewalDecision } from './renewal.js';
import { RenewalSchedule } from './renewal-schedule.js';
import { RenewalStarter } from './renewal-start.js';
import { SharedSchedule } from './shared-schedule.js';
import { requestedRenewal } from './status.js';
import { cleanStorageIfDue } from './storage/clean.js';
import type { Locker } from './storage/locks.js';
import type { ScheduleIndex, ScheduleTimes } from './storage/schedule-index.js';
import type { Storage } from './storage/storage.js';

/** Names maintained at once in a pass: bounds parallel storage reads and ARI requests on large deployments. */
const MAINTENANCE_CONCURRENCY = 8;

export type { MaintenanceHost, RenewalRequest } from './maintenance-host.js';

export interface MaintenanceOptions {
  host: MaintenanceHost;
  storage: Storage;
  locker: Locker;
  clock: Clock;
  logger: Logger;
  /** Handed to issuers for their ARI requests. */
  issuerContext: IssuerContext;
  windowRatio: number;
  checkIntervalMs: number;
  /** Picks the time inside an ARI window; injectable for tests. */
  random?: () => number;
  /** The schedule shared with other instances on the storage; closed by `stop()`. */
  scheduleIndex?: ScheduleIndex;
}

export class Maintenance {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly stopping = new AbortController();
  private readonly logger: Logger;
  private readonly renewalInfos: RenewalInfoRecords;
  private readonly renewals: RenewalStarter;
  private readonly shared: SharedSchedule;
  /** When to look at each managed name next; a pass takes only the names due. */
  private readonly schedule = new RenewalSchedule();
  /** The shortest lifetime of a certificate maintained so far: short-lived ones shorten the interval. */
  private shortestLifetimeMs = Number.POSITIVE_INFINITY;

  constructor(private readonly options: MaintenanceOptions) {
    this.logger = options.logger.child({ logger: 'tls.maintenance' });
    this.renewalInfos = new RenewalInfoRecords({ ...options, logger: this.logger });
    this.renewals = new RenewalStarter(options.host, this.logger);
    this.shared = new SharedSchedule(options.scheduleIndex, this.logger, options.random);
  }

  /** Schedules a pass every `checkIntervalMs`; idempotent. The timer never keeps the process alive. */
  start(): void {
    if (this.timer || this.running || this.stopping.signal.aborted) return;
    this.scheduleNextPass();
  }

  /** Looks at `name` in the next pass (a newly managed name; a renewal asked for from outside). */
  checkSoon(name: string): void {
    this.schedule.soon(name);
  }

  /** Looks at `name` when `atMs` comes (within about a day), rather than at the next pass. */
  plan(name: string, atMs: number): void {
    this.schedule.set(name, this.shared.withinCheckGap(atMs, this.options.clock.now()));
  }

  /** Every name's entry in the shared schedule, undefined without one. */
  indexedTimes(): Promise<ScheduleTimes | undefined> {
    return this.shared.load();
  }

  /** Names planned for a later pass; the next pass takes those due by then. */
  get scheduledCount(): number {
    return this.schedule.size;
  }

  /** Stops the loop and waits for a pass in progress to wind down (its waits are aborted). */
  async stop(): Promise<void> {
    this.stopping.abort(new Error('maintenance stopped'));
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.shared.close();
  }

  /**
   * One pass over the names due before the next pass (planned ones, and those asked for with `checkSoon`),
   * then storage cleaning if a day has passed. Exposed for tests.
   */
  async runPass(): Promise<void> {
    const { clock } = this.options;
    // Every name would wait out the storage timeout; the names stay planned for the next pass.
    if (this.options.storage.health.down) {
      this.logger.warn({}, 'storage unavailable: maintenance pass skipped');
      return;
    }
    const checkIntervalMs = this.intervalMs();
    for (const name of await this.shared.movedElsewhere())
      if (this.schedule.has(name)) this.schedule.soon(name);
    const names = this.schedule.takeDue(clock.now() + checkIntervalMs);
    const limit = concurrencyLimit(MAINTENANCE_CONCURRENCY);
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          let nextCheckMs = clock.now() + checkIntervalMs;
          try {
            if (!this.stopping.signal.aborted) nextCheckMs = await this.maintain(name);
          } catch (error) {
            if (!this.stopping.signal.aborted) {
              this.logger.error({ identifier: name, ...errorFields(error) }, 'maintaining certificate');
            }
          } finally {
            // Never dropped: a name that failed to maintain is looked at again next pass.
            if (!this.schedule.has(name)) this.schedule.set(name, nextCheckMs);
          }
        }),
      ),
    );
    await this.shared.flush();
    if (!this.stopping.signal.aborted) await this.cleanIfDue();
  }

  private async cleanIfDue(): Promise<void> {
    const { storage, locker, clock } = this.options;
    const signal = this.stopping.signal;
    await cleanStorageIfDue({ storage, locker, clock, logger: this.logger, signal }).catch(
      (error: unknown) => {
        if (!signal.aborted) this.logger.error(errorFields(error), 'cleaning storage');
      },
    );
  }

  /** The configured interval, shortened for short-lived certificates (see `maintenanceIntervalMs`). */
  private intervalMs(): number {
    return maintenanceIntervalMs(this.options.checkIntervalMs, [this.shortestLifetimeMs]);
  }

  private scheduleNextPass(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPass().finally(() => {
        this.running = undefined;
        if (!this.stopping.signal.aborted) this.scheduleNextPass();
      });
    }, this.intervalMs());
    this.timer.unref();
  }

  /** Looks at one name: adopts what storage has, renews when due. Resolves with when to look again. */
  private async maintain(name: string): Promise<number> {
    const { host, clock } = this.options;
    const nextPass = clock.now() + this.intervalMs();
    const current = await this.adoptNewerStored(name);
    if (!current) return nextPass; // Nothing obtained yet: the obtain in flight (or its give-up) owns it.
    const issuer = host.issuer(current.issuerKey);
    // While an obtain or renewal runs, its outcome decides; ARI is asked once it is over.
    const busy = host.isBusy(name);
    const ari = busy
      ? undefined
      : await this.renewalInfos.current(name, current, issuer, this.stopping.signal);
    const lifetimeMs = current.info.notAfter - current.info.notBefore;
    this.shortestLifetimeMs = Math.min(this.shortestLifetimeMs, lifetimeMs);
    const nowMs = clock.now();
    const decision = renewalDecision(current.info, nowMs, {
      windowRatio: this.options.windowRatio,
      checkIntervalMs: maintenanceIntervalMs(this.options.checkIntervalMs, [lifetimeMs]),
      ...(ari ? { ariSelectedTimeMs: ari.selectedTimeMs } : {}),
    });
    host.looked?.(name, current, busy ? undefined : decision.dueAtMs);
    const reason =
      decision.reason ??
      (host.isBusy(name)
        ? undefined
        : await requestedRenewal(this.options.storage, name, current.info.serialNumber));
    if (reason) {
      const renewal = this.renewals.start({ name, current, reason, ari, nowMs });
      // The next pass puts the new certificate's time in the shared schedule, where other instances see it.
      const lookAgain = () => this.schedule.has(name) && this.schedule.soon(name);
      renewal?.then(lookAgain, lookAgain);
      return nextPass;
    }
    // Without a shared schedule, another instance's renewal is only seen by looking: every pass. A name that
    // was busy is looked at again next pass, not planned by a decision made without ARI.
    if (!this.shared.enabled || busy) return nextPass;
    const dueAtMs = Math.min(decision.dueAtMs, ari?.nextCheckMs ?? Number.POSITIVE_INFINITY);
    return Math.max(this.shared.record(name, current.info.serialNumber, dueAtMs, nowMs), nextPass);
  }

  /**
   * The certificate to judge: storage's when it is newer than the cached one (another instance renewed it),
   * which is then served; `undefined` when there is none yet.
   */
  private async adoptNewerStored(name: string): Promise<CachedCertificate | undefined> {
    const { host } = this.options;
    const cached = host.cached(name);
    const stored = await host.loadFromStorage(name);
    if (!stored || !supersedes(stored, cached)) return cached;
    // Not cached and nothing running: it was evicted from a full cache, and is served from storage.
    if (cached || host.isBusy(name)) host.adopt(name, stored);
    // A renewal of ours waiting to retry would only find this on its next attempt, hours away maybe.
    if (host.isBusy(name)) host.hurry(name);
    return stored;
  }
}
