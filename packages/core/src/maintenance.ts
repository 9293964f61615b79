/**
 * @module The maintenance loop: every few minutes, picks up certificates other instances renewed, decides
 * which managed certificates are due (lifetime ratio, ARI, emergency, expiry) and renews them; at most
 * daily, cleans storage of long-expired certificates and stale locks.
 */

import { RenewalInfoRecords } from './ari.js';
import type { CachedCertificate } from './cache.js';
import type { Clock } from './clock.js';
import { concurrencyLimit } from './concurrency.js';
import type { Issuer, IssuerContext } from './issuers/issuer.js';
import { errorFields, type Logger } from './log.js';
import { maintenanceIntervalMs, type RenewalReason, renewalDecision } from './renewal.js';
import { RenewalSchedule } from './renewal-schedule.js';
import { cleanStorageIfDue } from './storage/clean.js';
import type { Locker } from './storage/locks.js';
import type { ScheduleEntry, ScheduleIndex, ScheduleTimes } from './storage/schedule-index.js';
import type { Storage } from './storage/storage.js';

/** Names maintained at once in a pass: bounds parallel storage reads and ARI requests on large deployments. */
const MAINTENANCE_CONCURRENCY = 8;
/**
 * However far away its renewal is, each name is looked at (one storage read) at least daily: a certificate
 * replaced by something that does not write the shared schedule (an older version, a hand edit) is picked
 * up within a day.
 */
const MAX_CHECK_GAP_MS = 24 * 60 * 60_000;

/** What the manager lends the loop; the loop never imports the manager. */
export interface MaintenanceHost {
  cached(name: string): CachedCertificate | undefined;
  /** An obtain or renewal for the name is running, or waiting on the backoff schedule. */
  isBusy(name: string): boolean;
  loadFromStorage(name: string): Promise<CachedCertificate | undefined>;
  /** Serves a certificate found in storage (another instance renewed it). */
  adopt(name: string, certificate: CachedCertificate): void;
  /**
   * Starts a renewal in the background, with the obtain machinery (lock, re-check, policy, backoff, events);
   * resolves when it is over, either way.
   */
  renew(name: string, renewal: RenewalRequest): Promise<unknown> | undefined;
  /** Cuts the name's backoff wait short so its next attempt runs now; false when nothing was waiting. */
  hurry(name: string): boolean;
  issuer(key: string): Issuer | undefined;
}

export interface RenewalRequest {
  /** The certificate being replaced: the re-check under the lock compares storage with it. */
  replacing: CachedCertificate;
  reason: RenewalReason;
  /** Its ARI identifier, sent to its issuer as `replaces`. */
  ariCertificateId?: string;
}

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
  /**
   * The schedule shared with other instances on the storage; closed by `stop()`. Without one, a name not
   * due is looked at every pass anyway, so another instance's renewal is still picked up within a pass.
   */
  scheduleIndex?: ScheduleIndex;
}

export class Maintenance {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly stopping = new AbortController();
  private readonly logger: Logger;
  private readonly renewalInfos: RenewalInfoRecords;
  /** Name → `<serial>:<reason>` whose backoff wait was already cut short: once per certificate and reason. */
  private readonly hurried = new Map<string, string>();
  /** When to look at each managed name next; a pass takes only the names due. */
  private readonly schedule = new RenewalSchedule();
  /** The shortest lifetime of a certificate maintained so far: short-lived ones shorten the interval. */
  private shortestLifetimeMs = Number.POSITIVE_INFINITY;
  /** Times for the shared schedule found during a pass, written in one go at its end. */
  private readonly indexWrites = new Map<string, ScheduleEntry>();

