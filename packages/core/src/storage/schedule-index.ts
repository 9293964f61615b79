/**
 * @module The renewal schedule kept with the records: each name's next check time (renewal time, ARI
 * recheck), shared by every instance on the storage. A maintenance pass reads only what changed since the
 * last one, so another instance's renewal moves the name's time here instead of every instance re-reading
 * every record every pass.
 */
/**
 * A name's entry: when to look at it next (ms since the epoch), and the serial of the certificate that
 * time was computed for, so a renewal is noticed even when the new certificate's time is the same.
 */
export interface ScheduleEntry {
  atMs: number;
  serial: string;
}

/** Name → entry. */
export type ScheduleTimes = ReadonlyMap<string, ScheduleEntry>;

const sameEntry = (a: ScheduleEntry | undefined, b: ScheduleEntry) =>
  a !== undefined && a.atMs === b.atMs && a.serial === b.serial;

/**
 * The shared schedule. Only finite times are stored; a name missing from it is read from its record and
 * written back (that is how a missing or stale index is rebuilt).
 */
export abstract class ScheduleIndex {
  /** The time the index holds for each name, as last read or written by this instance. */
  readonly #known = new Map<string, ScheduleEntry>();
  #loading?: Promise<ScheduleTimes>;

  /** Every entry, read once; later reads go through `changes()`. */
  load(): Promise<ScheduleTimes> {
    this.#loading ??= this.readAll().then((times) => {
      for (const [name, entry] of times) this.#known.set(name, entry);
      return this.#known;
    });
    return this.#loading;
  }

  entryOf(name: string): ScheduleEntry | undefined {
    return this.#known.get(name);
  }

  /** Plans names' next checks for every instance; times the index already holds are not written again. */
  async write(times: ScheduleTimes): Promise<void> {
    const changed = new Map<string, ScheduleEntry>();
    for (const [name, entry] of times) {
      if (Number.isFinite(entry.atMs) && !sameEntry(this.#known.get(name), entry)) changed.set(name, entry);
    }
    if (changed.size === 0) return;
    await this.append(changed);
    for (const [name, entry] of changed) this.#known.set(name, entry);
    await this.compactIfLarge(this.#known);
  }

  /** Names whose time someone else changed since the last `load()` or `changes()`, with their new times. */
  async changes(): Promise<Map<string, ScheduleEntry>> {
    await this.load();
    const changed = new Map<string, ScheduleEntry>();
    for (const [name, entry] of await this.readSince()) {
      if (sameEntry(this.#known.get(name), entry)) continue; // our own write, read back
      this.#known.set(name, entry);
      changed.set(name, entry);
    }
    return changed;
  }

  abstract close(): Promise<void>;
  protected abstract readAll(): Promise<ScheduleTimes>;
  /** Entries written (by anyone) since the previous read; may repeat entries already known. */
  protected abstract readSince(): Promise<ScheduleTimes>;
  protected abstract append(times: ScheduleTimes): Promise<void>;
  protected async compactIfLarge(_known: ScheduleTimes): Promise<void> {}
}
