/**
 * @module The CLI's way to the app's storage: a directory (the file store, default the library's data
 * directory) or a Redis URL, found under the namespace the library uses. It fails in seconds, never hangs.
 */
import { stat } from 'node:fs/promises';
import { Keyv } from 'keyv';
import { listEntries } from '../storage/clean.js';
import { defaultDataDirectory, openStorage, type Storage } from '../storage/storage.js';

/** A failure the CLI reports as one line on stderr. */
export class CliError extends Error {
  constructor(
    message: string,
    /** 2: the command line is wrong; 1: anything else. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** An unreachable Redis is reported within this (node-redis would reconnect for ever). */
const REDIS_CONNECT_TIMEOUT_MS = 3_000;
/**
 * Namespaces tried, in order: the file store's, which the docs use for Redis too, then Keyv's default (a
 * plain `new Keyv(new KeyvRedis(url))`).
 */
const REDIS_NAMESPACES = ['autotls', 'keyv'];

export interface CliStorage {
  storage: Storage;
  /** Where it is, for messages. */
  location: string;
  close(): Promise<void>;
}

/** Opens `option` (a directory or `redis://…`; default the library's data directory). */
export async function openCliStorage(option: string | undefined, namespace?: string): Promise<CliStorage> {
  if (option && /^rediss?:\/\//.test(option)) return openRedis(option, namespace);
  const directory = option ?? defaultDataDirectory();
  const found = await stat(directory).catch(() => undefined);
  if (!found?.isDirectory()) {
    throw new CliError(
      `no storage at ${directory}: the directory does not exist (pass --storage <dir|redis://…>)`,
    );
  }
  return { storage: openStorage(directory), location: directory, close: async () => {} };
}

/** `@keyv/redis` is an optional peer: loaded only for a `redis://` storage, with the fix when it is missing. */
async function loadKeyvRedis(): Promise<typeof import('@keyv/redis')> {
  try {
    return await import('@keyv/redis');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new CliError('a redis:// storage needs @keyv/redis, which is not installed: npm i @keyv/redis');
  }
}

async function openRedis(url: string, namespace: string | undefined): Promise<CliStorage> {
  const { default: KeyvRedis, createClient } = await loadKeyvRedis();
  const client = createClient({
    url,
    socket: { connectTimeout: REDIS_CONNECT_TIMEOUT_MS, reconnectStrategy: false },
  });
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`no answer within ${REDIS_CONNECT_TIMEOUT_MS} ms`)),
      REDIS_CONNECT_TIMEOUT_MS,
    ).unref(),
  );
  try {
    await Promise.race([client.connect(), timeout]);
  } catch (error) {
    const reason = (lastError ?? error) as Error;
    if (client.isOpen) client.destroy();
    throw new CliError(`cannot reach Redis at ${redact(url)}: ${reason.message || String(reason)}`);
  }
  // The same wrapper as the app's: a failing store throws rather than reading as "nothing stored".
  const open = (ns: string) => openStorage(new Keyv({ store: new KeyvRedis(client), namespace: ns }));
  let storage = open(namespace ?? REDIS_NAMESPACES[0] ?? 'autotls');
  if (!namespace) {
    for (const candidate of REDIS_NAMESPACES) {
      const tried = open(candidate);
      const entries = await listEntries(tried, ['certificates/', 'status/', 'authorities/']);
      if (entries && entries.length > 0) {
        storage = tried;
        break;
      }
    }
  }
  return {
    storage,
    location: `${redact(url)} (namespace ${storage.keyv.namespace})`,
    close: async () => {
      await client.close();
    },
  };
}

/** A Redis URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return url;
  }
}
