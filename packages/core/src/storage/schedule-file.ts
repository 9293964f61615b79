/**
 * @module The file store's renewal schedule: an append-only log `<directory>/renewal-schedule.log` of
 * `<atMs> <serial> <name>` lines. Appends from several processes on one machine interleave whole lines (O_APPEND),
 * a reader picks up new lines from where it stopped, and the log is rewritten with the live entries when
 * it has grown to several times their number.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type ScheduleEntry, ScheduleIndex, type ScheduleTimes } from './schedule-index.js';

const HEADER = '# autotls renewal schedule v1\n';
/** Rewrite when the log holds this many more lines than live entries (old times of renewed names). */
const COMPACT_SLACK_LINES = 10_000;
/** Lines parsed between two turns of the event loop: a 100,000-name log does not hold up handshakes. */
const LINES_PER_TURN = 10_000;

export class FileScheduleIndex extends ScheduleIndex {
  readonly path: string;
  /** Bytes of the log read so far, and which file they belong to (a rewrite makes a new one). */
  #offset = 0;
  #inode?: number;
  #lines = 0;

  constructor(directory: string) {
    super();
    this.path = path.join(directory, 'renewal-schedule.log');
  }

  async close(): Promise<void> {}

  protected async readAll(): Promise<ScheduleTimes> {
    this.#offset = 0;
    this.#lines = 0;
    const times = new Map<string, ScheduleEntry>();
    const text = await this.#readFrom(0, times);
    // Missing, or not ours: rebuilt from the records as each name is looked at, then rewritten.
    if (text !== undefined && text.length > 0 && !text.startsWith(HEADER)) {
      times.clear();
      this.#lines = Number.POSITIVE_INFINITY;
    }
    return times;
  }

  protected async readSince(): Promise<ScheduleTimes> {
    const stat = await fs.stat(this.path).catch(() => undefined);
    if (!stat) return new Map();
    if (stat.ino !== this.#inode || stat.size < this.#offset) return this.readAll();
    if (stat.size === this.#offset) return new Map();
    const times = new Map<string, ScheduleEntry>();
    await this.#readFrom(this.#offset, times);
    return times;
  }

  protected async append(times: ScheduleTimes): Promise<void> {
    let text = '';
    for (const [name, entry] of times) text += line(name, entry);
    await fs.mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 });
    const file = await fs.open(this.path, 'a', 0o600);
    try {
      if ((await file.stat()).size === 0) text = HEADER + text;
      await file.write(text);
    } finally {
      await file.close();
    }
    this.#lines += times.size;
  }

  protected override async compactIfLarge(known: ScheduleTimes): Promise<void> {
    if (this.#lines <= 2 * known.size + COMPACT_SLACK_LINES) return;
    await this.readSince(); // lines other instances appended are kept
    const lines = [HEADER];
    for (const [name, entry] of known) lines.push(line(name, entry));
    const temporary = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    await fs.writeFile(temporary, lines.join(''), { mode: 0o600 });
    await fs.rename(temporary, this.path);
    const stat = await fs.stat(this.path);
    this.#inode = stat.ino;
    this.#offset = stat.size;
    this.#lines = known.size;
  }

  /** Parses complete lines from `offset` into `times`; returns the text read, undefined when there is no log. */
  async #readFrom(offset: number, times: Map<string, ScheduleEntry>): Promise<string | undefined> {
    let file: fs.FileHandle;
    try {
      file = await fs.open(this.path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const stat = await file.stat();
      const buffer = Buffer.alloc(Math.max(stat.size - offset, 0));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
      // A line still being appended is read next time.
      const complete = buffer.lastIndexOf(0x0a, bytesRead - 1) + 1;
      const lines = buffer.toString('utf8', 0, complete);
      let parsed = 0;
      for (const text of lines.split('\n')) {
        if (++parsed % LINES_PER_TURN === 0) await new Promise(setImmediate);
        const [atMs, serial, name] = text.split(' ');
        if (text.startsWith('#') || !name || !serial) continue;
        if (Number.isFinite(Number(atMs))) times.set(name, { atMs: Number(atMs), serial });
        this.#lines++;
      }
      this.#inode = stat.ino;
      this.#offset = offset + complete;
      return lines;
    } finally {
      await file.close();
    }
  }
}

function line(name: string, { atMs, serial }: ScheduleEntry): string {
  return `${atMs} ${serial} ${name}\n`;
}