  constructor(private readonly options: MaintenanceOptions) {
    this.logger = options.logger.child({ logger: 'tls.maintenance' });
    this.renewalInfos = new RenewalInfoRecords({ ...options, logger: this.logger });
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

  /** Looks at `name` when `atMs` comes (at the latest in about a day), rather than at the next pass. */
  plan(name: string, atMs: number): void {
    this.schedule.set(name, this.withinCheckGap(atMs));
  }

  /**
   * `atMs`, or sooner: within 12 to 24 hours, at random, so names managed (or looked at) together do not
   * all come due in the same pass a day later.
   */
  private withinCheckGap(atMs: number): number {
    const random = this.options.random ?? Math.random;
    return Math.min(atMs, this.options.clock.now() + MAX_CHECK_GAP_MS * (1 - random() / 2));
  }

  /** Every name's time in the shared schedule, undefined without one (or when it cannot be read). */
  async indexedTimes(): Promise<ScheduleTimes | undefined> {
    try {
      return await this.options.scheduleIndex?.load();
    } catch (error) {
      this.logger.error(errorFields(error), 'reading the renewal schedule; every name is read from storage');
      return undefined;
    }
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
    await this.options.scheduleIndex?.close();
  }

  /**
   * One pass over the names due before the next pass (planned ones, and those asked for with `checkSoon`),
   * then storage cleaning if a day has passed. Exposed for tests.
   */
  async runPass(): Promise<void> {
    const { clock } = this.options;
    const checkIntervalMs = this.intervalMs();
    await this.pickUpScheduleChanges();
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
    await this.writeSchedule();
    if (this.stopping.signal.aborted) return;
    const { storage, locker } = this.options;
    const signal = this.stopping.signal;
    await cleanStorageIfDue({ storage, locker, clock, logger: this.logger, signal }).catch(
      (error: unknown) => {
        if (!this.stopping.signal.aborted) this.logger.error(errorFields(error), 'cleaning storage');
      },
    );
  }

  /** Names another instance moved in the shared schedule (it renewed them, say) are looked at this pass. */
  private async pickUpScheduleChanges(): Promise<void> {
    try {
      const changed = (await this.options.scheduleIndex?.changes()) ?? new Map();
      for (const name of changed.keys()) if (this.schedule.has(name)) this.schedule.soon(name);
    } catch (error) {
      if (!this.stopping.signal.aborted)
        this.logger.error(errorFields(error), 'reading the renewal schedule');
    }
  }

  private async writeSchedule(): Promise<void> {
    if (this.indexWrites.size === 0) return;
    const times = new Map(this.indexWrites);
    this.indexWrites.clear();
    try {
      await this.options.scheduleIndex?.write(times);
    } catch (error) {
      this.logger.error(errorFields(error), 'writing the renewal schedule');
    }
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
    const nextPass = () => clock.now() + this.intervalMs();
    const cached = host.cached(name);
    let current = cached;
    const stored = await host.loadFromStorage(name);
    if (stored && isNewer(stored, cached)) {
      current = stored;
      // Not cached and nothing running: it was evicted from a full cache, and is served from storage.
      if (cached || host.isBusy(name)) host.adopt(name, stored);
      // A renewal of ours waiting to retry would only find this on its next attempt, hours away maybe.
      if (host.isBusy(name)) host.hurry(name);
    }
    if (!current) return nextPass(); // Nothing obtained yet: the obtain in flight (or its give-up) owns it.
    const issuer = host.issuer(current.issuerKey);
    const ari = host.isBusy(name)
      ? undefined
      : await this.renewalInfos.current(name, current, issuer, this.stopping.signal);
    const now = clock.now();
    this.shortestLifetimeMs = Math.min(
      this.shortestLifetimeMs,
      current.info.notAfter - current.info.notBefore,
    );
    const decision = renewalDecision(current.info, now, {
      windowRatio: this.options.windowRatio,
      checkIntervalMs: maintenanceIntervalMs(this.options.checkIntervalMs, [
        current.info.notAfter - current.info.notBefore,
      ]),
      ...(ari ? { ariSelectedTimeMs: ari.selectedTimeMs } : {}),
    });
    if (!decision.reason) {
      // Without a shared schedule, another instance's renewal is only seen by looking: every pass.
      if (!this.options.scheduleIndex) return nextPass();
      const dueAtMs = Math.min(decision.dueAtMs, ari?.nextCheckMs ?? Number.POSITIVE_INFINITY);
      this.indexWrites.set(name, { atMs: dueAtMs, serial: current.info.serialNumber });
      return Math.max(this.withinCheckGap(dueAtMs), nextPass());
    }
    const fields = {
      identifier: name,
      issuer: current.issuerKey,
      serial: current.info.serialNumber,
      reason: decision.reason,
      expiration: new Date(current.info.notAfter).toISOString(),
      remaining: Math.round((current.info.notAfter - now) / 1000),
      ...(ari ? { ari_selected_time: new Date(ari.selectedTimeMs).toISOString() } : {}),
      ...(ari?.explanationUrl ? { ari_explanation: ari.explanationUrl } : {}),
    };
    if (host.isBusy(name)) {
      // Already renewing; in an emergency the backoff wait (up to hours) is cut short, once per certificate.
      const urgent = decision.reason === 'emergency' || decision.reason === 'expired';
      const key = `${current.info.serialNumber}:${decision.reason}`;
      if (urgent && this.hurried.get(name) !== key && host.hurry(name)) {
        this.hurried.set(name, key);
        this.logger.error(
          fields,
          'certificate expires soon and its renewal is waiting to retry; retrying now',
        );
      }
      return nextPass();
    }
    if (decision.reason === 'expired') {
      this.logger.error(fields, 'certificate has expired; serving it until a new one arrives, renewing now');
    } else if (decision.reason === 'emergency') {
      this.logger.error(fields, 'certificate expires soon; emergency renewal');
    } else {
      this.logger.info(fields, 'certificate needs renewal');
    }
    const renewed = host.renew(name, {
      replacing: current,
      reason: decision.reason,
      ...(ari ? { ariCertificateId: ari.certificateId } : {}),
    });
    // The next pass puts the new certificate's time in the shared schedule, where other instances see it.
    const lookAgain = () => this.schedule.has(name) && this.schedule.soon(name);
    renewed?.then(lookAgain, lookAgain);
    return nextPass();
  }
}

/** A stored certificate replaces the cached one when it is a different, longer-lived certificate. */
function isNewer(stored: CachedCertificate, cached: CachedCertificate | undefined): boolean {
  if (!cached) return true;
  return (
    stored.info.serialNumber !== cached.info.serialNumber && stored.info.notAfter >= cached.info.notAfter
  );
}
