/** @module The default storage engine: a Keyv store adapter keeping one file per key, written atomically. */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { KeyvStoreAdapter, StoredData } from 'keyv';

export interface FileStoreOptions {
  /** Root of the store; each namespace is a folder below it. Created (mode 0700) on first write. */
  directory: string;
}

/**
 * One file per key: `autotls:certificates/<issuer>/example.com` lives at
 * `<directory>/autotls/certificates/<issuer>/example.com`. Every write goes to a temp file that is fsynced
 * and renamed over the target, so a reader sees the old entry or the new one, never half of one. Files are
 * mode 0600 and folders 0700 because entries hold private keys.
 *
 * Expiry lives in Keyv's envelope (Keyv drops expired entries when it reads them), so `set` uses its TTL
 * only to skip fsync for such short-lived entries. A key cannot also be a prefix of another key (`a` and `a/b`), as in Caddy's file storage.
 *
 * Keyv 5 only wires `keyv.iterator` for adapters on its own list of dialects; to list keys, attach it:
 * `keyv.iterator = keyv.generateIterator(store.iterator.bind(store))`.
 *
 * @example
 * const keyv = new Keyv({ store: new FileStore({ directory: '/var/lib/autotls' }), namespace: 'autotls' });
 */
export class FileStore extends EventEmitter implements KeyvStoreAdapter {
  readonly directory: string;
  readonly opts: { directory: string; dialect: 'file'; url: string };
  /** Set by Keyv to its namespace; keys then arrive as `<namespace>:<key>`. */
  namespace?: string | undefined;

