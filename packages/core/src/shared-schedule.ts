/**
 * @module The maintenance loop's side of the renewal schedule kept with the records: the times a pass found
 * are written at its end, the names other instances moved are read at its start, and a name whose renewal
 * is far away is still looked at within about a day.
 */
import { errorFields, type Logger } from './log.js';
import type { ScheduleEntry, ScheduleIndex, ScheduleTimes } from './storage/schedule-index.js';

/**
 * However far away its renewal is, each name is looked at (one storage read) within 12 to 24 hours, at
 * random so names managed together do not all come due in one pass: a certificate replaced by something
 * that does not write the shared schedule (an older version, a hand edit) is picked up within a day.
 */
const MAX_CHECK_GAP_MS = 24 * 60 * 60_000;

export class SharedSchedule {
  /** Entries found during a pass, written in one go at its end. */
  private readonly writes = new Map<string, ScheduleEntry>();

  constructor(
    private readonly index: ScheduleIndex | undefined,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Whether there is one. Without it, a name not due is looked at every pass anyway, so another
   * instance's renewal is still picked up within a pass.
   */
  get enabled(): boolean {
    return this.index !== undefined;
  }

  /** Every name's entry, undefined without a schedule (or when it cannot be read). */
  async load(): Promise<ScheduleTimes | undefined> {
    try {
      return await this.index?.load();
    } catch (error) {
      this.logger.error(errorFields(error), 'reading the renewal schedule; every name is read from storage');
      return undefined;
    }
  }

  /** Names another instance moved since the last call (it renewed them, say). */
  async movedElsewhere(): Promise<string[]> {
    try {
      return [...((await this.index?.changes())?.keys() ?? [])];
    } catch (error) {
      this.logger.error(errorFields(error), 'reading the renewal schedule');
      return [];
    }
  }

  /** `name`'s certificate `serial` is next due at `dueAtMs`; returns when this instance should look again. */
  record(name: string, serial: string, dueAtMs: number, nowMs: number): number {
    this.writes.set(name, { atMs: dueAtMs, serial });
    return this.withinCheckGap(dueAtMs, nowMs);
  }

  /** `atMs`, or sooner: within 12 to 24 hours. */
  withinCheckGap(atMs: number, nowMs: number): number {
    return Math.min(atMs, nowMs + MAX_CHECK_GAP_MS * (1 - this.random() / 2));
  }

  async flush(): Promise<void> {
    if (this.writes.size === 0) return;
    const entries = new Map(this.writes);
    this.writes.clear();
    try {
      await this.index?.write(entries);
    } catch (error) {
      this.logger.error(errorFields(error), 'writing the renewal schedule');
    }
  }

  async close(): Promise<void> {
    await this.index?.close();
  }
}