  constructor(options: FileStoreOptions) {
    super();
    this.directory = path.resolve(options.directory);
    // Keyv reads `opts.url` when it checks whether an adapter is iterable, and fails when it is missing.
    this.opts = { directory: this.directory, dialect: 'file', url: pathToFileURL(this.directory).href };
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return (await readIfExists(this.#path(key))) as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  /**
   * An entry given a TTL expires by itself (a challenge's key authorization): it is written atomically but
   * not fsynced, since losing it in a crash costs one failed validation, and two fsyncs are ~5 ms of the
   * challenge's critical path.
   */
  async set(key: string, value: unknown, ttlMs?: number): Promise<boolean> {
    const data = typeof value === 'string' ? value : JSON.stringify(value);
    await writeFileAtomic(this.#path(key), data, { durable: ttlMs === undefined });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    try {
      await fs.unlink(this.#path(key));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /** Removes this namespace's folder only. */
  async clear(): Promise<void> {
    await fs.rm(this.#namespaceDirectory(this.namespace), { recursive: true, force: true });
  }

  /** Keyv calls an adapter's `has` instead of its own expiry check, so the envelope's `expires` is honoured here. */
  async has(key: string): Promise<boolean> {
    const raw = await readIfExists(this.#path(key));
    if (raw === undefined) return false;
    try {
      const { expires } = JSON.parse(raw) as { expires?: unknown };
      return typeof expires !== 'number' || expires > Date.now();
    } catch {
      return true; // Not Keyv's envelope (a custom serializer): the entry exists.
    }
  }

  /**
   * Removes the temp files of writes that will never finish: their writer process is gone (a SIGKILL
   * mid-write), or they are older than {@link STALE_TEMP_FILE_MS}. A live writer's temp file is left alone.
   * Resolves with how many were removed. Run when the store opens and by the cleaning pass.
   */
  async removeStaleTempFiles(nowMs = Date.now()): Promise<number> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.directory, { recursive: true });
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    let removed = 0;
    for (const entry of entries) {
      const match = TEMP_FILE.exec(path.basename(entry));
      if (!match) continue;
      const file = path.join(this.directory, entry);
      const writerPid = match[1] === undefined ? undefined : Number(match[1]);
      if (writerPid !== undefined && writerPid !== process.pid && isProcessAlive(writerPid)) {
        const stats = await fs.stat(file).catch(() => undefined);
        if (!stats || nowMs - stats.mtimeMs < STALE_TEMP_FILE_MS) continue;
      } else if (writerPid === process.pid) continue; // this process's own write in progress
      await fs.rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  /** Yields `[<namespace>:<key>, raw]` for every entry in the namespace, in no particular order. */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    const root = this.#namespaceDirectory(namespace);
    const prefix = namespace ? `${namespace}:` : '';
    for (const relative of await listFiles(root)) {
      const raw = await readIfExists(path.join(root, relative));
      if (raw === undefined) continue; // Deleted since it was listed.
      yield [prefix + relative.split(path.sep).map(decodePathSegment).join('/'), raw];
    }
  }

  #namespaceDirectory(namespace: string | undefined): string {
    return path.join(this.directory, encodePathSegment(namespace ?? ''));
  }

  #path(key: string): string {
    const namespace = this.namespace ?? '';
    const bare = namespace && key.startsWith(`${namespace}:`) ? key.slice(namespace.length + 1) : key;
    return path.join(this.#namespaceDirectory(namespace), ...bare.split('/').map(encodePathSegment));
  }
}

/**
 * Maps any string to one safe file name, reversibly. Everything but lowercase letters, digits, `_`, `-`
 * and inner dots is percent-encoded, so a segment is never `.`/`..`, never holds a separator or NUL, and
 * never starts with a dot (temp files do). Uppercase is encoded too: `A.com` and `a.com` must not share a
 * file on case-insensitive file systems (macOS, Windows). The empty string becomes `%`, which no other
 * input produces.
 */
export function encodePathSegment(segment: string): string {
  if (segment === '') return '%';
  let encoded = '';
  for (const [index, char] of [...segment].entries()) {
    const safe = /^[a-z0-9_-]$/.test(char) || (char === '.' && index > 0);
    if (safe) encoded += char;
    else {
      const escaped = encodeURIComponent(char); // Throws on a lone surrogate rather than guess.
      encoded += escaped === char ? `%${hex(char)}` : escaped;
    }
  }
  return encoded;
}

/** The inverse of {@link encodePathSegment}. */
export function decodePathSegment(encoded: string): string {
  return encoded === '%' ? '' : decodeURIComponent(encoded);
}

/** A temp file of an atomic write: `.<name>.<writer pid>.<random>.tmp` (older ones have no pid). */
const TEMP_FILE = /^\..+?(?:\.(\d+))?\.[0-9a-f]{12}\.tmp$/;
/** A write takes milliseconds; a temp file this old belongs to nobody, whatever its pid says (pids are reused). */
export const STALE_TEMP_FILE_MS = 10 * 60_000;

function isProcessAlive(pid: number): boolean {
  if (!(pid > 0)) return false; // 0 and negatives address process groups
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/**
 * Replaces `file` with `data` so that a crash at any point leaves the old content or the new one: write a
 * temp file beside it, fsync it, rename it over `file`, fsync the folder so the rename itself is durable.
 */
export async function writeFileAtomic(
  file: string,
  data: string,
  { durable = true }: { durable?: boolean } = {},
): Promise<void> {
  const directory = path.dirname(file);
  await fs.mkdir(directory, { recursive: true, mode: 0o700 });
  // The writer's pid in the name lets a later start tell a killed write's leftover from a live one.
  const temp = path.join(
    directory,
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    const handle = await fs.open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  if (durable) await syncDirectory(directory);
}

async function syncDirectory(directory: string): Promise<void> {
  if (process.platform === 'win32') return; // Folders cannot be opened for fsync there.
  const handle = await fs.open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * An entry's file that exists but cannot be read (a folder in its place, no permission, an I/O error).
 * Never "no entry": a certificate that is there but unreadable must not be ordered again.
 */
export class FileEntryError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const what = code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${String(code ?? cause)})`;
    super(`storage file ${path} ${what}`, { cause });
    this.name = 'FileEntryError';
    this.code = code;
  }
}

/** The file's text, or `undefined` when there is no such entry. Any other failure throws a {@link FileEntryError}. */
async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new FileEntryError(file, error);
  }
}

/** Paths of the entries below `root`, relative to it; temp files (dot files) are skipped. */
async function listFiles(root: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(root, { recursive: true });
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
  const files: string[] = [];
  for (const entry of entries) {
    if (path.basename(entry).startsWith('.')) continue;
    const stats = await fs.stat(path.join(root, entry)).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (stats?.isFile()) files.push(entry);
  }
  return files;
}

/**
 * "No entry": the file is absent, or a parent is a file (`a` exists, `a/b` asked). A folder where the
 * entry's file should be is not "no entry" (no key of ours is a prefix of another): it is an error.
 */
function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function hex(char: string): string {
  return char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
}
